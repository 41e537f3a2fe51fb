//===- KernelAbi.h - the argument list of a step kernel ---------*- C++ -*-===//
//
// The one description of a step kernel's arguments. buildStepModule makes
// the @dqt_step function's signature from it, the lowerings keep that
// signature (docs/design.md, "Kernel ABI"), the compiler library checks each
// lowered kernel's `dqt.arg_origins` against it, and the runtime packs a
// launch's arguments by walking it. Plain C++: no MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_COMPILER_KERNELABI_H
#define DQT_COMPILER_KERNELABI_H

#include "dqt/Compiler/StepConfig.h"

#include <string>
#include <vector>

namespace dqt {

/// What one leading argument of a step kernel holds.
enum class KernelArgKind {
  /// The integer weights q (i8; packed ternary: ceil(n/4) bytes). In float
  /// mode the f32 weights.
  Weights,
  /// The f32 gradient.
  Grad,
  /// AdamW's exp_avg and exp_avg_sq, SGD's momentum buffer (State0): f32, or
  /// bf16 with StateType::BF16.
  State0,
  State1,
  /// Per-row delta: each row's delta and delta' (f32, one per row).
  DeltaRows,
  DeltaNextRows,
  /// i64 scalars.
  Seed,
  Step,
  TensorId,
  RowLength,
  /// Per-tensor delta and delta' (f32 scalars).
  Delta,
  DeltaNext,
  /// f32 hyper-parameter number `hyper` of the optimizer: AdamW beta1,
  /// beta2, alpha, eps, decay; SGD lr, momentum, decay.
  Hyper,
  /// A result buffer (after the function's arguments): each row's max(q')
  /// (i32, one per row; the caller initializes it to INT32_MIN).
  RowMax,
  /// A result buffer of ScaleRule::AbsMax per row: each row's max|w2| as
  /// f32 bits in an i32 (the caller initializes it to INT32_MIN, which reads
  /// as -0.0f where a row has no element).
  RowAbsMax,
};

/// One leading argument of a step kernel.
struct KernelArg {
  KernelArgKind kind;
  /// For KernelArgKind::Hyper: the hyper-parameter's position.
  int hyper = 0;
  /// For a result buffer: the @dqt_step result it receives.
  int result = -1;

  /// Whether it is a buffer (a memref descriptor), else a scalar.
  bool isBuffer() const;
  /// Whether it is a result buffer rather than an argument of @dqt_step.
  bool isResult() const {
    return kind == KernelArgKind::RowMax || kind == KernelArgKind::RowAbsMax;
  }
  /// A name for diagnostics and dumps ("grad", "hyper[2]").
  std::string name() const;
};

/// The version of the kernel ABI: bumped whenever stepKernelArgs, the
/// targets' trailing arguments or the reductions buffer change. Kernel
/// bundles record it; the runtime refuses a bundle of another version.
inline constexpr int kKernelAbiVersion = 2;

/// The leading arguments of the step kernel of `config`, in order: the
/// arguments of its @dqt_step function, then its result buffers. @dqt_step
/// returns the new weights, the new states, max(q') (i8), each row's
/// max(q') (per-row delta), the changed count and the non-finite count (i64),
/// then under ScaleRule::AbsMax max|w2| (i32 bits; per row a tensor);
/// float mode the new weights, the new states and the non-finite count. Every
/// target appends its own: the CPU kernel `begin` and `end` (index), both the
/// reductions buffer (StepConfig.h).
std::vector<KernelArg> stepKernelArgs(const StepConfig &config);

/// The f32 hyper-parameters of `config`'s optimizer (AdamW 5, SGD 3).
int numHyperParameters(const StepConfig &config);

class KernelArgs;

/// What one launch passes for each kind of argument.
struct StepKernelValues {
  void *weights = nullptr, *grad = nullptr, *state0 = nullptr,
       *state1 = nullptr;
  const float *deltaRows = nullptr, *deltaNextRows = nullptr;
  int32_t *rowMax = nullptr, *rowAbsMax = nullptr;
  /// Elements of the weights' buffer (packed: its bytes), of the other
  /// element buffers, and the number of rows (per-row delta).
  int64_t weightsSize = 0, numel = 0, numRows = 0;
  uint64_t seed = 0, step = 0;
  int64_t tensorId = 0, rowLength = 0;
  float delta = 0, deltaNext = 0;
  /// numHyperParameters(config) values, in the optimizer's order.
  const float *hyper = nullptr;
};

/// Appends the kernel ABI's arguments of `config`, taken from `values`, to
/// `args` (the launchers and the tests pack every launch with it).
void packStepKernelArgs(KernelArgs &args, const StepConfig &config,
                        const StepKernelValues &values);

} // namespace dqt

#endif // DQT_COMPILER_KERNELABI_H
