//===- CpuCodegen.h - LLVM-dialect modules to CPU code ----------*- C++ -*-===//
//
// Internal to lib/: what the JIT (CpuJit.cpp) and the ahead-of-time compiler
// (CpuAot.cpp) share, so that both make the same code for the same CPU.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_LIB_CPUCODEGEN_H
#define DQT_LIB_CPUCODEGEN_H

#include "dqt/Compiler/Compiler.h"

#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"
#include "llvm/Target/TargetMachine.h"

#include <chrono>
#include <memory>
#include <string>

namespace dqt {

/// Initializes the host target (once per process).
void initNativeTarget();

/// An ExecutionEngine over `module` (in the LLVM dialect, after
/// dqt-compile-cpu), optimized with clang's -O3 pipeline for `tm`'s CPU and
/// compiled by `tm`. With `object`, the module is compiled now and its object
/// code (with MLIR's packed wrappers `_mlir_<name>`) is kept there.
/// `symbols` are host functions the module may call (the GPU emulator's).
llvm::Expected<std::unique_ptr<mlir::ExecutionEngine>>
createEngine(mlir::ModuleOp module, std::unique_ptr<llvm::TargetMachine> tm,
             std::string *object,
             llvm::ArrayRef<std::pair<llvm::StringRef, void *>> symbols = {});

/// The kernel `name` of a JIT module (or the error that made it fail),
/// with the seconds since `start`.
llvm::Expected<CpuStepKernel>
timedKernel(llvm::Expected<std::unique_ptr<JitModule>> jit,
            std::chrono::steady_clock::time_point start, llvm::StringRef name);

} // namespace dqt

#endif // DQT_LIB_CPUCODEGEN_H
