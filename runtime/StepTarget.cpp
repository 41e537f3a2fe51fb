//===- StepTarget.cpp - where a parameter's step runs ---------------------===//

#include "dqt/Runtime/StepTarget.h"

#include "dqt/Runtime/KernelCache.h"

#include <c10/core/Stream.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <string>

namespace dqt {

namespace {
/// $DQT_HOST_TENSORS_ON_GPU: a GPU ordinal, or -1 when unset.
int hostTensorsOnGpu(const char *who) {
  const char *v = std::getenv("DQT_HOST_TENSORS_ON_GPU");
  if (!v || !*v)
    return -1;
  char *end = nullptr;
  long ordinal = std::strtol(v, &end, 10);
  TORCH_CHECK(*end == '\0' && ordinal >= 0 && ordinal < 1024, who,
              ": DQT_HOST_TENSORS_ON_GPU must be a GPU ordinal, got '", v,
              "'");
  return int(ordinal);
}
} // namespace

StepTarget StepTarget::of(at::Device device, const char *who) {
  StepTarget t;
  if (device.is_cpu()) {
    int ordinal = hostTensorsOnGpu(who);
    if (ordinal < 0)
      return t;
    t.cuda = &CudaDevice::get(ordinal);
    TORCH_CHECK(t.cuda->pageableMemoryAccess(), who,
                ": DQT_HOST_TENSORS_ON_GPU=", ordinal, ", but CUDA device ",
                ordinal,
                " cannot access pageable host memory (no HMM or ATS); unset "
                "it, or move the tensors to the GPU");
    return t;
  }
  TORCH_CHECK(device.is_cuda(), who, ": tensors on ", device,
              " are not supported (CPU and CUDA are)");
  int index = device.has_index() ? device.index() : 0;
  t.cuda = &CudaDevice::get(index);
  // LibTorch's current stream, through the device-generic interface: no
  // CUDA headers and no link to torch_cuda here (the CUDA backend registers
  // the interface when it is loaded, as it is whenever a CUDA tensor
  // exists).
  TORCH_CHECK(c10::impl::hasDeviceGuardImpl(c10::DeviceType::CUDA), who,
              ": a CUDA tensor, but LibTorch's CUDA backend is not loaded");
  c10::Stream stream = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)
                           ->getStream(c10::Device(c10::DeviceType::CUDA,
                                                   c10::DeviceIndex(index)));
  t.stream = static_cast<CUstream>(stream.native_handle());
  return t;
}

const Executable &StepTarget::kernel(const StepConfig &config) const {
  return isCuda() ? KernelCache::global().cuda(config, *cuda)
                  : KernelCache::global().cpu(config);
}

} // namespace dqt
