//===- KernelPlan.cpp - the arguments of a step kernel --------------------===//
//
// Which function becomes which kernel with which arguments: the fused steps of
// one configuration as segments, the function's arguments in order, then the
// buffers of its new tensors, and the scalar prologue.
//
//===----------------------------------------------------------------------===//

#include "KernelPlan.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/OperationSupport.h"
#include "llvm/ADT/SetVector.h"

using namespace mlir;
using namespace mlir::dqt;

Value SegmentBuffers::countBuffer() const {
  if (!ins.empty())
    return ins.front();
  FusedStepOp step = op;
  for (auto [k, mem] : llvm::enumerate(outs))
    if (!step.isPackedOut(k))
      return mem;
  llvm_unreachable("the verifier guarantees an element tensor");
}

SegmentBuffers SegmentBuffers::atRow(OpBuilder &b, Location loc,
                                     Value row) const {
  SegmentBuffers r = *this;
  r.rowValues.clear();
  for (Value mem : rows)
    r.rowValues.push_back(memref::LoadOp::create(b, loc, mem, row));
  return r;
}

Value SegmentBuffers::rowLengthIndex(OpBuilder &b, Location loc) const {
  Value len = arith::IndexCastOp::create(b, loc, b.getIndexType(), rowLength);
  return arith::MaxSIOp::create(b, loc, len,
                                arith::ConstantIndexOp::create(b, loc, 1));
}

bool mlir::dqt::sameStepConfiguration(FusedStepOp a, FusedStepOp b) {
  auto types = [](FusedStepOp s) {
    SmallVector<Type> t(s->getOperandTypes());
    llvm::append_range(t, s->getResultTypes());
    return t;
  };
  if (a.getIns().size() != b.getIns().size() ||
      a.getRows().size() != b.getRows().size() ||
      a.getScalars().size() != b.getScalars().size() ||
      bool(a.getRowLength()) != bool(b.getRowLength()) ||
      a.getOuts().size() != b.getOuts().size() ||
      a.getRowOuts().size() != b.getRowOuts().size() || types(a) != types(b) ||
      a.getCombiners() != b.getCombiners() ||
      a.getPackedAttr() != b.getPackedAttr())
    return false;
  return OperationEquivalence::isRegionEquivalentTo(
      &a.getBody(), &b.getBody(), OperationEquivalence::IgnoreLocations);
}

static MemRefType memrefFor(Type tensor) {
  auto t = cast<RankedTensorType>(tensor);
  return MemRefType::get(t.getShape(), t.getElementType());
}

