//===- UniformBuilder.cpp - the IR of the weight stream alone -------------===//
//
// dqt.random.philox_uniform runs the generated code of the weight stream,
// so the runtime holds no Philox of its own: this is the tensor-level IR of
// that stream, compiled by the same pipeline as the steps.
//
//===----------------------------------------------------------------------===//

#include "dqt/Compiler/Compiler.h"

#include "dqt/Dialect/DQT.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

using namespace mlir;

namespace dqt {

OwningOpRef<ModuleOp> buildUniformModule(MLIRContext &ctx) {
  OpBuilder b(&ctx);
  Location loc = b.getUnknownLoc();
  auto module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module.getBody());
  Type i64 = b.getI64Type();
  auto vec = RankedTensorType::get({ShapedType::kDynamic}, b.getF32Type());
  auto func = func::FuncOp::create(
      b, loc, kUniformKernelName,
      b.getFunctionType({vec, i64, i64, i64}, {vec}));
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  ValueRange a = entry->getArguments();
  Value u = mlir::dqt::UniformOp::create(b, loc, vec, a[1], a[2], a[3], a[0]);
  func::ReturnOp::create(b, loc, u);
  return module;
}

} // namespace dqt
