//===- Optimizers.h - DQT optimizers over integer weights -------*- C++ -*-===//

#ifndef DQT_RUNTIME_OPTIMIZERS_H
#define DQT_RUNTIME_OPTIMIZERS_H

#include "dqt/Runtime/StepOptimizer.h"

#include <vector>

namespace dqt::optim {

/// The optimizers whose states are all shaped like the weight and handed
/// to the kernel as they are: AdamW (exp_avg, exp_avg_sq) and SGD (the
/// momentum buffer), all of the options' stateType.
class QuantizedOptimizer : public StepOptimizer {
public:
  using StepOptimizer::numStates;
  /// Number of state tensors per parameter (AdamW 2, SGD 1).
  size_t numStates() const { return numStates_; }

protected:
  QuantizedOptimizer(std::vector<QuantizedWeight *> params, Optimizer kind,
                     size_t numStates, double lr, uint64_t seed,
                     const char *name, StateType stateType);

private:
  std::vector<at::Tensor> makeStates(at::IntArrayRef shape,
                                     at::TensorOptions options,
                                     at::ScalarType dtype) const override;
  KernelInputs kernelInputs(const at::Tensor &grad,
                            std::vector<at::Tensor> &states,
                            int64_t t) const override;

  size_t numStates_;
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
