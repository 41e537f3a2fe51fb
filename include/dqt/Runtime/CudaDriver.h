//===- CudaDriver.h - the CUDA driver API, loaded at run time ---*- C++ -*-===//
//
// Nothing links libcuda: the driver is opened with dlopen on first use and
// its entry points (CudaSymbols.def, the one list) are looked up by name
// (IREE's dynamic_symbols pattern), so every binary builds, links and runs
// on machines without a GPU.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_CUDADRIVER_H
#define DQT_RUNTIME_CUDADRIVER_H

#include <cstddef>
#include <string>

namespace dqt {

/// The few driver types the runtime needs (ABI-compatible with cuda.h).
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using CUlinkState = struct CUlinkState_st *;

/// cuda.h's values of the enumerators the runtime passes.
enum : int {
  kCuDeviceAttributeMultiprocessorCount = 16,
  kCuDeviceAttributeComputeCapabilityMajor = 75,
  kCuDeviceAttributeComputeCapabilityMinor = 76,
  kCuDeviceAttributePageableMemoryAccess = 88,
  kCuJitInputPtx = 1,
};

/// The driver's entry points.
struct CudaDriver {
  /// The loaded driver, or nullptr (and the reason in `why`) when it cannot
  /// be opened, lacks an entry point, or cuInit fails or finds no device.
  /// The library is $DQT_CUDA_DRIVER when set (an ABI-compatible stand-in:
  /// the tests' emulated driver), else libcuda.so.1. Loaded once.
  static const CudaDriver *get(std::string *why = nullptr);

#define DQT_CU_SYMBOL(member, name, params) CUresult(*member) params = nullptr;
#include "dqt/Runtime/CudaSymbols.def"

  /// The library it was loaded from.
  std::string library;

  /// Throws c10::Error naming `what` when `r` is not CUDA_SUCCESS.
  void check(CUresult r, const char *what) const;
};

} // namespace dqt

#endif // DQT_RUNTIME_CUDADRIVER_H
