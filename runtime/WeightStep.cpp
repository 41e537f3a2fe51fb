//===- WeightStep.cpp - one quantized weight's step operands --------------===//

#include "dqt/Runtime/WeightStep.h"

#include "dqt/Runtime/CudaLauncher.h"

#include <cstring>

namespace dqt {

StepConfig stepConfigOn(const StepTarget &target, StepConfig config) {
  if (target.isCuda() && !config.floatWeights)
    config.scale = ScaleMode::Row;
  return config;
}

WeightStep::WeightStep(QuantizedWeight &weight, float *grad, void *state0,
                       void *state1, int64_t tensorId,
                       const StepTarget &target)
    : weight_(&weight) {
  // Packed weights: the kernel takes the bytes (StepConfig.h).
  op_.q = static_cast<int8_t *>(weight.q().data_ptr());
  op_.grad = grad;
  op_.state0 = state0;
  op_.state1 = state1;
  op_.numel = weight.numel();
  op_.tensorId = tensorId;
  op_.delta = op_.deltaNext = 0.0f; // unused in the per-row form
  if (!weight.isRowScaled() && !target.isCuda()) {
    op_.delta = weight.delta();
    op_.deltaNext = weight.nextDelta();
    return;
  }
  int64_t rows = weight.rows();
  if (weight.isRowScaled()) {
    deltaRows_ = weight.deltas();
    deltaNextRows_ = weight.nextDeltas();
  } else {
    // The per-tensor weight's own rows (its first dimension; a 1-D weight is
    // one row): one row max atomic per row, not one contended address.
    rows = weight.sizes().size() >= 2 ? weight.sizes()[0] : 1;
    deltaNext_ = weight.nextDeltas();
    deltaRows_ = weight.deltas().expand({rows}).contiguous();
    deltaNextRows_ = deltaNext_.expand({rows}).contiguous();
  }
  rowMax_ = at::empty({rows}, weight.q().options().dtype(at::kInt));
  if (weight.rule() == ScaleRule::AbsMax) {
    rowAbsMax_ = at::empty({rows}, weight.q().options().dtype(at::kInt));
    op_.rowAbsMax = rowAbsMax_.data_ptr<int32_t>();
  }
  op_.rowLength = weight.numel() / rows;
  op_.deltaRows = deltaRows_.data_ptr<float>();
  op_.deltaNextRows = deltaNextRows_.data_ptr<float>();
  op_.rowMaxQ = rowMax_.data_ptr<int32_t>();
}

void WeightStep::finish(const StepStats *stats) {
  if (!rowMax_.defined()) {
    weight_->update(op_.deltaNext, int8_t(stats->maxQ));
    if (weight_->rule() == ScaleRule::AbsMax) {
      // The bits of max|w2|; none (INT64_MIN) reads as 0: delta is kept.
      int32_t bits = stats->absMax < 0 ? 0 : int32_t(stats->absMax);
      float a;
      std::memcpy(&a, &bits, sizeof(a));
      weight_->setStepAbsMaxes(at::full({1}, a, at::kFloat));
    }
    return;
  }
  if (rowAbsMax_.defined()) { // the bits reinterpreted: -0.0f where none
    at::Tensor a = rowAbsMax_.view(at::kFloat);
    weight_->setStepAbsMaxes(weight_->isRowScaled() ? a : a.amax().view({1}));
  }
  at::Tensor maxq = rowMax_.to(at::kChar);
  if (weight_->isRowScaled())
    weight_->setStepScales(std::move(deltaNextRows_), std::move(maxq));
  else // the tensor's maximum is the maximum of its rows'
    weight_->setStepScales(std::move(deltaNext_), maxq.amax().view({1}));
}

StepStatsList launchStep(const StepTarget &target, const Executable &kernel,
                         const StepConfig &config,
                         const std::vector<StepOperands> &ops,
                         const std::vector<float> &hyper, uint64_t seed,
                         uint64_t step, at::Device device) {
  if (!target.isCuda())
    return StepStatsList(launchCpu(kernel, config, ops, hyper, seed, step));
  auto stats = std::make_shared<DeviceStepStats>();
  stats->device = target.cuda;
  stats->stream = target.stream;
  stats->config = config;
  stats->n = ops.size();
  // From LibTorch's allocator on the current stream, which the launches use.
  stats->partials =
      at::empty({int64_t(std::max<size_t>(ops.size(), 1) * kNumReductions)},
                at::TensorOptions().dtype(at::kLong).device(device));
  launchCuda(*target.cuda, kernel, config, ops, hyper, seed, step,
             target.stream,
             reinterpret_cast<CUdeviceptr>(stats->partials.data_ptr()));
  std::vector<StepStatsList::Slot> slots;
  for (size_t i = 0; i < ops.size(); ++i)
    slots.push_back(StepStatsList::Slot{{}, stats, i});
  return StepStatsList(std::move(slots));
}

StepStatsList launchWeightSteps(const StepTarget &target,
                                const Executable &kernel,
                                const StepConfig &config,
                                std::vector<WeightStep> &steps,
                                const std::vector<float> &hyper,
                                uint64_t seed, uint64_t step) {
  std::vector<StepOperands> ops;
  for (const WeightStep &s : steps)
    ops.push_back(s.operands());
  if (!target.isCuda()) {
    std::vector<StepStats> stats =
        launchCpu(kernel, config, ops, hyper, seed, step);
    for (size_t i = 0; i < steps.size(); ++i)
      steps[i].finish(&stats[i]);
    return StepStatsList(stats);
  }
  // A group's weights share one device (StepOptimizer checks).
  at::Device device =
      steps.empty() ? at::Device(at::kCPU) : steps.front().device();
  StepStatsList stats = launchStep(target, kernel, config, ops, hyper, seed,
                                   step, device);
  for (WeightStep &s : steps)
    s.finish(nullptr);
  return stats;
}

} // namespace dqt
