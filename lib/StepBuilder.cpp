//===- StepBuilder.cpp - the IR of one parameter's step -------------------===//
//
// Emits exactly what a trainer would: the tensor-level chain of dqt ops for
// one parameter (examples/adamw_step.mlir is three of these). The signature
// of @dqt_step is the kernel ABI (dqt/Compiler/KernelAbi.h): the lowerings
// keep the function's argument order.
//
//===----------------------------------------------------------------------===//

#include "dqt/Compiler/Compiler.h"
#include "dqt/Compiler/KernelAbi.h"

#include "dqt/Dialect/DQT.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

using namespace mlir;

namespace dqt {

namespace {

/// The @dqt_step function of a configuration, its arguments made from
/// stepKernelArgs (the kernel ABI) and found by kind, never by position.
class StepFunction {
public:
  StepFunction(OpBuilder &b, Location loc, const StepConfig &config,
               ArrayRef<Type> results)
      : abi(stepKernelArgs(config)) {
    SmallVector<Type> types;
    for (const KernelArg &a : abi)
      if (!a.isResult())
        types.push_back(typeOf(b, config, a));
    func = func::FuncOp::create(b, loc, kStepKernelName,
                                b.getFunctionType(types, results));
    Block *entry = func.addEntryBlock();
    b.setInsertionPointToStart(entry);
  }

  /// The argument of `kind` (the `hyper`-th hyper-parameter for Hyper).
  Value arg(KernelArgKind kind, int hyper = 0) {
    for (auto [i, a] : llvm::enumerate(abi))
      if (a.kind == kind && (kind != KernelArgKind::Hyper || a.hyper == hyper))
        return func.getArgument(i);
    llvm_unreachable("the configuration's ABI has no such argument");
  }
  Value hyper(int h) { return arg(KernelArgKind::Hyper, h); }
  /// Where `kind`'s result buffer goes among the function's results.
  int resultOf(KernelArgKind kind) {
    for (const KernelArg &a : abi)
      if (a.kind == kind)
        return a.result;
    llvm_unreachable("the configuration's ABI has no such result");
  }

  static Type typeOf(OpBuilder &b, const StepConfig &config,
                     const KernelArg &a) {
    auto vec = [](Type t) {
      return RankedTensorType::get({ShapedType::kDynamic}, t);
    };
    Type f32 = b.getF32Type();
    Type state =
        config.stateType == StateType::BF16 ? Type(b.getBF16Type()) : f32;
    switch (a.kind) {
    case KernelArgKind::Weights:
      return vec(config.floatWeights ? f32 : b.getI8Type());
    case KernelArgKind::State0:
    case KernelArgKind::State1:
      return vec(state);
    case KernelArgKind::Grad:
    case KernelArgKind::DeltaRows:
    case KernelArgKind::DeltaNextRows:
      return vec(f32);
    case KernelArgKind::RowMax:
    case KernelArgKind::RowAbsMax:
      return vec(b.getI32Type());
    case KernelArgKind::Seed:
    case KernelArgKind::Step:
    case KernelArgKind::TensorId:
    case KernelArgKind::RowLength:
      return b.getI64Type();
    case KernelArgKind::Delta:
    case KernelArgKind::DeltaNext:
    case KernelArgKind::Hyper:
      return f32;
    }
    llvm_unreachable("unknown kernel argument");
  }

