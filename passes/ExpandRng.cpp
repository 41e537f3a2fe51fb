//===- ExpandRng.cpp - dqt-expand-rng -------------------------------------===//
//
// Philox is expanded in IR rather than called from a runtime library so that
// the same integer ops reach LLVM on the CPU and NVPTX on the GPU, and so that
// vectorizers see through it.
//
//===----------------------------------------------------------------------===//

#include "dqt/Passes/Passes.h"

namespace mlir::dqt {
#define GEN_PASS_DEF_DQTEXPANDRNG
#include "passes/Passes.h.inc"
} // namespace mlir::dqt

using namespace mlir;
using namespace mlir::dqt;

namespace {
struct ExpandRngPass : public mlir::dqt::impl::DQTExpandRngBase<ExpandRngPass> {
  void runOnOperation() override {
    SmallVector<PhiloxOp> ops;
    getOperation()->walk([&](PhiloxOp op) { ops.push_back(op); });
    for (PhiloxOp op : ops) {
      OpBuilder b(op);
      SmallVector<Value, 4> words =
          buildPhilox(b, op.getLoc(), op.getKey0(), op.getKey1(),
                      {op.getCtr0(), op.getCtr1(), op.getCtr2(), op.getCtr3()},
                      op.getRounds());
      op->replaceAllUsesWith(words);
      op.erase();
    }
  }
};
} // namespace
