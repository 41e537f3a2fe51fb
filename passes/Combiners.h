//===- Combiners.h - how a fused step's reductions combine ------*- C++ -*-===//
//
// The IR of a #dqt.combiner: its identity, the combination of two
// partials, and the vector form the CPU loop carries.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_PASSES_COMBINERS_H
#define DQT_PASSES_COMBINERS_H

#include "dqt/Dialect/DQT.h"

namespace mlir::dqt {

/// The identity of `kind` for an integer type.
Value buildReductionIdentity(OpBuilder &b, Location loc, CombiningKind kind,
                             Type type);

/// Combines two partial reductions (scalars or vectors of one shape).
Value buildCombine(OpBuilder &b, Location loc, CombiningKind kind, Value lhs,
                   Value rhs);

/// Whether a vector loop carries this reduction as a vector, combining lane
/// by lane and reducing once after the loop. A horizontal max per block
/// costs about ten shuffles; an element-wise max one instruction. (A sum of
/// i1 contributions is a mask popcount per block, cheaper than carrying i64
/// lanes.)
bool isLaneWise(CombiningKind kind);

/// The horizontal reduction of a vector of contributions.
Value buildLaneReduction(OpBuilder &b, Location loc, CombiningKind kind,
                         Value vector);

} // namespace mlir::dqt

#endif // DQT_PASSES_COMBINERS_H
