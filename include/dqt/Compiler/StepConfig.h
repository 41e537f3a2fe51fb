//===- StepConfig.h - what one generated step kernel does -------*- C++ -*-===//
//
// What one generated step kernel does (its configuration and cache key),
// without MLIR: the runtime includes it.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_COMPILER_STEPCONFIG_H
#define DQT_COMPILER_STEPCONFIG_H

#include "dqt/Support/Grid.h"

#include <cstdint>
#include <string>
#include <vector>

namespace dqt {

/// The numerics contract generated kernels follow (docs/numerics.md).
/// Version 2: 16-bit midpoint uniforms, eight per Philox block.
inline constexpr const char *kNumericsVersion = "2";

enum class Optimizer { AdamW, SGD };

/// Storage of the optimizer states (m, v; SGD's momentum buffer). The state
/// math is f32 either way; bf16 states are widened exactly on load and
/// written back with stochastic rounding (docs/numerics.md).
enum class StateType { F32, BF16 };

/// The weight's step Δ (docs/numerics.md): one per tensor, or one per output row
/// (row r holds elements [r*L, (r+1)*L) of the flattened weight, L the row
/// length, a runtime argument).
enum class ScaleMode { Tensor, Row };

/// How the next step's Δ is chosen (docs/numerics.md, "Scale rules"):
/// MaxQ is the paper's (Δ' = max(q)·Δ/Qp, the grid can only shrink);
/// AbsMax takes Δ' = max|w2|/Qp from the previous step's updated values
/// before clamping (delayed scaling with a history of one), so the range can
/// grow. AbsMax kernels yield max|w2| as a by-product (per tensor, or per
/// row with ScaleMode::Row); 2..8-bit grids only.
enum class ScaleRule { MaxQ, AbsMax };

/// The rule's name in options, checkpoints and the dialect's
/// #dqt.scale_rule: "maxq" (the paper's rule) or "absmax".
const char *scaleRuleName(ScaleRule rule);
/// The rule named `name`; throws std::invalid_argument naming the choices.
ScaleRule scaleRuleFromName(const std::string &name);

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
  /// The scale rule; with ScaleRule::AbsMax the kernel also yields
  /// max|w2| (f32 bits as i32; per row into the row_abs_max buffer).
  ScaleRule rule = ScaleRule::MaxQ;
  /// Float mode (docs/design.md): the weights are an f32 tensor stepped in
  /// place, with the same optimizer math and non-finite masking, no grid,
  /// no rounding (bits, ternary and packed are ignored; f32 states and
  /// ScaleMode::Tensor only).
  bool floatWeights = false;

  /// Grid bounds (Qn, Qp) of the configuration.
  int64_t qn() const { return gridBounds(bits, ternary).qn; }
  int64_t qp() const { return gridBounds(bits, ternary).qp; }

  /// A stable, readable key ("adamw-b8-gf32-sf32", "sgd-ternary-gf32-sbf16",
  /// "adamw-ternary-p2-gf32-sf32" for packed weights, "adamw-b8-rows-gf32-sf32"
  /// with per-row Δ, "adamw-b8-absmax-gf32-sf32" under the absmax rule,
  /// "adamw-wf32-gf32-sf32" in float mode) used as the kernel's
  /// cache key and in its description; throws std::invalid_argument when out
  /// of range or packed without ternary.
  std::string key() const;
  void validate() const;
  /// The configuration whose key() is `key`; throws std::invalid_argument
  /// naming the key when there is none.
  static StepConfig fromKey(const std::string &key);
};

/// Every configuration the runtime, dqt-train and the Python package can ask
/// for: both optimizers, 2..8 bits, ternary and packed ternary, per-tensor
/// and per-row delta, f32 and bf16 states, and float mode (dqt-aot
/// --standard bundles them all).
std::vector<StepConfig> standardStepConfigs();

/// Name of the step kernel in every generated module (the GPU images' entry).
constexpr const char *kStepKernelName = "dqt_step";

/// The key of the kernel of the weight stream alone (buildUniformModule,
/// dqt.random.philox_uniform), beside the step configurations' keys.
constexpr const char *kUniformKernelKey = "uniform";

/// A kernel's leading arguments are the kernel ABI (stepKernelArgs in
/// dqt/Compiler/KernelAbi.h); then, CPU only, begin and end (i64, element
/// chunk [begin, end); with `packed`, both multiples of 4 or n when chunks
/// run concurrently, since elements 4j..4j+3 share a byte); then the
/// reductions buffer (memref<?xi64>): [max(q'), changed, nonfinite] and,
/// with ScaleRule::AbsMax per tensor, the bits of max|w2| (float mode:
/// [nonfinite]). The CPU kernel writes its chunk's partials there; the GPU
/// kernel combines into it with atomics (initialize to [INT64_MIN, 0, 0,
/// INT64_MIN]). With per-row delta the kernel max-combines into the row_max
/// (and, absmax, row_abs_max) buffer (the caller initializes them to
/// INT32_MIN); CPU chunks must then cover whole rows (and, packed, whole
/// bytes), so no two concurrent chunks write one row. Callers always pass
/// kNumReductions slots; a kernel writes those it has.
constexpr int kNumReductions = 4;

} // namespace dqt

#endif // DQT_COMPILER_STEPCONFIG_H
