//===- DQTDialect.cpp - the dqt dialect -----------------------------------===//
//
// The dialect: its ops and attributes, and the verifier of the discardable
// attributes (dqt.config, dqt.arg_origins) it declares.
//
//===----------------------------------------------------------------------===//

#include "dqt/Dialect/DQT.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Transforms/InliningUtils.h"

using namespace mlir;
using namespace mlir::dqt;

#include "dqt/Dialect/DQTDialect.cpp.inc"
#include "dqt/Dialect/DQTInterfaces.cpp.inc"

namespace {
/// Every dqt op may be inlined: a training graph calls the step function
/// of each configuration (dqt.export_training_graph), and the pipelines
/// inline it before fusing. A fused step's body is isolated from above and
/// only yields to it, so inlining never moves code into or out of one.
struct DQTInlinerInterface : public DialectInlinerInterface {
  using DialectInlinerInterface::DialectInlinerInterface;
  bool isLegalToInline(Operation *, Operation *, bool) const final {
    return true;
  }
  bool isLegalToInline(Region *, Region *, bool, IRMapping &) const final {
    return true;
  }
  bool isLegalToInline(Operation *, Region *, bool, IRMapping &) const final {
    return true;
  }
};
} // namespace

void DQTDialect::initialize() {
  registerAttributes();
  addOperations<
#define GET_OP_LIST
#include "dqt/Dialect/DQTOps.cpp.inc"
      >();
  addInterfaces<DQTInlinerInterface>();
}

LogicalResult DQTDialect::verifyOperationAttribute(Operation *op,
                                                   NamedAttribute attr) {
  StringRef name = attr.getName().getValue();
  if (name == ConfigAttrHelper::getNameStr()) {
    if (!isa<StringAttr>(attr.getValue()))
      return op->emitOpError("attribute '")
             << name << "' must be a string (a kernel configuration key)";
    return success();
  }
  if (name == ArgOriginsAttrHelper::getNameStr()) {
    if (!isa<DenseI64ArrayAttr>(attr.getValue()))
      return op->emitOpError("attribute '")
             << name << "' must be a dense i64 array (one entry per kernel "
             << "argument)";
    if (!isa<FunctionOpInterface>(op))
      return op->emitOpError("attribute '")
             << name << "' belongs on a kernel function";
    return success();
  }
  return op->emitOpError("has an unknown dqt attribute '") << name << "'";
}
