//===- TorchReference.h - building blocks of the LibTorch-ops references --===//
//
// Shared by the tests that recompute an optimizer step with plain LibTorch
// tensor ops (optim-matches-torch-reference, bf16-states, adafactor).
//
//===----------------------------------------------------------------------===//

#ifndef DQT_TEST_UNIT_RUNTIME_TORCHREFERENCE_H
#define DQT_TEST_UNIT_RUNTIME_TORCHREFERENCE_H

#include "../StepReference.h"
#include "dqt/Runtime/QuantizedWeight.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <tuple>
#include <vector>

namespace dqt::test {

/// An f32 scalar tensor.
inline at::Tensor f(float v) { return at::scalar_tensor(v, at::kFloat); }

/// The correctly rounded f32 square root. ATen's f32 sqrt may go through
/// MKL's vector math, which is not always correctly rounded (seen here: 1
/// ulp off); the square root of a float taken in double and rounded to
/// float is (double has more than 2*24+2 bits).
inline at::Tensor sqrtIEEE(const at::Tensor &x) {
  return x.to(at::kDouble).sqrt().to(at::kFloat);
}

/// The Philox uniforms of a tensor, from the test reference.
inline at::Tensor uniforms(uint64_t seed, uint64_t step, uint64_t tid,
                           int64_t n) {
  at::Tensor u = at::empty({n}, at::kFloat);
  float *p = u.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i)
    p[i] = ref::uniform(seed, step, tid, i);
  return u;
}

/// A gradient with magnitudes over five decades; when `nonFiniteEvery` > 0,
/// elements 5, 5 + nonFiniteEvery, ... are NaN, +Inf or -Inf.
inline at::Tensor randomGrad(at::IntArrayRef shape, uint64_t seed,
                             int64_t nonFiniteEvery) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  at::Tensor g = at::randn(shape, gen, at::kFloat) *
                 at::pow(10.0, at::rand(shape, gen, at::kFloat) * 5 - 4);
  if (nonFiniteEvery > 0) {
    at::Tensor flat = g.view({-1});
    for (int64_t i = 5; i < flat.numel(); i += nonFiniteEvery)
      flat[i] = (i % 3 == 0) ? NAN : ((i & 1) ? INFINITY : -INFINITY);
  }
  return g;
}

/// The optimizer math of the contract on f32 tensors, before rounding and
/// masking: returns (w2, new state 0, new state 1). `h` holds the kernel's
/// hyper-parameters (AdamW: beta1, beta2, alpha, eps, decay; SGD: lr,
/// momentum, decay); SGD leaves state 1 undefined.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor>
optimizerUpdate(const at::Tensor &w, const at::Tensor &g, const at::Tensor &s0,
                const at::Tensor &s1, bool adam, const std::vector<float> &h) {
  if (adam) {
    float beta1 = h[0], beta2 = h[1], alpha = h[2], eps = h[3], decay = h[4];
    at::Tensor m = f(beta1) * s0 + f(1.0f - beta1) * g;
    at::Tensor v = f(beta2) * s1 + f(1.0f - beta2) * (g * g);
    at::Tensor w1 = w - f(alpha) * (m / (sqrtIEEE(v) + f(eps)));
    return {w1 - f(decay) * w1, m, v};
  }
  float lr = h[0], mu = h[1], decay = h[2];
  at::Tensor buf = f(mu) * s0 + g;
  at::Tensor w1 = w - f(lr) * buf;
  return {w1 - f(decay) * w1, buf, at::Tensor()};
}

/// Stochastic rounding of `w2` onto `grid` given the reciprocal step
/// `reciprocal` (f32, rounded once; broadcast against `w2`: a 0-dim tensor
/// per tensor, [rows, 1] against [rows, L] per row), in the contract's
/// order: x = w2 * reciprocal, then floor, compare with u, clamp, NaN to 0.
inline at::Tensor roundWithReciprocal(const at::Tensor &w2,
                                      const at::Tensor &reciprocal,
                                      const at::Tensor &u, Grid grid) {
  at::Tensor x = w2 * reciprocal;
  at::Tensor fl = x.floor();
  at::Tensor r = at::where(u < (x - fl), fl + f(1.0f), fl);
  r = at::where(x >= f(float(grid.qp())), f(float(grid.qp())), r);
  r = at::where(x <= f(float(grid.qn())), f(float(grid.qn())), r);
  r = at::where(x.isnan(), f(0.0f), r);
  return r.to(at::kChar);
}

/// Stochastic rounding of `w2` with the per-tensor step `deltaNext`:
/// x = w2 * (1/deltaNext), the reciprocal rounded to f32 once.
inline at::Tensor stochasticRound(const at::Tensor &w2, float deltaNext,
                                  const at::Tensor &u, Grid grid) {
  return roundWithReciprocal(w2, f(1.0f / deltaNext), u, grid);
}

/// Per-row scale: `w2` and `u` hold rows of equal length (flattened), row r
/// is rounded with x = w2 * (1/deltaNextRows[r]) (f32 [rows]).
inline at::Tensor stochasticRoundRows(const at::Tensor &w2,
                                      const at::Tensor &deltaNextRows,
                                      const at::Tensor &u, Grid grid) {
  int64_t rows = deltaNextRows.numel();
  at::Tensor reciprocal = (f(1.0f) / deltaNextRows).view({rows, 1});
  return roundWithReciprocal(w2.reshape({rows, -1}), reciprocal,
                             u.reshape({rows, -1}), grid)
      .view(w2.sizes());
}

/// Per-row scale: each row's next step, ref::nextDelta(delta_r, maxq_r, Qp)
/// (f32 [rows] from f32 and int8 [rows]).
inline at::Tensor nextDeltaRows(const at::Tensor &deltaRows,
                                const at::Tensor &maxqRows, Grid grid) {
  at::Tensor next = at::empty_like(deltaRows);
  for (int64_t r = 0; r < deltaRows.numel(); ++r)
    next.data_ptr<float>()[r] =
        ref::nextDelta(deltaRows.data_ptr<float>()[r],
                       maxqRows.data_ptr<int8_t>()[r], grid.qp());
  return next;
}

/// The state-stream bits of each element (int64, from the reference): h_i
/// of state stream 0 in the low, h_i of state stream 1 in the high 16 bits.
inline at::Tensor stateBits(uint64_t seed, uint64_t step, uint64_t tid,
                            int64_t n) {
  at::Tensor r = at::empty({n}, at::kLong);
  int64_t *p = r.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    p[i] = ref::stateBits(seed, step, tid, i);
  return r;
}

/// Stochastic rounding of the f32 tensor `x` to bf16 with the 16 random bits
/// `r16` (int64), as integer tensor ops: (bits + r16) >> 16; NaN: the quiet
/// NaN (bits >> 16) | 0x40.
inline at::Tensor sroundBF16(const at::Tensor &x, const at::Tensor &r16) {
  at::Tensor bits = x.contiguous().view(at::kInt).to(at::kLong) & 0xffffffffLL;
  at::Tensor rounded = (bits + r16).bitwise_right_shift(16);
  at::Tensor nan = bits.bitwise_right_shift(16).bitwise_or(0x40);
  at::Tensor h = at::where(x.isnan(), nan, rounded) & 0xffff;
  // [0, 2^16) -> int16 two's complement, then reinterpreted as bf16.
  h = at::where(h >= 0x8000, h - 0x10000, h).to(at::kShort);
  return h.view(at::kBFloat16);
}

} // namespace dqt::test

#endif // DQT_TEST_UNIT_RUNTIME_TORCHREFERENCE_H
