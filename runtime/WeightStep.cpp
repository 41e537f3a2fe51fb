//===- WeightStep.cpp - one quantized weight's step operands --------------===//

#include "dqt/Runtime/WeightStep.h"

namespace dqt {

WeightStep::WeightStep(QuantizedWeight &weight, float *grad, void *state0,
                       void *state1, int64_t tensorId)
    : weight_(&weight) {
  // Packed weights: the kernel takes the bytes (StepConfig.h).
  op_.q = static_cast<int8_t *>(weight.q().data_ptr());
  op_.grad = grad;
  op_.state0 = state0;
  op_.state1 = state1;
  op_.numel = weight.numel();
  op_.tensorId = tensorId;
  if (!weight.isRowScaled()) {
    op_.delta = weight.delta();
    op_.deltaNext = weight.nextDelta();
    return;
  }
  op_.delta = op_.deltaNext = 0.0f; // unused
  deltaNextRows_ = weight.nextDeltaRows();
  rowMax_ = at::empty({weight.rows()}, weight.q().options().dtype(at::kInt));
  op_.rowLength = weight.rowLength();
  op_.deltaRows = weight.deltaRows().data_ptr<float>();
  op_.deltaNextRows = deltaNextRows_.data_ptr<float>();
  op_.rowMaxQ = rowMax_.data_ptr<int32_t>();
}

void WeightStep::finish(const StepStats &stats) {
  if (!weight_->isRowScaled()) {
    weight_->update(op_.deltaNext, int8_t(stats.maxQ));
    return;
  }
  // The kernel's tensor maximum is the maximum of its row maxima.
  weight_->setStepRowScales(std::move(deltaNextRows_), rowMax_.to(at::kChar),
                            int8_t(stats.maxQ));
}

std::vector<StepStats> launchWeightSteps(const Executable &kernel,
                                         const StepConfig &config,
                                         std::vector<WeightStep> &steps,
                                         const std::vector<float> &hyper,
                                         uint64_t seed, uint64_t step) {
  std::vector<StepOperands> ops;
  for (const WeightStep &s : steps)
    ops.push_back(s.operands());
  std::vector<StepStats> stats =
      launchCpu(kernel, config, ops, hyper, seed, step);
  for (size_t i = 0; i < steps.size(); ++i)
    steps[i].finish(stats[i]);
  return stats;
}

} // namespace dqt
