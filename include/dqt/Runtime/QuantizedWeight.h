//===- QuantizedWeight.h - integer-only weight storage ----------*- C++ -*-===//

#ifndef DQT_RUNTIME_QUANTIZEDWEIGHT_H
#define DQT_RUNTIME_QUANTIZEDWEIGHT_H

#include "dqt/Compiler/StepConfig.h"

#include <ATen/ATen.h>

namespace dqt {

/// The integer grid of a weight: `bits` in [2, 8], or ternary (1.58 bits).
struct Grid {
  int bits = 8;
  bool ternary = false;

  /// 1.58 (or anything in (1, 2)) means ternary; 2..8 integer widths.
  /// Errors name `who` (the API the user called).
  static Grid fromBits(double bits, const char *who = "dqt");
  int64_t qn() const { return ternary ? -1 : -(int64_t(1) << (bits - 1)); }
  int64_t qp() const { return ternary ? 1 : (int64_t(1) << (bits - 1)) - 1; }
  std::string str() const;
};

/// A weight that exists only as integers: int8 storage `q` (any shape), a
/// per-tensor step `delta`, and the signed maximum of `q` (the next step's
/// scale, produced by every step as a by-product). No float copy is kept;
/// the gradient is a transient f32 buffer the optimizer consumes.
class QuantizedWeight {
public:
  /// The DQT initialization (docs/numerics.md): s = Qp / max(mean|W|, 1e-5),
  /// q = clamp(round_half_even(W*s), Qn, Qp), delta = 1/s.
  static QuantizedWeight fromFloat(const at::Tensor &weight, Grid grid);

  /// q * delta as f32, in the weight's shape.
  at::Tensor dequantize() const;

  const at::Tensor &q() const { return q_; }
  at::Tensor &q() { return q_; }
  float delta() const { return delta_; }
  int8_t maxQ() const { return maxq_; }
  Grid grid() const { return grid_; }
  int64_t numel() const { return q_.numel(); }

  /// Sets delta and max q after a step (the optimizer's business).
  void update(float delta, int8_t maxq) {
    delta_ = delta;
    maxq_ = maxq;
  }

  /// The gradient buffer (f32, q's shape), created on first use.
  at::Tensor &grad();
  bool hasGrad() const { return grad_.defined(); }
  /// Frees the gradient buffer.
  void clearGrad() { grad_ = at::Tensor(); }

  /// Bytes of persistent state: the integers and delta (not the gradient).
  int64_t persistentBytes() const {
    return q_.numel() + int64_t(sizeof(float));
  }

private:
  QuantizedWeight(at::Tensor q, float delta, Grid grid);
  at::Tensor q_;
  float delta_;
  int8_t maxq_;
  Grid grid_;
  at::Tensor grad_;
};

} // namespace dqt

#endif // DQT_RUNTIME_QUANTIZEDWEIGHT_H
