//===- ExpandNextDelta.cpp - dqt.next_delta as arith ----------------------===//
//
// dqt.next_delta as arith, a pattern (populateExpandNextDeltaPatterns): the
// kernels compute the next step's delta on the device.
//
//===----------------------------------------------------------------------===//

#include "ExpandPatterns.h"

#include "dqt/Dialect/DQT.h"

using namespace mlir;
using namespace mlir::dqt;

namespace {
struct ExpandNextDelta : public OpRewritePattern<NextDeltaOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(NextDeltaOp op,
                                PatternRewriter &rewriter) const override {
    auto build = op.getRule() == ScaleRule::absmax ? buildNextDeltaAbsMax
                                                    : buildNextDelta;
    rewriter.replaceOp(op, build(rewriter, op.getLoc(), op.getDelta(),
                                 op.getMaxQ(), op.getGrid().getBounds()));
    return success();
  }
};
} // namespace

void mlir::dqt::populateExpandNextDeltaPatterns(RewritePatternSet &patterns) {
  patterns.add<ExpandNextDelta>(patterns.getContext());
}
