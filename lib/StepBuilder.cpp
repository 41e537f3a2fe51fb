//===- StepBuilder.cpp - the IR of one parameter's step -------------------===//
//
// Emits exactly what a trainer would: the tensor-level chain of dqt ops for
// one parameter (examples/adamw_step.mlir is three of these). The argument
// order of @dqt_step is the kernel's (see StepConfig.h): dqt-fuse-step orders
// tensors and scalars by first use, and this chain uses them in that order.
//
//===----------------------------------------------------------------------===//

#include "dqt/Compiler/Compiler.h"

#include "dqt/Dialect/DQT.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#include <stdexcept>

using namespace mlir;

namespace dqt {

std::string StepConfig::key() const {
  validate();
  std::string k = optimizer == Optimizer::AdamW ? "adamw" : "sgd";
  if (floatWeights)
    return k + "-wf32-gf32-sf32";
  k += ternary ? "-ternary" : "-b" + std::to_string(bits);
  if (packed)
    k += "-p2";
  if (scale == ScaleMode::Row)
    k += "-rows";
  return k + (stateType == StateType::BF16 ? "-gf32-sbf16" : "-gf32-sf32");
}

void StepConfig::validate() const {
  if (floatWeights) {
    if (packed || stateType != StateType::F32 || scale != ScaleMode::Tensor)
      throw std::invalid_argument("dqt: float-mode weights take no packing, "
                                  "no per-row scale and keep f32 states");
    return;
  }
  if (!ternary && (bits < 2 || bits > 8))
    throw std::invalid_argument("dqt: bit width " + std::to_string(bits) +
                                " is out of range [2, 8] (or ternary)");
  if (packed && !ternary)
    throw std::invalid_argument("dqt: packed weight storage (4 per byte) is "
                                "for ternary weights only, got " +
                                std::to_string(bits) + " bits");
}

/// Float mode: the optimizer's math on an f32 weight tensor, masked where
/// the gradient is not finite, counting those elements.
static void buildFloatStep(OpBuilder &b, Location loc,
                           const StepConfig &config) {
  Type f32 = b.getF32Type(), i64 = b.getI64Type();
  auto vec = RankedTensorType::get({ShapedType::kDynamic}, f32);
  bool adam = config.optimizer == Optimizer::AdamW;
  // weight, grad, states...; hyper-parameters.
  SmallVector<Type> args(adam ? 4 : 3, vec);
  args.append(adam ? 5 : 3, f32);
  SmallVector<Type> results(adam ? 3 : 2, vec);
  results.push_back(i64);
  auto func = func::FuncOp::create(b, loc, kStepKernelName,
                                   b.getFunctionType(args, results));
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  ValueRange a = entry->getArguments();
  Value w = a[0], g = a[1];
  Value updated;
  SmallVector<Value> newStates, oldStates;
  if (adam) {
    auto moments =
        mlir::dqt::AdamMomentsOp::create(b, loc, g, a[2], a[3], a[4], a[5]);
    updated = mlir::dqt::AdamApplyOp::create(
        b, loc, vec, w, moments.getNewExpAvg(), moments.getNewExpAvgSq(), a[6],
        a[7], a[8]);
    newStates = {moments.getNewExpAvg(), moments.getNewExpAvgSq()};
    oldStates = {a[2], a[3]};
  } else {
    auto sgd =
        mlir::dqt::SgdMomentumOp::create(b, loc, w, g, a[2], a[3], a[4], a[5]);
    updated = sgd.getResult();
    newStates = {sgd.getNewMomentumBuffer()};
    oldStates = {a[2]};
  }
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
  module->setAttr("dqt.config", b.getStringAttr(config.key()));
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
  // q, grad, states...; seed, step, tensor_id; delta, hyper-parameters...,
  // delta_next. Per row: q, grad, states..., delta_rows, delta_next_rows;
  // seed, step, tensor_id, row_length, hyper-parameters...
  SmallVector<Type> args = {vec(i8), vec(f32), vec(stateElem)};
  if (adam)
    args.push_back(vec(stateElem));
  if (rows)
    args.append({vec(f32), vec(f32)});
  args.append({i64, i64, i64, rows ? i64 : f32});
  args.append(adam ? 5 : 3, f32);
  if (!rows)
    args.push_back(f32);
  SmallVector<Type> results = {vec(i8), vec(stateElem)};
  if (adam)
    results.push_back(vec(stateElem));
  results.push_back(i8);
  if (rows)
    results.push_back(vec(b.getI32Type()));
  results.append({i64, i64});

  auto func = func::FuncOp::create(b, loc, kStepKernelName,
                                   b.getFunctionType(args, results));
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  ValueRange a = entry->getArguments();
  unsigned s = (adam ? 4 : 3) + (rows ? 2 : 0); // first scalar
  Value q = a[0], g = a[1], seed = a[s], step = a[s + 1], tid = a[s + 2],
        delta = a[s + 3], deltaNext = a.back();
  Value rowLength;
  if (rows) {
    rowLength = a[s + 3];
    delta = a[s - 2];
    deltaNext = a[s - 1];
  }

  IntegerAttr bits =
      config.ternary ? IntegerAttr() : b.getI64IntegerAttr(config.bits);
  UnitAttr ternary = config.ternary ? b.getUnitAttr() : UnitAttr();

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
  Value updated;
  SmallVector<Value> newStates, oldStates;
  if (adam) {
    Value m = a[2], v = a[3];
    auto moments =
        mlir::dqt::AdamMomentsOp::create(b, loc, g, m, v, a[s + 4], a[s + 5]);
    updated = mlir::dqt::AdamApplyOp::create(
        b, loc, vec(f32), w, moments.getNewExpAvg(), moments.getNewExpAvgSq(),
        a[s + 6], a[s + 7], a[s + 8]);
    newStates = {moments.getNewExpAvg(), moments.getNewExpAvgSq()};
    oldStates = {m, v};
  } else {
    Value buf = a[2];
    auto sgd = mlir::dqt::SgdMomentumOp::create(b, loc, w, g, buf, a[s + 4],
                                                a[s + 5], a[s + 6]);
    updated = sgd.getResult();
    newStates = {sgd.getNewMomentumBuffer()};
    oldStates = {buf};
  }
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
      b, loc, vec(i8), updated, perElement(deltaNext), u, bits, ternary);
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
  if (rows)
    rets.push_back(mlir::dqt::ReduceMaxRowsOp::create(
        b, loc, vec(b.getI32Type()), q1Masked, rowLength));
  rets.push_back(mlir::dqt::CountChangedOp::create(b, loc, i64, q, q1Masked));
  rets.push_back(mlir::dqt::CountNonFiniteOp::create(b, loc, i64, g));
  func::ReturnOp::create(b, loc, rets);
  return module;
}

} // namespace dqt
