//===- Executable.h - one compiled kernel for one target --------*- C++ -*-===//
//
// The runtime's unit of generated code, modelled on IREE HAL's executable:
// whatever made it (the JIT, the disk cache, a kernel bundle), a kernel is an
// Executable for one target, and one cache (KernelCache) serves every
// target. No MLIR/LLVM here: a DQT_WITH_COMPILER=OFF build runs on it.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_EXECUTABLE_H
#define DQT_RUNTIME_EXECUTABLE_H

#include <memory>
#include <string>

namespace dqt {

/// Where an executable runs.
enum class Target { Cpu, Cuda };

/// One compiled kernel of one configuration for one target.
struct Executable {
  /// MLIR's packed calling convention: one `void **` holding a pointer to
  /// each argument (KernelArgs builds it).
  using PackedFn = void (*)(void **);

  Target target = Target::Cpu;
  /// The configuration key (StepConfig::key) or kUniformKernelKey.
  std::string key;
  /// Cpu: the packed entry point.
  PackedFn fn = nullptr;
  /// Cuda: the image of the kernel `dqt_step` for `chip` ("sm_90"), PTX
  /// text or (`cubin`) a cubin.
  std::string image;
  std::string chip;
  bool cubin = false;
  /// Where it came from, for messages: "jit", "disk cache", "bundle <name>
  /// (x86-64-v4)" (a bundle file) or "linked bundle <name> (x86-64-v4)".
  std::string origin;
  /// Seconds spent compiling or loading it.
  double seconds = 0;
  /// Keeps the code alive: the JIT module or the loaded bundle.
  std::shared_ptr<const void> owner;
};

} // namespace dqt

#endif // DQT_RUNTIME_EXECUTABLE_H
