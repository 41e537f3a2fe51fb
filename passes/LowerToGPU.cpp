//===- LowerToGPU.cpp - dqt-lower-to-gpu ----------------------------------===//
//
// A fused step becomes one gpu.func kernel: per segment, a grid-stride loop
// over groups of 8 elements (one Philox call per stream and two 128-bit
// loads of f32 data per thread and iteration), the n % 8 tail handled by the
// first threads,
// then the by-product reductions: gpu.all_reduce per block and one global
// atomic per block into an i64 buffer that the caller initializes.
//
//===----------------------------------------------------------------------===//

#include "dqt/Passes/Passes.h"

#include "Combiners.h"
#include "ElementCodegen.h"
#include "ExpandPatterns.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::dqt {
#define GEN_PASS_DEF_DQTLOWERTOGPU
#include "dqt/Passes/Passes.h.inc"
} // namespace mlir::dqt

using namespace mlir;
using namespace mlir::dqt;

namespace {

gpu::AllReduceOperation allReduceKind(CombiningKind kind) {
  return kind == CombiningKind::maxsi ? gpu::AllReduceOperation::MAXSI
                                      : gpu::AllReduceOperation::ADD;
}

arith::AtomicRMWKind atomicKind(CombiningKind kind) {
  return kind == CombiningKind::maxsi ? arith::AtomicRMWKind::maxs
                                      : arith::AtomicRMWKind::addi;
}

/// Math ops that convert-gpu-to-nvvm would turn into libdevice calls become
/// LLVM/NVVM intrinsics instead: the kernel then needs no libdevice (whose
/// linking depends on finding the CUDA toolkit at compile time), and sqrt is
/// the IEEE sqrt.rn the numerics contract requires (libdevice's sqrtf is
/// approximate unless __CUDA_PREC_SQRT is set). floor and fabs are exact
/// either way: cvt.rmi.f32.f32 and abs.f32.
template <typename MathOp> struct NativeMath : public OpRewritePattern<MathOp> {
  NativeMath(MLIRContext *ctx, StringRef intrinsic)
      : OpRewritePattern<MathOp>(ctx), intrinsic(intrinsic) {}
  LogicalResult matchAndRewrite(MathOp op,
                                PatternRewriter &rewriter) const override {
    if (!op->template getParentOfType<gpu::GPUFuncOp>())
      return rewriter.notifyMatchFailure(op, "not in a GPU kernel");
    auto call = LLVM::CallIntrinsicOp::create(
        rewriter, op.getLoc(), op->getResultTypes()[0],
        rewriter.getStringAttr(intrinsic), op->getOperands());
    rewriter.replaceOp(op, call->getResults());
    return success();
  }
  StringRef intrinsic;
};

/// emitElements, then (per-row delta) each per-row reduction's contribution
/// max-combined into its row's slot with a global atomic; those come back
/// as the identity. All `width` elements must lie in one row.
SmallVector<Value> emitInRow(OpBuilder &b, Location loc,
                             const SegmentBuffers &buf, Value first,
                             unsigned width, GroupAccess access) {
  if (!buf.rowLength)
    return emitElements(b, loc, buf, first, width, access);
  FusedStepOp step = buf.op;
  Value row = arith::DivUIOp::create(b, loc, first, buf.rowLengthIndex(b, loc));
  SmallVector<Value> reds =
      emitElements(b, loc, buf.atRow(b, loc, row), first, width, access);
  for (unsigned k = 0; k < step.getRowOuts().size(); ++k) {
    CombiningKind kind = step.getCombiner(k);
    memref::AtomicRMWOp::create(b, loc, atomicKind(kind), reds[k],
                                buf.rowOuts[k], ValueRange{row});
    reds[k] = buildReductionIdentity(b, loc, kind, reds[k].getType());
  }
  return reds;
}

/// A thread's group of 8 elements from `first`: one Philox call per stream
/// and 128-bit accesses when it lies in one row (always without per-row
/// delta, and with it whenever 8 divides the row length), else element by
/// element.
SmallVector<Value> emitGroup(OpBuilder &b, Location loc,
                             const SegmentBuffers &buf, Value first) {
  if (!buf.rowLength)
    return emitElements(b, loc, buf, first, kGroupElements,
                        GroupAccess::AlignedVector);
  FusedStepOp step = buf.op;
  Value len = buf.rowLengthIndex(b, loc);
  Value last = arith::AddIOp::create(
      b, loc, first,
      arith::ConstantIndexOp::create(b, loc, kGroupElements - 1));
  Value sameRow =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                            arith::DivUIOp::create(b, loc, first, len),
                            arith::DivUIOp::create(b, loc, last, len));
  SmallVector<Type> types;
  for (unsigned k = 0; k < step.getNumReductions(); ++k)
    types.push_back(step.getReductionElementType(k));
  auto split =
      scf::IfOp::create(b, loc, types, sameRow, /*withElseRegion=*/true);
  OpBuilder tb = split.getThenBodyBuilder();
  scf::YieldOp::create(tb, loc,
                       emitInRow(tb, loc, buf, first, kGroupElements,
                                 GroupAccess::AlignedVector));
  OpBuilder eb = split.getElseBodyBuilder();
  SmallVector<Value> reds;
  for (unsigned e = 0; e < kGroupElements; ++e) {
    Value i = arith::AddIOp::create(eb, loc, first,
                                    arith::ConstantIndexOp::create(eb, loc, e));
    SmallVector<Value> r = emitInRow(eb, loc, buf, i, 1, GroupAccess::Scalar);
    if (!e) {
      reds = r;
      continue;
    }
    for (unsigned k = 0; k < r.size(); ++k)
      reds[k] = buildCombine(eb, loc, step.getCombiner(k), reds[k], r[k]);
  }
  scf::YieldOp::create(eb, loc, reds);
  return split.getResults();
}

