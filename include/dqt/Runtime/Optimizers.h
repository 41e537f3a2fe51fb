//===- Optimizers.h - DQT optimizers over integer weights -------*- C++ -*-===//

#ifndef DQT_RUNTIME_OPTIMIZERS_H
#define DQT_RUNTIME_OPTIMIZERS_H

#include "dqt/Runtime/CpuLauncher.h"
#include "dqt/Runtime/ParameterStepper.h"
#include "dqt/Runtime/QuantizedWeight.h"

#include <ATen/ATen.h>

#include <vector>

namespace dqt::optim {

/// The optimizer part shared by AdamW and SGD: parameters grouped by grid,
/// one kernel launch per group, hyper-parameters as runtime arguments (a
/// learning-rate schedule never recompiles), per-tensor statistics.
class QuantizedOptimizer : public ParameterStepper {
public:
  virtual ~QuantizedOptimizer() = default;

  /// One step over every parameter (each must have a gradient). A non-finite
  /// gradient element leaves its weight and states untouched and is counted.
  /// Throws c10::Error, changing nothing, on mismatched inputs.
  std::vector<StepStats> step();

  /// Steps one parameter now, inside the backward pass, and frees its
  /// gradient (ParameterStepper).
  void stepParameter(QuantizedWeight &weight) override;

  /// Adds non-quantized parameters, stepped by the same generated kernels in
  /// float mode (StepConfig::floatWeights: the f32 weights updated in place
  /// by the same math and non-finite masking, no grid), all in one launch
  /// per step, after the integer weights. Each must be a defined, non-empty,
  /// contiguous f32 CPU tensor, given once; its gradient is autograd's
  /// `grad()`, needed at every step(). Their states are f32 (whatever the
  /// integer weights' state type), saved and loaded with the rest; their
  /// StepStats come after the integer weights' ones, with maxQ and changed
  /// -1. Not inside the backward pass. Throws c10::Error, changing nothing.
  void addFloatParameters(std::vector<at::Tensor> params);
  size_t numFloatParams() const { return floatParams_.size(); }
  /// State tensor `k` of float parameter `i`.
  const at::Tensor &floatState(size_t i, size_t k) const {
    return floatStates_[i][k];
  }

  /// Learning rate of the next steps (>= 0).
  void setLr(double lr);
  double lr() const { return lr_; }
  int64_t stepCount() const { return step_; }
  uint64_t seed() const { return seed_; }
  size_t numParams() const { return params_.size(); }
  /// State tensor `k` of parameter `p` (AdamW: exp_avg, exp_avg_sq).
  const at::Tensor &state(size_t p, size_t k) const { return states_[p][k]; }
  /// Number of state tensors per parameter (AdamW 2, SGD 1).
  size_t numStates() const { return states_.empty() ? 0 : states_[0].size(); }

  /// The Philox `tensor_id` of each parameter, in order (default 0..n-1).
  /// An owner that splits one model's parameters over several optimizers
  /// (the Python param groups) passes global indices so that every tensor
  /// draws its own stream. Ids must be distinct and in [0, 2^32).
  void setTensorIds(std::vector<int64_t> ids);
  const std::vector<int64_t> &tensorIds() const { return tensorIds_; }

  /// Sets the step count, seed and every state tensor (`states[p][k]`, of
  /// the live state's dtype and shape) of the integer weights, e.g. from a
  /// Python state_dict; the weights are the model's business (float
  /// parameters' states travel with save/load only). Everything is validated before
  /// anything changes: on error this throws c10::Error and nothing is
  /// modified.
  void restore(int64_t step, uint64_t seed,
               const std::vector<std::vector<at::Tensor>> &states);
  /// Bytes of optimizer state (4 per element for f32 states, 2 for bf16).
  int64_t stateBytes() const;
  /// How the states are stored (AdamWOptions/SGDOptions::stateType).
  StateType stateType() const { return stateType_; }
  /// The dtype of the state tensors: float32 or bfloat16.
  at::ScalarType stateDtype() const {
    return stateType_ == StateType::BF16 ? at::kBFloat16 : at::kFloat;
  }

