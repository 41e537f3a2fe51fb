//===- CpuLauncher.h - run a step kernel over a parameter group -*- C++ -*-===//

#ifndef DQT_RUNTIME_CPULAUNCHER_H
#define DQT_RUNTIME_CPULAUNCHER_H

#include "dqt/Compiler/StepConfig.h"
#include "dqt/Runtime/Executable.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <limits>
#include <vector>

namespace dqt {

/// Raw buffers and scalars of one parameter's step.
struct StepOperands {
  /// The integer weights; in float mode (StepConfig::floatWeights) the f32
  /// weights, as `float *`.
  int8_t *q;
  float *grad;
  /// AdamW: exp_avg, exp_avg_sq; SGD: momentum buffer, unused. f32 or bf16
  /// elements, as the configuration's state type says.
  void *state0, *state1;
  int64_t numel;
  int64_t tensorId;
  float delta, deltaNext;
  /// Per-row Δ (ScaleMode::Row) only: numel / rowLength rows, each row's
  /// delta and delta' (f32), and the buffer receiving each row's max(q')
  /// (i32, initialized to INT32_MIN by the launcher). `delta` and
  /// `deltaNext` are unused then.
  int64_t rowLength = 0;
  const float *deltaRows = nullptr, *deltaNextRows = nullptr;
  int32_t *rowMaxQ = nullptr;
  /// Per row under ScaleRule::AbsMax: the buffer receiving each row's
  /// max|w2| as f32 bits (i32, initialized to INT32_MIN by the launcher).
  int32_t *rowAbsMax = nullptr;

  /// Float mode: the f32 weights `weight` (stepped in place), `grad` and
  /// the states.
  static StepOperands floatMode(at::Tensor &weight, float *grad, void *state0,
                                void *state1) {
    StepOperands op{};
    op.q = reinterpret_cast<int8_t *>(weight.data_ptr<float>());
    op.grad = grad;
    op.state0 = state0;
    op.state1 = state1;
    op.numel = weight.numel();
    op.delta = op.deltaNext = 1.0f;
    return op;
  }
};

/// The by-products of one parameter's step. Float mode has no grid: its
/// maxQ and changed are -1 (not tracked).
struct StepStats {
  int64_t maxQ;
  int64_t changed;
  int64_t nonFinite;
  /// Per tensor under ScaleRule::AbsMax: max|w2| as f32 bits (INT64_MIN
  /// when not produced).
  int64_t absMax = std::numeric_limits<int64_t>::min();
};

class KernelArgs;

/// Throws c10::Error naming parameter `p` when `op` lacks what `config`
/// needs: with ScaleMode::Row a row length dividing numel and the three row
/// buffers. The launchers call it for every parameter before launching.
void checkStepOperands(const StepConfig &config, const StepOperands &op,
                       size_t p);

/// Appends the arguments every step kernel (CPU and GPU) starts with, in the
/// order of the kernel ABI (stepKernelArgs, dqt/Compiler/KernelAbi.h), which
/// the compiler checks each kernel against. The CPU kernel then takes begin
/// and end, both take the reductions buffer.
void packStepArgs(KernelArgs &args, const StepConfig &config,
                  const StepOperands &op, const std::vector<float> &hyper,
                  uint64_t seed, uint64_t step);

/// Runs `kernel` over all `params` as one parallel region (at::parallel_for
/// over their concatenated elements, in chunks that may split a parameter:
/// packed, at multiples of 4 elements; per-row, at whole rows, multiples of
/// lcm(L, 4) when packed) and combines the exact integer partials: results
/// do not depend on the thread count. Per-row: each chunk sets its rows'
/// rowMaxQ to INT32_MIN before the kernel max-combines into them. `hyper` holds
/// the configuration's f32 hyper-parameters in kernel order (AdamW: beta1,
/// beta2, alpha, eps, decay; SGD: lr, momentum, decay).
std::vector<StepStats> launchCpu(const Executable &kernel,
                                 const StepConfig &config,
                                 const std::vector<StepOperands> &params,
                                 const std::vector<float> &hyper, uint64_t seed,
                                 uint64_t step);

} // namespace dqt

#endif // DQT_RUNTIME_CPULAUNCHER_H
