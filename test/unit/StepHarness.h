//===- StepHarness.h - run a JIT-compiled CPU step on host buffers --------===//

#ifndef DQT_TEST_UNIT_STEPHARNESS_H
#define DQT_TEST_UNIT_STEPHARNESS_H

#include "StepReference.h"

#include "dqt/Compiler/Compiler.h"
#include "dqt/Compiler/KernelAbi.h"
#include "dqt/Compiler/KernelArgs.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace dqt::test {

/// Host buffers of one parameter.
struct StepBuffers {
  std::vector<int8_t> q;
  std::vector<float> g, s0, s1; // s1 unused by SGD
  /// The states as bf16 bits, for StateType::BF16 (then s0, s1 are unused).
  std::vector<uint16_t> h0, h1;
};

/// Buffers of `n` elements: weights uniform over [qn, qp], gradients of
/// mixed scales with NaN (every 997th) and +-inf (every 331st) elements,
/// states as after a few steps, in f32 and truncated to bf16.
inline StepBuffers randomBuffers(int64_t n, int64_t qn, int64_t qp,
                                 uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> qd{int(qn), int(qp)};
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  StepBuffers b;
  for (auto *v : {&b.g, &b.s0, &b.s1})
    v->resize(n);
  b.q.resize(n);
  b.h0.resize(n);
  b.h1.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    b.q[i] = int8_t(qd(rng));
    b.g[i] = nd(rng) * std::pow(10.0f, ud(rng) * 6.0f - 4.0f);
    if (i % 997 == 5)
      b.g[i] = NAN;
    if (i % 331 == 3)
      b.g[i] = (i & 1) ? INFINITY : -INFINITY;
    b.s0[i] = nd(rng) * 0.01f;
    b.s1[i] = std::fabs(nd(rng)) * 1e-4f;
    b.h0[i] = ref::truncBF16(b.s0[i]);
    b.h1[i] = ref::truncBF16(b.s1[i]);
  }
  return b;
}

/// Hyper-parameters with large steps, so that many weights move: AdamW
/// (beta1, beta2, alpha, eps, decay), SGD (lr, momentum, decay).
inline void setLargeSteps(ref::Scalars &s, Optimizer opt) {
  float adam[5] = {0.9f, 0.999f, 0.05f, 1e-6f, 5e-4f * 0.01f};
  float sgd[5] = {0.5f, 0.9f, 0.01f * 0.5f, 0, 0};
  std::memcpy(s.h, opt == Optimizer::AdamW ? adam : sgd, sizeof(adam));
}

/// The reference step of configuration `c` on `b` (the states as f32, or
/// as bf16 bits with StateType::BF16).
inline ref::Reductions runReference(const StepConfig &c, StepBuffers &b,
                                    const ref::Scalars &s) {
  int64_t n = b.g.size();
  bool adam = c.optimizer == Optimizer::AdamW;
  if (c.stateType == StateType::BF16)
    return adam ? ref::adamw(b.q.data(), b.g.data(), b.h0.data(), b.h1.data(),
                             n, s, c.qn(), c.qp())
                : ref::sgd(b.q.data(), b.g.data(), b.h0.data(), n, s, c.qn(),
                           c.qp());
  return adam ? ref::adamw(b.q.data(), b.g.data(), b.s0.data(), b.s1.data(), n,
                           s, c.qn(), c.qp())
              : ref::sgd(b.q.data(), b.g.data(), b.s0.data(), n, s, c.qn(),
                         c.qp());
}

/// `runChunks` with packed ternary weights: packs `b.q`, runs the packed
/// kernel and unpacks into `b.q`; `packedOut` receives the bytes.
inline ref::Reductions runChunksPacked(const CpuStepKernel &kernel,
                                       const StepConfig &config,
                                       StepBuffers &b, const ref::Scalars &s,
                                       const std::vector<int64_t> &bounds,
                                       std::vector<uint8_t> *packedOut);