  std::vector<KernelArg> abi;
  func::FuncOp func;
};

} // namespace

/// The optimizer's update of the f32 weights `w` from `g` and its states:
/// the updated weights, the new states and the old ones they replace.
static Value buildUpdate(OpBuilder &b, Location loc, const StepConfig &config,
                         StepFunction &f, Value w,
                         SmallVectorImpl<Value> &newStates,
                         SmallVectorImpl<Value> &oldStates) {
  auto vec = RankedTensorType::get({ShapedType::kDynamic}, b.getF32Type());
  Value g = f.arg(KernelArgKind::Grad);
  if (config.optimizer == Optimizer::AdamW) {
    Value m = f.arg(KernelArgKind::State0), v = f.arg(KernelArgKind::State1);
    auto moments = mlir::dqt::AdamMomentsOp::create(b, loc, g, m, v,
                                                    f.hyper(0), f.hyper(1));
    newStates.append({moments.getNewExpAvg(), moments.getNewExpAvgSq()});
    oldStates.append({m, v});
    return mlir::dqt::AdamApplyOp::create(
        b, loc, vec, w, moments.getNewExpAvg(), moments.getNewExpAvgSq(),
        f.hyper(2), f.hyper(3), f.hyper(4));
  }
  Value buf = f.arg(KernelArgKind::State0);
  auto sgd = mlir::dqt::SgdMomentumOp::create(b, loc, w, g, buf, f.hyper(0),
                                              f.hyper(1), f.hyper(2));
  newStates.push_back(sgd.getNewMomentumBuffer());
  oldStates.push_back(buf);
  return sgd.getResult();
}

/// Float mode: the optimizer's math on an f32 weight tensor, masked where
/// the gradient is not finite, counting those elements.
static void buildFloatStep(OpBuilder &b, Location loc,
                           const StepConfig &config) {
  Type f32 = b.getF32Type(), i64 = b.getI64Type();
  auto vec = RankedTensorType::get({ShapedType::kDynamic}, f32);
  bool adam = config.optimizer == Optimizer::AdamW;
  SmallVector<Type> results(adam ? 3 : 2, vec);
  results.push_back(i64);
  StepFunction f(b, loc, config, results);
  Value w = f.arg(KernelArgKind::Weights), g = f.arg(KernelArgKind::Grad);
  SmallVector<Value> newStates, oldStates;
  Value updated = buildUpdate(b, loc, config, f, w, newStates, oldStates);
  SmallVector<Value> rets = {
      mlir::dqt::MaskNonFiniteOp::create(b, loc, vec, g, updated, w)};
  for (auto [n, o] : llvm::zip(newStates, oldStates))
    rets.push_back(mlir::dqt::MaskNonFiniteOp::create(b, loc, vec, g, n, o));
  rets.push_back(mlir::dqt::CountNonFiniteOp::create(b, loc, i64, g));
  func::ReturnOp::create(b, loc, rets);
}

OwningOpRef<ModuleOp> buildStepModule(MLIRContext &ctx,
                                      const StepConfig &config) {
  config.validate();
  OpBuilder b(&ctx);
  Location loc = b.getUnknownLoc();
  auto module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module.getBody());

  // The configuration travels with the IR, so a dump says what it is.
  ctx.getOrLoadDialect<mlir::dqt::DQTDialect>()->getConfigAttrHelper().setAttr(
      module, b.getStringAttr(config.key()));
  if (config.floatWeights) {
    buildFloatStep(b, loc, config);
    return module;
  }

  Type f32 = b.getF32Type(), i64 = b.getI64Type(), i8 = b.getI8Type();
  bool bf16States = config.stateType == StateType::BF16;
  Type stateElem = bf16States ? Type(b.getBF16Type()) : f32;
  auto vec = [&](Type t) {
    return RankedTensorType::get({ShapedType::kDynamic}, t);
  };
  bool adam = config.optimizer == Optimizer::AdamW;
  bool rows = config.scale == ScaleMode::Row;
  bool absMax = config.rule == ScaleRule::AbsMax;
  // The new weights and states, max(q'), [each row's max(q')], changed,
  // non-finite, [max|w2|, per tensor or per row]: the order stepKernelArgs
  // documents.
  SmallVector<Type> results = {vec(i8), vec(stateElem)};
  if (adam)
    results.push_back(vec(stateElem));
  results.push_back(i8);
  results.append({i64, i64});
  StepFunction f(b, loc, config, {});
  if (rows)
    results.insert(results.begin() + f.resultOf(KernelArgKind::RowMax),
                   vec(b.getI32Type()));
  if (absMax)
    results.push_back(rows ? Type(vec(b.getI32Type())) : b.getI32Type());
  f.func.setFunctionType(
      b.getFunctionType(f.func.getArgumentTypes(), results));

