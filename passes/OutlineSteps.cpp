//===- OutlineSteps.cpp - dqt-outline-steps -------------------------------===//
//
// Fused steps inside a larger function (a training graph: forward, loss and
// backward around the step) move into kernel functions of their own, the
// form dqt-lower-to-cpu and dqt-lower-to-gpu compile; a dqt.launch stays in
// their place. Upstream's outlining (gpu-kernel-outlining) works on
// gpu.launch regions, not on ops with tensor semantics, and the kernel ABI
// (docs/design.md) fixes the argument order, hence this pass.
//
//===----------------------------------------------------------------------===//

#include "dqt/Passes/Passes.h"

#include "Combiners.h"
#include "KernelPlan.h"

#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::dqt {
#define GEN_PASS_DEF_DQTOUTLINESTEPS
#include "dqt/Passes/Passes.h.inc"
} // namespace mlir::dqt

using namespace mlir;
using namespace mlir::dqt;

namespace {

/// Whether `func` already is what the kernel lowerings take: fused steps
/// over its arguments, a scalar prologue, their new tensors and a return.
bool isKernelFunction(func::FuncOp func) {
  if (!func.getBody().hasOneBlock())
    return false;
  auto isArg = [&](Value v) { return isa<BlockArgument>(v); };
  for (Operation &op : func.getBody().front()) {
    if (auto step = dyn_cast<FusedStepOp>(op)) {
      if (!llvm::all_of(step.getIns(), isArg) ||
          !llvm::all_of(step.getRows(), isArg))
        return false;
      for (Value init : step.getDpsInits())
        if (!isArg(init) && !init.getDefiningOp<tensor::EmptyOp>())
          return false;
      continue;
    }
    if (isa<tensor::EmptyOp, tensor::DimOp, func::ReturnOp>(op))
      continue;
    // Unfused dqt ops stay: dqt-lower-to-* names them.
    if (isa<DQTDialect>(op.getDialect()))
      continue;
    auto isShaped = llvm::IsaPred<ShapedType>;
    if (op.getNumRegions() || llvm::any_of(op.getOperandTypes(), isShaped) ||
        llvm::any_of(op.getResultTypes(), isShaped))
      return false;
  }
  return true;
}

/// Steps of one configuration that run as one kernel, launched where the
/// last of them stood.
struct Group {
  SmallVector<FusedStepOp> steps;

  /// Whether `next` (later in the block) can join: same configuration, no
  /// use of an earlier member's results before `next` (the members move down
  /// to it, and `next` cannot read them), and no tensor that one member
  /// writes in place and another reads (every kernel argument is its own
  /// buffer: the kernels mark them `noalias`).
  bool accepts(FusedStepOp next) const {
    if (!sameStepConfiguration(steps.front(), next))
      return false;
    Block *block = next->getBlock();
    for (FusedStepOp member : steps) {
      for (Value r : member->getResults())
        for (Operation *user : r.getUsers()) {
          Operation *at = block->findAncestorOpInBlock(*user);
          if (!at || at == next || at->isBeforeInBlock(next))
            return false;
        }
      auto writesReadOf = [](FusedStepOp writer, FusedStepOp reader) {
        return llvm::any_of(writer.getDpsInits(), [&](Value dest) {
          return llvm::is_contained(reader->getOperands(), dest);
        });
      };
      if (writesReadOf(member, next) || writesReadOf(next, member))
        return false;
    }
    return true;
  }
};

/// A destination that is also read by the step (or a second destination)
/// would be one buffer under two kernel arguments.
LogicalResult checkAliasing(FusedStepOp step) {
  SmallVector<Value> inits(step.getDpsInits());
  for (auto [k, dest] : llvm::enumerate(inits)) {
    if (llvm::count(inits, dest) > 1)
      return step.emitOpError("writes the same tensor through two "
                              "destinations (#")
             << k << " and another); give each output its own tensor";
    for (OpOperand &use : step->getOpOperands())
      if (use.get() == dest && !step.isDpsInit(&use))
        return step.emitOpError("reads operand #")
               << use.getOperandNumber() << ", which destination #" << k
               << " overwrites in place; pass a copy to one of them";
  }
  return success();
}

/// Element tensors of dynamic length must agree at run time: the kernels
/// run each segment over the length of its first element tensor.
void assertLengths(OpBuilder &b, FusedStepOp step) {
  Value count = step.getCountTensor();
  SmallVector<Value> others;
  for (Value v : step.getIns())
    if (v != count)
      others.push_back(v);
  for (auto [k, v] : llvm::enumerate(step.getOuts()))
    if (v != count && !step.isPackedOut(k))
      others.push_back(v);
  Location loc = step.getLoc();
  Value n;
  for (Value v : others) {
    if (!cast<ShapedType>(v.getType()).isDynamicDim(0) &&
        !cast<ShapedType>(count.getType()).isDynamicDim(0))
      continue; // the verifier compared them
    if (!n)
      n = tensor::DimOp::create(b, loc, count, 0);
    Value m = tensor::DimOp::create(b, loc, v, 0);
    Value same =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, n, m);
    cf::AssertOp::create(
        b, loc, same,
        "dqt.fused_step: element tensors of different lengths");
  }
}

