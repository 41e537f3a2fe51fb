//===- DQT.h - the dqt dialect and its ops ----------------------*- C++ -*-===//

#ifndef DQT_DIALECT_DQT_H
#define DQT_DIALECT_DQT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/DQT/DQTDialect.h.inc"
#include "dialects/DQT/DQTInterfaces.h.inc"

#define GET_OP_CLASSES
#include "dialects/DQT/DQTOps.h.inc"

namespace mlir::dqt {

/// Integer grid [qn, qp] of a quantized weight.
struct GridBounds {
  int64_t qn;
  int64_t qp;
};

/// Bounds of the grid given by a `bits`/`ternary` attribute pair (which the
/// verifiers have checked).
GridBounds getGridBounds(std::optional<int64_t> bits, bool ternary);

/// Verifies a `bits`/`ternary` attribute pair on `op`.
LogicalResult verifyGrid(Operation *op, std::optional<int64_t> bits,
                         bool ternary);

/// The f32 tensor type of the shape of `tensor` (a state's f32 value).
Type asF32Tensor(Type tensor);

/// Emits the exact widening of a bf16 state element (scalar or vector) to
/// f32: its bits become the high half of the f32's. An f32 value is
/// returned as it is.
Value buildWidenState(OpBuilder &b, Location loc, Value x);

/// Emits `isfinite(x)` for an f32 scalar: |x| < inf (false for NaN).
Value buildIsFinite(OpBuilder &b, Location loc, Value x);

/// Emits `dqt.next_delta`'s math: maxq > 0 ? (maxq * delta) / qp : delta.
Value buildNextDelta(OpBuilder &b, Location loc, Value delta, Value maxq,
                     GridBounds grid);

/// Emits Philox4x32 (`rounds` rounds) as arith integer ops on i32 values.
SmallVector<Value, 4> buildPhilox(OpBuilder &b, Location loc, Value key0,
                                  Value key1, ArrayRef<Value> counter,
                                  int64_t rounds);

/// Emits the uniform of one Philox word: (word >> 8) * 2^-24 as f32.
Value buildUniformFromWord(OpBuilder &b, Location loc, Value word);

} // namespace mlir::dqt

#endif // DQT_DIALECT_DQT_H
