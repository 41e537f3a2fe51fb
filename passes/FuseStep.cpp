//===- FuseStep.cpp - dqt-fuse-step ---------------------------------------===//
//
// Turns each connected chain of tensor-level dqt ops into one dqt.fused_step
// whose body is the per-element scalar code. The lowerings then make one
// kernel of all the fused steps of a function that share a configuration.
//
//===----------------------------------------------------------------------===//

#include "dqt/Passes/Passes.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/EquivalenceClasses.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::dqt {
#define GEN_PASS_DEF_DQTFUSESTEP
#include "dqt/Passes/Passes.h.inc"
} // namespace mlir::dqt

using namespace mlir;
using namespace mlir::dqt;

namespace {

bool isFusable(Operation *op) {
  return isa<ElementwiseOpInterface, ReductionOpInterface, UniformOp,
             RandomBitsOp, UnpackTernaryOp, PackTernaryOp, ExpandRowsOp>(op);
}

bool isTensor(Value v) { return isa<RankedTensorType>(v.getType()); }

/// What one connected chain of fusable ops becomes: everything the fused
/// op is built from, found (and checked) before any IR changes.
struct StepPlan {
  SmallVector<Operation *> ops;
  /// The streams' ops and their common (seed, step, tensor id).
  UniformOp uniform;
  RandomBitsOp randomBits;
  SmallVector<Value, 3> rngScalars;
  Value rowLength;
  /// Operands from outside, by group, in order of first use.
  llvm::SetVector<Value> ins, rows, scalars;
  /// Values used outside the chain, and per output the operand it
  /// overwrites in place (its destination), or null for a new tensor.
  SmallVector<Value> outputs;
  SmallVector<Value> tiedTo;
  /// Reductions: per-row ones first, as the op orders them.
  SmallVector<Value> rowReductions, tensorReductions;
  /// Outputs stored packed (their destinations are packed weights).
  SmallVector<int64_t> packed;
};

/// The row length operand of a per-row op (dqt.expand_rows and the per-row
/// reductions), or null: the one list of ops that take a row length.
Value rowLengthOf(Operation *op) {
  if (auto e = dyn_cast<ExpandRowsOp>(op))
    return e.getRowLength();
  if (auto r = dyn_cast<ReduceMaxRowsOp>(op))
    return r.getRowLength();
  if (auto r = dyn_cast<ReduceAbsMaxRowsOp>(op))
    return r.getRowLength();
  return Value();
}

/// Checks the random streams and the row length of a chain.
LogicalResult planStreams(StepPlan &plan) {
  // At most one weight stream (dqt.uniform) and one state stream
  // (dqt.random_bits), of the same (seed, step, tensor id).
  for (Operation *op : plan.ops) {
    if (!isa<UniformOp, RandomBitsOp>(op))
      continue;
    if (auto u = dyn_cast<UniformOp>(op)) {
      if (plan.uniform)
        return u.emitOpError("cannot be fused: one fused step draws from one "
                             "random stream, and this chain has two");
      plan.uniform = u;
    } else {
      if (plan.randomBits)
        return op->emitOpError("cannot be fused: one fused step draws from "
                               "one state stream, and this chain has two");
      plan.randomBits = cast<RandomBitsOp>(op);
    }
    SmallVector<Value, 3> ins(op->getOperands().take_front(3));
    if (plan.rngScalars.empty())
      plan.rngScalars = ins;
    else if (plan.rngScalars != ins)
      return op->emitOpError("cannot be fused: its seed, step and tensor id "
                             "differ from those of the chain's other stream");
  }
  // Per-row ops (per-row delta) share one row length.
  for (Operation *op : plan.ops) {
    Value len = rowLengthOf(op);
    if (!len)
      continue;
    if (plan.rowLength && len != plan.rowLength)
      return op->emitOpError("cannot be fused: its row length differs from "
                             "that of the chain's other per-row ops");
    plan.rowLength = len;
  }
  return success();
}

/// Sorts the operands from outside into `ins`, `rows` and `scalars`.
LogicalResult planOperands(StepPlan &plan,
                           const llvm::SmallPtrSetImpl<Operation *> &inChain) {
  for (Value v : plan.rngScalars)
    plan.scalars.insert(v);
  for (Operation *op : plan.ops) {
    for (Value v : op->getOperands()) {
      Operation *def = v.getDefiningOp();
      if (def && inChain.contains(def))
        continue;
      if (v == plan.rowLength && v == rowLengthOf(op))
        continue; // the row_length operand
      auto expand = dyn_cast<ExpandRowsOp>(op);
      if (expand && v == expand.getRows()) {
        if (plan.ins.contains(v) ||
            llvm::any_of(v.getUsers(), [&](Operation *u) {
              return inChain.contains(u) && !isa<ExpandRowsOp>(u);
            }))
          return op->emitOpError("cannot be fused: its per-row operand is "
                                 "also read element by element");
        plan.rows.insert(v);
        continue;
      }
      (isTensor(v) ? plan.ins : plan.scalars).insert(v);
    }
  }
  return success();
}

/// The operand output `out` is the new value of, when it may overwrite it
/// in place (nothing outside the chain reads it, and no other output
/// overwrites it), else null. Fails where a packed output has none.
FailureOr<Value> findDestination(StepPlan &plan, Value out,
                                 const llvm::SmallPtrSetImpl<Operation *> &in) {
  // A packed output is the new value of the weights unpacked by
  // dqt.unpack_ternary: it overwrites their packed storage.
  Value newValue = out;
  auto pack = out.getDefiningOp<PackTernaryOp>();
  if (pack)
    newValue = pack.getQ();
  std::optional<Value> oldValue;
  if (auto ew = dyn_cast_or_null<ElementwiseOpInterface>(
          newValue.getDefiningOp())) // the random streams update nothing
    if (std::optional<unsigned> idx =
            ew.getUpdatedOperand(cast<OpResult>(newValue).getResultNumber()))
      oldValue = newValue.getDefiningOp()->getOperand(*idx);
  if (pack) {
    auto unpack =
        oldValue ? oldValue->getDefiningOp<UnpackTernaryOp>() : nullptr;
    if (!unpack || !in.contains(unpack))
      return pack.emitOpError("cannot be fused: a packed result must be the "
                              "new value of weights unpacked by "
                              "dqt.unpack_ternary in the same step");
    oldValue = unpack.getPacked();
  }
  Value dest;
  // A new value of another type (an f32 moment of a bf16 state) cannot be
  // written in place.
  if (oldValue && oldValue->getType() == out.getType() &&
      plan.ins.contains(*oldValue) &&
      llvm::all_of(oldValue->getUsers(),
                   [&](Operation *u) { return in.contains(u); }) &&
      !llvm::is_contained(plan.tiedTo, *oldValue))
    dest = *oldValue;
  if (pack && !dest)
    return pack.emitOpError("cannot be fused: its packed weights are read "
                            "outside the step, so they cannot be "
                            "overwritten in place");
  return dest;
}

/// Finds the outputs, their destinations and the reductions of a chain.
LogicalResult planResults(StepPlan &plan,
                          const llvm::SmallPtrSetImpl<Operation *> &inChain) {
  for (Operation *op : plan.ops) {
    if (isa<ReductionOpInterface>(op)) {
      Value r = op->getResult(0);
      (isTensor(r) ? plan.rowReductions : plan.tensorReductions).push_back(r);
      continue;
    }
    for (Value r : op->getResults())
      if (llvm::any_of(r.getUsers(),
                       [&](Operation *u) { return !inChain.contains(u); }))
        plan.outputs.push_back(r);
  }
  Operation *last = plan.ops.back();
  for (Value v : llvm::concat<Value>(plan.outputs, plan.rowReductions,
                                     plan.tensorReductions))
    for (Operation *user : v.getUsers())
      if (!inChain.contains(user) && user->getBlock() == last->getBlock() &&
          user->isBeforeInBlock(last))
        return user->emitOpError("uses a step value before the step ends; "
                                 "it cannot be fused");
  for (Value out : plan.outputs) {
    FailureOr<Value> dest = findDestination(plan, out, inChain);
    if (failed(dest))
      return failure();
    plan.tiedTo.push_back(*dest);
  }
  // Packed weights: read only by dqt.unpack_ternary, overwritten in place.
  for (Value v : plan.ins) {
    bool isPacked = llvm::any_of(v.getUsers(), [&](Operation *u) {
      return isa<UnpackTernaryOp>(u) && inChain.contains(u) &&
             u->getOperand(0) == v;
    });
    if (!isPacked)
      continue;
    for (Operation *u : v.getUsers())
      if (inChain.contains(u) && !isa<UnpackTernaryOp>(u))
        return u->emitOpError("cannot be fused: it reads packed weights, "
                              "which only dqt.unpack_ternary may read");
    auto *it = llvm::find(plan.tiedTo, v);
    if (it == plan.tiedTo.end())
      return v.getUsers().begin()->emitOpError(
          "cannot be fused: packed weights must be the step's destination "
          "(updated in place)");
    plan.packed.push_back(it - plan.tiedTo.begin());
  }
  return success();
}

/// Builds the dqt.fused_step of a planned chain and replaces the chain.
void buildStep(IRRewriter &rewriter, StepPlan &plan) {
  Operation *last = plan.ops.back();
  Location loc = last->getLoc();
  MLIRContext *ctx = rewriter.getContext();
  llvm::SmallPtrSet<Operation *, 16> inChain(plan.ops.begin(), plan.ops.end());

  // Operands that an output overwrites are destinations, not `ins`.
  SmallVector<Value> ins;
  for (Value v : plan.ins)
    if (!llvm::is_contained(plan.tiedTo, v))
      ins.push_back(v);

  // The body, built in a region of its own before the op exists (nothing
  // below can fail, so nothing leaks).
  Region bodyRegion;
  SmallVector<Value> elementArgs(ins);
  llvm::append_range(elementArgs, plan.rows);
  SmallVector<Type> argTypes;
  for (Value v : elementArgs)
    argTypes.push_back(getElementTypeOrSelf(v.getType()));
  llvm::append_range(argTypes,
                     ValueRange(plan.scalars.getArrayRef()).getTypes());
  for (Value v : plan.outputs)
    argTypes.push_back(getElementTypeOrSelf(v.getType()));
  SmallVector<Location> argLocs(argTypes.size(), loc);
  Block *body = rewriter.createBlock(&bodyRegion, {}, argTypes, argLocs);
  IRMapping map;
  unsigned arg = 0;
  for (Value v : elementArgs)
    map.map(v, body->getArgument(arg++));
  for (Value v : plan.scalars)
    map.map(v, body->getArgument(arg++));
  // A destination's body argument is the element's current value.
  for (Value dest : plan.tiedTo) {
    if (dest)
      map.map(dest, body->getArgument(arg));
    ++arg;
  }

  rewriter.setInsertionPointToStart(body);
  Value index;
  auto bits = [&](RandomStream stream) -> Value {
    if (!index)
      index = ElementIndexOp::create(rewriter, loc, rewriter.getIndexType());
    ValueRange s = plan.rngScalars;
    return PhiloxBitsOp::create(rewriter, loc, rewriter.getI16Type(), stream,
                                map.lookup(s[0]), map.lookup(s[1]),
                                map.lookup(s[2]), index);
  };
  llvm::MapVector<Value, Value> contributions;
  for (Operation *op : plan.ops) {
    SmallVector<Value> operands = llvm::map_to_vector(
        op->getOperands(), [&](Value v) { return map.lookupOrNull(v); });
    if (isa<UnpackTernaryOp, PackTernaryOp>(op)) {
      // Storage only: the body sees one i8 per element either way.
      map.map(op->getResult(0), operands[0]);
    } else if (auto u = dyn_cast<UniformOp>(op)) {
      map.map(u.getResult(), buildUniformFromBits(rewriter, u.getLoc(),
                                                  bits(RandomStream::weight)));
    } else if (auto r = dyn_cast<RandomBitsOp>(op)) {
      // dqt.random_bits: state0's bits low, state1's high. A step with one
      // state reads the low half only, and LLVM drops the unused stream.
      Type i32 = rewriter.getI32Type();
      Value lo = arith::ExtUIOp::create(rewriter, r.getLoc(), i32,
                                        bits(RandomStream::state0));
      Value hi = arith::ExtUIOp::create(rewriter, r.getLoc(), i32,
                                        bits(RandomStream::state1));
      hi = arith::ShLIOp::create(
          rewriter, r.getLoc(), hi,
          arith::ConstantOp::create(rewriter, r.getLoc(),
                                    rewriter.getI32IntegerAttr(16)));
      map.map(r.getResult(),
              arith::OrIOp::create(rewriter, r.getLoc(), lo, hi));
    } else if (auto e = dyn_cast<ExpandRowsOp>(op)) {
      map.map(e.getResult(), operands[0]); // the element's row value
    } else if (auto red = dyn_cast<ReductionOpInterface>(op)) {
      contributions[op->getResult(0)] =
          red.buildContribution(rewriter, op->getLoc(), operands);
    } else {
      auto ew = cast<ElementwiseOpInterface>(op);
      map.map(op->getResults(),
              ew.buildScalar(rewriter, op->getLoc(), operands));
    }
  }
  SmallVector<Value> yielded =
      llvm::map_to_vector(plan.outputs, [&](Value v) { return map.lookup(v); });
  SmallVector<Attribute> combiners;
  for (Value r :
       llvm::concat<Value>(plan.rowReductions, plan.tensorReductions)) {
    yielded.push_back(contributions.lookup(r));
    combiners.push_back(CombiningKindAttr::get(
        ctx, cast<ReductionOpInterface>(r.getDefiningOp()).getCombiner()));
  }
  YieldOp::create(rewriter, loc, yielded);

  // Drop `ins` that only gave a shape (the streams' `like`), keeping one
  // element tensor to count by.
  unsigned numIns = ins.size();
  bool countByOut =
      llvm::any_of(llvm::seq<size_t>(0, plan.outputs.size()), [&](size_t k) {
        return plan.tiedTo[k] && !llvm::is_contained(plan.packed, k);
      });
  for (int i = numIns - 1; i >= 0; --i) {
    if (!body->getArgument(i).use_empty() || (!countByOut && ins.size() == 1))
      continue;
    body->eraseArgument(i);
    ins.erase(ins.begin() + i);
  }

  // Destinations of new tensors: tensor.empty of the element (or row) count.
  rewriter.setInsertionPoint(last);
  Value countTensor = ins.empty() ? Value() : ins.front();
  for (auto [k, dest] : llvm::enumerate(plan.tiedTo))
    if (!countTensor && dest && !llvm::is_contained(plan.packed, int64_t(k)))
      countTensor = dest;
  auto emptyLike = [&](Value like, function_ref<Value()> length) -> Value {
    auto type = cast<RankedTensorType>(like.getType());
    if (!type.isDynamicDim(0))
      return tensor::EmptyOp::create(rewriter, loc, type.getShape(),
                                     type.getElementType());
    return tensor::EmptyOp::create(rewriter, loc, type, ValueRange{length()});
  };
  Value n;
  auto count = [&]() {
    if (!n)
      n = tensor::DimOp::create(rewriter, loc, countTensor, 0);
    return n;
  };
  SmallVector<Value> outs, rowOuts;
  for (auto [out, dest] : llvm::zip(plan.outputs, plan.tiedTo))
    outs.push_back(dest ? dest : emptyLike(out, count));
  Value rowCount;
  auto numRows = [&]() -> Value {
    if (rowCount)
      return rowCount;
    return rowCount =
               plan.rows.empty()
                   ? arith::DivUIOp::create(
                         rewriter, loc, count(),
                         arith::IndexCastOp::create(rewriter, loc,
                                                    rewriter.getIndexType(),
                                                    plan.rowLength))
                         .getResult()
                   : tensor::DimOp::create(rewriter, loc, plan.rows.front(), 0)
                         .getResult();
  };
  for (Value r : plan.rowReductions)
    rowOuts.push_back(emptyLike(r, numRows));

  SmallVector<Type> types;
  for (Value v : llvm::concat<Value>(plan.outputs, plan.rowReductions,
                                     plan.tensorReductions))
    types.push_back(v.getType());
  auto fused = FusedStepOp::create(
      rewriter, loc, types, ins, plan.rows.getArrayRef(),
      plan.scalars.getArrayRef(), plan.rowLength, outs, rowOuts,
      rewriter.getArrayAttr(combiners),
      plan.packed.empty() ? DenseI64ArrayAttr()
                          : rewriter.getDenseI64ArrayAttr(plan.packed));
  fused.getBody().takeBody(bodyRegion);

  unsigned r = 0;
  for (Value v : llvm::concat<Value>(plan.outputs, plan.rowReductions,
                                     plan.tensorReductions))
    rewriter.replaceAllUsesWith(v, fused.getResult(r++));
  for (Operation *op : llvm::reverse(plan.ops))
    rewriter.eraseOp(op);
}

/// Plans a chain; emits a located diagnostic where it cannot be one step.
LogicalResult fuseChain(IRRewriter &rewriter, ArrayRef<Operation *> ops) {
  StepPlan plan;
  plan.ops.assign(ops.begin(), ops.end());
  llvm::SmallPtrSet<Operation *, 16> inChain(ops.begin(), ops.end());
  if (failed(planStreams(plan)) || failed(planOperands(plan, inChain)) ||
      failed(planResults(plan, inChain)))
    return failure();
  if (plan.outputs.empty() && plan.rowReductions.empty() &&
      plan.tensorReductions.empty()) {
    // Nothing reads what the chain computes (a training graph whose caller
    // drops the new states, after inlining): no step, and no op to fuse.
    for (Operation *op : llvm::reverse(plan.ops))
      rewriter.eraseOp(op);
    return success();
  }
  buildStep(rewriter, plan);
  return success();
}

struct FuseStepPass : public mlir::dqt::impl::DQTFuseStepBase<FuseStepPass> {
  using DQTFuseStepBase::DQTFuseStepBase;

