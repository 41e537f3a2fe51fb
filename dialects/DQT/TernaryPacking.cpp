//===- TernaryPacking.cpp - packed ternary codes as IR --------------------===//
//
// Element i of packed ternary weights is the 2-bit two's complement code in
// bits 2*(i mod 4).. of byte i div 4 (docs/numerics.md). The lowerings
// decode on load and encode on store; the body sees one i8 per element.
//
//===----------------------------------------------------------------------===//

#include "dqt/Dialect/DQT.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace mlir::dqt;

Value mlir::dqt::buildI8Constant(OpBuilder &b, Location loc, int8_t v,
                                 Type like) {
  Attribute a = b.getI8IntegerAttr(v);
  if (auto vt = dyn_cast<VectorType>(like))
    return arith::ConstantOp::create(b, loc, DenseElementsAttr::get(vt, a));
  return arith::ConstantOp::create(b, loc, cast<TypedAttr>(a));
}

Value mlir::dqt::buildDecodeTernary(OpBuilder &b, Location loc, Value byte,
                                    Value shiftUp) {
  Value up = arith::ShLIOp::create(b, loc, byte, shiftUp);
  return arith::ShRSIOp::create(b, loc, up,
                                buildI8Constant(b, loc, 6, byte.getType()));
}

Value mlir::dqt::buildEncodeTernary(OpBuilder &b, Location loc, Value q,
                                    Value pos) {
  Value code =
      arith::AndIOp::create(b, loc, q, buildI8Constant(b, loc, 3, q.getType()));
  return arith::ShLIOp::create(b, loc, code, pos);
}

Value mlir::dqt::buildTernaryByteIndex(OpBuilder &b, Location loc, Value i) {
  return arith::ShRUIOp::create(b, loc, i,
                                arith::ConstantIndexOp::create(b, loc, 2));
}

Value mlir::dqt::buildTernaryBitPosition(OpBuilder &b, Location loc, Value i) {
  Value k = arith::AndIOp::create(b, loc, i,
                                  arith::ConstantIndexOp::create(b, loc, 3));
  Value k8 = arith::IndexCastOp::create(b, loc, b.getI8Type(), k);
  return arith::ShLIOp::create(b, loc, k8,
                               buildI8Constant(b, loc, 1, k8.getType()));
}
