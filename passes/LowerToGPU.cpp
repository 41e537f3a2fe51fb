//===- LowerToGPU.cpp - dqt-lower-to-gpu ----------------------------------===//
//
// A fused step becomes one gpu.func kernel: per segment, a grid-stride loop
// over groups of 4 elements (one Philox call and 128-bit loads of f32 data
// per thread and iteration), the n % 4 tail handled by the first threads,
// then the by-product reductions: gpu.all_reduce per block and one global
// atomic per block into an i64 buffer that the caller initializes.
//
//===----------------------------------------------------------------------===//

#include "dqt/Passes/Passes.h"

#include "LoopBody.h"

#include "llvm/ADT/TypeSwitch.h"

namespace mlir::dqt {
#define GEN_PASS_DEF_DQTLOWERTOGPU
#include "passes/Passes.h.inc"
} // namespace mlir::dqt

using namespace mlir;
using namespace mlir::dqt;

namespace {

gpu::AllReduceOperation allReduceKind(StringRef combiner) {
  return combiner == "maxsi" ? gpu::AllReduceOperation::MAXSI
                             : gpu::AllReduceOperation::ADD;
}

arith::AtomicRMWKind atomicKind(StringRef combiner) {
  return combiner == "maxsi" ? arith::AtomicRMWKind::maxs
                             : arith::AtomicRMWKind::addi;
}

/// Math ops that convert-gpu-to-nvvm would turn into libdevice calls become
/// LLVM/NVVM intrinsics instead: the kernel then needs no libdevice (whose
/// linking depends on finding the CUDA toolkit at compile time), and sqrt is
/// the IEEE sqrt.rn the numerics contract requires (libdevice's sqrtf is
/// approximate unless __CUDA_PREC_SQRT is set). floor and fabs are exact
/// either way: cvt.rmi.f32.f32 and abs.f32.
void useNativeMath(gpu::GPUFuncOp kernel) {
  SmallVector<Operation *> ops;
  kernel.walk([&](Operation *op) {
    if (isa<math::SqrtOp, math::FloorOp, math::AbsFOp>(op))
      ops.push_back(op);
  });
  for (Operation *op : ops) {
    StringRef intrinsic =
        llvm::TypeSwitch<Operation *, StringRef>(op)
            .Case([](math::SqrtOp) { return "llvm.nvvm.sqrt.rn.f"; })
            .Case([](math::FloorOp) { return "llvm.floor.f32"; })
            .Default([](Operation *) { return "llvm.fabs.f32"; });
    OpBuilder b(op);
    auto call = LLVM::CallIntrinsicOp::create(
        b, op->getLoc(), op->getResultTypes()[0], b.getStringAttr(intrinsic),
        op->getOperands());
    op->replaceAllUsesWith(call->getResults());
    op->erase();
  }
}

/// emitElements, then (per-row delta) each per-row reduction's contribution
/// max-combined into its row's slot with a global atomic; those come back
/// as the identity. All `width` elements must lie in one row.
SmallVector<Value> emitInRow(OpBuilder &b, Location loc, FusedStepOp step,
                             const SegmentBuffers &buf, Value first,
                             unsigned width, GroupAccess access) {
  if (!buf.rowLength)
    return emitElements(b, loc, step, buf, first, width, access);
  Value row = arith::DivUIOp::create(b, loc, first, buf.rowLengthIndex(b, loc));
  SmallVector<Value> reds =
      emitElements(b, loc, step, buf.atRow(b, loc, row), first, width, access);
  for (unsigned k = 0; k < reds.size(); ++k) {
    if (!step.isRowReduction(k))
      continue;
    StringRef combiner = cast<StringAttr>(step.getReductions()[k]).getValue();
    memref::AtomicRMWOp::create(b, loc, atomicKind(combiner), reds[k],
                                buf.rowOutputs[k], ValueRange{row});
    reds[k] = buildReductionIdentity(b, loc, combiner, reds[k].getType());
  }
  return reds;
}

/// A thread's group of 4 elements from `first`: one Philox call and 128-bit
/// accesses when it lies in one row (always without per-row delta, and with
/// it whenever 4 divides the row length), else element by element.
SmallVector<Value> emitGroup(OpBuilder &b, Location loc, FusedStepOp step,
                             const SegmentBuffers &buf, Value first) {
  if (!buf.rowLength)
    return emitElements(b, loc, step, buf, first, 4,
                        GroupAccess::AlignedVector);
  Value len = buf.rowLengthIndex(b, loc);
  Value last = arith::AddIOp::create(b, loc, first,
                                     arith::ConstantIndexOp::create(b, loc, 3));
  Value sameRow =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                            arith::DivUIOp::create(b, loc, first, len),
                            arith::DivUIOp::create(b, loc, last, len));
  SmallVector<Type> types;
  for (unsigned k = 0; k < step.getNumReductions(); ++k)
    types.push_back(getElementTypeOrSelf(
        step.getSegmentResults(0)[step.getNumOutputs() + k].getType()));
  auto split =
      scf::IfOp::create(b, loc, types, sameRow, /*withElseRegion=*/true);
  OpBuilder tb = split.getThenBodyBuilder();
  scf::YieldOp::create(
      tb, loc,
      emitInRow(tb, loc, step, buf, first, 4, GroupAccess::AlignedVector));
  OpBuilder eb = split.getElseBodyBuilder();
  SmallVector<Value> reds;
  for (unsigned e = 0; e < 4; ++e) {
    Value i = arith::AddIOp::create(eb, loc, first,
                                    arith::ConstantIndexOp::create(eb, loc, e));
    SmallVector<Value> r =
        emitInRow(eb, loc, step, buf, i, 1, GroupAccess::Scalar);
    if (!e) {
      reds = r;
      continue;
    }
    for (unsigned k = 0; k < r.size(); ++k)
      reds[k] = buildCombine(
          eb, loc, cast<StringAttr>(step.getReductions()[k]).getValue(),
          reds[k], r[k]);
  }
  scf::YieldOp::create(eb, loc, reds);
  return split.getResults();
}

