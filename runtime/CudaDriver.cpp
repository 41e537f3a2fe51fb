//===- CudaDriver.cpp - the CUDA driver API, loaded at run time -----------===//

#include "dqt/Runtime/CudaDriver.h"

#include "dqt/Compiler/KernelArgs.h"

#include <c10/core/Stream.h>
#include <c10/util/Exception.h>

#include <dlfcn.h>
#include <limits>
#include <mutex>
#include <type_traits>
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
  bind(d.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
  bind(d.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
  // cuda.h has no _v2 of the asynchronous memsets.
  bind(d.cuMemsetD32Async, "cuMemsetD32Async");
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

namespace cuda {
namespace {

// LibTorch's current stream lives in libc10_cuda.so, which the runtime does
// not link (it links torch_cpu and c10 only, so it builds and runs without
// the CUDA libraries of the wheel). When the process has loaded it anyway,
// its two entry points are looked up by their mangled names.

/// The layout of c10::cuda::CUDAStream, returned by value by
/// getCurrentCUDAStream: its only member is a c10::Stream. Trivially
/// copyable and 16 bytes, so both are returned in registers alike.
struct CUDAStreamAbi {
  c10::Stream stream;
};
static_assert(std::is_trivially_copyable_v<CUDAStreamAbi> &&
                  sizeof(CUDAStreamAbi) == 16,
              "c10::Stream changed: update the CUDAStream mirror");
static_assert(std::is_same_v<c10::DeviceIndex, int8_t>,
              "c10::DeviceIndex changed: update the mangled name below");

/// c10::cuda::getCurrentCUDAStream(c10::DeviceIndex = signed char).
constexpr const char *kGetCurrent = "_ZN3c104cuda20getCurrentCUDAStreamEa";
/// c10::cuda::CUDAStream::stream() const.
constexpr const char *kStreamOf = "_ZNK3c104cuda10CUDAStream6streamEv";

struct TorchStreamApi {
  CUDAStreamAbi (*getCurrent)(c10::DeviceIndex);
  /// A const member function: `this` is the first argument.
  CUstream (*streamOf)(const CUDAStreamAbi *);
};

/// The entry points, or nullptr and the reason. Success is kept (the handle
/// is never closed, so the pointers stay valid); failure is retried, since
/// the library may be loaded later.
const TorchStreamApi *torchStreamApi(std::string *why) {
  static std::mutex mutex;
  static TorchStreamApi api;
  static bool resolved = false;
  std::lock_guard<std::mutex> lock(mutex);
  if (resolved)
    return &api;
  // RTLD_NOLOAD: only a library the process has loaded already.
  void *lib = ::dlopen("libc10_cuda.so", RTLD_NOW | RTLD_NOLOAD);
  if (!lib) {
    if (why)
      *why = "libc10_cuda.so is not loaded in this process";
    return nullptr;
  }
  api.getCurrent =
      reinterpret_cast<decltype(api.getCurrent)>(::dlsym(lib, kGetCurrent));
  api.streamOf =
      reinterpret_cast<decltype(api.streamOf)>(::dlsym(lib, kStreamOf));
  if (!api.getCurrent || !api.streamOf) {
    if (why)
      *why = std::string("libc10_cuda.so lacks ") +
             (api.getCurrent ? kStreamOf : kGetCurrent) +
             " (a LibTorch with another ABI)";
    ::dlclose(lib);
    return nullptr;
  }
  resolved = true;
  return &api;
}

} // namespace

bool torchStreamsAvailable(std::string *why) {
  std::string reason;
  bool ok = torchStreamApi(&reason) != nullptr;
  if (why)
    *why = reason;
  return ok;
}

CUstream currentTorchStream(int device) {
  // No device: torch's CUDA code would fail or initialize CUDA for nothing.
  if (!CudaDriver::get())
    return nullptr;
  const TorchStreamApi *api = torchStreamApi(nullptr);
  if (!api)
    return nullptr;
  TORCH_CHECK(device >= 0 && device <= std::numeric_limits<int8_t>::max(),
              "dqt: CUDA device index ", device, " is out of range");
  CUDAStreamAbi s = api->getCurrent(c10::DeviceIndex(device));
  // A cheap check that the mirrored layout is the library's.
  TORCH_CHECK(s.stream.device_type() == c10::DeviceType::CUDA &&
                  s.stream.device_index() == device,
              "dqt: c10::cuda::getCurrentCUDAStream(", device,
              ") returned a stream of ", s.stream.device(),
              ": this LibTorch's CUDAStream layout is not the one dqt was "
              "built against");
  return api->streamOf(&s);
}

} // namespace cuda

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
                                  std::optional<CUstream> streamArg) {
  std::string why;
  const CudaDriver *cu = CudaDriver::get(&why);
  TORCH_CHECK(cu, "dqt: the CUDA launcher is unavailable: ", why);
  CUstream stream = streamArg ? *streamArg : cuda::currentTorchStream(0);

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

  for (size_t p = 0; p < params.size(); ++p)
    checkStepOperands(config, params[p], p);
  bool rows = config.scale == ScaleMode::Row;

  std::vector<StepStats> stats;
  CUdeviceptr partials;
  cu->check(cu->cuMemAlloc(&partials, kNumReductions * sizeof(int64_t)),
            "cuMemAlloc");
  for (const StepOperands &op : params) {
    // [max q', changed, non-finite]; float mode's one reduction, the
    // non-finite count, is slot 0.
    int64_t init[kNumReductions] = {
        config.floatWeights ? 0 : std::numeric_limits<int64_t>::min(), 0, 0};
    // Stream-ordered copies: torch's streams may not synchronize with the
    // legacy default stream that the plain cuMemcpy calls use.
    cu->check(cu->cuMemcpyHtoDAsync(partials, init, sizeof(init), stream),
              "cuMemcpyHtoDAsync");
    if (rows) // the kernel max-combines each row into its slot atomically
      cu->check(
          cu->cuMemsetD32Async(reinterpret_cast<CUdeviceptr>(op.rowMaxQ),
                               unsigned(std::numeric_limits<int32_t>::min()),
                               size_t(op.numel / op.rowLength), stream),
          "cuMemsetD32Async");
    KernelArgs args;
    packStepArgs(args, config, op, hyper, seed, step);
    args.addBuffer(reinterpret_cast<void *>(partials), kNumReductions);
    // 256 threads, a group of 8 elements each per grid-stride iteration;
    // enough blocks to fill a large GPU, no more than the work needs.
    int64_t groups = (op.numel + 7) / 8;
    unsigned blocks = unsigned(std::min<int64_t>((groups + 255) / 256, 4096));
    cu->check(cu->cuLaunchKernel(fn, std::max(blocks, 1u), 1, 1, 256, 1, 1, 0,
                                 stream, args.data(), nullptr),
              "cuLaunchKernel");
    int64_t out[kNumReductions];
    cu->check(cu->cuMemcpyDtoHAsync(out, partials, sizeof(out), stream),
              "cuMemcpyDtoHAsync");
    cu->check(cu->cuStreamSynchronize(stream), "cuStreamSynchronize");
    stats.push_back(config.floatWeights ? StepStats{-1, -1, out[0]}
                                        : StepStats{out[0], out[1], out[2]});
  }
  cu->cuMemFree(partials);
  return stats;
}

} // namespace dqt
