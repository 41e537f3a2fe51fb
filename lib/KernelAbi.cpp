//===- KernelAbi.cpp - the argument list of a step kernel -----------------===//
//
// The kernel ABI as data: the leading arguments of a configuration's step
// kernel (dqt/Compiler/KernelAbi.h).
//
//===----------------------------------------------------------------------===//

#include "dqt/Compiler/KernelAbi.h"

#include "dqt/Compiler/KernelArgs.h"

namespace dqt {

bool KernelArg::isBuffer() const {
  switch (kind) {
  case KernelArgKind::Weights:
  case KernelArgKind::Grad:
  case KernelArgKind::State0:
  case KernelArgKind::State1:
  case KernelArgKind::DeltaRows:
  case KernelArgKind::DeltaNextRows:
  case KernelArgKind::RowMax:
  case KernelArgKind::RowAbsMax:
    return true;
  default:
    return false;
  }
}

std::string KernelArg::name() const {
  switch (kind) {
  case KernelArgKind::Weights:
    return "weights";
  case KernelArgKind::Grad:
    return "grad";
  case KernelArgKind::State0:
    return "state0";
  case KernelArgKind::State1:
    return "state1";
  case KernelArgKind::DeltaRows:
    return "delta_rows";
  case KernelArgKind::DeltaNextRows:
    return "delta_next_rows";
  case KernelArgKind::Seed:
    return "seed";
  case KernelArgKind::Step:
    return "step";
  case KernelArgKind::TensorId:
    return "tensor_id";
  case KernelArgKind::RowLength:
    return "row_length";
  case KernelArgKind::Delta:
    return "delta";
  case KernelArgKind::DeltaNext:
    return "delta_next";
  case KernelArgKind::Hyper:
    return "hyper[" + std::to_string(hyper) + "]";
  case KernelArgKind::RowMax:
    return "row_max";
  case KernelArgKind::RowAbsMax:
    return "row_abs_max";
  }
  return "?";
}

int numHyperParameters(const StepConfig &config) {
  return config.optimizer == Optimizer::AdamW ? 5 : 3;
}

std::vector<KernelArg> stepKernelArgs(const StepConfig &config) {
  config.validate();
  using K = KernelArgKind;
  bool adam = config.optimizer == Optimizer::AdamW;
  bool rows = config.scale == ScaleMode::Row && !config.floatWeights;
  std::vector<KernelArg> args = {{K::Weights}, {K::Grad}, {K::State0}};
  if (adam)
    args.push_back({K::State1});
  if (rows)
    args.insert(args.end(), {{K::DeltaRows}, {K::DeltaNextRows}});
  if (!config.floatWeights) {
    args.insert(args.end(), {{K::Seed}, {K::Step}, {K::TensorId}});
    args.push_back({rows ? K::RowLength : K::Delta});
  }
  for (int h = 0, e = numHyperParameters(config); h < e; ++h)
    args.push_back({K::Hyper, h});
  if (!config.floatWeights && !rows)
    args.push_back({K::DeltaNext});
  if (rows) // after the weights, the states and max(q')
    args.push_back({K::RowMax, 0, (adam ? 3 : 2) + 1});
  if (rows && config.rule == ScaleRule::AbsMax) // last, after the counts
    args.push_back({K::RowAbsMax, 0, (adam ? 3 : 2) + 4});
  return args;
}

void packStepKernelArgs(KernelArgs &args, const StepConfig &config,
                        const StepKernelValues &v) {
  for (const KernelArg &a : stepKernelArgs(config)) {
    switch (a.kind) {
    case KernelArgKind::Weights:
      args.addBuffer(v.weights, v.weightsSize);
      break;
    case KernelArgKind::Grad:
      args.addBuffer(v.grad, v.numel);
      break;
    case KernelArgKind::State0:
      args.addBuffer(v.state0, v.numel);
      break;
    case KernelArgKind::State1:
      args.addBuffer(v.state1, v.numel);
      break;
    case KernelArgKind::DeltaRows:
      args.addBuffer(const_cast<float *>(v.deltaRows), v.numRows);
      break;
    case KernelArgKind::DeltaNextRows:
      args.addBuffer(const_cast<float *>(v.deltaNextRows), v.numRows);
      break;
    case KernelArgKind::RowMax:
      args.addBuffer(v.rowMax, v.numRows);
      break;
    case KernelArgKind::RowAbsMax:
      args.addBuffer(v.rowAbsMax, v.numRows);
      break;
    case KernelArgKind::Seed:
      args.addScalar<int64_t>(int64_t(v.seed));
      break;
    case KernelArgKind::Step:
      args.addScalar<int64_t>(int64_t(v.step));
      break;
    case KernelArgKind::TensorId:
      args.addScalar<int64_t>(v.tensorId);
      break;
    case KernelArgKind::RowLength:
      args.addScalar<int64_t>(v.rowLength);
      break;
    case KernelArgKind::Delta:
      args.addScalar<float>(v.delta);
      break;
    case KernelArgKind::DeltaNext:
      args.addScalar<float>(v.deltaNext);
      break;
    case KernelArgKind::Hyper:
      args.addScalar<float>(v.hyper[a.hyper]);
      break;
    }
  }
}

} // namespace dqt
