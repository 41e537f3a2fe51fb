//===- Adafactor.h - DQT Adafactor over integer weights ---------*- C++ -*-===//

#ifndef DQT_RUNTIME_ADAFACTOR_H
#define DQT_RUNTIME_ADAFACTOR_H

#include "dqt/Runtime/ConfiguredOptimizer.h"
#include "dqt/Runtime/StepOptimizer.h"

#include <vector>

namespace dqt::optim {

/// Adafactor's kernel 1 by ATen operations, for gradients on a GPU: the
/// math of the host loops (docs/numerics.md; sums in double, the update and
/// the states in f32) with the GPU's reduction order, so it agrees with the
/// CPU up to the rounding of those sums, not bit for bit, and never waits
/// for the device (the clip factor stays a device scalar). Updates `states`
/// (factored r [R], c [C] for a 2-D `grad`, else v) and returns the update
/// divided by the clip factor and scaled by `oneMinusBeta1` (NaN where
/// `grad` is not finite), flattened f32. Any device; public for the tests.
at::Tensor adafactorUpdateOps(const at::Tensor &grad,
                              std::vector<at::Tensor> &states, double beta2t,
                              double eps1, double clipThreshold,
                              float oneMinusBeta1);

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
/// loops whose results do not depend on the thread count (on a GPU:
/// adafactorUpdateOps, on the device), then the
/// generated SGD step kernel (momentum = beta1, "gradient" = the clipped
/// update) for the weight update and stochastic rounding, one launch per
/// grid. 2-D parameters keep a row state r [R] and a column state c [C];
/// every other shape an unfactored v of the parameter's shape. The step
/// protocol (stepping in the backward pass, float parameters, restore,
/// save/load) is StepOptimizer's; both kernels run wherever it steps.
///
/// States of parameter p, in order: factored r, c; unfactored v; then m
/// when beta1 > 0. All f32, but m with StateType::BF16. stateBytes():
/// 4*(R + C) per factored [R, C] parameter, 4*n per unfactored one, plus
/// the first moment's bytes when beta1 > 0.
///
/// setOptions() changes lr, beta1 (not between 0 and > 0), decay rate, eps1,
/// clip threshold and weight decay.
class Adafactor : public ConfiguredOptimizer<StepOptimizer, AdafactorOptions> {
public:
  Adafactor(std::vector<QuantizedWeight *> params,
            AdafactorOptions options = {});

  /// Whether parameter `p` has a factored second moment (2-D).
  bool factored(size_t p) const { return parameter(p).sizes().size() == 2; }

private:
  void checkOptions(const AdafactorOptions &options) const override;
  std::vector<at::Tensor> makeStates(at::IntArrayRef shape,
                                     at::TensorOptions options,
                                     at::ScalarType dtype) const override;
  std::vector<float> hyperParameters(int64_t t) const override;
  /// Kernel 1: updates the statistics in `states` from `grad` and hands the
  /// SGD kernel the clipped update scaled by 1 - beta1 (NaN where grad is
  /// not finite) as its gradient, m (or, without one, the update itself)
  /// as its momentum buffer.
  KernelInputs kernelInputs(const at::Tensor &grad,
                            std::vector<at::Tensor> &states,
                            int64_t t) const override;
};

} // namespace dqt::optim

#endif // DQT_RUNTIME_ADAFACTOR_H
