//===- DQTScalarMath.cpp - the per-element math of a step -----------------===//
//
// The one place where the math of the numerics contract (docs/numerics.md)
// is written. CPU and GPU lowerings clone what these functions emit, so the
// order of f32 operations below *is* the contract: every multiply and add is
// a separate, correctly rounded op (no fma), division and sqrt are IEEE.
//
//===----------------------------------------------------------------------===//

#include "dqt/Dialect/DQT.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/TypeUtilities.h"

#include <cmath>

using namespace mlir;
using namespace mlir::dqt;

static Value f32Const(OpBuilder &b, Location loc, float v) {
  return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
}

/// A constant of `type` (a scalar, or a vector splat of it).
static Value constLike(OpBuilder &b, Location loc, Type type, Attribute v) {
  if (auto vec = dyn_cast<VectorType>(type))
    return arith::ConstantOp::create(b, loc, DenseElementsAttr::get(vec, v));
  return arith::ConstantOp::create(b, loc, cast<TypedAttr>(v));
}

/// `type` with its (scalar or vector) element type replaced by `elem`.
static Type withElement(Type type, Type elem) {
  if (auto vec = dyn_cast<VectorType>(type))
    return vec.clone(elem);
  return elem;
}

Value mlir::dqt::buildWidenState(OpBuilder &b, Location loc, Value x) {
  if (!getElementTypeOrSelf(x.getType()).isBF16())
    return x;
  // Integer ops rather than arith.extf: exact by construction and the same
  // simple code on every target (no bf16 conversion instruction needed).
  Type type = x.getType();
  Value bits =
      arith::BitcastOp::create(b, loc, withElement(type, b.getI16Type()), x);
  Type i32 = withElement(type, b.getI32Type());
  Value wide = arith::ExtUIOp::create(b, loc, i32, bits);
  wide = arith::ShLIOp::create(b, loc, wide,
                               constLike(b, loc, i32, b.getI32IntegerAttr(16)));
  return arith::BitcastOp::create(b, loc, withElement(type, b.getF32Type()),
                                  wide);
}

Value mlir::dqt::buildIsFinite(OpBuilder &b, Location loc, Value x) {
  Value abs = math::AbsFOp::create(b, loc, x);
  return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, abs,
                               f32Const(b, loc, INFINITY));
}

Value mlir::dqt::buildNextDeltaAbsMax(OpBuilder &b, Location loc, Value delta,
                                      Value absMaxBits, GridBounds grid) {
  // 0 < a < inf on the bits: +0 and -0 (INT32_MIN, an empty row) and
  // negative bits fail sgt 0; inf and NaN are >= 0x7f800000.
  auto c = [&](int32_t v) {
    return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
  };
  Value positive = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt,
                                         absMaxBits, c(0));
  Value finite = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt,
                                       absMaxBits, c(0x7f800000));
  Value ok = arith::AndIOp::create(b, loc, positive, finite);
  Value a = arith::BitcastOp::create(b, loc, b.getF32Type(), absMaxBits);
  Value next =
      arith::DivFOp::create(b, loc, a, f32Const(b, loc, float(grid.qp)));
  return arith::SelectOp::create(b, loc, ok, next, delta);
}

Value mlir::dqt::buildNextDelta(OpBuilder &b, Location loc, Value delta,
                                Value maxq, GridBounds grid) {
  Value zero =
      arith::ConstantOp::create(b, loc, b.getIntegerAttr(maxq.getType(), 0));
  Value positive =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, maxq, zero);
  Value mf = arith::SIToFPOp::create(b, loc, b.getF32Type(), maxq);
  Value scaled = arith::MulFOp::create(b, loc, mf, delta);
  Value next =
      arith::DivFOp::create(b, loc, scaled, f32Const(b, loc, float(grid.qp)));
  return arith::SelectOp::create(b, loc, positive, next, delta);
}