  Value q = f.arg(KernelArgKind::Weights), g = f.arg(KernelArgKind::Grad);
  Value seed = f.arg(KernelArgKind::Seed), step = f.arg(KernelArgKind::Step),
        tid = f.arg(KernelArgKind::TensorId);
  Value delta, deltaNext, rowLength;
  if (rows) {
    rowLength = f.arg(KernelArgKind::RowLength);
    delta = f.arg(KernelArgKind::DeltaRows);
    deltaNext = f.arg(KernelArgKind::DeltaNextRows);
  } else {
    delta = f.arg(KernelArgKind::Delta);
    deltaNext = f.arg(KernelArgKind::DeltaNext);
  }
  auto grid = config.ternary ? mlir::dqt::GridAttr::getTernaryGrid(&ctx)
                             : mlir::dqt::GridAttr::get(&ctx, config.bits);

  // Packed weights: the same chain on the unpacked view, repacked at the end.
  if (config.packed)
    q = mlir::dqt::UnpackTernaryOp::create(b, loc, vec(i8), q, g);
  // Per row: each element's delta is its row's (read once per row).
  auto perElement = [&](Value d) -> Value {
    if (!rows)
      return d;
    return mlir::dqt::ExpandRowsOp::create(b, loc, vec(f32), d, rowLength, q);
  };
  Value w =
      mlir::dqt::DequantizeOp::create(b, loc, vec(f32), q, perElement(delta));
  SmallVector<Value> newStates, oldStates;
  Value updated = buildUpdate(b, loc, config, f, w, newStates, oldStates);
  Value u = mlir::dqt::UniformOp::create(b, loc, vec(f32), seed, step, tid, g);
  if (bf16States) {
    // The f32 states go back to bf16 with stochastic rounding, from the
    // state stream (independent of u): m the low, v the high 16 bits.
    Value bits =
        mlir::dqt::RandomBitsOp::create(b, loc, vec(b.getI32Type()), seed, step,
                                        tid, g);
    for (size_t k = 0; k < newStates.size(); ++k)
      newStates[k] = mlir::dqt::StochasticRoundBF16Op::create(
          b, loc, vec(stateElem), newStates[k], bits,
          b.getI64IntegerAttr(16 * k));
  }
  Value q1 = mlir::dqt::StochasticRoundOp::create(
      b, loc, vec(i8), updated, perElement(deltaNext), u, grid);
  SmallVector<Value> rets = {
      mlir::dqt::MaskNonFiniteOp::create(b, loc, q.getType(), g, q1, q)
          .getResult()};
  Value q1Masked = rets[0];
  if (config.packed)
    rets[0] = mlir::dqt::PackTernaryOp::create(b, loc, vec(i8), q1Masked);
  for (auto [n, o] : llvm::zip(newStates, oldStates))
    rets.push_back(
        mlir::dqt::MaskNonFiniteOp::create(b, loc, o.getType(), g, n, o));
  rets.push_back(mlir::dqt::ReduceMaxOp::create(b, loc, i8, q1Masked));
  rets.push_back(mlir::dqt::CountChangedOp::create(b, loc, i64, q, q1Masked));
  rets.push_back(mlir::dqt::CountNonFiniteOp::create(b, loc, i64, g));
  if (rows)
    rets.insert(rets.begin() + f.resultOf(KernelArgKind::RowMax),
                mlir::dqt::ReduceMaxRowsOp::create(
                    b, loc, vec(b.getI32Type()), q1Masked, rowLength));
  if (absMax) {
    // The absmax rule's by-product: max|w2| over the updated values before
    // rounding and clamping (the current value where the gradient is not
    // finite), created after the other reductions so that it is the last
    // tensor (or row) reduction of the fused step.
    Value kept =
        mlir::dqt::MaskNonFiniteOp::create(b, loc, vec(f32), g, updated, w);
    rets.push_back(
        rows ? Value(mlir::dqt::ReduceAbsMaxRowsOp::create(
                   b, loc, vec(b.getI32Type()), kept, rowLength))
             : Value(mlir::dqt::ReduceAbsMaxOp::create(b, loc, b.getI32Type(),
                                                       kept)));
  }
  func::ReturnOp::create(b, loc, rets);
  return module;
}

} // namespace dqt
