//===- ExpandRng.cpp - dqt-expand-rng -------------------------------------===//
//
// Philox is expanded in IR rather than called from a runtime library so that
// the same integer ops reach LLVM on the CPU and NVPTX on the GPU, and so that
// vectorizers see through it.
//
//===----------------------------------------------------------------------===//

#include "dqt/Passes/Passes.h"

#include "ExpandPatterns.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::dqt {
#define GEN_PASS_DEF_DQTEXPANDRNG
#include "dqt/Passes/Passes.h.inc"
} // namespace mlir::dqt

using namespace mlir;
using namespace mlir::dqt;

namespace {

struct ExpandPhilox : public OpRewritePattern<PhiloxOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(PhiloxOp op,
                                PatternRewriter &rewriter) const override {
    SmallVector<Value, 4> words =
        buildPhilox(rewriter, op.getLoc(), op.getKey0(), op.getKey1(),
                    {op.getCtr0(), op.getCtr1(), op.getCtr2(), op.getCtr3()},
                    op.getRounds());
    rewriter.replaceOp(op, words);
    return success();
  }
};

struct ExpandRngPass : public mlir::dqt::impl::DQTExpandRngBase<ExpandRngPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateExpandRngPatterns(patterns);
    // Only the expansion: folding is left to the canonicalizer after it.
    GreedyRewriteConfig config;
    config.enableFolding(false).setRegionSimplificationLevel(
        GreedySimplifyRegionLevel::Disabled);
    if (failed(
            applyPatternsGreedily(getOperation(), std::move(patterns), config)))
      return signalPassFailure();
  }
};

} // namespace

void mlir::dqt::populateExpandRngPatterns(RewritePatternSet &patterns) {
  patterns.add<ExpandPhilox>(patterns.getContext());
}
