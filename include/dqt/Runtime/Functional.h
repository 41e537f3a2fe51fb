//===- Functional.h - one-tensor entry points of the runtime ----*- C++ -*-===//

#ifndef DQT_RUNTIME_FUNCTIONAL_H
#define DQT_RUNTIME_FUNCTIONAL_H

#include "dqt/Runtime/CpuLauncher.h"

#include <ATen/ATen.h>

namespace dqt::functional {

/// The `u` stream of the numerics contract for elements 0..numel-1 of tensor
/// `tensorId` at `step` (float32, CPU).
at::Tensor philoxUniform(uint64_t seed, uint64_t step, uint64_t tensorId,
                         int64_t numel);

struct AdamWStepArgs {
  int64_t step;
  double lr, beta1, beta2, eps, weightDecay;
  /// 1.58 (ternary) or 2..8.
  double bits;
  uint64_t seed;
  int64_t tensorId;
};

struct StepResult {
  float delta; ///< the new delta
  StepStats stats;
};

/// One in-place DQT AdamW step on a 1-D int8 `q` with step `delta` and
/// `maxQ` = max of q before the step, f32 `grad`, f32 (or both bf16, then
/// written with stochastic rounding) `expAvg`, `expAvgSq`, running the JIT
/// kernel. Every argument is checked first (TORCH_CHECK
/// naming it); on error nothing is modified. CUDA tensors are stepped on
/// their GPU (LibTorch's current stream) by the per-row kernel with one
/// row, bit for bit as on the CPU; returning the statistics then waits for
/// the GPU (one synchronization).
StepResult adamwStep(at::Tensor &q, double delta, int64_t maxQ,
                     const at::Tensor &grad, at::Tensor &expAvg,
                     at::Tensor &expAvgSq, const AdamWStepArgs &args);

} // namespace dqt::functional

#endif // DQT_RUNTIME_FUNCTIONAL_H
