//===- FuseStep.cpp - dqt-fuse-step ---------------------------------------===//
//
// Turns each connected chain of tensor-level dqt ops into one dqt.fused_step
// whose body is the per-element scalar code, then merges fused steps that
// share a body and signature into one multi-segment (multi-tensor) op.
//
//===----------------------------------------------------------------------===//

#include "dqt/Passes/Passes.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/IR/OperationSupport.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/EquivalenceClasses.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::dqt {
#define GEN_PASS_DEF_DQTFUSESTEP
#include "passes/Passes.h.inc"
} // namespace mlir::dqt

using namespace mlir;
using namespace mlir::dqt;

namespace {

bool isFusable(Operation *op) {
  return isa<ElementwiseOpInterface, ReductionOpInterface, UniformOp,
             RandomBitsOp, UnpackTernaryOp, PackTernaryOp, ExpandRowsOp>(op);
}

bool isTensor(Value v) { return isa<RankedTensorType>(v.getType()); }

/// One connected chain of fusable ops of a block, in block order.
struct Component {
  SmallVector<Operation *> ops;
};

/// Builds the dqt.fused_step of one component; returns failure (with a
/// diagnostic) where the chain cannot be one kernel.
LogicalResult fuseComponent(Component &comp) {
  llvm::SmallPtrSet<Operation *, 16> inComp(comp.ops.begin(), comp.ops.end());
  Operation *last = comp.ops.back();
  Location loc = last->getLoc();

  // At most one weight stream (dqt.uniform) and one state stream
  // (dqt.random_bits), of the same (seed, step, tensor id).
  UniformOp uniform;
  RandomBitsOp randomBits;
  SmallVector<Value> rngIns;
  for (Operation *op : comp.ops) {
    if (!isa<UniformOp, RandomBitsOp>(op))
      continue;
    if (auto u = dyn_cast<UniformOp>(op)) {
      if (uniform)
        return u.emitOpError("cannot be fused: one fused step draws from one "
                             "random stream, and this chain has two");
      uniform = u;
    } else {
      if (randomBits)
        return op->emitOpError("cannot be fused: one fused step draws from "
                               "one state stream, and this chain has two");
      randomBits = cast<RandomBitsOp>(op);
    }
    SmallVector<Value> ins(op->getOperands().take_front(3));
    if (rngIns.empty())
      rngIns = ins;
    else if (rngIns != ins)
      return op->emitOpError("cannot be fused: its seed, step and tensor id "
                             "differ from those of the chain's other stream");
  }
  // Per-row ops (per-row delta) share one row length.
  Value rowLength;
  for (Operation *op : comp.ops) {
    Value len;
    if (auto e = dyn_cast<ExpandRowsOp>(op))
      len = e.getRowLength();
    else if (auto r = dyn_cast<ReduceMaxRowsOp>(op))
      len = r.getRowLength();
    if (!len)
      continue;
    if (rowLength && len != rowLength)
      return op->emitOpError("cannot be fused: its row length differs from "
                             "that of the chain's other per-row ops");
    rowLength = len;
  }
  // Operands from outside: tensors (read per element), the random streams'
  // (seed, step, tensor id), then the other scalars, among them the row
  // operands (dqt.expand_rows: one value per row).
  llvm::SetVector<Value> tensorIns, scalarIns;
  for (Operation *op : comp.ops) {
    for (Value v : op->getOperands()) {
      Operation *def = v.getDefiningOp();
      if (def && inComp.contains(def))
        continue;
      if (isa<UniformOp, RandomBitsOp>(op) && !isTensor(v))
        continue; // one of rngIns
      auto expand = dyn_cast<ExpandRowsOp>(op);
      bool rowOperand = expand && v == expand.getRows();
      if (rowOperand && (tensorIns.contains(v) ||
                         llvm::any_of(v.getUsers(), [&](Operation *u) {
                           return inComp.contains(u) && !isa<ExpandRowsOp>(u);
                         })))
        return op->emitOpError("cannot be fused: its per-row operand is also "
                               "read element by element");
      (isTensor(v) && !rowOperand ? tensorIns : scalarIns).insert(v);
    }
  }

  // Outputs: tensor results used outside; reductions: every reduction.
  SmallVector<Value> outputs, reductions;
  SmallVector<StringRef> combiners;
  for (Operation *op : comp.ops) {
    if (auto red = dyn_cast<ReductionOpInterface>(op)) {
      reductions.push_back(op->getResult(0));
      combiners.push_back(red.getCombiner());
      continue;
    }
    for (Value r : op->getResults())
      if (llvm::any_of(r.getUsers(),
                       [&](Operation *u) { return !inComp.contains(u); }))
        outputs.push_back(r);
  }
  for (Value v : llvm::concat<Value>(outputs, reductions))
    for (Operation *user : v.getUsers())
      if (!inComp.contains(user) && user->getBlock() == last->getBlock() &&
          user->isBeforeInBlock(last))
        return user->emitOpError("uses a step value before the step ends; "
                                 "it cannot be fused");

  OpBuilder b(last);
  Block *body = new Block();
  IRMapping map;
  Value uArg, bitsArg;
  if (uniform)
    uArg = body->addArgument(b.getF32Type(), loc);
  if (randomBits)
    bitsArg = body->addArgument(b.getI32Type(), loc);
  for (Value v : tensorIns)
    map.map(v, body->addArgument(cast<ShapedType>(v.getType()).getElementType(),
                                 loc));
  for (Value v : rngIns)
    body->addArgument(v.getType(), loc); // read by the lowering, not the body
  for (Value v : scalarIns) // a row operand's body value is one element
    map.map(v, body->addArgument(getElementTypeOrSelf(v.getType()), loc));

  b.setInsertionPointToStart(body);
  SmallVector<Value> contributions;
  for (Operation *op : comp.ops) {
    SmallVector<Value> ops = llvm::map_to_vector(
        op->getOperands(), [&](Value v) { return map.lookupOrNull(v); });
    if (isa<UnpackTernaryOp, PackTernaryOp>(op)) {
      // Storage only: the body sees one i8 per element either way.
      map.map(op->getResult(0), ops[0]);
    } else if (auto u = dyn_cast<UniformOp>(op)) {
      map.map(u.getResult(), uArg);
    } else if (auto r = dyn_cast<RandomBitsOp>(op)) {
      map.map(r.getResult(), bitsArg);
    } else if (auto e = dyn_cast<ExpandRowsOp>(op)) {
      map.map(e.getResult(), ops[0]); // the element's row value
    } else if (auto red = dyn_cast<ReductionOpInterface>(op)) {
      contributions.push_back(red.buildContribution(b, op->getLoc(), ops));
    } else {
      auto ew = cast<ElementwiseOpInterface>(op);
      SmallVector<Value> res = ew.buildScalar(b, op->getLoc(), ops);
      map.map(op->getResults(), res);
    }
  }
  SmallVector<Value> yielded =
      llvm::map_to_vector(outputs, [&](Value v) { return map.lookup(v); });
  yielded.append(contributions);
  YieldOp::create(b, loc, yielded);

  // Drop tensor operands that only gave a shape (the streams' `like`).
  unsigned firstTensorArg = (uniform ? 1 : 0) + (randomBits ? 1 : 0);
  for (int i = tensorIns.size() - 1; i >= 0 && tensorIns.size() > 1; --i) {
    if (!body->getArgument(firstTensorArg + i).use_empty())
      continue;
    body->eraseArgument(firstTensorArg + i);
    tensorIns.remove(tensorIns[i]);
  }

  // An output may overwrite the tensor it is the new value of, when nothing
  // else reads that tensor.
  SmallVector<int64_t> tied;
  for (Value out : outputs) {
    int64_t t = -1;
    // A packed output is the new value of the weights unpacked by
    // dqt.unpack_ternary: it overwrites their packed storage.
    Value newValue = out;
    auto pack = out.getDefiningOp<PackTernaryOp>();
    if (pack)
      newValue = pack.getQ();
    auto ew = dyn_cast_or_null<ElementwiseOpInterface>(newValue.getDefiningOp());
    std::optional<unsigned> idx;
    if (ew) // the random streams update nothing
      idx = ew.getUpdatedOperand(cast<OpResult>(newValue).getResultNumber());
    std::optional<Value> oldValue;
    if (idx)
      oldValue = newValue.getDefiningOp()->getOperand(*idx);
    if (pack) {
      auto unpack =
          oldValue ? oldValue->getDefiningOp<UnpackTernaryOp>() : nullptr;
      if (!unpack || !inComp.contains(unpack))
        return pack.emitOpError("cannot be fused: a packed result must be the "
                                "new value of weights unpacked by "
                                "dqt.unpack_ternary in the same step");
      oldValue = unpack.getPacked();
    }
    // A new value of another type (an f32 moment of a bf16 state) cannot be
    // written in place.
    if (oldValue && oldValue->getType() == out.getType()) {
      Value old = *oldValue;
      auto *it = llvm::find(tensorIns, old);
      bool onlyHere = llvm::all_of(
          old.getUsers(), [&](Operation *u) { return inComp.contains(u); });
      if (it != tensorIns.end() && onlyHere &&
          !llvm::is_contained(tied, it - tensorIns.begin()))
        t = it - tensorIns.begin();
    }
    if (pack && t < 0)
      return pack.emitOpError("cannot be fused: its packed weights are read "
                              "outside the step, so they cannot be "
                              "overwritten in place");
    tied.push_back(t);
  }

  // Tensor operands stored packed: those dqt.unpack_ternary reads.
  SmallVector<int64_t> packed;
  for (auto [i, v] : llvm::enumerate(tensorIns)) {
    bool isPacked = llvm::any_of(v.getUsers(), [&](Operation *u) {
      return isa<UnpackTernaryOp>(u) && inComp.contains(u) &&
             u->getOperand(0) == v;
    });
    if (!isPacked)
      continue;
    for (Operation *u : v.getUsers())
      if (inComp.contains(u) && !isa<UnpackTernaryOp>(u))
        return u->emitOpError("cannot be fused: it reads packed weights, "
                              "which only dqt.unpack_ternary may read");
    packed.push_back(i);
  }

  SmallVector<Value> operands(tensorIns.begin(), tensorIns.end());
  operands.append(rngIns);
  operands.append(scalarIns.begin(), scalarIns.end());
  SmallVector<Type> types;
  for (Value v : llvm::concat<Value>(outputs, reductions))
    types.push_back(v.getType());
  b.setInsertionPoint(last);
  std::optional<int64_t> rowLengthIdx;
  if (rowLength)
    rowLengthIdx = llvm::find(operands, rowLength) - operands.begin();
  auto fused = FusedStepOp::create(
      b, loc, types, operands, /*segments=*/1, tensorIns.size(), bool(uniform),
      bool(randomBits), tied, combiners, packed, rowLengthIdx);
  fused.getBody().push_back(body);

  unsigned r = 0;
  for (Value v : llvm::concat<Value>(outputs, reductions))
    v.replaceAllUsesWith(fused.getResult(r++));
  for (Operation *op : llvm::reverse(comp.ops))
    op->erase();
  return success();
}

/// Whether two single-kind fused steps can be one multi-segment op.
bool canMerge(FusedStepOp a, FusedStepOp b) {
  if (a.getTensors() != b.getTensors() || a.getRng() != b.getRng() ||
      a.getRngBits() != b.getRngBits() || a.getTied() != b.getTied() ||
      a.getReductions() != b.getReductions() ||
      a.getPackedAttr() != b.getPackedAttr() ||
      a.getRowLengthAttr() != b.getRowLengthAttr() ||
      a.getSegmentInputs(0).getTypes() != b.getSegmentInputs(0).getTypes() ||
      a.getSegmentResults(0).getTypes() != b.getSegmentResults(0).getTypes())
    return false;
  return OperationEquivalence::isRegionEquivalentTo(
      &a.getBody(), &b.getBody(), OperationEquivalence::IgnoreLocations);
}

/// Merges `steps` (in block order) into one op placed at the last of them.
void mergeSteps(ArrayRef<FusedStepOp> steps) {
  FusedStepOp last = steps.back();
  // Results of an earlier step read before the last step would not dominate.
  SmallVector<FusedStepOp> group;
  for (FusedStepOp s : steps)
    if (llvm::all_of(s->getUsers(), [&](Operation *u) {
          return u->getBlock() != last->getBlock() || !u->isBeforeInBlock(last);
        }))
      group.push_back(s);
  if (group.size() < 2)
    return;
  SmallVector<Value> operands;
  SmallVector<Type> types;
  int64_t segments = 0;
  for (FusedStepOp s : group) {
    operands.append(s.getInputs().begin(), s.getInputs().end());
    llvm::append_range(types, s.getResultTypes());
    segments += s.getSegments();
  }
  OpBuilder b(last);
  SmallVector<StringRef> combiners =
      llvm::map_to_vector(last.getReductions(), [](Attribute a) {
        return cast<StringAttr>(a).getValue();
      });
  auto merged = FusedStepOp::create(
      b, last.getLoc(), types, operands, segments, last.getTensors(),
      last.getRng(), last.getRngBits(), last.getTied(), combiners,
      last.getPacked().value_or(ArrayRef<int64_t>()), last.getRowLength());
  merged.getBody().takeBody(group.front().getBody());
  unsigned r = 0;
  for (FusedStepOp s : group) {
    for (Value v : s.getResults())
      v.replaceAllUsesWith(merged.getResult(r++));
    s.erase();
  }
}

struct FuseStepPass : public mlir::dqt::impl::DQTFuseStepBase<FuseStepPass> {
  using DQTFuseStepBase::DQTFuseStepBase;

  void runOnOperation() override {
    SmallVector<Block *> blocks;
    getOperation().walk([&](Block *block) { blocks.push_back(block); });
    for (Block *block : blocks) {
      if (failed(fuseBlock(*block)))
        return signalPassFailure();
      if (group)
        groupBlock(*block);
    }
  }

  LogicalResult fuseBlock(Block &block) {
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
    // Components in the block order of their first op.
    llvm::MapVector<Operation *, Component> comps;
    for (Operation *op : order)
      comps[classes.getLeaderValue(op)].ops.push_back(op);
    for (auto &[leader, comp] : comps)
      if (failed(fuseComponent(comp)))
        return failure();
    return success();
  }

  void groupBlock(Block &block) {
    SmallVector<SmallVector<FusedStepOp>> groups;
    for (auto step : block.getOps<FusedStepOp>()) {
      auto *it = llvm::find_if(
          groups, [&](auto &g) { return canMerge(g.front(), step); });
      if (it == groups.end())
        groups.push_back({step});
      else
        it->push_back(step);
    }
    for (auto &g : groups)
      if (g.size() > 1)
        mergeSteps(g);
  }
};

} // namespace
