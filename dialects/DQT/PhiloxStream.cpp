//===- PhiloxStream.cpp - the random streams of the numerics contract -----===//
//
// Which Philox block and word an element draws (docs/numerics.md): the
// element -> (key, counter, word) map, for one group of 4 elements or for
// vectors of consecutive groups, as dqt.philox ops (dqt-expand-rng expands
// them into arith).
//
//===----------------------------------------------------------------------===//

#include "dqt/Dialect/DQT.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::dqt;

/// A constant of `type` (a scalar, or a vector splat of it).
static Value splatConstant(OpBuilder &b, Location loc, Type type, TypedAttr v) {
  if (auto vec = dyn_cast<VectorType>(type))
    return arith::ConstantOp::create(b, loc, DenseElementsAttr::get(vec, v));
  return arith::ConstantOp::create(b, loc, v);
}

SmallVector<Value, 4> mlir::dqt::buildStreamWords(OpBuilder &b, Location loc,
                                                  RandomStream stream,
                                                  Value seed, Value step,
                                                  Value tensorId, Value group) {
  Type i32 = b.getI32Type();
  Type wordType = i32;
  if (auto vec = dyn_cast<VectorType>(group.getType()))
    wordType = vec.clone(i32);
  Value c32 = splatConstant(b, loc, group.getType(), b.getI64IntegerAttr(32));
  auto lo = [&](Value v) -> Value {
    return arith::TruncIOp::create(b, loc, wordType, v);
  };
  auto hi = [&](Value v) -> Value {
    return lo(arith::ShRUIOp::create(b, loc, v, c32));
  };
  // The key and the step and tensor id words are the same in every lane.
  auto scalarWord = [&](Value v64, bool high) -> Value {
    Value w = arith::TruncIOp::create(
        b, loc, i32,
        high ? arith::ShRUIOp::create(
                   b, loc, v64,
                   arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(32)))
                   .getResult()
             : v64);
    if (wordType == i32)
      return w;
    return vector::BroadcastOp::create(b, loc, wordType, w);
  };
  Value groupHi = hi(group);
  // Element indices are below 2^63, so group indices are below 2^61 and bit
  // 31 of their high word is never set otherwise: the two streams never
  // share a Philox block, whatever the tensor id and step.
  if (stream == RandomStream::state)
    groupHi = arith::OrIOp::create(
        b, loc, groupHi,
        splatConstant(b, loc, wordType,
                      b.getI32IntegerAttr(int32_t(0x80000000u))));
  SmallVector<Type, 4> words(4, wordType);
  auto philox = PhiloxOp::create(
      b, loc, words, scalarWord(seed, false), scalarWord(seed, true), lo(group),
      groupHi, scalarWord(step, false), scalarWord(tensorId, false),
      /*rounds=*/10);
  return SmallVector<Value, 4>(philox.getResults());
}

/// The words are paired in 64-bit lanes, (w0 | w1 << 32) and (w2 | w3 <<
/// 32), whose 64-bit interleaving read as i32 (little-endian: the low half
/// first) is the element order. On x86 that is two shift+blend pairs and two
/// two-source permutes per 8 groups; interleaving the i32 words directly made
/// LLVM shuffle 64-bit lanes before truncating (about 20 instructions more
/// per block).
Value mlir::dqt::buildInterleavedWords(OpBuilder &b, Location loc,
                                       ArrayRef<Value> w) {
  auto wordType = cast<VectorType>(w[0].getType());
  auto laneType = wordType.clone(b.getI64Type());
  Value c32 = splatConstant(b, loc, laneType, b.getI64IntegerAttr(32));
  auto pair = [&](Value lo, Value hi) -> Value {
    Value l = arith::ExtUIOp::create(b, loc, laneType, lo);
    Value h = arith::ShLIOp::create(
        b, loc, arith::ExtUIOp::create(b, loc, laneType, hi), c32);
    return arith::OrIOp::create(b, loc, l, h);
  };
  Value lanes =
      vector::InterleaveOp::create(b, loc, pair(w[0], w[1]), pair(w[2], w[3]));
  return vector::BitCastOp::create(
      b, loc, VectorType::get({4 * wordType.getNumElements()}, b.getI32Type()),
      lanes);
}