FailureOr<KernelPlan> mlir::dqt::planKernel(func::FuncOp func) {
  KernelPlan plan;
  Block &entry = func.getBody().front();
  for (Operation &op : entry) {
    if (auto step = dyn_cast<FusedStepOp>(op)) {
      plan.steps.push_back(step);
      continue;
    }
    // Scalar dqt ops (next_delta, philox) are fine; tensor-level ones must
    // have been fused.
    if (isa<ElementwiseOpInterface, ReductionOpInterface, UniformOp,
            RandomBitsOp, UnpackTernaryOp, PackTernaryOp, ExpandRowsOp>(op))
      return op.emitOpError("was not fused; run dqt-fuse-step first");
    if (isa<QuantizeOp>(op))
      return op.emitOpError("has no kernel lowering (initialization runs in "
                            "the runtime)");
  }
  if (plan.steps.empty())
    return plan; // nothing to lower here
  for (FusedStepOp s : ArrayRef(plan.steps).drop_front())
    if (!sameStepConfiguration(plan.steps.front(), s))
      return s.emitOpError("differs in configuration from the first fused "
                           "step of @")
             << func.getSymName()
             << "; one kernel runs steps that share one (lower the others "
                "from a function of their own)";

  // The function's arguments, in order.
  for (BlockArgument a : entry.getArguments()) {
    Type t = a.getType();
    auto tensor = dyn_cast<RankedTensorType>(t);
    if (tensor && tensor.getRank() == 1) {
      plan.argTypes.push_back(memrefFor(t));
    } else if (t.isIntOrIndexOrFloat()) {
      plan.argTypes.push_back(t);
    } else {
      return func.emitOpError("argument #")
             << a.getArgNumber()
             << " must be a 1-D tensor or a scalar to be a kernel argument, "
                "got "
             << t;
    }
    plan.origins.push_back(a.getArgNumber());
  }

  llvm::SetVector<Operation *> slice;
  auto ret = cast<func::ReturnOp>(entry.getTerminator());
  for (FusedStepOp s : plan.steps) {
    for (auto [group, values] :
         {std::pair<StringRef, OperandRange>{"'ins'", s.getIns()},
          {"'rows'", s.getRows()}})
      for (Value v : values)
        if (!isa<BlockArgument>(v))
          return s.emitOpError("operand of ")
                 << group << " must be an argument of the function";
    SmallVector<unsigned> &dests = plan.destinationArgs.emplace_back();
    for (auto [k, init] : llvm::enumerate(s.getDpsInits())) {
      if (auto arg = dyn_cast<BlockArgument>(init)) {
        // Written in place: nothing else may read the argument.
        for (OpOperand &use : arg.getUses())
          if (use.getOwner() != s.getOperation() ||
              &use != s.getDpsInitOperand(k))
            if (!isa<tensor::DimOp>(use.getOwner()))
              return s.emitOpError("overwrites argument #")
                     << arg.getArgNumber() << " of @" << func.getSymName()
                     << " in place, but it is also read elsewhere";
        dests.push_back(arg.getArgNumber());
        continue;
      }
      if (!init.getDefiningOp<tensor::EmptyOp>())
        return s.emitOpError("destination #")
               << k << " must be an argument of the function or a "
               << "tensor.empty";
      // A new tensor: the caller passes the buffer of the function result
      // it is.
      auto returned = llvm::find(ret.getOperands(), s->getResult(k));
      if (returned == ret.getOperands().end())
        return s.emitOpError("result #")
               << k << " must be returned by @" << func.getSymName()
               << " (the caller passes its buffer)";
      dests.push_back(plan.argTypes.size());
      plan.argTypes.push_back(memrefFor(init.getType()));
      plan.origins.push_back(-1 - (returned - ret.getOperands().begin()));
    }
    // Scalars come from the function's arguments through pure scalar ops.
    SmallVector<Value> scalars(s.getScalars());
    if (Value len = s.getRowLength())
      scalars.push_back(len);
    for (Value v : scalars) {
      if (isa<BlockArgument>(v))
        continue;
      BackwardSliceOptions opts;
      opts.inclusive = true;
      opts.omitBlockArguments = false;
      (void)getBackwardSlice(v, &slice, opts);
    }
  }
  for (Operation *op : slice) {
    bool readsTensor = llvm::any_of(op->getOperandTypes(),
                                    [](Type t) { return isa<ShapedType>(t); });
    if (!isPure(op) || op->getNumRegions() || readsTensor)
      return op->emitOpError("cannot be computed inside the kernel");
  }
  plan.prologue.assign(slice.begin(), slice.end());
  llvm::sort(plan.prologue,
             [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  return plan;
}

SmallVector<SegmentBuffers, 1>
mlir::dqt::materializeSegments(OpBuilder &b, const KernelPlan &plan,
                               ValueRange args) {
  IRMapping map;
  Block *entry = plan.steps.front()->getBlock();
  for (BlockArgument a : entry->getArguments())
    if (!isa<ShapedType>(a.getType()))
      map.map(a, args[a.getArgNumber()]);
  for (Operation *op : plan.prologue)
    b.clone(*op, map);

  auto buffer = [&](Value v) {
    return args[cast<BlockArgument>(v).getArgNumber()];
  };
  SmallVector<SegmentBuffers, 1> segs;
  for (unsigned s = 0; s < plan.steps.size(); ++s) {
    FusedStepOp step = plan.steps[s];
    SegmentBuffers &buf = segs.emplace_back();
    buf.op = step;
    buf.ins = llvm::map_to_vector(step.getIns(), buffer);
    buf.rows = llvm::map_to_vector(step.getRows(), buffer);
    for (auto [k, arg] : llvm::enumerate(plan.destinationArgs[s]))
      (k < step.getOuts().size() ? buf.outs : buf.rowOuts).push_back(args[arg]);
    buf.scalars = llvm::map_to_vector(step.getScalars(),
                                      [&](Value v) { return map.lookup(v); });
    if (Value len = step.getRowLength())
      buf.rowLength = map.lookup(len);
  }
  return segs;
}

void mlir::dqt::setArgOrigins(Operation *kernel, const KernelPlan &plan) {
  MLIRContext *ctx = kernel->getContext();
  ctx->getOrLoadDialect<DQTDialect>()->getArgOriginsAttrHelper().setAttr(
      kernel, DenseI64ArrayAttr::get(ctx, plan.origins));
}