//===----------------------------------------------------------------------===//
// Philox4x32 (Salmon et al. 2011; constants of Random123 / PyTorch).
//===----------------------------------------------------------------------===//

/// Philox on vector<N x i32> words, computed in 64-bit lanes: each word lives
/// in the low half of an i64 lane and the upper half is don't-care. x86 has no
/// vector 32x32->high-32 multiply; `vpmuludq` multiplies the low halves of
/// 64-bit lanes into the full product, so `(x & 0xffffffff) * M` yields both
/// words of a round in one instruction (low in place, high after a shift).
/// Written as i32 `mului_extended`, LLVM splits each product into a 64-bit
/// multiply for the high word and an emulated 32-bit one for the low word,
/// about three times the work. Bit-identical to the i32 form.
static SmallVector<Value, 4> buildPhiloxWideLanes(OpBuilder &b, Location loc,
                                                  Value key0, Value key1,
                                                  ArrayRef<Value> counter,
                                                  int64_t rounds) {
  auto wordType = cast<VectorType>(key0.getType());
  auto laneType = wordType.clone(b.getI64Type());
  auto c64 = [&](uint64_t v) -> Value {
    return constLike(b, loc, laneType, b.getI64IntegerAttr(int64_t(v)));
  };
  auto widen = [&](Value v) -> Value {
    return arith::ExtUIOp::create(b, loc, laneType, v);
  };
  Value low32 = c64(0xffffffffu), shift = c64(32);
  Value m0 = c64(0xD2511F53u), m1 = c64(0xCD9E8D57u);
  Value w0 = c64(0x9E3779B9u), w1 = c64(0xBB67AE85u);
  Value k0 = widen(key0), k1 = widen(key1);
  Value x0 = widen(counter[0]), x1 = widen(counter[1]), x2 = widen(counter[2]),
        x3 = widen(counter[3]);
  for (int64_t r = 0; r < rounds; ++r) {
    if (r > 0) {
      // Carries out of the low half only reach the don't-care half.
      k0 = arith::AddIOp::create(b, loc, k0, w0);
      k1 = arith::AddIOp::create(b, loc, k1, w1);
    }
    Value p0 = arith::MulIOp::create(
        b, loc, arith::AndIOp::create(b, loc, x0, low32), m0);
    Value p1 = arith::MulIOp::create(
        b, loc, arith::AndIOp::create(b, loc, x2, low32), m1);
    Value y0 = arith::XOrIOp::create(
        b, loc,
        arith::XOrIOp::create(b, loc, arith::ShRUIOp::create(b, loc, p1, shift),
                              x1),
        k0);
    Value y2 = arith::XOrIOp::create(
        b, loc,
        arith::XOrIOp::create(b, loc, arith::ShRUIOp::create(b, loc, p0, shift),
                              x3),
        k1);
    x0 = y0;
    x1 = p1; // low word of the product; its high half is don't-care
    x2 = y2;
    x3 = p0;
  }
  SmallVector<Value, 4> words;
  for (Value x : {x0, x1, x2, x3})
    words.push_back(arith::TruncIOp::create(b, loc, wordType, x));
  return words;
}

