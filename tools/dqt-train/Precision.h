//===- Precision.h - dqt-train's training environments ----------*- C++ -*-===//
//
// The precision environments of `dqt-train --precision` (docs/numerics.md,
// "Precision environments"): fp32; bf16, autocast-style mixed precision; and
// fp8, a simulation of MS-AMP's O2 level (Fp8.h). DQT's integer weights and
// their update kernel are the same in all three: only what surrounds them
// changes.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_TRAIN_PRECISION_H
#define DQT_TRAIN_PRECISION_H

#include <ATen/ATen.h>

#include <string>

namespace dqt::train {

enum class Precision { Fp32, Bf16, Fp8 };

/// "fp32" | "bf16" | "fp8"; throws c10::Error naming `who` otherwise.
Precision precisionFromName(const std::string &name, const char *who);

/// Turns LibTorch's autocast on for `device` with bf16 (the C++ side of
/// torch.autocast) for the guard's lifetime, unless `precision` is fp32;
/// restores the previous state and drops autocast's cast cache on exit.
class AutocastGuard {
public:
  AutocastGuard(Precision precision, at::Device device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard &) = delete;
  AutocastGuard &operator=(const AutocastGuard &) = delete;

private:
  bool active_;
  at::DeviceType device_;
  bool wasEnabled_;
  at::ScalarType oldDtype_;
};

} // namespace dqt::train

#endif // DQT_TRAIN_PRECISION_H
