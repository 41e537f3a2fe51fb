//===- InitAll.cpp - everything dqt tools register ------------------------===//
//
// One place, so dqt-opt and the JIT register exactly the same things
// (torch-mlir's InitAll.cpp).
//
//===----------------------------------------------------------------------===//

#include "dqt/Compiler/InitAll.h"

#include "dqt/Dialect/BufferizableOpInterfaceImpl.h"
#include "dqt/Dialect/DQT.h"
#include "dqt/Passes/Passes.h"

#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

void mlir::dqt::registerAllDialects(DialectRegistry &registry) {
  registry.insert<DQTDialect>();
  registerBufferizableOpInterfaceExternalModels(registry);
  // The upstream pipelines (NVVM lowering in particular) rely on dialect
  // extensions and conversion interfaces; registering them all is cheap.
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::registerAllToLLVMIRTranslations(registry);
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
}

void mlir::dqt::registerAllPasses() {
  static bool once = [] {
    mlir::registerAllPasses();
    registerDQTPasses();
    registerPipelines();
    return true;
  }();
  (void)once;
}
