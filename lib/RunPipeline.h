//===- RunPipeline.h - run a named pipeline, collecting diagnostics -------===//
//
// Internal to lib/: the CPU JIT and the PTX path both run one of the
// pipelines of passes/Pipelines.cpp and turn its diagnostics into an error.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_LIB_RUNPIPELINE_H
#define DQT_LIB_RUNPIPELINE_H

#include "KernelAbiCheck.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/Error.h"

namespace dqt {

/// Runs the passes `build` adds on `module`; on failure the error holds
/// `name` and every diagnostic with its location. With `abi`, the lowered
/// step kernel must follow the kernel ABI of that configuration.
inline llvm::Error
runPipeline(mlir::ModuleOp module, llvm::StringRef name,
            llvm::function_ref<void(mlir::OpPassManager &)> build,
            const StepConfig *abi = nullptr) {
  std::string diagnostics;
  llvm::raw_string_ostream os(diagnostics);
  mlir::ScopedDiagnosticHandler handler(
      module.getContext(), [&](mlir::Diagnostic &d) {
        os << d.getLocation() << ": " << d << "\n";
        return mlir::success();
      });
  mlir::PassManager pm(module.getContext());
  build(pm);
  KernelAbiCheck *check = nullptr;
  if (abi) {
    auto owned = std::make_unique<KernelAbiCheck>(*abi);
    check = owned.get();
    pm.addInstrumentation(std::move(owned));
  }
  if (mlir::failed(pm.run(module)))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   name + " failed:\n" + diagnostics);
  if (check && !check->error().empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   check->error());
  return llvm::Error::success();
}

} // namespace dqt

#endif // DQT_LIB_RUNPIPELINE_H
