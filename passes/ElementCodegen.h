//===- ElementCodegen.h - a fused step's code for some elements -*- C++ -*-===//
//
// What the CPU and GPU lowerings share: for one segment of a kernel, the
// loads, the random bits, the cloned body, the stores and the reduction
// contributions of 1 element or a group of 8 (one Philox block per stream),
// or of a vector block of groups. The two lowerings differ only in the loop
// skeleton around it.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_PASSES_ELEMENTCODEGEN_H
#define DQT_PASSES_ELEMENTCODEGEN_H

#include "KernelPlan.h"

namespace mlir::dqt {

/// Elements per group: the elements that share one Philox block
/// (docs/numerics.md, contract v2).
constexpr unsigned kGroupElements = kElementsPerBlock;

/// How a group of elements is moved.
enum class GroupAccess {
  /// Scalar loads/stores: what LLVM's loop vectorizer can widen across
  /// groups (it does not vectorize loops that already hold vector types).
  Scalar,
  /// One vector load/store per tensor, aligned to the group and at most 128
  /// bits (two 128-bit accesses for 8 f32): the GPU's per-thread access.
  AlignedVector,
};

/// Emits the fused body for `width` (1 or kGroupElements) consecutive
/// elements starting at element `first` (index). With a whole group,
/// `first` must be a multiple of kGroupElements.
/// Returns, per reduction (in combiner order), the combination of the
/// elements' contributions. Per-row bodies need `buffers.rowValues` (atRow),
/// and all `width` elements in one row.
SmallVector<Value> emitElements(OpBuilder &b, Location loc,
                                const SegmentBuffers &buffers, Value first,
                                unsigned width, GroupAccess access);

/// Whether the body can be cloned on vectors (emitVectorBlock): elementwise
/// ops, constants, and its element index only as the random words' index.
bool isVectorizable(FusedStepOp op);

/// Emits the fused body for `groups` consecutive groups of kGroupElements
/// from `first` (a multiple of kGroupElements) as vector code: one Philox
/// call per stream on vector<groups x i32> (one lane per group), its words'
/// 16-bit halves interleaved into element order, contiguous vector loads and
/// stores of kGroupElements * groups elements,
/// and the body's arith/math ops cloned on vectors. Returns, per reduction,
/// the block's contribution: the vector of per-element values for a
/// lane-wise combiner (isLaneWise), else their sum (vector.reduction).
SmallVector<Value> emitVectorBlock(OpBuilder &b, Location loc,
                                   const SegmentBuffers &buffers, Value first,
                                   unsigned groups);

} // namespace mlir::dqt

#endif // DQT_PASSES_ELEMENTCODEGEN_H