  void runOnOperation() override {
    SmallVector<Block *> blocks;
    getOperation().walk([&](Block *block) { blocks.push_back(block); });
    IRRewriter rewriter(&getContext());
    for (Block *block : blocks)
      if (failed(fuseBlock(rewriter, *block)))
        return signalPassFailure();
  }

  LogicalResult fuseBlock(IRRewriter &rewriter, Block &block) {
    llvm::EquivalenceClasses<Operation *> classes;
    SmallVector<Operation *> order;
    // Ops reading the same tensor belong together too: it is read once.
    DenseMap<Value, Operation *> firstReader;
    for (Operation &op : block) {
      if (!isFusable(&op) || isa<FusedStepOp>(op.getParentOp()))
        continue;
      order.push_back(&op);
      classes.insert(&op);
      for (Value v : op.getOperands()) {
        if (Operation *def = v.getDefiningOp())
          if (def->getBlock() == &block && isFusable(def))
            classes.unionSets(&op, def);
        if (isTensor(v)) {
          auto [it, inserted] = firstReader.try_emplace(v, &op);
          if (!inserted)
            classes.unionSets(&op, it->second);
        }
      }
    }
    // Chains in the block order of their first op.
    llvm::MapVector<Operation *, SmallVector<Operation *>> chains;
    for (Operation *op : order)
      chains[classes.getLeaderValue(op)].push_back(op);
    for (auto &[leader, ops] : chains)
      if (failed(fuseChain(rewriter, ops)))
        return failure();
    return success();
  }
};

} // namespace
