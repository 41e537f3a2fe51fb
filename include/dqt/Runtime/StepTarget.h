//===- StepTarget.h - where a parameter's step runs -------------*- C++ -*-===//
//
// The device side of a step: the CPU, or a CUDA device and the stream the
// caller's work is ordered on (LibTorch's current stream), chosen from
// where the tensors live.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_STEPTARGET_H
#define DQT_RUNTIME_STEPTARGET_H

#include "dqt/Compiler/StepConfig.h"
#include "dqt/Runtime/CudaDevice.h"
#include "dqt/Runtime/Executable.h"

#include <ATen/ATen.h>

namespace dqt {

/// Where a step's kernels run.
struct StepTarget {
  /// The GPU, or nullptr for the CPU.
  CudaDevice *cuda = nullptr;
  /// LibTorch's current stream on that GPU when the target was made.
  CUstream stream = nullptr;

  bool isCuda() const { return cuda != nullptr; }

  /// The kernel of `config` for this target, from the process-wide cache
  /// (KernelCache::global()).
  const Executable &kernel(const StepConfig &config) const;

  /// The target for tensors on `device`: a CUDA device gives that GPU and
  /// LibTorch's current stream on it (so the kernels are ordered after the
  /// backward pass that wrote the gradients, with no synchronization); the
  /// CPU gives the CPU, unless $DQT_HOST_TENSORS_ON_GPU names a GPU ordinal
  /// whose kernels access pageable host memory
  /// (CudaDevice::pageableMemoryAccess): then CPU tensors are stepped by
  /// that GPU on its legacy default stream. The tests use this to run the
  /// whole CUDA path of the optimizers on CPU tensors with the emulated
  /// driver. Throws c10::Error naming `who` when the GPU cannot be used (no
  /// driver, no such device, compute capability below 8.0, no pageable
  /// access) or the device type is neither CPU nor CUDA.
  static StepTarget of(at::Device device, const char *who);
};

} // namespace dqt

#endif // DQT_RUNTIME_STEPTARGET_H
