//===- TorchCuda.h - LibTorch's CUDA backend for C++ tools ------*- C++ -*-===//
//
// The runtime links LibTorch's CPU libraries only, so that a CPU run never
// loads the CUDA stack. A tool asked for a CUDA device loads the backend
// (libtorch_cuda.so, beside libtorch_cpu.so) first; Python has it loaded by
// `import torch`.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_TORCHCUDA_H
#define DQT_RUNTIME_TORCHCUDA_H

#include <ATen/ATen.h>

#include <string>

namespace dqt {

/// The device `spec` names ("cpu", "cuda", "cuda:N"), usable now: for CUDA,
/// LibTorch's CUDA backend is loaded (once; before anything asks ATen about
/// CUDA, which caches its answer) and the device must exist. Throws
/// c10::Error naming `who` with the reason otherwise (no such backend
/// library, no driver or no device).
at::Device openDevice(const std::string &spec, const std::string &who);

} // namespace dqt

#endif // DQT_RUNTIME_TORCHCUDA_H
