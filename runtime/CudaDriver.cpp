//===- CudaDriver.cpp - the CUDA driver API, loaded at run time -----------===//

#include "dqt/Runtime/CudaDriver.h"

#include "dqt/Compiler/KernelArgs.h"

#include <c10/util/Exception.h>

#include <dlfcn.h>
#include <limits>
#include <mutex>
#include <unordered_map>

namespace dqt {

namespace {

struct Loaded {
  CudaDriver driver{};
  bool ok = false;
  std::string why;
};

Loaded load() {
  Loaded l;
  void *lib = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *err = ::dlerror();
    l.why = std::string("cannot open libcuda.so.1: ") + (err ? err : "?");
    return l;
  }
  CudaDriver &d = l.driver;
  auto bind = [&](auto &fn, const char *name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(
        ::dlsym(lib, name));
    if (!fn && l.why.empty())
      l.why = std::string("libcuda.so.1 lacks ") + name;
  };
  bind(d.cuInit, "cuInit");
  bind(d.cuDeviceGetCount, "cuDeviceGetCount");
  bind(d.cuDeviceGet, "cuDeviceGet");
  bind(d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  bind(d.cuCtxSetCurrent, "cuCtxSetCurrent");
  bind(d.cuModuleLoadData, "cuModuleLoadData");
  bind(d.cuModuleGetFunction, "cuModuleGetFunction");
  bind(d.cuLaunchKernel, "cuLaunchKernel");
  bind(d.cuMemAlloc, "cuMemAlloc_v2");
  bind(d.cuMemFree, "cuMemFree_v2");
  bind(d.cuMemcpyHtoD, "cuMemcpyHtoD_v2");
  bind(d.cuMemcpyDtoH, "cuMemcpyDtoH_v2");
  bind(d.cuStreamSynchronize, "cuStreamSynchronize");
  bind(d.cuGetErrorString, "cuGetErrorString");
  if (!l.why.empty())
    return l;
  int count = 0;
  if (CUresult r = d.cuInit(0)) {
    l.why = "cuInit failed with error " + std::to_string(r);
    return l;
  }
  if (d.cuDeviceGetCount(&count) || count == 0) {
    l.why = "no CUDA device";
    return l;
  }
  CUdevice dev;
  CUcontext ctx;
  if (d.cuDeviceGet(&dev, 0) || d.cuDevicePrimaryCtxRetain(&ctx, dev) ||
      d.cuCtxSetCurrent(ctx)) {
    l.why = "cannot make device 0's primary context current";
    return l;
  }
  l.ok = true;
  return l;
}

} // namespace

const CudaDriver *CudaDriver::get(std::string *why) {
  static Loaded loaded = load();
  if (why)
    *why = loaded.why;
  return loaded.ok ? &loaded.driver : nullptr;
}

void CudaDriver::check(CUresult r, const char *what) const {
  if (r == 0)
    return;
  const char *msg = nullptr;
  cuGetErrorString(r, &msg);
  TORCH_CHECK(false, "dqt: CUDA ", what, " failed: ", msg ? msg : "?", " (", r,
              ")");
}

std::vector<StepStats> launchCuda(const std::string &ptx,
                                  const StepConfig &config,
                                  const std::vector<StepOperands> &params,
                                  const std::vector<float> &hyper,
                                  uint64_t seed, uint64_t step,
                                  CUstream stream) {
  std::string why;
  const CudaDriver *cu = CudaDriver::get(&why);
  TORCH_CHECK(cu, "dqt: the CUDA launcher is unavailable: ", why);

  // One module per PTX text, loaded once (the driver JIT-compiles it).
  static std::mutex mutex;
  static std::unordered_map<std::string, CUfunction> functions;
  CUfunction fn;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = functions.find(ptx);
    if (it == functions.end()) {
      CUmodule module;
      cu->check(cu->cuModuleLoadData(&module, ptx.c_str()), "cuModuleLoadData");
      cu->check(cu->cuModuleGetFunction(&fn, module, kStepKernelName),
                "cuModuleGetFunction");
      functions.emplace(ptx, fn);
    } else {
      fn = it->second;
    }
  }

  std::vector<StepStats> stats;
  CUdeviceptr partials;
  cu->check(cu->cuMemAlloc(&partials, kNumReductions * sizeof(int64_t)),
            "cuMemAlloc");
  for (const StepOperands &op : params) {
    int64_t init[kNumReductions] = {std::numeric_limits<int64_t>::min(), 0, 0};
    cu->check(cu->cuMemcpyHtoD(partials, init, sizeof(init)), "cuMemcpyHtoD");
    KernelArgs args;
    packStepArgs(args, config, op, hyper, seed, step);
    args.addBuffer(reinterpret_cast<void *>(partials), kNumReductions);
    // 256 threads, 4 elements each per grid-stride iteration; enough blocks
    // to fill a large GPU, no more than the work needs.
    int64_t groups = (op.numel + 3) / 4;
    unsigned blocks = unsigned(std::min<int64_t>((groups + 255) / 256, 4096));
    cu->check(cu->cuLaunchKernel(fn, std::max(blocks, 1u), 1, 1, 256, 1, 1, 0,
                                 stream, args.data(), nullptr),
              "cuLaunchKernel");
    int64_t out[kNumReductions];
    cu->check(cu->cuStreamSynchronize(stream), "cuStreamSynchronize");
    cu->check(cu->cuMemcpyDtoH(out, partials, sizeof(out)), "cuMemcpyDtoH");
    stats.push_back({out[0], out[1], out[2]});
  }
  cu->cuMemFree(partials);
  return stats;
}

} // namespace dqt
