//===- ScalarMath.h - emitters of a step's per-element math -----*- C++ -*-===//
//
// What the ops' scalar lowerings (ElementwiseOpInterface) and the two kernel
// lowerings emit: the contract's f32 math, the Philox streams and the packed
// ternary codes, as arith/math ops on scalars or vectors (docs/numerics.md).
//
//===----------------------------------------------------------------------===//

#ifndef DQT_DIALECT_SCALARMATH_H
#define DQT_DIALECT_SCALARMATH_H

#include "dqt/Support/Grid.h"

#include "mlir/IR/Builders.h"

namespace mlir::dqt {

enum class RandomStream : uint32_t;

/// Emits the exact widening of a bf16 state element (scalar or vector) to
/// f32: its bits become the high half of the f32's. An f32 value is
/// returned as it is.
Value buildWidenState(OpBuilder &b, Location loc, Value x);

/// Emits `isfinite(x)` for an f32 scalar: |x| < inf (false for NaN).
Value buildIsFinite(OpBuilder &b, Location loc, Value x);

/// Emits `dqt.next_delta`'s math: maxq > 0 ? (maxq * delta) / qp : delta.
Value buildNextDelta(OpBuilder &b, Location loc, Value delta, Value maxq,
                     ::dqt::GridBounds grid);

/// Emits the absmax rule of `dqt.next_delta`: 0 < a < inf ? a / qp : delta,
/// `a` the f32 whose bits `absMaxBits` (i32) holds.
Value buildNextDeltaAbsMax(OpBuilder &b, Location loc, Value delta,
                           Value absMaxBits, ::dqt::GridBounds grid);

/// Emits Philox4x32 (`rounds` rounds) as arith integer ops on i32 values
/// (or vectors of them).
SmallVector<Value, 4> buildPhilox(OpBuilder &b, Location loc, Value key0,
                                  Value key1, ArrayRef<Value> counter,
                                  int64_t rounds);

/// Emits the uniform of an element's 16 random bits (i16, or a vector of
/// them): (h + 0.5) * 2^-16 as f32, exactly.
Value buildUniformFromBits(OpBuilder &b, Location loc, Value bits);

//===----------------------------------------------------------------------===//
// The random streams (docs/numerics.md, contract v2): element i takes the
// low (even i) or high (odd i) half of word (i mod 8) div 2 of the
// Philox4x32-10 block of its group j = i div 8.
//===----------------------------------------------------------------------===//

/// Elements per Philox block.
constexpr int64_t kElementsPerBlock = 8;

/// The 4 words of the Philox block (a dqt.philox) of element group `group`
/// (an i64, or a vector of i64 lanes, one group per lane) in `stream`: key
/// (seed lo, seed hi), counter (group lo, group hi | stream bits, step lo,
/// tensor id lo); the state streams set 0x80000000 (state0) or 0xC0000000
/// (state1) in the group's high word. `seed`, `step` and `tensorId` are i64
/// scalars.
SmallVector<Value, 4> buildStreamWords(OpBuilder &b, Location loc,
                                       RandomStream stream, Value seed,
                                       Value step, Value tensorId,
                                       Value group);

/// The 16 bits of element `k` (0..7) of a group from its block's words
/// (scalars): the low or high half of word k div 2, as i16.
Value buildElementBits(OpBuilder &b, Location loc, ArrayRef<Value> words,
                       unsigned k);

/// The same for an element whose position `k` in its group (an i64 in
/// [0, 8)) is only known at run time.
Value buildElementBits(OpBuilder &b, Location loc, ArrayRef<Value> words,
                       Value k);

/// The bits of consecutive groups (vectors of G lanes, word k of group l in
/// lane l of words[k]) in element order: a vector<8G x i16> whose lane
/// 8l + k is element k of group l.
Value buildInterleavedBits(OpBuilder &b, Location loc, ArrayRef<Value> words);

//===----------------------------------------------------------------------===//
// Packed ternary storage (docs/numerics.md): element i is the 2-bit two's
// complement code in bits 2*(i mod 4).. of byte i div 4.
//===----------------------------------------------------------------------===//

/// An i8 constant, or its splat over `like`'s vector shape.
Value buildI8Constant(OpBuilder &b, Location loc, int8_t v, Type like);

/// The code at bit `2k` of `byte`, given as the i8 shift `6 - 2k` (scalars
/// or vectors), sign-extended: (byte << (6 - 2k)) >>s 6.
Value buildDecodeTernary(OpBuilder &b, Location loc, Value byte,
                         Value shiftUp);

/// The code of `q` (its low 2 bits) moved to bit `pos`.
Value buildEncodeTernary(OpBuilder &b, Location loc, Value q, Value pos);

/// The byte of element `i` (index): i div 4.
Value buildTernaryByteIndex(OpBuilder &b, Location loc, Value i);

/// The bit position of element `i` (index) in its byte, as i8: 2*(i mod 4).
Value buildTernaryBitPosition(OpBuilder &b, Location loc, Value i);

} // namespace mlir::dqt

#endif // DQT_DIALECT_SCALARMATH_H
