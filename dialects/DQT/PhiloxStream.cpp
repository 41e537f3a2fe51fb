//===- PhiloxStream.cpp - the random streams of the numerics contract -----===//
//
// Which Philox block and bits an element draws (docs/numerics.md, contract
// v2): the element -> (key, counter, word, half) map, for one group of 8
// elements or for vectors of consecutive groups, as dqt.philox ops
// (dqt-expand-rng expands them into arith).
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
  // Element indices are below 2^63, so group indices are below 2^60 and bits
  // 28..31 of their high word are never set otherwise: no two streams share
  // a Philox block, whatever the tensor id and step.
  if (stream != RandomStream::weight) {
    uint32_t bits = stream == RandomStream::state0 ? 0x80000000u : 0xC0000000u;
    groupHi = arith::OrIOp::create(
        b, loc, groupHi,
        splatConstant(b, loc, wordType, b.getI32IntegerAttr(int32_t(bits))));
  }
  SmallVector<Type, 4> words(4, wordType);
  auto philox = PhiloxOp::create(
      b, loc, words, scalarWord(seed, false), scalarWord(seed, true), lo(group),
      groupHi, scalarWord(step, false), scalarWord(tensorId, false),
      /*rounds=*/10);
  return SmallVector<Value, 4>(philox.getResults());
}

Value mlir::dqt::buildElementBits(OpBuilder &b, Location loc,
                                  ArrayRef<Value> words, unsigned k) {
  Value w = words[k / 2];
  if (k % 2)
    w = arith::ShRUIOp::create(
        b, loc, w, arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(16)));
  return arith::TruncIOp::create(b, loc, b.getI16Type(), w);
}

Value mlir::dqt::buildElementBits(OpBuilder &b, Location loc,
                                  ArrayRef<Value> words, Value k) {
  auto i64 = [&](int64_t v) {
    return arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(v));
  };
  // Word k div 2 by selects, then its half: shift by 16 * (k mod 2).
  Value index = arith::ShRUIOp::create(b, loc, k, i64(1));
  Value w = words[3];
  for (int j = 2; j >= 0; --j) {
    Value isJ =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, index, i64(j));
    w = arith::SelectOp::create(b, loc, isJ, words[j], w);
  }
  Value shift = arith::TruncIOp::create(
      b, loc, b.getI32Type(),
      arith::ShLIOp::create(b, loc, arith::AndIOp::create(b, loc, k, i64(1)),
                            i64(4)));
  return arith::TruncIOp::create(b, loc, b.getI16Type(),
                                 arith::ShRUIOp::create(b, loc, w, shift));
}

/// The words are paired in 64-bit lanes, (w0 | w1 << 32) and (w2 | w3 <<
/// 32), whose 64-bit interleaving read as i16 (little-endian: the low half
/// first) is the element order: lane 8l + k is half k mod 2 of word k div 2
/// of group l. On x86 the interleave is two shift+blend pairs and two
/// two-source permutes per block; interleaving the i32 words directly made
/// LLVM shuffle 64-bit lanes before truncating.
Value mlir::dqt::buildInterleavedBits(OpBuilder &b, Location loc,
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
      b, loc,
      VectorType::get({kElementsPerBlock * wordType.getNumElements()},
                      b.getI16Type()),
      lanes);
}