  /// Saves the weights (q, delta, max q), the states, the step count, seed
  /// and lr to `path` (dqt::checkpoint format, written atomically).
  void save(const std::string &path) const;
  /// Restores what `save` wrote. Everything (names, shapes, dtypes, grids,
  /// optimizer kind, checksums) is validated before anything changes: on
  /// error this throws c10::Error and the optimizer, the weights and the
  /// file are untouched.
  void load(const std::string &path);

protected:
  QuantizedOptimizer(std::vector<QuantizedWeight *> params, Optimizer kind,
                     int numStates, double lr, uint64_t seed, const char *name,
                     StateType stateType = StateType::F32);
  /// The f32 hyper-parameters of step `t` in kernel order.
  virtual std::vector<float> hyperParameters(int64_t t) const = 0;

  const char *name_;
  double lr_;

private:
  /// Launches the kernels of parameters `which` for step `stepCount() + 1`.
  void run(const std::vector<size_t> &which);
  /// Steps the float parameters (float mode) for step `stepCount() + 1`.
  std::vector<StepStats> runFloat(const CpuStepKernel &kernel);
  StepConfig floatConfig() const;

  std::vector<QuantizedWeight *> params_;
  std::vector<int64_t> tensorIds_;
  /// Stepped already in the step in progress (stepParameter), and the
  /// statistics of the step in progress.
  std::vector<bool> stepped_;
  std::vector<StepStats> pendingStats_;
  Optimizer kind_;
  StateType stateType_;
  std::vector<std::vector<at::Tensor>> states_;
  std::vector<at::Tensor> floatParams_;
  std::vector<std::vector<at::Tensor>> floatStates_;
  int64_t step_ = 0;
  uint64_t seed_;
};

struct AdamWOptions {
  double lr = 5e-4;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-6;
  double weightDecay = 0.01;
  uint64_t seed = 42;
  /// f32 states, or bf16 (half the memory; written with stochastic rounding,
  /// docs/numerics.md).
  StateType stateType = StateType::F32;
};

/// DQT AdamW (HuggingFace order, decoupled weight decay; docs/numerics.md).
class AdamW : public QuantizedOptimizer {
public:
  AdamW(std::vector<QuantizedWeight *> params, AdamWOptions options = {});

  /// Changes lr, betas, eps and weight decay for the next steps (validated
  /// first; on error nothing changes). The seed is fixed at construction
  /// (restore() changes it), so `options.seed` is ignored. Hyper-parameters
  /// are kernel arguments: no recompilation.
  void setOptions(const AdamWOptions &options);
  /// The current options (lr and seed as the optimizer holds them).
  AdamWOptions options() const;

private:
  std::vector<float> hyperParameters(int64_t t) const override;
  AdamWOptions options_;
};

struct SGDOptions {
  double lr = 1e-2;
  double momentum = 0.9;
  double weightDecay = 0.0;
  uint64_t seed = 42;
  /// f32 momentum buffer, or bf16 (written with stochastic rounding).
  StateType stateType = StateType::F32;
};

/// DQT SGD with momentum (buf = momentum*buf + g) and decoupled decay.
class SGD : public QuantizedOptimizer {
public:
  SGD(std::vector<QuantizedWeight *> params, SGDOptions options = {});

  /// Changes lr, momentum and weight decay for the next steps, as
  /// AdamW::setOptions (`options.seed` is ignored).
  void setOptions(const SGDOptions &options);
  /// The current options (lr and seed as the optimizer holds them).
  SGDOptions options() const;

private:
  std::vector<float> hyperParameters(int64_t t) const override;
  SGDOptions options_;
};

} // namespace dqt::optim

#endif // DQT_RUNTIME_OPTIMIZERS_H
