//===- Combiners.cpp - how a fused step's reductions combine --------------===//
//
// The IR of each #dqt.combiner: identity, combination, lane-wise vector form.
//
//===----------------------------------------------------------------------===//

#include "Combiners.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::dqt;

Value mlir::dqt::buildReductionIdentity(OpBuilder &b, Location loc,
                                        CombiningKind kind, Type type) {
  unsigned width = type.getIntOrFloatBitWidth();
  APInt v = kind == CombiningKind::maxsi ? APInt::getSignedMinValue(width)
                                         : APInt::getZero(width);
  return arith::ConstantOp::create(b, loc, b.getIntegerAttr(type, v));
}

Value mlir::dqt::buildCombine(OpBuilder &b, Location loc, CombiningKind kind,
                              Value lhs, Value rhs) {
  switch (kind) {
  case CombiningKind::maxsi:
    return arith::MaxSIOp::create(b, loc, lhs, rhs);
  case CombiningKind::addi:
    return arith::AddIOp::create(b, loc, lhs, rhs);
  }
  llvm_unreachable("unknown combining kind");
}

bool mlir::dqt::isLaneWise(CombiningKind kind) {
  return kind == CombiningKind::maxsi;
}

Value mlir::dqt::buildLaneReduction(OpBuilder &b, Location loc,
                                    CombiningKind kind, Value vector) {
  return vector::ReductionOp::create(b, loc,
                                     kind == CombiningKind::maxsi
                                         ? vector::CombiningKind::MAXSI
                                         : vector::CombiningKind::ADD,
                                     vector);
}
