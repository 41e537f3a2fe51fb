//===- CudaDriver.h - the CUDA driver API, loaded at run time ---*- C++ -*-===//
//
// Nothing links libcuda: the driver is opened with dlopen on first use and
// its entry points are looked up by name (IREE's dynamic_symbols pattern),
// so every binary builds, links and runs on machines without a GPU.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_CUDADRIVER_H
#define DQT_RUNTIME_CUDADRIVER_H

#include "dqt/Runtime/CpuLauncher.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dqt {

/// The few driver types the launcher needs (ABI-compatible with cuda.h).
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;

/// The driver's entry points, resolved from libcuda.so.1.
struct CudaDriver {
  /// The loaded driver, or nullptr (and the reason in `why`) when libcuda
  /// cannot be opened, lacks a symbol, or cuInit fails (no device).
  static const CudaDriver *get(std::string *why = nullptr);

  CUresult (*cuInit)(unsigned);
  CUresult (*cuDeviceGetCount)(int *);
  CUresult (*cuDeviceGet)(CUdevice *, int);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuModuleLoadData)(CUmodule *, const void *);
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, unsigned, CUstream, void **,
                             void **);
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void *, size_t);
  CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
  CUresult (*cuMemcpyDtoHAsync)(void *, CUdeviceptr, size_t, CUstream);
  CUresult (*cuMemsetD32Async)(CUdeviceptr, unsigned, size_t, CUstream);
  CUresult (*cuStreamSynchronize)(CUstream);
  CUresult (*cuGetErrorString)(CUresult, const char **);

  /// Throws c10::Error naming `what` when `r` is not CUDA_SUCCESS.
  void check(CUresult r, const char *what) const;
};

namespace cuda {

/// Whether LibTorch's current-stream entry points can be used: the process
/// has already loaded libc10_cuda.so (a CUDA build of torch imported by
/// Python, or a program linked with it) and it exports
/// c10::cuda::getCurrentCUDAStream and CUDAStream::stream. dqt never loads
/// the library itself (docs/design.md). Otherwise false, with the reason in
/// `why`; a failed lookup is tried again on the next call.
bool torchStreamsAvailable(std::string *why = nullptr);

/// LibTorch's current CUDA stream on `device` (what torch.cuda's
/// current_stream(device) is) when torchStreamsAvailable() and a CUDA device
/// exists (CudaDriver::get); else nullptr, the default stream. Without a
/// device, nothing in libc10_cuda is called.
CUstream currentTorchStream(int device);

} // namespace cuda

/// Runs the GPU step kernel (`ptx`, entry `dqt_step`, from compileGpuStep)
/// on device buffers: one launch per parameter, then reads the by-products
/// back (copies and launches ordered on the stream, which is synchronized
/// before returning). `stream`: LibTorch's current stream of device 0
/// (cuda::currentTorchStream) when not given, so the step is ordered after
/// torch's work that produced the gradients; an explicit nullptr is the
/// default stream. The pointers in `params` are device addresses on device 0
/// (the context CudaDriver makes current), the per-row buffers of
/// ScaleMode::Row included: each rowMaxQ is set to INT32_MIN on the stream
/// before its launch.
std::vector<StepStats>
launchCuda(const std::string &ptx, const StepConfig &config,
           const std::vector<StepOperands> &params,
           const std::vector<float> &hyper, uint64_t seed, uint64_t step,
           std::optional<CUstream> stream = std::nullopt);

} // namespace dqt

#endif // DQT_RUNTIME_CUDADRIVER_H
