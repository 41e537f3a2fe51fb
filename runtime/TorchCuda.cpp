//===- TorchCuda.cpp - LibTorch's CUDA backend for C++ tools --------------===//

#include "dqt/Runtime/TorchCuda.h"

#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/util/Exception.h>

#include <dlfcn.h>
#include <filesystem>

namespace dqt {

namespace {
/// dlopen()s libtorch_cuda.so from libtorch_cpu.so's directory; its static
/// initializers register the CUDA hooks and kernels. "" or the error.
std::string loadTorchCuda() {
  Dl_info info{};
  // Any function of libtorch_cpu.so names its file.
  if (!::dladdr(reinterpret_cast<void *>(&at::detail::getCUDAHooks), &info) ||
      !info.dli_fname)
    return "cannot locate libtorch_cpu.so";
  std::filesystem::path lib =
      std::filesystem::path(info.dli_fname).parent_path() / "libtorch_cuda.so";
  if (::dlopen(lib.c_str(), RTLD_NOW | RTLD_GLOBAL))
    return "";
  const char *why = ::dlerror();
  return lib.string() + ": " + (why ? why : "dlopen failed");
}
} // namespace

at::Device openDevice(const std::string &spec, const std::string &who) {
  at::Device device = at::kCPU;
  try {
    device = at::Device(spec);
  } catch (const c10::Error &) {
    TORCH_CHECK(false, who, ": unknown device '", spec,
                "' (cpu, cuda or cuda:N)");
  }
  TORCH_CHECK(device.is_cpu() || device.is_cuda(), who, ": device '", spec,
              "' is not supported (cpu, cuda or cuda:N)");
  if (device.is_cpu())
    return device;
  static const std::string loadError = loadTorchCuda();
  TORCH_CHECK(loadError.empty(), who, ": --device ", spec,
              ": LibTorch's CUDA backend cannot be loaded (", loadError, ")");
  TORCH_CHECK(at::hasCUDA(), who, ": --device ", spec,
              ": no CUDA device is available (no GPU, or no NVIDIA driver)");
  int count = at::detail::getCUDAHooks().deviceCount();
  int index = device.has_index() ? device.index() : 0;
  TORCH_CHECK(index < count, who, ": --device ", spec, ": there are ", count,
              " CUDA device(s)");
  return at::Device(at::kCUDA, c10::DeviceIndex(index));
}

} // namespace dqt