void lowerFunc(func::FuncOp func, const KernelPlan &plan,
               gpu::GPUModuleOp module) {
  FusedStepOp step = plan.steps.front();
  Location loc = step.getLoc();
  MLIRContext *ctx = func.getContext();
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());

  SmallVector<Type> types(plan.argTypes);
  Type i64 = b.getI64Type(), i32 = b.getI32Type();
  types.push_back(MemRefType::get({ShapedType::kDynamic}, i64));
  auto kernel = gpu::GPUFuncOp::create(b, func.getLoc(), func.getSymName(),
                                       FunctionType::get(ctx, types, {}));
  kernel->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  setArgOrigins(kernel, plan);
  Block &entry = kernel.getBody().front();
  b.setInsertionPointToStart(&entry);
  ValueRange args = entry.getArguments();
  Value partials = args.back();
  SmallVector<SegmentBuffers, 1> segs = materializeSegments(b, plan, args);

  Value tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  Value bid = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  Value bdim = gpu::BlockDimOp::create(b, loc, gpu::Dimension::x);
  Value gdim = gpu::GridDimOp::create(b, loc, gpu::Dimension::x);
  Value gtid = arith::AddIOp::create(
      b, loc, arith::MulIOp::create(b, loc, bid, bdim), tid);
  Value stride = arith::MulIOp::create(b, loc, bdim, gdim);
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value groupSize = arith::ConstantIndexOp::create(b, loc, kGroupElements);

  unsigned numReds = step.getNumReductions();
  auto combiner = [&](unsigned k) { return step.getCombiner(k); };
  for (auto [s, buf] : llvm::enumerate(segs)) {
    Value n = memref::DimOp::create(b, loc, buf.countBuffer(), 0);
    Value groups = arith::DivUIOp::create(b, loc, n, groupSize);
    SmallVector<Value> init;
    for (unsigned k = 0; k < numReds; ++k)
      init.push_back(buildReductionIdentity(b, loc, combiner(k),
                                            step.getReductionElementType(k)));

    auto loop = scf::ForOp::create(
        b, loc, gtid, groups, stride, init,
        [&](OpBuilder &nb, Location l, Value g, ValueRange acc) {
          Value first = arith::MulIOp::create(nb, l, g, groupSize);
          SmallVector<Value> reds = emitGroup(nb, l, buf, first);
          SmallVector<Value> next;
          for (unsigned k = 0; k < numReds; ++k)
            next.push_back(buildCombine(nb, l, combiner(k), acc[k], reds[k]));
          scf::YieldOp::create(nb, l, next);
        });
    // The n % 8 tail elements go to the first threads of the grid; with
    // packed weights they share bytes, so thread 0 does them all.
    Value tailStart = arith::MulIOp::create(b, loc, groups, groupSize);
    Value tailIdx = arith::AddIOp::create(b, loc, tailStart, gtid);
    bool packedTail = step.getPacked().has_value();
    Value inTail =
        packedTail ? arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                           gtid, zero)
                   : arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                           tailIdx, n);
    auto tail = scf::IfOp::create(
        b, loc, inTail,
        [&](OpBuilder &nb, Location l) {
          auto combineInto = [&](OpBuilder &cb, Location cl, ValueRange acc,
                                 Value i) {
            SmallVector<Value> reds =
                emitInRow(cb, cl, buf, i, 1, GroupAccess::Scalar);
            SmallVector<Value> next;
            for (unsigned k = 0; k < numReds; ++k)
              next.push_back(
                  buildCombine(cb, cl, combiner(k), acc[k], reds[k]));
            return next;
          };
          if (!packedTail) {
            scf::YieldOp::create(
                nb, l, combineInto(nb, l, loop.getResults(), tailIdx));
            return;
          }
          auto seq = scf::ForOp::create(
              nb, l, tailStart, n, arith::ConstantIndexOp::create(nb, l, 1),
              loop.getResults(),
              [&](OpBuilder &fb, Location fl, Value i, ValueRange acc) {
                scf::YieldOp::create(fb, fl, combineInto(fb, fl, acc, i));
              });
          scf::YieldOp::create(nb, l, seq.getResults());
        },
        [&](OpBuilder &nb, Location l) {
          scf::YieldOp::create(nb, l, loop.getResults());
        });

    // Block reductions in i32 (a block's count cannot overflow it), then one
    // i64 atomic per block.
    SmallVector<Value> blockVals;
    for (unsigned k = 0; k < numReds; ++k) {
      if (step.isRowReduction(k)) { // already combined, row by row
        blockVals.push_back(Value());
        continue;
      }
      Value v = tail.getResult(k);
      unsigned w = v.getType().getIntOrFloatBitWidth();
      if (w < 32)
        v = arith::ExtSIOp::create(b, loc, i32, v);
      else if (w > 32)
        v = arith::TruncIOp::create(b, loc, i32, v);
      auto kind =
          gpu::AllReduceOperationAttr::get(ctx, allReduceKind(combiner(k)));
      blockVals.push_back(
          gpu::AllReduceOp::create(b, loc, v, kind, /*uniform=*/true));
    }
    Value first =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, tid, zero);
    scf::IfOp::create(b, loc, first, [&](OpBuilder &nb, Location l) {
      for (unsigned k = 0; k < numReds; ++k) {
        if (!blockVals[k])
          continue;
        Value v = arith::ExtSIOp::create(nb, l, i64, blockVals[k]);
        Value slot = arith::ConstantIndexOp::create(
            nb, l,
            s * step.getNumTensorReductions() + k - step.getRowOuts().size());
        memref::AtomicRMWOp::create(nb, l, atomicKind(combiner(k)), v, partials,
                                    ValueRange{slot});
      }
      scf::YieldOp::create(nb, l);
    });
  }
  gpu::ReturnOp::create(b, loc);
  func.erase();

  // The prologue's dqt.next_delta as arith; math as NVVM intrinsics.
  RewritePatternSet patterns(ctx);
  populateExpandNextDeltaPatterns(patterns);
  populateGpuNativeMathPatterns(patterns);
  (void)applyPatternsGreedily(kernel, std::move(patterns));
}