SmallVector<Value, 4> mlir::dqt::buildPhilox(OpBuilder &b, Location loc,
                                             Value key0, Value key1,
                                             ArrayRef<Value> counter,
                                             int64_t rounds) {
  if (isa<VectorType>(key0.getType()))
    return buildPhiloxWideLanes(b, loc, key0, key1, counter, rounds);
  Type wordType = key0.getType(); // i32
  auto c32 = [&](uint32_t v) -> Value {
    return constLike(b, loc, wordType, b.getI32IntegerAttr(int32_t(v)));
  };
  Value m0 = c32(0xD2511F53u), m1 = c32(0xCD9E8D57u);
  Value w0 = c32(0x9E3779B9u), w1 = c32(0xBB67AE85u);
  Value k0 = key0, k1 = key1;
  Value x0 = counter[0], x1 = counter[1], x2 = counter[2], x3 = counter[3];
  for (int64_t r = 0; r < rounds; ++r) {
    if (r > 0) {
      k0 = arith::AddIOp::create(b, loc, k0, w0);
      k1 = arith::AddIOp::create(b, loc, k1, w1);
    }
    // mului_extended yields (low, high) of the 64-bit product.
    auto p0 = arith::MulUIExtendedOp::create(b, loc, m0, x0);
    auto p1 = arith::MulUIExtendedOp::create(b, loc, m1, x2);
    Value y0 = arith::XOrIOp::create(
        b, loc, arith::XOrIOp::create(b, loc, p1.getHigh(), x1), k0);
    Value y2 = arith::XOrIOp::create(
        b, loc, arith::XOrIOp::create(b, loc, p0.getHigh(), x3), k1);
    x0 = y0;
    x1 = p1.getLow();
    x2 = y2;
    x3 = p0.getLow();
  }
  return {x0, x1, x2, x3};
}

Value mlir::dqt::buildUniformFromBits(OpBuilder &b, Location loc, Value bits) {
  Type i32 = withElement(bits.getType(), b.getI32Type());
  Type f32 = withElement(bits.getType(), b.getF32Type());
  // (h + 0.5) * 2^-16 as (2h + 1) * 2^-17: 2h + 1 < 2^17 is exact in f32,
  // and so is the scaling by a power of two.
  Value wide = arith::ExtUIOp::create(b, loc, i32, bits);
  Value odd = arith::OrIOp::create(
      b, loc,
      arith::ShLIOp::create(b, loc, wide,
                            constLike(b, loc, i32, b.getI32IntegerAttr(1))),
      constLike(b, loc, i32, b.getI32IntegerAttr(1)));
  Value asFloat = arith::UIToFPOp::create(b, loc, f32, odd);
  return arith::MulFOp::create(
      b, loc, asFloat,
      constLike(b, loc, f32, b.getF32FloatAttr(1.0f / 131072.0f)));
}

//===----------------------------------------------------------------------===//
// ElementwiseOpInterface
//===----------------------------------------------------------------------===//

SmallVector<Value> DequantizeOp::buildScalar(OpBuilder &b, Location loc,
                                             ValueRange ops) {
  Value qf = arith::SIToFPOp::create(b, loc, b.getF32Type(), ops[0]);
  return {arith::MulFOp::create(b, loc, qf, ops[1])};
}

SmallVector<Value> AdamMomentsOp::buildScalar(OpBuilder &b, Location loc,
                                              ValueRange ops) {
  Value g = ops[0], m = buildWidenState(b, loc, ops[1]),
        v = buildWidenState(b, loc, ops[2]), beta1 = ops[3], beta2 = ops[4];
  Value one = f32Const(b, loc, 1.0f);
  Value c1 = arith::SubFOp::create(b, loc, one, beta1);
  Value c2 = arith::SubFOp::create(b, loc, one, beta2);
  Value m1 =
      arith::AddFOp::create(b, loc, arith::MulFOp::create(b, loc, beta1, m),
                            arith::MulFOp::create(b, loc, c1, g));
  Value gg = arith::MulFOp::create(b, loc, g, g);
  Value v1 =
      arith::AddFOp::create(b, loc, arith::MulFOp::create(b, loc, beta2, v),
                            arith::MulFOp::create(b, loc, c2, gg));
  return {m1, v1};
}

std::optional<unsigned> AdamMomentsOp::getUpdatedOperand(unsigned result) {
  return result + 1; // exp_avg, exp_avg_sq
}