/// Moves `group` into a new kernel function and launches it where its last
/// step stood.
void outline(func::FuncOp func, const Group &group, SymbolTable &symbols,
             unsigned index, Operation *&insertAfter) {
  FusedStepOp last = group.steps.back();
  Location loc = last.getLoc();
  MLIRContext *ctx = func.getContext();

  // The kernel's arguments: what the steps read (each value once), then
  // their destinations (each its own buffer).
  llvm::SetVector<Value> args;
  SmallVector<Value> dests;
  for (FusedStepOp step : group.steps) {
    for (OpOperand &use : step->getOpOperands())
      if (!step.isDpsInit(&use))
        args.insert(use.get());
    llvm::append_range(dests, step.getDpsInits());
  }
  SmallVector<Value> operands(args.begin(), args.end());
  llvm::append_range(operands, dests);
  SmallVector<Type> argTypes(ValueRange(operands).getTypes());
  SmallVector<Type> resultTypes;
  for (FusedStepOp step : group.steps)
    llvm::append_range(resultTypes, step->getResultTypes());

  OpBuilder b(ctx);
  b.setInsertionPointAfter(insertAfter);
  auto kernel = func::FuncOp::create(
      b, loc, (func.getSymName() + "_step" + Twine(index)).str(),
      FunctionType::get(ctx, argTypes, resultTypes));
  kernel.setPrivate();
  symbols.insert(kernel); // renames it if the name is taken
  insertAfter = kernel;
  Block *entry = kernel.addEntryBlock();
  // Mapped one step at a time: the same tensor may be a destination of two
  // steps of different groups, never of two steps of this one.
  b.setInsertionPointToStart(entry);
  SmallVector<Value> returned;
  unsigned destArg = args.size();
  for (FusedStepOp step : group.steps) {
    IRMapping stepMap;
    for (auto [v, arg] : llvm::zip(args, entry->getArguments()))
      stepMap.map(v, arg);
    for (Value dest : step.getDpsInits())
      stepMap.map(dest, entry->getArgument(destArg++));
    llvm::append_range(returned, b.clone(*step, stepMap)->getResults());
  }
  func::ReturnOp::create(b, loc, returned);

  // The launch, after the last step. Per-row destinations start from the
  // identity (the kernels max-combine into them).
  b.setInsertionPoint(last);
  for (FusedStepOp step : group.steps)
    assertLengths(b, step);
  SmallVector<Value> outs;
  for (FusedStepOp step : group.steps) {
    llvm::append_range(outs, step.getOuts());
    for (auto [k, v] : llvm::enumerate(step.getRowOuts())) {
      Value identity = buildReductionIdentity(
          b, loc, step.getCombiner(k), getElementTypeOrSelf(v.getType()));
      outs.push_back(linalg::FillOp::create(b, loc, identity, v).getResult(0));
    }
  }
  SmallVector<Type> launchTypes;
  for (Value v : outs)
    launchTypes.push_back(v.getType());
  for (FusedStepOp step : group.steps)
    for (unsigned k = step.getRowOuts().size(); k < step.getNumReductions();
         ++k)
      launchTypes.push_back(step.getReductionResult(k).getType());
  FusedStepOp front = group.steps.front();
  auto combiners = b.getArrayAttr(
      front.getCombiners().getValue().drop_front(front.getRowOuts().size()));
  auto launch = LaunchOp::create(b, loc, launchTypes,
                                 FlatSymbolRefAttr::get(kernel.getSymNameAttr()),
                                 args.getArrayRef(), outs, combiners);

  // A step's results are its outs, its row outs (its destinations, in
  // order), then its tensor reductions: its share of the launch's
  // destinations and of its reductions.
  ResultRange newDests = launch->getResults().take_front(outs.size());
  ResultRange reds = launch->getResults().drop_front(outs.size());
  for (FusedStepOp step : group.steps) {
    unsigned numDests = step.getDpsInits().size();
    unsigned numReds = step.getNumTensorReductions();
    SmallVector<Value> repl(newDests.take_front(numDests));
    llvm::append_range(repl, reds.take_front(numReds));
    newDests = newDests.drop_front(numDests);
    reds = reds.drop_front(numReds);
    step->replaceAllUsesWith(repl);
  }
  for (FusedStepOp step : group.steps)
    step->erase();
}

struct OutlineStepsPass
    : public mlir::dqt::impl::DQTOutlineStepsBase<OutlineStepsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    SmallVector<func::FuncOp> funcs(module.getOps<func::FuncOp>());
    for (func::FuncOp func : funcs) {
      if (func.isExternal() || isKernelFunction(func))
        continue;
      // Groups per block, in block order.
      SmallVector<Group> groups;
      WalkResult walk = func.walk([&](FusedStepOp step) {
        if (failed(checkAliasing(step)))
          return WalkResult::interrupt();
        for (Group &g : groups)
          if (g.steps.front()->getBlock() == step->getBlock() &&
              g.accepts(step)) {
            g.steps.push_back(step);
            return WalkResult::advance();
          }
        groups.push_back(Group{{step}});
        return WalkResult::advance();
      });
      if (walk.wasInterrupted())
        return signalPassFailure();
      Operation *insertAfter = func;
      for (auto [i, g] : llvm::enumerate(groups))
        outline(func, g, symbols, i, insertAfter);
    }
    // Also steps in other function-like ops would need a host lowering.
    WalkResult stray = module.walk([&](FusedStepOp step) {
      Operation *parent = step->getParentOfType<FunctionOpInterface>();
      if (isa_and_nonnull<func::FuncOp>(parent))
        return WalkResult::advance();
      step.emitOpError("must be in a func.func to be compiled");
      return WalkResult::interrupt();
    });
    if (stray.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