struct LowerToGPUPass
    : public mlir::dqt::impl::DQTLowerToGPUBase<LowerToGPUPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::FuncOp> funcs(module.getOps<func::FuncOp>());
    gpu::GPUModuleOp kernels;
    for (func::FuncOp f : funcs) {
      if (f.isExternal())
        continue;
      FailureOr<KernelPlan> plan = planKernel(f);
      if (failed(plan))
        return signalPassFailure();
      if (plan->steps.empty())
        continue;
      if (!kernels) {
        OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
        kernels = gpu::GPUModuleOp::create(b, module.getLoc(), "dqt_kernels");
        module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                        b.getUnitAttr());
      }
      // Launches from host code (dqt-outline-steps) now name the gpu.func.
      auto nested = SymbolRefAttr::get(
          kernels.getSymNameAttr(),
          {FlatSymbolRefAttr::get(f.getSymNameAttr())});
      module.walk([&](LaunchOp launch) {
        if (launch.getKernel() == FlatSymbolRefAttr::get(f.getSymNameAttr()))
          launch.setKernelAttr(nested);
      });
      lowerFunc(f, *plan, kernels);
    }
  }
};

} // namespace

void mlir::dqt::populateGpuNativeMathPatterns(RewritePatternSet &patterns) {
  MLIRContext *ctx = patterns.getContext();
  patterns.add<NativeMath<math::SqrtOp>>(ctx, "llvm.nvvm.sqrt.rn.f");
  patterns.add<NativeMath<math::FloorOp>>(ctx, "llvm.floor.f32");
  patterns.add<NativeMath<math::AbsFOp>>(ctx, "llvm.fabs.f32");
}
