//===- WeightStep.h - one quantized weight's step operands ------*- C++ -*-===//
//
// Used by StepOptimizer, so by every optimizer that steps QuantizedWeights
// with the generated kernels (AdamW, SGD, Adafactor's second kernel): the
// kernel operands of a weight, per tensor or per row, and the weight's new
// scale afterwards.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_WEIGHTSTEP_H
#define DQT_RUNTIME_WEIGHTSTEP_H

#include "dqt/Runtime/CpuLauncher.h"
#include "dqt/Runtime/QuantizedWeight.h"

#include <ATen/ATen.h>

#include <vector>

namespace dqt {

/// The operands of one weight's step and the buffers they point into: per
/// tensor delta and delta' (Grid::nextDelta); per row delta_r, delta'_r
/// (QuantizedWeight::nextDeltaRows, computed on the host) and the i32
/// buffer receiving each row's max(q').
class WeightStep {
public:
  /// `weight` (its integers: the bytes when packed) with gradient `grad`,
  /// states `state0`, `state1` (nullptr when unused) and the Philox
  /// `tensorId`. The weight must outlive the step.
  WeightStep(QuantizedWeight &weight, float *grad, void *state0, void *state1,
             int64_t tensorId);

  const StepOperands &operands() const { return op_; }

  /// After the kernel ran with `stats`: delta := delta' and max q := the
  /// step's max(q') (per row: each delta_r := delta'_r, max q_r := the
  /// kernel's row maximum).
  void finish(const StepStats &stats);

private:
  QuantizedWeight *weight_;
  StepOperands op_;
  /// Per row: delta'_r (f32) and the kernel's row max (i32).
  at::Tensor deltaNextRows_, rowMax_;
};

/// Runs launchCpu over the operands of `steps` (one configuration) and then
/// finishes each; returns the statistics in order.
std::vector<StepStats> launchWeightSteps(const Executable &kernel,
                                         const StepConfig &config,
                                         std::vector<WeightStep> &steps,
                                         const std::vector<float> &hyper,
                                         uint64_t seed, uint64_t step);

} // namespace dqt

#endif // DQT_RUNTIME_WEIGHTSTEP_H
