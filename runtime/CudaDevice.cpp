//===- CudaDevice.cpp - one GPU as the launches use it --------------------===//

#include "dqt/Runtime/CudaDevice.h"

#include "CacheEntry.h"
#include "dqt/Compiler/StepConfig.h"

#include <c10/util/Exception.h>

#include <memory>
#include <vector>

namespace dqt {

CudaDevice::CudaDevice(const CudaDriver &cu, int ordinal)
    : cu(&cu), ordinal(ordinal) {
  cu.check(cu.cuDeviceGet(&device, ordinal), "cuDeviceGet");
  cu.check(cu.cuDeviceGetAttribute(
               &ccMajor, kCuDeviceAttributeComputeCapabilityMajor, device),
           "cuDeviceGetAttribute");
  cu.check(cu.cuDeviceGetAttribute(
               &ccMinor, kCuDeviceAttributeComputeCapabilityMinor, device),
           "cuDeviceGetAttribute");
  TORCH_CHECK(ccMajor >= 8, "dqt: CUDA device ", ordinal,
              " has compute capability ", ccMajor, ".", ccMinor,
              "; dqt's GPU kernels need 8.0 or newer (sm_80: A100, sm_90: "
              "H100/H200)");
  cu.check(cu.cuDeviceGetAttribute(
               &numSMs, kCuDeviceAttributeMultiprocessorCount, device),
           "cuDeviceGetAttribute");
  int pageableAccess = 0;
  cu.check(cu.cuDeviceGetAttribute(&pageableAccess,
                                   kCuDeviceAttributePageableMemoryAccess,
                                   device),
           "cuDeviceGetAttribute");
  pageable = pageableAccess != 0;
  cu.check(cu.cuDriverGetVersion(&driverVersion), "cuDriverGetVersion");
  cu.check(cu.cuDevicePrimaryCtxRetain(&context, device),
           "cuDevicePrimaryCtxRetain");
  chipName = ccMajor >= 9 ? "sm_90" : "sm_80";
}

CudaDevice &CudaDevice::get(int index) {
  static std::mutex mutex;
  // Devices live as long as the process (their contexts and modules are
  // referenced by launches until exit).
  static std::unordered_map<int, CudaDevice *> devices;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = devices.find(index);
  if (it != devices.end())
    return *it->second;
  std::string why;
  const CudaDriver *cu = CudaDriver::get(&why);
  TORCH_CHECK(cu, "dqt: no CUDA driver can be used: ", why);
  int count = 0;
  cu->check(cu->cuDeviceGetCount(&count), "cuDeviceGetCount");
  TORCH_CHECK(index >= 0 && index < count, "dqt: CUDA device ", index,
              " does not exist (", count, " device", count == 1 ? "" : "s",
              ")");
  auto *d = new CudaDevice(*cu, index);
  devices.emplace(index, d);
  return *d;
}

void CudaDevice::bind() const {
  cu->check(cu->cuCtxSetCurrent(context), "cuCtxSetCurrent");
}

CUfunction CudaDevice::function(const Executable &kernel,
                                const std::string &cacheDir) {
  TORCH_CHECK(kernel.target == Target::Cuda, "dqt: the ", kernel.key,
              " kernel is not a CUDA executable");
  TORCH_CHECK(kernel.chip == chipName, "dqt: the ", kernel.key,
              " kernel was generated for ", kernel.chip, "; CUDA device ",
              ordinal, " runs ", chipName);
  // Looked up at every launch, so by address, not by hashing the image: the
  // image's own address and size tell a reused address apart.
  std::lock_guard<std::mutex> lock(mutex);
  auto it = functions.find(&kernel);
  if (it != functions.end() && it->second.image == kernel.image.data() &&
      it->second.size == kernel.image.size())
    return it->second.fn;
  bind();

  std::string cubin;
  if (kernel.cubin) {
    cubin = kernel.image;
  } else {
    // PTX becomes a cubin once per configuration and device: the driver's
    // JIT at every start would cost a compilation per kernel.
    std::string diskKey =
        "cuda|" + kernel.key + "|" + chipName + "|cc" +
        std::to_string(ccMajor) + std::to_string(ccMinor) + "|driver " +
        std::to_string(driverVersion) + "|ptx " +
        std::to_string(std::hash<std::string>()(kernel.image));
    std::string path =
        cacheDir.empty()
            ? ""
            : cache::entryPath(cacheDir, kernel.key + "-" + chipName, diskKey,
                               ".cubin");
    bool present = false;
    if (!path.empty())
      if (auto cached = cache::readEntry(path, diskKey, present))
        cubin = std::move(*cached), ++numLoaded;
    if (cubin.empty()) {
      CUlinkState link;
      cu->check(cu->cuLinkCreate(0, nullptr, nullptr, &link), "cuLinkCreate");
      std::unique_ptr<CUlinkState_st, CUresult (*)(CUlinkState)> owner(
          link, cu->cuLinkDestroy);
      cu->check(cu->cuLinkAddData(link, kCuJitInputPtx,
                                  const_cast<char *>(kernel.image.c_str()),
                                  kernel.image.size() + 1, "dqt_step.ptx", 0,
                                  nullptr, nullptr),
                "cuLinkAddData");
      void *data = nullptr;
      size_t size = 0;
      cu->check(cu->cuLinkComplete(link, &data, &size), "cuLinkComplete");
      cubin.assign(static_cast<const char *>(data), size);
      ++numLinked;
      if (!path.empty())
        cache::writeEntry(path, diskKey, cubin);
    }
  }
  CUmodule module;
  cu->check(cu->cuModuleLoadData(&module, cubin.data()), "cuModuleLoadData");
  CUfunction fn;
  cu->check(cu->cuModuleGetFunction(&fn, module, kStepKernelName),
            "cuModuleGetFunction");
  functions[&kernel] = {kernel.image.data(), kernel.image.size(), fn};
  return fn;
}

} // namespace dqt
