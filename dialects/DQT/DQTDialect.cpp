//===- DQTDialect.cpp - the dqt dialect -----------------------------------===//

#include "dqt/Dialect/DQT.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace mlir::dqt;

#include "dialects/DQT/DQTDialect.cpp.inc"
#include "dialects/DQT/DQTInterfaces.cpp.inc"

void DQTDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/DQT/DQTOps.cpp.inc"
      >();
}
