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
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

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

/// The three streams of the contract (docs/numerics.md, numerics v2): bits
/// ORed into counter word 1 (j hi32). Element indices are below 2^63, so
/// j = i div 8 < 2^60 and j hi32 < 2^28: bits 31 and 30 are otherwise clear,
/// and no two streams ever share a Philox block.
constexpr uint32_t kWeightStream = 0;
constexpr uint32_t kStateStream0 = 0x80000000u; // exp_avg, momentum, m
constexpr uint32_t kStateStream1 = 0xC0000000u; // exp_avg_sq

/// h_i of the contract: the 16 random bits of element i of tensor `tid` at
/// step `step` in stream `stream`. Block j = i div 8 (counter (j lo32,
/// j hi32 | stream, step lo32, tid lo32), key (seed lo32, seed hi32)), word
/// (i mod 8) div 2 of its output; the low half for even i, the high half
/// for odd i.
inline uint32_t randomHalf(uint64_t seed, uint64_t step, uint64_t tid,
                           uint64_t i, uint32_t stream) {
  uint64_t j = i / 8;
  auto w = philox4x32({uint32_t(j), uint32_t(j >> 32) | stream,
                       uint32_t(step), uint32_t(tid)},
                      {uint32_t(seed), uint32_t(seed >> 32)});
  uint32_t word = w[(i % 8) / 2];
  return i % 2 ? word >> 16 : word & 0xffffu;
}

/// u_i of the contract: the midpoint (h_i + 0.5) * 2^-16 of the weight
/// stream's h_i, computed as f32(2 h_i + 1) * 2^-17 (2 h_i + 1 < 2^17 is an
/// exact f32 and the product by a power of two is exact: both forms are the
/// same number, in (0, 1)).
inline float uniform(uint64_t seed, uint64_t step, uint64_t tid, uint64_t i) {
  uint32_t h = randomHalf(seed, step, tid, i, kWeightStream);
  return float(2 * h + 1) * (1.0f / 131072.0f);
}

/// The state-stream bits of element i: h_i of state stream 0 in the low 16
/// bits (rounds the first state: AdamW's m, SGD's buf, Adafactor's m) and
/// h_i of state stream 1 in the high 16 bits (rounds AdamW's v).
inline uint32_t stateBits(uint64_t seed, uint64_t step, uint64_t tid,
                          uint64_t i) {
  return randomHalf(seed, step, tid, i, kStateStream0) |
         randomHalf(seed, step, tid, i, kStateStream1) << 16;
}

/// A bf16 (its 16 bits) as f32: the high half of the f32's bits.
inline float bf16ToFloat(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// `x` truncated to bf16 (its high 16 bits).
inline uint16_t truncBF16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  return uint16_t(bits >> 16);
}

/// Stochastic rounding of `x` to bf16 with the 16 random bits `r16`:
/// (bits(x) + r16) >> 16; NaN becomes quiet with its sign and high payload.
inline uint16_t sroundBF16(float x, uint32_t r16) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  if (std::isnan(x))
    return uint16_t((bits >> 16) | 0x0040u);
  return uint16_t((bits + (r16 & 0xffffu)) >> 16);
}

/// How a state element is stored: f32 as it is; bf16 (its bits, uint16_t)
/// widened on load and stochastically rounded on store.
inline float loadState(float s) { return s; }
inline float loadState(uint16_t s) { return bf16ToFloat(s); }
inline void storeState(float &s, float v, uint32_t) { s = v; }
inline void storeState(uint16_t &s, float v, uint32_t r16) {
  s = sroundBF16(v, r16);
}

