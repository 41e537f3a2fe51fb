//===- ExpandPatterns.h - rewrites of scalar dqt ops into arith -*- C++ -*-===//
//
// The scalar dqt ops that survive into kernels, expanded by pattern sets (as
// CIRCT's conversions do), so passes compose them as they need.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_PASSES_EXPANDPATTERNS_H
#define DQT_PASSES_EXPANDPATTERNS_H

#include "mlir/IR/PatternMatch.h"

namespace mlir::dqt {

/// dqt.philox -> its rounds of arith integer ops (dqt-expand-rng).
void populateExpandRngPatterns(RewritePatternSet &patterns);

/// dqt.next_delta -> maxq > 0 ? (maxq * delta) / Qp : delta in arith (the
/// kernels' prologue: the next step's delta on the device).
void populateExpandNextDeltaPatterns(RewritePatternSet &patterns);

/// math.sqrt, math.floor and math.absf in GPU kernels -> LLVM/NVVM
/// intrinsics (dqt-lower-to-gpu; see the pattern for why).
void populateGpuNativeMathPatterns(RewritePatternSet &patterns);

} // namespace mlir::dqt

#endif // DQT_PASSES_EXPANDPATTERNS_H