/// Runs `kernel` over the chunks [bounds[k], bounds[k+1]) in order and
/// combines the partial reductions as the runtime does. Per-row delta
/// (config.scale) takes the rows from `s` and returns each row's max(q');
/// run in order, chunks need not cover whole rows.
/// The kernel ABI's values of one step of `c` over `b` with the scalars of
/// `s`: the weights at `weights` (`weightsSize` elements, or bytes when
/// packed), the states in the configuration's type, each row's max(q')
/// into `rowMax` (per-row delta).
inline StepKernelValues stepValues(const StepConfig &c, StepBuffers &b,
                                   const ref::Scalars &s, void *weights,
                                   int64_t weightsSize, int32_t *rowMax,
                                   int32_t *rowAbsMax = nullptr) {
  bool bf16 = c.stateType == StateType::BF16;
  int64_t n = b.g.size();
  StepKernelValues v;
  v.weights = weights;
  v.weightsSize = weightsSize;
  v.grad = b.g.data();
  v.state0 = bf16 ? (void *)b.h0.data() : b.s0.data();
  v.state1 = bf16 ? (void *)b.h1.data() : b.s1.data();
  v.deltaRows = s.deltaRows;
  v.deltaNextRows = s.deltaNextRows;
  v.rowMax = rowMax;
  v.rowAbsMax = rowAbsMax;
  v.numel = n;
  v.numRows =
      c.scale == ScaleMode::Row ? (n + s.rowLength - 1) / s.rowLength : 0;
  v.seed = s.seed;
  v.step = s.step;
  v.tensorId = s.tid;
  v.rowLength = s.rowLength;
  v.delta = s.delta;
  v.deltaNext = s.deltaNext;
  v.hyper = s.h;
  return v;
}

inline ref::Reductions runChunks(const CpuStepKernel &kernel,
                                 const StepConfig &config, StepBuffers &b,
                                 const ref::Scalars &s,
                                 const std::vector<int64_t> &bounds) {
  ref::Reductions total;
  int64_t n = b.g.size();
  // Per-row delta: the kernel max-combines each row's max(q') into this.
  std::vector<int32_t> rowMaxStore;
  std::vector<int32_t> *rowMax = &rowMaxStore;
  std::vector<int32_t> rowAbsMax;
  if (config.scale == ScaleMode::Row) {
    rowMaxStore.assign((n + s.rowLength - 1) / s.rowLength,
                       std::numeric_limits<int32_t>::min());
    if (config.rule == ScaleRule::AbsMax)
      rowAbsMax = rowMaxStore;
  }
  for (size_t k = 0; k + 1 < bounds.size(); ++k) {
    int64_t partial[kNumReductions] = {0, 0, 0,
                                       std::numeric_limits<int64_t>::min()};
    KernelArgs args;
    packStepKernelArgs(args, config,
                       stepValues(config, b, s, b.q.data(),
                                  int64_t(b.q.size()), rowMax->data(),
                                  rowAbsMax.data()));
    args.addScalar<int64_t>(bounds[k]);
    args.addScalar<int64_t>(bounds[k + 1]);
    args.addBuffer(partial, kNumReductions);
    kernel.fn(args.data());
    total.maxq = std::max(total.maxq, partial[0]);
    total.changed += partial[1];
    total.nonfinite += partial[2];
    if (config.rule == ScaleRule::AbsMax && config.scale == ScaleMode::Tensor)
      total.absMax = std::max(total.absMax, partial[3]);
  }
  total.rowMax = rowMaxStore;
  total.rowAbsMax = rowAbsMax;
  return total;
}

inline ref::Reductions runChunksPacked(const CpuStepKernel &kernel,
                                       const StepConfig &config,
                                       StepBuffers &b, const ref::Scalars &s,
                                       const std::vector<int64_t> &bounds,
                                       std::vector<uint8_t> *packedOut) {
  int64_t n = b.g.size();
  std::vector<uint8_t> bytes((n + 3) / 4);
  ref::packTernary(b.q.data(), n, bytes.data());
  StepBuffers p = b;
  p.q.assign(bytes.begin(), bytes.end());
  ref::Reductions r = runChunks(kernel, config, p, s, bounds);
  std::memcpy(bytes.data(), p.q.data(), bytes.size());
  ref::unpackTernary(bytes.data(), n, b.q.data());
  b.s0 = p.s0;
  b.s1 = p.s1;
  b.h0 = p.h0;
  b.h1 = p.h1;
  if (packedOut)
    *packedOut = bytes;
  return r;
}

} // namespace dqt::test

#endif // DQT_TEST_UNIT_STEPHARNESS_H
