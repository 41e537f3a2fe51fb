//===- StepConfig.h - what one generated step kernel does -------*- C++ -*-===//

#ifndef DQT_COMPILER_STEPCONFIG_H
#define DQT_COMPILER_STEPCONFIG_H

#include <cstdint>
#include <string>

namespace dqt {

enum class Optimizer { AdamW, SGD };

/// Storage of the optimizer states (m, v; SGD's momentum buffer). The state
/// math is f32 either way; bf16 states are widened exactly on load and
/// written back with stochastic rounding (docs/numerics.md).
enum class StateType { F32, BF16 };

/// The weight's step Δ (DESIGN.md 3): one per tensor, or one per output row
/// (row r holds elements [r*L, (r+1)*L) of the flattened weight, L the row
/// length, a runtime argument).
enum class ScaleMode { Tensor, Row };

/// The configuration of one fused step kernel: everything that changes the
/// generated code. Hyper-parameters (lr, betas, eps, decay, step, seed) are
/// runtime arguments and never part of it.
struct StepConfig {
  Optimizer optimizer = Optimizer::AdamW;
  /// Bit width in [2, 8]; ignored when `ternary`.
  int bits = 8;
  bool ternary = false;
  /// Ternary only: the weights are stored packed, 4 two-bit codes per byte
  /// (docs/numerics.md); the math is the same as with int8 storage.
  bool packed = false;
  StateType stateType = StateType::F32;
  /// Per-tensor or per-row Δ; with ScaleMode::Row the kernel also yields
  /// each row's max(q') (docs/numerics.md, "Per-row scale").
  ScaleMode scale = ScaleMode::Tensor;
  /// Float mode (DESIGN.md 5): the weights are an f32 tensor stepped in
  /// place, with the same optimizer math and non-finite masking, no grid,
  /// no rounding (bits, ternary and packed are ignored; f32 states and
  /// ScaleMode::Tensor only).
  bool floatWeights = false;

  /// Grid bounds (Qn, Qp) of the configuration.
  int64_t qn() const { return ternary ? -1 : -(int64_t(1) << (bits - 1)); }
  int64_t qp() const { return ternary ? 1 : (int64_t(1) << (bits - 1)) - 1; }

  /// A stable, readable key ("adamw-b8-gf32-sf32", "sgd-ternary-gf32-sbf16",
  /// "adamw-ternary-p2-gf32-sf32" for packed weights, "adamw-b8-rows-gf32-sf32"
  /// with per-row Δ, "adamw-wf32-gf32-sf32" in float mode) used as the kernel's
  /// cache key and in its description; throws std::invalid_argument when out
  /// of range or packed without ternary.
  std::string key() const;
  void validate() const;
};

/// Kernel argument layout (all kernels, CPU and GPU), in order:
///   AdamW: q (i8; with `packed`, ceil(n/4) bytes of 2-bit codes), grad
///          (f32), exp_avg, exp_avg_sq (f32, or bf16 with StateType::BF16)
///          as memref descriptors;
///          seed, step, tensor_id (i64); delta, beta1, beta2, alpha, eps,
///          decay, delta_next (f32);
///   SGD:   q (i8), grad (f32), momentum_buffer (f32 or bf16); seed, step,
///          tensor_id (i64);
///          delta, lr, momentum, decay, delta_next (f32);
/// Per-row Δ (ScaleMode::Row): delta and delta_next are replaced by f32
///   buffers of one value per row, placed after the states with an i32
///   buffer receiving each row's max(q'); the scalar in delta's place is the
///   row length L (i64):
///   AdamW: q, grad, exp_avg, exp_avg_sq, delta_rows, delta_next_rows,
///          row_max (i32); seed, step, tensor_id, row_length (i64); beta1,
///          beta2, alpha, eps, decay (f32);
///   SGD:   q, grad, momentum_buffer, delta_rows, delta_next_rows, row_max;
///          seed, step, tensor_id, row_length; lr, momentum, decay.
///   The kernel max-combines into row_max (the caller initializes it to
///   INT32_MIN); CPU chunks must then cover whole rows (and, packed, whole
///   bytes), so no two concurrent chunks write one row.
/// Float mode: AdamW: grad, exp_avg, exp_avg_sq, weight (f32); beta1, beta2,
///   alpha, eps, decay (f32). SGD: weight, grad, momentum_buffer (f32); lr,
///   momentum, decay (f32). (The lowering orders buffers by first use.)
///   Its only reduction is the non-finite count (reductions buffer [0]).
/// then, CPU only, begin and end (i64, element chunk [begin, end); with
/// `packed`, both multiples of 4 or n when chunks run concurrently, since
/// elements 4j..4j+3 share a byte); then the
/// reductions buffer (memref<?xi64>): [max(q'), changed, nonfinite]. The CPU
/// kernel writes its chunk's partials there; the GPU kernel combines into it
/// with atomics (initialize to [INT64_MIN, 0, 0]).
constexpr int kNumReductions = 3;

} // namespace dqt

#endif // DQT_COMPILER_STEPCONFIG_H
