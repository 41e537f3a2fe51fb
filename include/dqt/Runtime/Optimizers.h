//===- Optimizers.h - DQT optimizers over integer weights -------*- C++ -*-===//

#ifndef DQT_RUNTIME_OPTIMIZERS_H
#define DQT_RUNTIME_OPTIMIZERS_H

#include "dqt/Runtime/ConfiguredOptimizer.h"
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
  /// StepOptimizer's arguments, and `numStates` states per parameter.
  QuantizedOptimizer(std::vector<QuantizedWeight *> params, const char *name,
                     Optimizer kernel, StateType stateType, double lr,
                     uint64_t seed, size_t numStates);

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
/// setOptions() changes lr, betas, eps and weight decay.
class AdamW : public ConfiguredOptimizer<QuantizedOptimizer, AdamWOptions> {
public:
  AdamW(std::vector<QuantizedWeight *> params, AdamWOptions options = {});

private:
  void checkOptions(const AdamWOptions &options) const override;
  std::vector<float> hyperParameters(int64_t t) const override;
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
/// setOptions() changes lr, momentum and weight decay.
class SGD : public ConfiguredOptimizer<QuantizedOptimizer, SGDOptions> {
public:
  SGD(std::vector<QuantizedWeight *> params, SGDOptions options = {});

private:
  void checkOptions(const SGDOptions &options) const override;
  std::vector<float> hyperParameters(int64_t t) const override;
};

} // namespace dqt::optim

#endif // DQT_RUNTIME_OPTIMIZERS_H
