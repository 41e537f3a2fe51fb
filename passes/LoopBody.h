//===- LoopBody.h - one fused step's per-element code -----------*- C++ -*-===//
//
// What the CPU and GPU lowerings share: given buffers for one segment of a
// dqt.fused_step, emit the loads, the Philox call, the cloned scalar body,
// the stores and the reduction contributions for 1 or 4 consecutive
// elements. The two lowerings differ only in the loop skeleton around it.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_PASSES_LOOPBODY_H
#define DQT_PASSES_LOOPBODY_H

#include "dqt/Dialect/DQT.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/SmallBitVector.h"

namespace mlir::dqt {

/// Memrefs and scalars of one segment of a fused step.
struct SegmentBuffers {
  /// One 1-D memref per tensor operand.
  SmallVector<Value> inputs;
  /// One 1-D memref per output (a tied output's is its input's memref).
  SmallVector<Value> outputs;
  /// The segment's scalar operands.
  SmallVector<Value> scalars;
  /// Per input / output: stored as packed ternary codes (4 per byte).
  llvm::SmallBitVector packedInputs, packedOutputs;
  /// The input whose length is the element count (the first not packed).
  unsigned countInput = 0;
  /// Row operands (per-row delta): their position in `scalars` and their
  /// memref of one value per row. `scalars` holds null there until
  /// `atRow` loads a row's values.
  SmallVector<std::pair<unsigned, Value>> rowInputs;
  /// Per reduction: the memref of a per-row reduction's results, else null.
  SmallVector<Value> rowOutputs;
  /// With `row_length`: the row length's position in `scalars`.
  std::optional<unsigned> rowLength;

  /// A copy whose row operands are the values of row `row` (index).
  SegmentBuffers atRow(OpBuilder &b, Location loc, Value row) const;
  /// The row length as an index, at least 1 (the runtime passes L >= 1;
  /// the clamp keeps a bad L from dividing by zero).
  Value rowLengthIndex(OpBuilder &b, Location loc) const;
};

/// How a group of 4 elements is moved.
enum class GroupAccess {
  /// Four scalar loads/stores: what LLVM's loop vectorizer can widen across
  /// groups (it does not vectorize loops that already hold vector types).
  Scalar,
  /// One 4-element vector load/store aligned to 4 elements (128 bits for
  /// f32): the GPU's per-thread access.
  AlignedVector,
};

/// Emits the fused body for `width` (1 or 4) consecutive elements starting at
/// element `first` (index). With width 4, `first` must be a multiple of 4.
/// Returns, per reduction, the combination of the elements' contributions.
SmallVector<Value> emitElements(OpBuilder &b, Location loc, FusedStepOp op,
                                const SegmentBuffers &buffers, Value first,
                                unsigned width, GroupAccess access);

/// Emits the fused body for `groups` consecutive groups of 4 elements from
/// `first` (a multiple of 4) as vector code: one Philox call on
/// vector<groups x i32> (one lane per group), its words interleaved into
/// element order, contiguous vector loads and stores of 4*groups elements,
/// and the body's arith/math ops cloned on vectors. Returns, per reduction,
/// the block's contribution: the vector of per-element values for a
/// lane-wise combiner (isLaneWise), else their sum (vector.reduction).
SmallVector<Value> emitVectorBlock(OpBuilder &b, Location loc, FusedStepOp op,
                                   const SegmentBuffers &buffers, Value first,
                                   unsigned groups);

/// Whether a vector loop carries this reduction as a vector, combining lane
/// by lane and reducing once after the loop. A horizontal max per block
/// costs about ten shuffles; an element-wise max one instruction. (A sum of
/// i1 contributions is a mask popcount per block, cheaper than carrying i64
/// lanes.)
bool isLaneWise(StringRef combiner);

/// The horizontal reduction of a lane-wise accumulator.
Value buildLaneReduction(OpBuilder &b, Location loc, StringRef combiner,
                         Value vector);

/// The position of reduction `k` among the fused step's per-tensor
/// (not per-row) reductions: its slot in a segment's part of the partials.
unsigned tensorReductionSlot(FusedStepOp op, unsigned k);
/// The number of per-tensor reductions of a segment.
unsigned numTensorReductions(FusedStepOp op);

/// The identity of a reduction combiner for an integer type.
Value buildReductionIdentity(OpBuilder &b, Location loc, StringRef combiner,
                             Type type);

/// Combines two partial reductions.
Value buildCombine(OpBuilder &b, Location loc, StringRef combiner, Value lhs,
                   Value rhs);

/// The argument list of the kernel made from a function holding one fused
/// step: per segment, a memref per tensor operand, per untied output, per
/// row operand and per per-row reduction (in that order); then
/// the function arguments the scalars are computed from (deduplicated, in
/// order of first use). Target-specific arguments come after these.
struct KernelPlan {
  FusedStepOp op;
  SmallVector<Type> argTypes;
  /// The original function arguments behind `argTypes`' scalars.
  SmallVector<Value> scalarLeaves;
  /// Ops computing the scalars from the leaves (cloned into the kernel).
  SmallVector<Operation *> prologue;
  /// Per entry of `argTypes`: the original function argument it comes from,
  /// or -1 - r for the buffer of the fused step's result r (untied output).
  /// Lowerings attach it to the kernel as `dqt.arg_origins`.
  SmallVector<int64_t> origins;
};

/// Checks that `func` is one fused step over its arguments and plans its
/// kernel; emits a located diagnostic on failure. A function without fused
/// step gives a plan whose `op` is null.
FailureOr<KernelPlan> planKernel(func::FuncOp func);

/// In a kernel whose leading arguments follow `plan.argTypes`, clones the
/// scalar prologue at `b` and returns each segment's buffers.
SmallVector<SegmentBuffers, 1>
materializeSegments(OpBuilder &b, const KernelPlan &plan, ValueRange args);

} // namespace mlir::dqt

#endif // DQT_PASSES_LOOPBODY_H
