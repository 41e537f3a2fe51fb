//===- Adafactor.h - DQT Adafactor over integer weights ---------*- C++ -*-===//

#ifndef DQT_RUNTIME_ADAFACTOR_H
#define DQT_RUNTIME_ADAFACTOR_H

#include "dqt/Runtime/CpuLauncher.h"
#include "dqt/Runtime/ParameterStepper.h"
#include "dqt/Runtime/QuantizedWeight.h"

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace dqt::optim {

/// HuggingFace Adafactor with a fixed external lr (scale_parameter=False,
/// relative_step=False, warmup_init=False); docs/numerics.md pins the math.
struct AdafactorOptions {
  double lr = 1e-3;
  /// First moment m = beta1*m + (1-beta1)*u; 0 keeps no first moment (and
  /// no full-size state). Fixed at construction between 0 and > 0.
  double beta1 = 0.0;
  /// beta2_t = 1 - t^decayRate; in [-1, 0).
  double decayRate = -0.8;
  /// Added to g*g (> 0).
  double eps1 = 1e-30;
  /// The update is divided by max(1, RMS(u) / clipThreshold) (> 0).
  double clipThreshold = 1.0;
  /// Decoupled decay after the update: w2 = w1 - (lr*weightDecay)*w1.
  double weightDecay = 0.0;
  uint64_t seed = 42;
  /// Storage of the first moment m of the integer weights (beta1 > 0):
  /// f32, or bf16 written by the kernel with stochastic rounding from the
  /// state stream (docs/numerics.md). The statistics r, c and v, and float
  /// parameters' states, stay f32. Fixed at construction.
  StateType stateType = StateType::F32;
};

/// DQT Adafactor. Two kernels per step: the statistics (row/column means of
/// g*g, the factored second moment, the RMS of the update) as hand-written
/// loops whose results do not depend on the thread count, then the
/// generated SGD step kernel (momentum = beta1, "gradient" = the clipped
/// update) for the weight update and stochastic rounding, one launch per
/// grid. 2-D parameters keep a row state r [R] and a column state c [C];
/// every other shape an unfactored v of the parameter's shape.
///
/// States of parameter p, in order: factored r, c; unfactored v; then m
/// when beta1 > 0. All f32, but m with StateType::BF16.
class Adafactor : public ParameterStepper {
public:
  Adafactor(std::vector<QuantizedWeight *> params,
            AdafactorOptions options = {});

  /// One step over every parameter (each must have a gradient). A non-finite
  /// gradient element leaves its weight and states untouched and is counted.
  /// Throws c10::Error, changing nothing, on mismatched inputs.
  std::vector<StepStats> step();

  /// Steps one parameter now, inside the backward pass, and frees its
  /// gradient (ParameterStepper): both kernels run for that parameter
  /// alone, with the step count of the step in progress.
  void stepParameter(QuantizedWeight &weight) override;

  /// Adds non-quantized parameters (DESIGN.md 5: float mode): the same
  /// statistics kernel and states (factored r, c for 2-D, else v; m when
  /// beta1 > 0), then the generated SGD kernel in float mode (the f32
  /// weights updated in place, no grid), one launch for all of them after
  /// the integer weights. Each must be a defined, non-empty, contiguous f32
  /// CPU tensor, given once, before the first step; its gradient is
  /// autograd's `grad()`. Saved and loaded with the rest (float.<i>.*);
  /// their StepStats come last, with maxQ and changed -1. Not inside the
  /// backward pass. Throws c10::Error, changing nothing.
  void addFloatParameters(std::vector<at::Tensor> params);
  size_t numFloatParams() const { return floatParams_.size(); }
  /// State tensor `k` of float parameter `i` (the order of `state`).
  const at::Tensor &floatState(size_t i, size_t k) const {
    return floatStates_[i][k];
  }

  /// Changes lr, beta1 (not between 0 and > 0), decay rate, eps1, clip
  /// threshold and weight decay for the next steps (validated first; on
  /// error nothing changes). `options.seed` is ignored.
  void setOptions(const AdafactorOptions &options);
  AdafactorOptions options() const;

  void setLr(double lr);
  double lr() const { return options_.lr; }
  int64_t stepCount() const { return step_; }
  uint64_t seed() const { return seed_; }
  size_t numParams() const { return params_.size(); }
  /// Whether parameter `p` has a factored second moment (2-D).
  bool factored(size_t p) const { return params_[p]->sizes().size() == 2; }
  size_t numStates(size_t p) const { return states_[p].size(); }
  const at::Tensor &state(size_t p, size_t k) const { return states_[p][k]; }

  /// The Philox `tensor_id` of each parameter, as
  /// QuantizedOptimizer::setTensorIds (distinct, in [0, 2^32)).
  void setTensorIds(std::vector<int64_t> ids);
  const std::vector<int64_t> &tensorIds() const { return tensorIds_; }

  /// Sets the step count, seed and every state tensor (of the live state's
  /// dtype and shape); validated first, nothing changes on error.
  void restore(int64_t step, uint64_t seed,
               const std::vector<std::vector<at::Tensor>> &states);
  /// Bytes of persistent optimizer state: 4*(R + C) per factored [R, C]
  /// parameter, 4*n per unfactored one, plus 4*n when beta1 > 0 (float
  /// parameters included).
  int64_t stateBytes() const;

  /// Saves weights, states, step, seed and lr (dqt::checkpoint format,
  /// "dqt.optim.Adafactor"), as QuantizedOptimizer::save.
  void save(const std::string &path) const;
  /// Restores what `save` wrote; everything is validated before anything
  /// changes.
  void load(const std::string &path);

private:
  /// Runs both kernels for parameters `which` (checked) for step
  /// `stepCount() + 1`, recording their statistics.
  void run(const std::vector<size_t> &which);
  /// Refuses `what` while a step is in progress (stepParameter).
  void checkNoStepInProgress(const char *what) const;
  /// The states of a parameter of `shape` (see the class comment), zeros.
  std::vector<at::Tensor> makeStates(at::IntArrayRef shape,
                                     at::TensorOptions f32,
                                     StateType moment) const;
  /// Kernel 1 for one parameter: updates its states from `grad` and returns
  /// the clipped update scaled by 1 - beta1 (NaN where grad is not finite).
  at::Tensor clippedUpdate(const float *grad, at::IntArrayRef shape,
                           std::vector<at::Tensor> &states,
                           double beta2t) const;
  /// Both kernels for the float parameters, for step `t` (`kernel`: the
  /// float-mode SGD kernel, fetched before anything changed).
  std::vector<StepStats> runFloat(const CpuStepKernel &kernel, int64_t t);

  const char *name_ = "dqt.optim.Adafactor";
  std::vector<QuantizedWeight *> params_;
  std::vector<int64_t> tensorIds_;
  std::vector<std::vector<at::Tensor>> states_;
  std::vector<at::Tensor> floatParams_;
  std::vector<std::vector<at::Tensor>> floatStates_;
  AdafactorOptions options_;
  int64_t step_ = 0;
  uint64_t seed_;
  /// Stepped already in the step in progress, and its statistics.
  std::vector<bool> stepped_;
  std::vector<StepStats> pendingStats_;
};

} // namespace dqt::optim

#endif // DQT_RUNTIME_ADAFACTOR_H
