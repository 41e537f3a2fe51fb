//===- GpuCodegen.cpp - dqt-compile-gpu to PTX text -----------------------===//
//
// dqt-compile-gpu on a step configuration, down to the PTX text of its one
// kernel (checked against the kernel ABI on the way).
//
//===----------------------------------------------------------------------===//

#include "dqt/Compiler/Compiler.h"

#include "RunPipeline.h"
#include "dqt/Passes/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"

using namespace mlir;

namespace dqt {

llvm::Expected<std::string> compileGpuStep(const StepConfig &config,
                                           llvm::StringRef chip) {
  if (chip != "sm_80" && chip != "sm_90")
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "dqt: unsupported GPU chip '" + chip +
                                       "' (expected sm_80 or sm_90)");
  std::unique_ptr<MLIRContext> ctx = createContext();
  OwningOpRef<ModuleOp> module = buildStepModule(*ctx, config);

  mlir::dqt::CompileGPUOptions options;
  options.chip = chip.str();
  if (llvm::Error err =
          runPipeline(*module, "dqt-compile-gpu", [&](OpPassManager &pm) {
            mlir::dqt::buildCompileGPUPipeline(pm, options);
          },
          &config))
    return std::move(err);

  std::string ptx;
  module->walk([&](gpu::BinaryOp binary) {
    for (Attribute a : binary.getObjects())
      if (auto obj = dyn_cast<gpu::ObjectAttr>(a))
        ptx += obj.getObject().getValue().str();
  });
  // A kernel must be self-contained: the driver cannot resolve externs.
  if (ptx.find(".extern .func") != std::string::npos)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "dqt-compile-gpu left an unresolved "
                                   "external function in the PTX");
  if (ptx.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "dqt-compile-gpu produced no PTX");
  // A PTX comment naming the configuration: for people reading a bundle or
  // a dump, and for the emulated driver of the tests, which runs the
  // configuration's kernel in its place.
  return "// dqt-kernel: " + config.key() + "\n" + ptx;
}

} // namespace dqt
