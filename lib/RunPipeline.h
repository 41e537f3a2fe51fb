//===- RunPipeline.h - run a named pipeline, collecting diagnostics -------===//
//
// Internal to lib/: the CPU JIT and the PTX path both run one of the
// pipelines of passes/Pipelines.cpp and turn its diagnostics into an error.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_LIB_RUNPIPELINE_H
#define DQT_LIB_RUNPIPELINE_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/Error.h"

namespace dqt {

/// Runs the passes `build` adds on `module`; on failure the error holds
/// `name` and every diagnostic with its location.
inline llvm::Error
runPipeline(mlir::ModuleOp module, llvm::StringRef name,
            llvm::function_ref<void(mlir::OpPassManager &)> build) {
  std::string diagnostics;
  llvm::raw_string_ostream os(diagnostics);
  mlir::ScopedDiagnosticHandler handler(
      module.getContext(), [&](mlir::Diagnostic &d) {
        os << d.getLocation() << ": " << d << "\n";
        return mlir::success();
      });
  mlir::PassManager pm(module.getContext());
  build(pm);
  if (mlir::failed(pm.run(module)))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   name + " failed:\n" + diagnostics);
  return llvm::Error::success();
}

} // namespace dqt

#endif // DQT_LIB_RUNPIPELINE_H