void lowerFunc(func::FuncOp func, const KernelPlan &plan,
               gpu::GPUModuleOp module) {
  FusedStepOp step = plan.op;
  Location loc = step.getLoc();
  MLIRContext *ctx = func.getContext();
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());

  SmallVector<Type> types(plan.argTypes);
  Type i64 = b.getI64Type(), i32 = b.getI32Type();
  types.push_back(MemRefType::get({ShapedType::kDynamic}, i64));
  auto kernel = gpu::GPUFuncOp::create(b, func.getLoc(), func.getSymName(),
                                       FunctionType::get(ctx, types, {}));
  kernel->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  kernel->setAttr("dqt.arg_origins", b.getDenseI64ArrayAttr(plan.origins));
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
  Value four = arith::ConstantIndexOp::create(b, loc, 4);

  unsigned numReds = step.getNumReductions();
  ResultRange res0 = step.getSegmentResults(0);
  auto combiner = [&](unsigned k) {
    return cast<StringAttr>(step.getReductions()[k]).getValue();
  };
  for (auto [s, buf] : llvm::enumerate(segs)) {
    Value n = memref::DimOp::create(b, loc, buf.inputs[buf.countInput], 0);
    Value groups = arith::DivUIOp::create(b, loc, n, four);
    SmallVector<Value> init;
    for (unsigned k = 0; k < numReds; ++k)
      init.push_back(buildReductionIdentity(
          b, loc, combiner(k),
          getElementTypeOrSelf(res0[step.getNumOutputs() + k].getType())));

    auto loop = scf::ForOp::create(
        b, loc, gtid, groups, stride, init,
        [&](OpBuilder &nb, Location l, Value g, ValueRange acc) {
          Value first = arith::MulIOp::create(nb, l, g, four);
          SmallVector<Value> reds = emitGroup(nb, l, step, buf, first);
          SmallVector<Value> next;
          for (unsigned k = 0; k < numReds; ++k)
            next.push_back(buildCombine(nb, l, combiner(k), acc[k], reds[k]));
          scf::YieldOp::create(nb, l, next);
        });
    // The n % 4 tail elements go to the first threads of the grid; with
    // packed weights they share one byte, so thread 0 does them all.
    Value tailStart = arith::MulIOp::create(b, loc, groups, four);
    Value tailIdx = arith::AddIOp::create(b, loc, tailStart, gtid);
    bool packedTail = buf.packedOutputs.any();
    Value inTail =
        packedTail
            ? arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, gtid,
                                    zero)
            : arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, tailIdx,
                                    n);
    auto tail = scf::IfOp::create(
        b, loc, inTail,
        [&](OpBuilder &nb, Location l) {
          auto combineInto = [&](OpBuilder &cb, Location cl, ValueRange acc,
                                 Value i) {
            SmallVector<Value> reds =
                emitInRow(cb, cl, step, buf, i, 1, GroupAccess::Scalar);
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
            s * numTensorReductions(step) + tensorReductionSlot(step, k));
        memref::AtomicRMWOp::create(nb, l, atomicKind(combiner(k)), v, partials,
                                    ValueRange{slot});
      }
      scf::YieldOp::create(nb, l);
    });
  }
  gpu::ReturnOp::create(b, loc);
  useNativeMath(kernel);
  func.erase();
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
      if (!plan->op)
        continue;
      if (!kernels) {
        OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
        kernels = gpu::GPUModuleOp::create(b, module.getLoc(), "dqt_kernels");
        module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                        b.getUnitAttr());
      }
      lowerFunc(f, *plan, kernels);
    }
  }
};

} // namespace