SmallVector<Value> AdamApplyOp::buildScalar(OpBuilder &b, Location loc,
                                            ValueRange ops) {
  Value w = ops[0], m = ops[1], v = ops[2], alpha = ops[3], eps = ops[4],
        decay = ops[5];
  Value den =
      arith::AddFOp::create(b, loc, math::SqrtOp::create(b, loc, v), eps);
  Value ratio = arith::DivFOp::create(b, loc, m, den);
  Value w1 = arith::SubFOp::create(b, loc, w,
                                   arith::MulFOp::create(b, loc, alpha, ratio));
  Value w2 = arith::SubFOp::create(b, loc, w1,
                                   arith::MulFOp::create(b, loc, decay, w1));
  return {w2};
}

SmallVector<Value> SgdMomentumOp::buildScalar(OpBuilder &b, Location loc,
                                              ValueRange ops) {
  Value w = ops[0], g = ops[1], buf = buildWidenState(b, loc, ops[2]),
        lr = ops[3], mu = ops[4], decay = ops[5];
  Value buf1 =
      arith::AddFOp::create(b, loc, arith::MulFOp::create(b, loc, mu, buf), g);
  Value w1 =
      arith::SubFOp::create(b, loc, w, arith::MulFOp::create(b, loc, lr, buf1));
  Value w2 = arith::SubFOp::create(b, loc, w1,
                                   arith::MulFOp::create(b, loc, decay, w1));
  return {w2, buf1};
}

std::optional<unsigned> SgdMomentumOp::getUpdatedOperand(unsigned result) {
  return result == 0 ? 0u : 2u; // weight, momentum_buffer
}

SmallVector<Value> StochasticRoundOp::buildScalar(OpBuilder &b, Location loc,
                                                  ValueRange ops) {
  Value value = ops[0], delta = ops[1], u = ops[2];
  GridBounds grid = getGrid().getBounds();
  Value qn = f32Const(b, loc, float(grid.qn));
  Value qp = f32Const(b, loc, float(grid.qp));
  // x = w2 * (1/delta'): the reciprocal is loop-invariant (one division per
  // kernel call, hoisted by LLVM; per thread on the GPU), the per-element
  // work is a multiply. docs/numerics.md pins this order.
  Value inverse = arith::DivFOp::create(
      b, loc, constLike(b, loc, delta.getType(), b.getF32FloatAttr(1.0f)),
      delta);
  Value x = arith::MulFOp::create(b, loc, value, inverse);
  Value fl = math::FloorOp::create(b, loc, x);
  Value frac = arith::SubFOp::create(b, loc, x, fl);
  Value up = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, u, frac);
  Value rounded = arith::SelectOp::create(
      b, loc, up, arith::AddFOp::create(b, loc, fl, f32Const(b, loc, 1.0f)),
      fl);
  // Clamping `rounded` equals the contract's tests on x (x >= Qp gives
  // floor(x) >= Qp; x <= Qn gives rounded <= Qn; in between rounded is in
  // range; +-inf round to +-inf), and each compare-select on the value it
  // selects is one min/max instruction on x86.
  Value above =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, rounded, qp);
  Value q = arith::SelectOp::create(b, loc, above, qp, rounded);
  Value below = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, q, qn);
  q = arith::SelectOp::create(b, loc, below, qn, q);
  Value isNan = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, x, x);
  q = arith::SelectOp::create(b, loc, isNan, f32Const(b, loc, 0.0f), q);
  return {arith::FPToSIOp::create(b, loc, b.getI8Type(), q)};
}