inline int8_t stochasticRound(float value, float delta, float u, int64_t qn,
                              int64_t qp) {
  float x = value * (1.0f / delta);
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

/// The absmax rule (docs/numerics.md, "Scale rules"): a / Qp for the f32 a
/// whose bits are `absMaxBits` when 0 < a < inf, else delta.
inline float nextDeltaAbsMax(float delta, int32_t absMaxBits, int64_t qp) {
  if (absMaxBits <= 0 || absMaxBits >= 0x7f800000)
    return delta;
  float a;
  std::memcpy(&a, &absMaxBits, 4);
  return a / float(qp);
}

/// Packed ternary storage (docs/numerics.md): element i is the 2-bit
/// two's-complement code in bits 2*(i%4).. of byte i/4; unused bits are 0.
inline void packTernary(const int8_t *q, int64_t n, uint8_t *bytes) {
  for (int64_t j = 0; j < (n + 3) / 4; ++j)
    bytes[j] = 0;
  for (int64_t i = 0; i < n; ++i)
    bytes[i / 4] |= uint8_t((uint8_t(q[i]) & 3u) << (2 * (i % 4)));
}

/// The inverse of packTernary: 0b00 = 0, 0b01 = 1, 0b11 = -1 (0b10 = -2).
inline void unpackTernary(const uint8_t *bytes, int64_t n, int8_t *q) {
  for (int64_t i = 0; i < n; ++i) {
    int code = (bytes[i / 4] >> (2 * (i % 4))) & 3;
    q[i] = int8_t(code >= 2 ? code - 4 : code);
  }
}

struct Scalars {
  uint64_t seed, step, tid;
  float delta, deltaNext;
  // AdamW: beta1, beta2, alpha, eps, decay. SGD: lr, momentum, decay.
  float h[5];
  /// Per-row delta (docs/numerics.md): with rowLength > 0, element i takes
  /// deltaRows / deltaNextRows at row i / rowLength instead of delta and
  /// deltaNext.
  int64_t rowLength = 0;
  const float *deltaRows = nullptr, *deltaNextRows = nullptr;

  float deltaAt(int64_t i) const {
    return rowLength ? deltaRows[i / rowLength] : delta;
  }
  float deltaNextAt(int64_t i) const {
    return rowLength ? deltaNextRows[i / rowLength] : deltaNext;
  }
};

struct Reductions {
  int64_t maxq = std::numeric_limits<int64_t>::min();
  int64_t changed = 0;
  int64_t nonfinite = 0;
  /// Per-row delta: each row's max(q') (empty otherwise).
  std::vector<int32_t> rowMax;
  /// The absmax rule's by-products (docs/numerics.md, "Scale rules"): the
  /// bits of max|w2| (the updated value before rounding; the current value
  /// where the gradient is not finite; NaN as 0), per tensor and per row.
  int64_t absMax = std::numeric_limits<int64_t>::min();
  std::vector<int32_t> rowAbsMax;

  /// Max-combines element i's updated real value into the absmax maxima.
  void maxAbs(const Scalars &s, int64_t i, float w2) {
    int32_t bits;
    float a = std::fabs(w2);
    std::memcpy(&bits, &a, 4);
    if (std::isnan(w2))
      bits = 0;
    absMax = std::max<int64_t>(absMax, bits);
    if (!s.rowLength)
      return;
    size_t r = size_t(i / s.rowLength);
    if (rowAbsMax.size() <= r)
      rowAbsMax.resize(r + 1, std::numeric_limits<int32_t>::min());
    rowAbsMax[r] = std::max<int32_t>(rowAbsMax[r], bits);
  }

  /// Max-combines element i's new value into the maxima.
  void max(const Scalars &s, int64_t i, int8_t q) {
    maxq = std::max<int64_t>(maxq, q);
    if (!s.rowLength)
      return;
    size_t r = size_t(i / s.rowLength);
    if (rowMax.size() <= r)
      rowMax.resize(r + 1, std::numeric_limits<int32_t>::min());
    rowMax[r] = std::max<int32_t>(rowMax[r], q);
  }

  /// Element i of a step: rounds the updated real value `w2` to the new
  /// grid, counts and stores it.
  void round(int8_t *q, int64_t i, float w2, const Scalars &s, int64_t qn,
             int64_t qp);
  /// Element i with a non-finite gradient: left as it is, counted.
  void skip(const int8_t *q, int64_t i, const Scalars &s) {
    ++nonfinite;
    max(s, i, q[i]);
    maxAbs(s, i, float(q[i]) * s.deltaAt(i));
  }
};

inline void Reductions::round(int8_t *q, int64_t i, float w2, const Scalars &s,
                              int64_t qn, int64_t qp) {
  int8_t q1 = stochasticRound(w2, s.deltaNextAt(i),
                              uniform(s.seed, s.step, s.tid, i), qn, qp);
  changed += q1 != q[i];
  max(s, i, q1);
  maxAbs(s, i, w2);
  q[i] = q1;
}

/// The state-stream bits of element i, for bf16 states only (`State` is
/// float or uint16_t).
template <typename State>
inline uint32_t stateBitsFor(const Scalars &s, int64_t i) {
  if constexpr (std::is_same_v<State, float>)
    return 0;
  else
    return stateBits(s.seed, s.step, s.tid, uint64_t(i));
}

/// One AdamW step, in place; `m`/`v` are the states (f32, or bf16 bits:
/// m rounded with state stream 0's h_i, v with state stream 1's: the low
/// and high 16 bits of stateBits).
template <typename State>
inline Reductions adamw(int8_t *q, const float *g, State *m, State *v,
                        int64_t n, const Scalars &s, int64_t qn, int64_t qp) {
  Reductions r;
  float beta1 = s.h[0], beta2 = s.h[1], alpha = s.h[2], eps = s.h[3],
        decay = s.h[4];
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(g[i])) {
      r.skip(q, i, s);
      continue;
    }
    float m1 = beta1 * loadState(m[i]) + (1.0f - beta1) * g[i];
    float v1 = beta2 * loadState(v[i]) + (1.0f - beta2) * (g[i] * g[i]);
    float w = float(q[i]) * s.deltaAt(i);
    float w1 = w - alpha * (m1 / (std::sqrt(v1) + eps));
    r.round(q, i, w1 - decay * w1, s, qn, qp);
    uint32_t bits = stateBitsFor<State>(s, i);
    storeState(m[i], m1, bits & 0xffffu);
    storeState(v[i], v1, bits >> 16);
  }
  return r;
}

/// One SGD-with-momentum step, in place (bf16 `buf`: state stream 0's h_i,
/// the low 16 bits of stateBits).
template <typename State>
inline Reductions sgd(int8_t *q, const float *g, State *buf, int64_t n,
                      const Scalars &s, int64_t qn, int64_t qp) {
  Reductions r;
  float lr = s.h[0], mu = s.h[1], decay = s.h[2];
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(g[i])) {
      r.skip(q, i, s);
      continue;
    }
    float b1 = mu * loadState(buf[i]) + g[i];
    float w1 = float(q[i]) * s.deltaAt(i) - lr * b1;
    r.round(q, i, w1 - decay * w1, s, qn, qp);
    storeState(buf[i], b1, stateBitsFor<State>(s, i) & 0xffffu);
  }
  return r;
}

} // namespace dqt::ref

#endif // DQT_TEST_UNIT_STEPREFERENCE_H
