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
  CUresult (*cuStreamSynchronize)(CUstream);
  CUresult (*cuGetErrorString)(CUresult, const char **);

  /// Throws c10::Error naming `what` when `r` is not CUDA_SUCCESS.
  void check(CUresult r, const char *what) const;
};

/// Runs the GPU step kernel (`ptx`, entry `dqt_step`, from compileGpuStep)
/// on device buffers: one launch per parameter on `stream` (0: the legacy
/// default stream; LibTorch's current stream needs c10_cuda, not linked
/// yet), then reads the by-products back. The pointers in `params` are
/// device addresses.
std::vector<StepStats> launchCuda(const std::string &ptx,
                                  const StepConfig &config,
                                  const std::vector<StepOperands> &params,
                                  const std::vector<float> &hyper,
                                  uint64_t seed, uint64_t step,
                                  CUstream stream = nullptr);

} // namespace dqt

#endif // DQT_RUNTIME_CUDADRIVER_H
