//===- WeightStep.h - one quantized weight's step operands ------*- C++ -*-===//
//
// Used by StepOptimizer, so by every optimizer that steps QuantizedWeights
// with the generated kernels (AdamW, SGD, Adafactor's second kernel): the
// kernel operands of a weight, per tensor or per row, on the CPU or a GPU,
// and the weight's new scales afterwards.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_WEIGHTSTEP_H
#define DQT_RUNTIME_WEIGHTSTEP_H

#include "dqt/Runtime/CpuLauncher.h"
#include "dqt/Runtime/QuantizedWeight.h"
#include "dqt/Runtime/StepStatsList.h"
#include "dqt/Runtime/StepTarget.h"

#include <ATen/ATen.h>

#include <memory>
#include <vector>

namespace dqt {

/// The configuration that steps a weight of configuration `config` on
/// `target`. On a GPU a per-tensor weight runs the per-row kernel over its
/// rows, every row carrying the tensor's delta: that kernel reads delta and
/// delta' from device memory, where the previous step left them, so no step
/// waits for the GPU; a weight whose rows share one delta steps bit for bit
/// as the per-tensor weight (docs/numerics.md, "Per-row scale"). Float mode
/// and the CPU keep `config`.
StepConfig stepConfigOn(const StepTarget &target, StepConfig config);

/// The operands of one weight's step and the buffers they point into.
/// Per tensor on the CPU: delta and delta' as scalars (read from the
/// weight's scale tensors). In the per-row form (per-row weights, and every
/// weight on a GPU): delta_r, delta'_r (QuantizedWeight::nextDeltas, on the
/// weight's device) and the i32 buffer receiving each row's max(q').
class WeightStep {
public:
  /// `weight` (its integers: the bytes when packed) with gradient `grad`,
  /// states `state0`, `state1` (nullptr when unused) and the Philox
  /// `tensorId`, stepped on `target`. The weight must outlive the step.
  WeightStep(QuantizedWeight &weight, float *grad, void *state0, void *state1,
             int64_t tensorId, const StepTarget &target);

  const StepOperands &operands() const { return op_; }
  at::Device device() const { return weight_->device(); }

  /// After the kernel was launched: the weight's scales become the step's
  /// delta' and max q' (from `stats` on the CPU per tensor, else from the
  /// kernel's row maxima, by device operations that do not wait).
  void finish(const StepStats *stats);

private:
  QuantizedWeight *weight_;
  StepOperands op_;
  /// The per-row form: delta_r in (a per-tensor weight's delta spread over
  /// its rows), delta'_r, the tensor's delta' (per tensor), and the
  /// kernel's row maxima (i32), and under the absmax rule each row's
  /// max|w2| (f32 bits in i32).
  at::Tensor deltaRows_, deltaNextRows_, deltaNext_, rowMax_, rowAbsMax_;
};

/// Launches `kernel` (of `config`, as stepConfigOn gave it for `target`)
/// over `steps` on `target` and finishes each. The statistics: on the host
/// for the CPU; for a GPU, in device memory until read (StepStatsList).
StepStatsList launchWeightSteps(const StepTarget &target,
                                const Executable &kernel,
                                const StepConfig &config,
                                std::vector<WeightStep> &steps,
                                const std::vector<float> &hyper,
                                uint64_t seed, uint64_t step);

/// launchCpu or launchCuda of `ops` on `target`, the statistics as above.
StepStatsList launchStep(const StepTarget &target, const Executable &kernel,
                         const StepConfig &config,
                         const std::vector<StepOperands> &ops,
                         const std::vector<float> &hyper, uint64_t seed,
                         uint64_t step, at::Device device);

} // namespace dqt

#endif // DQT_RUNTIME_WEIGHTSTEP_H