SmallVector<Value>
StochasticRoundBF16Op::buildScalar(OpBuilder &b, Location loc, ValueRange ops) {
  Value value = ops[0], random = ops[1];
  Type i32 = b.getI32Type(), i16 = b.getI16Type();
  auto c32 = [&](uint32_t v) {
    return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(int32_t(v)));
  };
  Value r = getShift() == 16
                ? arith::ShRUIOp::create(b, loc, random, c32(16)).getResult()
                : arith::AndIOp::create(b, loc, random, c32(0xffff));
  Value bits = arith::BitcastOp::create(b, loc, i32, value);
  // No overflow: the largest non-NaN pattern is -inf, 0xff800000, + 0xffff.
  Value sum = arith::AddIOp::create(b, loc, bits, r);
  Value rounded = arith::TruncIOp::create(
      b, loc, i16, arith::ShRUIOp::create(b, loc, sum, c32(16)));
  // A NaN's payload could carry into the exponent (or wrap): keep the sign,
  // make it quiet.
  Value nan = arith::OrIOp::create(
      b, loc,
      arith::TruncIOp::create(b, loc, i16,
                              arith::ShRUIOp::create(b, loc, bits, c32(16))),
      arith::ConstantOp::create(b, loc, b.getI16IntegerAttr(0x40)));
  Value isNan =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, value, value);
  Value out = arith::SelectOp::create(b, loc, isNan, nan, rounded);
  return {arith::BitcastOp::create(b, loc, b.getBF16Type(), out)};
}

SmallVector<Value> MaskNonFiniteOp::buildScalar(OpBuilder &b, Location loc,
                                                ValueRange ops) {
  return {arith::SelectOp::create(b, loc, buildIsFinite(b, loc, ops[0]), ops[1],
                                  ops[2])};
}

std::optional<unsigned> MaskNonFiniteOp::getUpdatedOperand(unsigned) {
  return 2u; // old_value
}

//===----------------------------------------------------------------------===//
// ReductionOpInterface
//===----------------------------------------------------------------------===//

Value ReduceMaxOp::buildContribution(OpBuilder &, Location, ValueRange elems) {
  return elems[0];
}
CombiningKind ReduceMaxOp::getCombiner() { return CombiningKind::maxsi; }

Value ReduceMaxRowsOp::buildContribution(OpBuilder &b, Location loc,
                                         ValueRange elems) {
  return arith::ExtSIOp::create(b, loc, b.getI32Type(), elems[0]);
}
CombiningKind ReduceMaxRowsOp::getCombiner() { return CombiningKind::maxsi; }

/// |x| as the bits of an f32 in an i32 (the sign bit cleared), NaN as 0:
/// non-negative floats order as these integers do.
static Value buildAbsBits(OpBuilder &b, Location loc, Value x) {
  Type i32 = b.getI32Type();
  auto c = [&](int32_t v) {
    return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
  };
  Value bits = arith::AndIOp::create(
      b, loc, arith::BitcastOp::create(b, loc, i32, x), c(0x7fffffff));
  Value isNan =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, bits,
                            c(0x7f800000));
  return arith::SelectOp::create(b, loc, isNan, c(0), bits);
}

Value ReduceAbsMaxOp::buildContribution(OpBuilder &b, Location loc,
                                        ValueRange elems) {
  return buildAbsBits(b, loc, elems[0]);
}
CombiningKind ReduceAbsMaxOp::getCombiner() { return CombiningKind::maxsi; }

Value ReduceAbsMaxRowsOp::buildContribution(OpBuilder &b, Location loc,
                                            ValueRange elems) {
  return buildAbsBits(b, loc, elems[0]);
}
CombiningKind ReduceAbsMaxRowsOp::getCombiner() {
  return CombiningKind::maxsi;
}

Value CountChangedOp::buildContribution(OpBuilder &b, Location loc,
                                        ValueRange elems) {
  Value ne = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, elems[0],
                                   elems[1]);
  return arith::ExtUIOp::create(b, loc, b.getI64Type(), ne);
}
CombiningKind CountChangedOp::getCombiner() { return CombiningKind::addi; }

Value CountNonFiniteOp::buildContribution(OpBuilder &b, Location loc,
                                          ValueRange elems) {
  Value bad = arith::XOrIOp::create(
      b, loc, buildIsFinite(b, loc, elems[0]),
      arith::ConstantOp::create(b, loc, b.getBoolAttr(true)));
  return arith::ExtUIOp::create(b, loc, b.getI64Type(), bad);
}
CombiningKind CountNonFiniteOp::getCombiner() { return CombiningKind::addi; }
