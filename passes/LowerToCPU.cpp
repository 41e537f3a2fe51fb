//===- LowerToCPU.cpp - dqt-lower-to-cpu ----------------------------------===//
//
// A fused step becomes a function over the element chunk [begin, end) of the
// concatenated segments, so the runtime can split any group of parameters
// across threads (at::parallel_for) and combine exact integer partials.
//
//===----------------------------------------------------------------------===//

#include "dqt/Passes/Passes.h"

#include "Combiners.h"
#include "ElementCodegen.h"
#include "ExpandPatterns.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::dqt {
#define GEN_PASS_DEF_DQTLOWERTOCPU
#include "dqt/Passes/Passes.h.inc"
} // namespace mlir::dqt

using namespace mlir;
using namespace mlir::dqt;

namespace {

/// Emits `scf.for iv = lo to hi step` carrying the reductions; each
/// iteration handles `width` elements (1 or a group: emitElements) or, with
/// `vectorGroups`, that many groups as vector code (emitVectorBlock).
SmallVector<Value> emitLoop(OpBuilder &b, Location loc,
                            const SegmentBuffers &buffers, Value lo, Value hi,
                            unsigned width, ValueRange init,
                            unsigned vectorGroups = 0) {
  FusedStepOp op = buffers.op;
  Value step = arith::ConstantIndexOp::create(
      b, loc, vectorGroups ? kGroupElements * vectorGroups : width);
  auto combinerOf = [&](unsigned k) { return op.getCombiner(k); };
  // Lane-wise reductions start from a splat of the identity.
  SmallVector<Value> start(init);
  for (auto [k, v] : llvm::enumerate(start))
    if (vectorGroups && isLaneWise(combinerOf(k)))
      v = vector::BroadcastOp::create(
          b, loc, VectorType::get({kGroupElements * vectorGroups}, v.getType()),
          buildReductionIdentity(b, loc, combinerOf(k), v.getType()));
  auto loop = scf::ForOp::create(
      b, loc, lo, hi, step, start,
      [&](OpBuilder &nb, Location l, Value iv, ValueRange acc) {
        SmallVector<Value> reds =
            vectorGroups
                ? emitVectorBlock(nb, l, buffers, iv, vectorGroups)
                : emitElements(nb, l, buffers, iv, width, GroupAccess::Scalar);
        SmallVector<Value> next;
        for (auto [k, r] : llvm::enumerate(reds))
          next.push_back(buildCombine(nb, l, combinerOf(k), acc[k], r));
        scf::YieldOp::create(nb, l, next);
      });
  SmallVector<Value> out(loop.getResults());
  for (auto [k, v] : llvm::enumerate(out))
    if (vectorGroups && isLaneWise(combinerOf(k)))
      v = buildCombine(b, loc, combinerOf(k), init[k],
                       buildLaneReduction(b, loc, combinerOf(k), v));
  return out;
}

/// Emits the elements [lo, hi) of one segment (all in one row when the step
/// is per row): single elements up to a whole group, whole vector blocks,
/// the remaining groups, then single elements. Returns the reductions
/// combined into `acc`.
SmallVector<Value> emitRange(OpBuilder &b, Location loc,
                             const SegmentBuffers &buf, Value lo, Value hi,
                             SmallVector<Value> acc, unsigned vectorGroups) {
  Value groupSize = arith::ConstantIndexOp::create(b, loc, kGroupElements);
  // Whole groups in the middle share one Philox call each.
  Value groupMask = arith::ConstantIndexOp::create(b, loc, kGroupElements - 1);
  Value loGroup = arith::MulIOp::create(
      b, loc,
      arith::DivUIOp::create(
          b, loc, arith::AddIOp::create(b, loc, lo, groupMask), groupSize),
      groupSize);
  loGroup = arith::MinSIOp::create(b, loc, loGroup, hi);
  Value hiGroup = arith::MulIOp::create(
      b, loc, arith::DivUIOp::create(b, loc, hi, groupSize), groupSize);
  hiGroup = arith::MaxSIOp::create(b, loc, hiGroup, loGroup);

  acc = emitLoop(b, loc, buf, lo, loGroup, 1, acc);
  if (vectorGroups) {
    // Whole vector blocks, then the remaining groups one by one.
    Value block =
        arith::ConstantIndexOp::create(b, loc, kGroupElements * vectorGroups);
    Value hiV = arith::AddIOp::create(
        b, loc, loGroup,
        arith::MulIOp::create(
            b, loc,
            arith::DivUIOp::create(
                b, loc, arith::SubIOp::create(b, loc, hiGroup, loGroup), block),
            block));
    acc =
        emitLoop(b, loc, buf, loGroup, hiV, kGroupElements, acc, vectorGroups);
    acc = emitLoop(b, loc, buf, hiV, hiGroup, kGroupElements, acc);
  } else {
    acc = emitLoop(b, loc, buf, loGroup, hiGroup, kGroupElements, acc);
  }
  return emitLoop(b, loc, buf, hiGroup, hi, 1, acc);
}

/// Per-row delta: the rows overlapping [lo, hi), each with its row values
/// loaded once, its per-row reductions started from the identity and
/// max-combined into their buffers at the row's end (the runtime gives
/// concurrent chunks whole rows). Per-tensor reductions run through.
SmallVector<Value> emitRows(OpBuilder &b, Location loc,
                            const SegmentBuffers &buf, Value lo, Value hi,
                            SmallVector<Value> acc, unsigned vectorGroups) {
  FusedStepOp step = buf.op;
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  Value len = buf.rowLengthIndex(b, loc);
  Value r0 = arith::DivUIOp::create(b, loc, lo, len);
  Value r1 = arith::CeilDivUIOp::create(b, loc, hi, len);
  auto loop = scf::ForOp::create(
      b, loc, r0, r1, one, acc,
      [&](OpBuilder &nb, Location l, Value r, ValueRange carried) {
        Value start = arith::MulIOp::create(nb, l, r, len);
        Value rowLo = arith::MaxSIOp::create(nb, l, lo, start);
        Value rowHi = arith::MinSIOp::create(
            nb, l, hi, arith::AddIOp::create(nb, l, start, len));
        SegmentBuffers row = buf.atRow(nb, l, r);
        SmallVector<Value> init(carried);
        for (unsigned k = 0; k < init.size(); ++k)
          if (step.isRowReduction(k))
            init[k] = buildReductionIdentity(nb, l, step.getCombiner(k),
                                             init[k].getType());
        SmallVector<Value> out =
            emitRange(nb, l, row, rowLo, rowHi, init, vectorGroups);
        SmallVector<Value> next;
        for (unsigned k = 0; k < out.size(); ++k) {
          if (!step.isRowReduction(k)) {
            next.push_back(out[k]);
            continue;
          }
          Value old = memref::LoadOp::create(nb, l, buf.rowOuts[k], r);
          memref::StoreOp::create(
              nb, l, buildCombine(nb, l, step.getCombiner(k), old, out[k]),
              buf.rowOuts[k], r);
          next.push_back(carried[k]);
        }
        scf::YieldOp::create(nb, l, next);
      });
  return loop.getResults();
}

void lowerFunc(func::FuncOp func, const KernelPlan &plan,
               unsigned vectorWidth) {
  FusedStepOp step = plan.steps.front();
  Location loc = step.getLoc();
  MLIRContext *ctx = func.getContext();
  OpBuilder b(func);

  SmallVector<Type> types(plan.argTypes);
  Type index = b.getIndexType();
  types.append(
      {index, index, MemRefType::get({ShapedType::kDynamic}, b.getI64Type())});
  auto kernel = func::FuncOp::create(b, func.getLoc(), func.getSymName(),
                                     FunctionType::get(ctx, types, {}));
  setArgOrigins(kernel, plan);
  for (unsigned i = 0; i < types.size(); ++i)
    if (isa<MemRefType>(types[i]))
      kernel.setArgAttr(i, LLVM::LLVMDialect::getNoAliasAttrName(),
                        b.getUnitAttr());
  unsigned vectorGroups = isVectorizable(step) ? vectorWidth : 0;
  Block *entry = kernel.addEntryBlock();
  b.setInsertionPointToStart(entry);
  ValueRange args = entry->getArguments();
  Value begin = args[types.size() - 3], end = args[types.size() - 2];
  Value partials = args.back();
  SmallVector<SegmentBuffers, 1> segs = materializeSegments(b, plan, args);

  unsigned numReds = step.getNumReductions();
  unsigned slots = step.getNumTensorReductions();
  unsigned numRowReds = step.getRowOuts().size();
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value offset = zero;
  for (auto [s, buf] : llvm::enumerate(segs)) {
    Value n = memref::DimOp::create(b, loc, buf.countBuffer(), 0);
    // This segment's part of [begin, end), in its own element indices.
    auto clampToSeg = [&](Value global) {
      Value local = arith::SubIOp::create(b, loc, global, offset);
      local = arith::MaxSIOp::create(b, loc, local, zero);
      return arith::MinSIOp::create(b, loc, local, n);
    };
    Value lo = clampToSeg(begin), hi = clampToSeg(end);

    SmallVector<Value> acc;
    for (unsigned k = 0; k < numReds; ++k)
      acc.push_back(buildReductionIdentity(b, loc, step.getCombiner(k),
                                           step.getReductionElementType(k)));
    acc = buf.rowLength ? emitRows(b, loc, buf, lo, hi, acc, vectorGroups)
                        : emitRange(b, loc, buf, lo, hi, acc, vectorGroups);
    for (unsigned k = numRowReds; k < numReds; ++k) {
      Value v = acc[k];
      if (!v.getType().isInteger(64))
        v = arith::ExtSIOp::create(b, loc, b.getI64Type(), v);
      Value slot =
          arith::ConstantIndexOp::create(b, loc, s * slots + k - numRowReds);
      memref::StoreOp::create(b, loc, v, partials, slot);
    }
    offset = arith::AddIOp::create(b, loc, offset, n);
  }
  func::ReturnOp::create(b, loc);
  func.erase();

  // The prologue's dqt.next_delta as arith.
  RewritePatternSet patterns(ctx);
  populateExpandNextDeltaPatterns(patterns);
  (void)applyPatternsGreedily(kernel, std::move(patterns));
}

struct LowerToCPUPass
    : public mlir::dqt::impl::DQTLowerToCPUBase<LowerToCPUPass> {
  using DQTLowerToCPUBase::DQTLowerToCPUBase;
  void runOnOperation() override {
    SmallVector<func::FuncOp> funcs(getOperation().getOps<func::FuncOp>());
    for (func::FuncOp f : funcs) {
      if (f.isExternal())
        continue;
      FailureOr<KernelPlan> plan = planKernel(f);
      if (failed(plan))
        return signalPassFailure();
      if (!plan->steps.empty())
        lowerFunc(f, *plan, vectorWidth);
    }
  }
};

} // namespace
