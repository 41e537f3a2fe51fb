//===- dqt-opt.cpp - mlir-opt with the dqt dialect and passes -------------===//
//
// mlir-opt with every dqt dialect, pass and pipeline registered
// (lib/InitAll.cpp), for the lit tests and for users' training graphs.
//
//===----------------------------------------------------------------------===//

#include "dqt/Compiler/InitAll.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::dqt::registerAllPasses();
  mlir::DialectRegistry registry;
  mlir::dqt::registerAllDialects(registry);
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "dqt optimizer driver\n", registry));
}
