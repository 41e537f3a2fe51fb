//===- JitKernels.h - the runtime's door to the compiler --------*- C++ -*-===//
//
// Internal to runtime/, and only in a build with the compiler
// (DQT_WITH_COMPILER): compiles and reloads executables with the compiler
// library (dqt/Compiler/Compiler.h). KernelCache is its only caller, so no
// other runtime file includes MLIR or LLVM.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_JITKERNELS_H
#define DQT_RUNTIME_JITKERNELS_H

#include "dqt/Compiler/StepConfig.h"
#include "dqt/Runtime/Executable.h"

#include <optional>
#include <string>

namespace dqt::jit {

/// What a disk entry's object code is valid for: the compiler version and
/// the host CPU.
std::string hostKey();

/// JIT-compiles the CPU kernel `key` for the host: `config`'s step, or the
/// weight stream when `config` is null. With `object`, its object code is
/// kept there (for the disk cache). Throws c10::Error with the compiler's
/// diagnostics.
Executable compileCpu(const std::string &key, const StepConfig *config,
                      std::string *object);

/// The kernel from object code kept by compileCpu, or nothing when it does
/// not load.
std::optional<Executable> loadCpu(const std::string &key,
                                  const StepConfig *config,
                                  const std::string &object);

/// The tensor-level IR of `config`'s step (func @dqt_step), as text.
std::string stepModuleText(const StepConfig &config);

/// The PTX of `config`'s step for `chip`. Throws c10::Error.
Executable compileCuda(const StepConfig &config, const std::string &chip);

} // namespace dqt::jit

#endif // DQT_RUNTIME_JITKERNELS_H
