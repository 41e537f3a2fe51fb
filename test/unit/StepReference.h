//===- StepReference.h - independent scalar reference of a DQT step -------===//
//
// A plain C++ transcription of the numerics contract (docs/numerics.md),
// written without the compiler: its own Philox, its own loop. Compiled with
// -ffp-contract=off so every f32 operation is rounded on its own, as in the
// generated kernels.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_TEST_UNIT_STEPREFERENCE_H
#define DQT_TEST_UNIT_STEPREFERENCE_H

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

namespace dqt::ref {

/// Philox4x32 with R rounds (Random123's philox4x32_R).
inline std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> ctr,
                                          std::array<uint32_t, 2> key,
                                          int rounds = 10) {
  for (int r = 0; r < rounds; ++r) {
    if (r > 0) {
      key[0] += 0x9E3779B9u;
      key[1] += 0xBB67AE85u;
    }
    uint64_t p0 = uint64_t(0xD2511F53u) * ctr[0];
    uint64_t p1 = uint64_t(0xCD9E8D57u) * ctr[2];
    ctr = {uint32_t(p1 >> 32) ^ ctr[1] ^ key[0], uint32_t(p1),
           uint32_t(p0 >> 32) ^ ctr[3] ^ key[1], uint32_t(p0)};
  }
  return ctr;
}

/// u_i of the contract for element i of tensor `tid` at step `step`.
inline float uniform(uint64_t seed, uint64_t step, uint64_t tid, uint64_t i) {
  uint64_t j = i / 4;
  auto w = philox4x32(
      {uint32_t(j), uint32_t(j >> 32), uint32_t(step), uint32_t(tid)},
      {uint32_t(seed), uint32_t(seed >> 32)});
  return float(w[i % 4] >> 8) * (1.0f / 16777216.0f);
}

inline int8_t stochasticRound(float value, float delta, float u, int64_t qn,
                              int64_t qp) {
  float x = value / delta;
  if (std::isnan(x))
    return 0;
  if (x >= float(qp))
    return int8_t(qp);
  if (x <= float(qn))
    return int8_t(qn);
  float fl = std::floor(x);
  return int8_t(u < x - fl ? fl + 1.0f : fl);
}

inline float nextDelta(float delta, int8_t maxq, int64_t qp) {
  return maxq > 0 ? float(maxq) * delta / float(qp) : delta;
}

struct Scalars {
  uint64_t seed, step, tid;
  float delta, deltaNext;
  // AdamW: beta1, beta2, alpha, eps, decay. SGD: lr, momentum, decay.
  float h[5];
};

struct Reductions {
  int64_t maxq = std::numeric_limits<int64_t>::min();
  int64_t changed = 0;
  int64_t nonfinite = 0;

  /// Element i of a step: rounds the updated real value `w2` to the new
  /// grid, counts and stores it.
  void round(int8_t *q, int64_t i, float w2, const Scalars &s, int64_t qn,
             int64_t qp);
  /// Element i with a non-finite gradient: left as it is, counted.
  void skip(const int8_t *q, int64_t i) {
    ++nonfinite;
    maxq = std::max<int64_t>(maxq, q[i]);
  }
};

inline void Reductions::round(int8_t *q, int64_t i, float w2, const Scalars &s,
                              int64_t qn, int64_t qp) {
  int8_t q1 = stochasticRound(w2, s.deltaNext,
                              uniform(s.seed, s.step, s.tid, i), qn, qp);
  changed += q1 != q[i];
  maxq = std::max<int64_t>(maxq, q1);
  q[i] = q1;
}

/// One AdamW step, in place; `m`/`v` are the states.
inline Reductions adamw(int8_t *q, const float *g, float *m, float *v,
                        int64_t n, const Scalars &s, int64_t qn, int64_t qp) {
  Reductions r;
  float beta1 = s.h[0], beta2 = s.h[1], alpha = s.h[2], eps = s.h[3],
        decay = s.h[4];
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(g[i])) {
      r.skip(q, i);
      continue;
    }
    float m1 = beta1 * m[i] + (1.0f - beta1) * g[i];
    float v1 = beta2 * v[i] + (1.0f - beta2) * (g[i] * g[i]);
    float w = float(q[i]) * s.delta;
    float w1 = w - alpha * (m1 / (std::sqrt(v1) + eps));
    r.round(q, i, w1 - decay * w1, s, qn, qp);
    m[i] = m1;
    v[i] = v1;
  }
  return r;
}

/// One SGD-with-momentum step, in place.
inline Reductions sgd(int8_t *q, const float *g, float *buf, int64_t n,
                      const Scalars &s, int64_t qn, int64_t qp) {
  Reductions r;
  float lr = s.h[0], mu = s.h[1], decay = s.h[2];
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(g[i])) {
      r.skip(q, i);
      continue;
    }
    float b1 = mu * buf[i] + g[i];
    float w1 = float(q[i]) * s.delta - lr * b1;
    r.round(q, i, w1 - decay * w1, s, qn, qp);
    buf[i] = b1;
  }
  return r;
}

} // namespace dqt::ref

#endif // DQT_TEST_UNIT_STEPREFERENCE_H
