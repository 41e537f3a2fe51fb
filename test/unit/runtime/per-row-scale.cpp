//===- per-row-scale.cpp - one delta per output row (ScaleMode::Row) ------===//
//
// Per-row scale in the runtime: the initialization row by row, AdamW, SGD
// and Adafactor bit-identical to the LibTorch-ops reference (TorchReference.h,
// rows of a length that is not a multiple of 4 or 32 and of one that is,
// int8 and packed ternary storage, non-finite gradients), per-tensor weights
// in the same optimizer still per tensor, any thread count, bit-exact
// checkpoint resume, mismatched or bad scales refused with nothing changed,
// memory accounting, QuantLinear.
//
//===----------------------------------------------------------------------===//

#include "../StepReference.h"
#include "TestUtil.h"
#include "TorchReference.h"

#include "dqt/Runtime/Adafactor.h"
#include "dqt/Runtime/Checkpoint.h"
#include "dqt/Runtime/Optimizers.h"
#include "dqt/Runtime/QuantLinear.h"
#include "dqt/Runtime/WeightStep.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <array>
#include <filesystem>
#include <map>
#include <mutex>
#include <numeric>

using namespace dqt;
namespace fs = std::filesystem;

namespace {

using test::errorMessage;
using test::f;
using test::nextDeltaRows;
using test::optimizerUpdate;
using test::randomGrad;
using test::sameBytes;
using test::stochasticRoundRows;
using test::uniforms;

/// A grid and its storage.
struct Kind {
  double bits;
  bool packed;
  Storage storage() const {
    return packed ? Storage::PackedTernary : Storage::Int8;
  }
};

std::string kindName(const Kind &k) {
  return test::gridName(k.bits) + (k.packed ? "Packed" : "");
}

/// How GoogleTest (and ctest's test list) prints a Kind: its name, not its
/// bytes.
void PrintTo(const Kind &k, std::ostream *os) { *os << kindName(k); }

/// One parameter as the reference sees it: flat int8 values, states, and
/// one delta and max q per row (a per-tensor weight is one row).
struct RowRef {
  at::Tensor q, s0, s1; // flat; s1 AdamW only
  at::Tensor delta;     // f32 [rows]
  at::Tensor maxq;      // int8 [rows]
  Grid grid;

  explicit RowRef(const QuantizedWeight &w) : grid(w.grid()) {
    q = w.unpack().flatten().clone();
    s0 = at::zeros({w.numel()});
    s1 = at::zeros({w.numel()});
    if (w.isRowScaled()) {
      delta = w.deltaRows().clone();
      maxq = w.maxQRows().clone();
    } else {
      delta = at::full({1}, w.delta(), at::kFloat);
      maxq = at::full({1}, int64_t(w.maxQ()), at::kChar);
    }
  }
  int64_t rows() const { return delta.numel(); }
  /// w = q * delta_r, flat.
  at::Tensor dequantize() const {
    return (q.to(at::kFloat).view({rows(), -1}) * delta.view({rows(), 1}))
        .flatten();
  }
  /// Rounds `w2` with the next steps and records q', delta', max q'_r for
  /// the elements where `finite` (the others keep q); returns the stats
  /// without the non-finite count.
  StepStats round(const at::Tensor &w2, const at::Tensor &finite, uint64_t seed,
                  uint64_t t, int64_t tid) {
    at::Tensor next = nextDeltaRows(delta, maxq, grid);
    at::Tensor q1 =
        stochasticRoundRows(w2, next, uniforms(seed, t, tid, q.numel()), grid);
    q1 = at::where(finite, q1, q);
    StepStats st{q1.max().item<int8_t>(), (q1 != q).sum().item<int64_t>(),
                 (~finite).sum().item<int64_t>()};
    q = q1;
    delta = next;
    maxq = q1.view({rows(), -1}).amax(1);
    return st;
  }
};

/// One AdamW/SGD step of the reference; returns (max q', changed,
/// non-finite).
StepStats refStep(RowRef &p, const at::Tensor &grad, bool adam,
                  const std::vector<float> &h, uint64_t seed, uint64_t t,
                  int64_t tid) {
  at::Tensor g = grad.flatten();
  at::Tensor finite = g.isfinite();
  auto [w2, s0, s1] = optimizerUpdate(p.dequantize(), g, p.s0,
                                      adam ? p.s1 : at::Tensor(), adam, h);
  StepStats st = p.round(w2, finite, seed, t, tid);
  p.s0 = at::where(finite, s0, p.s0);
  if (adam)
    p.s1 = at::where(finite, s1, p.s1);
  return st;
}

/// The weight equals the reference: values, per-row (or per-tensor) scales.
void expectSame(const QuantizedWeight &w, const RowRef &r) {
  ASSERT_TRUE(sameBytes(w.unpack().flatten(), r.q));
  if (w.isRowScaled()) {
    EXPECT_TRUE(sameBytes(w.deltaRows(), r.delta));
    EXPECT_TRUE(sameBytes(w.maxQRows(), r.maxq));
  } else {
    EXPECT_EQ(w.delta(), r.delta.item<float>());
    EXPECT_EQ(w.maxQ(), r.maxq.item<int8_t>());
  }
}

std::vector<float> adamHyper(const optim::AdamWOptions &o, int t) {
  double alpha =
      o.lr * std::sqrt(1 - std::pow(o.beta2, t)) / (1 - std::pow(o.beta1, t));
  return {float(o.beta1), float(o.beta2), float(alpha), float(o.eps),
          float(o.lr * o.weightDecay)};
}

/// Per-row weights of one kind: [37, 45] (45 is not a multiple of 4 or 32),
/// [64, 128] and a per-tensor [50, 30] weight stepped by the same optimizer.
struct ThreeWeights {
  std::vector<QuantizedWeight> w;
  std::vector<RowRef> ref;
  explicit ThreeWeights(Kind kind, uint64_t seed) {
    at::Generator gen = at::detail::createCPUGenerator(seed);
    Grid grid = Grid::fromBits(kind.bits);
    w.push_back(QuantizedWeight::fromFloat(at::randn({37, 45}, gen), grid,
                                           kind.storage(), ScaleMode::Row));
    // Rows of very different magnitudes: the scales differ.
    at::Tensor big = at::randn({64, 128}, gen) *
                     at::pow(10.0, at::rand({64, 1}, gen) * 3 - 2);
    w.push_back(
        QuantizedWeight::fromFloat(big, grid, kind.storage(), ScaleMode::Row));
    w.push_back(QuantizedWeight::fromFloat(at::randn({50, 30}, gen), grid,
                                           kind.storage()));
    for (auto &x : w)
      ref.emplace_back(x);
  }
  std::vector<QuantizedWeight *> ptrs() { return {&w[0], &w[1], &w[2]}; }
};

class PerRowStep : public ::testing::TestWithParam<Kind> {};

TEST_P(PerRowStep, AdamWMatchesTheReference) {
  ThreeWeights m(GetParam(), 3);
  optim::AdamWOptions opts;
  opts.lr = 0.05; // large, so many weights move
  optim::AdamW adam(m.ptrs(), opts);
  for (int t = 1; t <= 4; ++t) {
    for (size_t p = 0; p < m.w.size(); ++p)
      m.w[p].grad().copy_(randomGrad(m.w[p].sizes(), 10 * t + p, 97));
    std::vector<StepStats> got = adam.step();
    for (size_t p = 0; p < m.w.size(); ++p) {
      SCOPED_TRACE(::testing::Message() << "step " << t << " param " << p);
      StepStats want = refStep(m.ref[p], m.w[p].grad(), true,
                               adamHyper(opts, t), opts.seed, t, p);
      expectSame(m.w[p], m.ref[p]);
      ASSERT_TRUE(sameBytes(adam.state(p, 0).flatten(), m.ref[p].s0));
      ASSERT_TRUE(sameBytes(adam.state(p, 1).flatten(), m.ref[p].s1));
      EXPECT_EQ(got[p].maxQ, want.maxQ);
      EXPECT_EQ(got[p].maxQ, m.w[p].maxQ());
      EXPECT_EQ(got[p].changed, want.changed);
      EXPECT_EQ(got[p].nonFinite, want.nonFinite);
      EXPECT_GT(got[p].nonFinite, 0);
      EXPECT_GT(got[p].changed, 0);
    }
  }
}

TEST_P(PerRowStep, SGDMatchesTheReference) {
  ThreeWeights m(GetParam(), 4);
  optim::SGDOptions opts;
  opts.lr = 0.02;
  opts.weightDecay = 0.01;
  optim::SGD sgd(m.ptrs(), opts);
  for (int t = 1; t <= 4; ++t) {
    for (size_t p = 0; p < m.w.size(); ++p)
      m.w[p].grad().copy_(randomGrad(m.w[p].sizes(), 7 * t + p, 89));
    std::vector<float> h = {float(opts.lr), float(opts.momentum),
                            float(opts.lr * opts.weightDecay)};
    std::vector<StepStats> got = sgd.step();
    for (size_t p = 0; p < m.w.size(); ++p) {
      SCOPED_TRACE(::testing::Message() << "step " << t << " param " << p);
      StepStats want =
          refStep(m.ref[p], m.w[p].grad(), false, h, opts.seed, t, p);
      expectSame(m.w[p], m.ref[p]);
      ASSERT_TRUE(sameBytes(sgd.state(p, 0).flatten(), m.ref[p].s0));
      EXPECT_EQ(got[p].maxQ, want.maxQ);
      EXPECT_EQ(got[p].changed, want.changed);
      EXPECT_EQ(got[p].nonFinite, want.nonFinite);
      EXPECT_GT(got[p].nonFinite, 0);
    }
  }
}

/// Adafactor's statistics do not depend on the scale: its first moment m is
/// the one a per-tensor twin gets (checked against the reference in
/// adafactor.cpp), and its second kernel is the SGD kernel: m' with
/// w1 = w - lr*m', w2 = w1 - decay*w1, rounded per row.
TEST_P(PerRowStep, AdafactorMatchesTheReference) {
  Kind kind = GetParam();
  at::Generator gen = at::detail::createCPUGenerator(5);
  Grid grid = Grid::fromBits(kind.bits);
  // Factored [37, 45]; unfactored 3-D [6, 5, 7] (rows of 35).
  std::vector<at::Tensor> init = {at::randn({37, 45}, gen),
                                  at::randn({6, 5, 7}, gen)};
  std::vector<QuantizedWeight> rows, tensors;
  std::vector<RowRef> refs;
  for (auto &x : init) {
    rows.push_back(
        QuantizedWeight::fromFloat(x, grid, kind.storage(), ScaleMode::Row));
    tensors.push_back(QuantizedWeight::fromFloat(x, grid, kind.storage()));
    refs.emplace_back(rows.back());
  }
  optim::AdafactorOptions opts;
  opts.lr = 0.5; // the update's RMS is clipped to 1: large, so ternary moves
  opts.beta1 = 0.9;
  opts.weightDecay = 0.01;
  optim::Adafactor perRow({&rows[0], &rows[1]}, opts);
  optim::Adafactor perTensor({&tensors[0], &tensors[1]}, opts);
  for (int t = 1; t <= 3; ++t) {
    for (size_t p = 0; p < rows.size(); ++p) {
      // Finite gradients: every element is stepped.
      at::Tensor g = randomGrad(init[p].sizes(), 20 * t + p, 0);
      rows[p].grad().copy_(g);
      tensors[p].grad().copy_(g);
    }
    std::vector<StepStats> got = perRow.step();
    perTensor.step();
    for (size_t p = 0; p < rows.size(); ++p) {
      SCOPED_TRACE(::testing::Message() << "step " << t << " param " << p);
      size_t k = perRow.numStates(p) - 1; // m
      for (size_t s = 0; s <= k; ++s)
        ASSERT_TRUE(sameBytes(perRow.state(p, s), perTensor.state(p, s)));
      at::Tensor m1 = perRow.state(p, k).flatten();
      std::vector<float> h = {float(opts.lr), 0.0f,
                              float(opts.lr * opts.weightDecay)};
      // buf = 0*0 + m' = m': w2 from m' exactly as the kernel.
      auto [w2, buf, unused] = optimizerUpdate(
          refs[p].dequantize(), m1, at::zeros_like(m1), at::Tensor(), false, h);
      StepStats want =
          refs[p].round(w2, at::ones({m1.numel()}, at::kBool), opts.seed, t, p);
      expectSame(rows[p], refs[p]);
      EXPECT_EQ(got[p].maxQ, want.maxQ);
      EXPECT_EQ(got[p].changed, want.changed);
      EXPECT_EQ(got[p].nonFinite, 0);
      EXPECT_GT(got[p].changed, 0);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Grids, PerRowStep,
                         ::testing::Values(Kind{8, false}, Kind{4, false},
                                           Kind{1.58, false}, Kind{1.58, true}),
                         [](const auto &info) { return kindName(info.param); });

TEST(PerRowInit, MatchesTheFormulaRowByRow) {
  at::Generator gen = at::detail::createCPUGenerator(11);
  for (std::vector<int64_t> shape :
       {std::vector<int64_t>{37, 45}, {64, 128}, {6, 5, 7}, {1, 9}}) {
    // Rows of magnitudes over four decades.
    std::vector<int64_t> rowShape(shape.size(), 1);
    rowShape[0] = shape[0];
    at::Tensor w =
        at::randn(shape, gen) * at::pow(10.0, at::rand(rowShape, gen) * 4 - 3);
    w.view({-1})[3] = 0.0f;
    int64_t rows = shape[0], length = w.numel() / rows;
    for (Kind kind : {Kind{8, false}, Kind{4, false}, Kind{2, false},
                      Kind{1.58, false}, Kind{1.58, true}}) {
      SCOPED_TRACE(::testing::Message() << w.sizes() << " " << kindName(kind));
      Grid g = Grid::fromBits(kind.bits);
      QuantizedWeight q =
          QuantizedWeight::fromFloat(w, g, kind.storage(), ScaleMode::Row);
      EXPECT_TRUE(q.isRowScaled());
      EXPECT_EQ(q.rows(), rows);
      EXPECT_EQ(q.rowLength(), length);
      at::Tensor flat = w.view({rows, length});
      std::vector<at::Tensor> want;
      for (int64_t r = 0; r < rows; ++r) {
        double sum = 0; // in element order, in double (docs/numerics.md)
        for (int64_t i = 0; i < length; ++i)
          sum += std::fabs(double(flat[r][i].item<float>()));
        float s = float(double(g.qp()) / std::max(sum / length, 1e-5));
        at::Tensor qr = (flat[r] * s)
                            .round()
                            .clamp(double(g.qn()), double(g.qp()))
                            .to(at::kChar);
        want.push_back(qr);
        EXPECT_EQ(q.deltaRows()[r].item<float>(), 1.0f / s) << r;
        EXPECT_EQ(q.maxQRows()[r].item<int8_t>(), qr.max().item<int8_t>()) << r;
      }
      at::Tensor values = at::stack(want).view(shape);
      EXPECT_TRUE(sameBytes(q.unpack(), values));
      EXPECT_EQ(q.maxQ(), values.max().item<int8_t>());
      EXPECT_TRUE(at::equal(q.dequantize(),
                            (values.to(at::kFloat).view({rows, length}) *
                             q.deltaRows().view({rows, 1}))
                                .view(shape)));
      // Memory: the integers, then 4 bytes of delta and 1 of max q a row.
      int64_t intBytes = kind.packed ? (w.numel() + 3) / 4 : w.numel();
      EXPECT_EQ(q.persistentBytes(), intBytes + 5 * rows);
      StepConfig c = q.stepConfig(Optimizer::AdamW, StateType::F32);
      EXPECT_EQ(c.scale, ScaleMode::Row);
      EXPECT_NE(c.key().find("-rows"), std::string::npos) << c.key();
      // The per-tensor weight is unchanged by the option.
      QuantizedWeight t = QuantizedWeight::fromFloat(w, g, kind.storage());
      EXPECT_FALSE(t.isRowScaled());
      EXPECT_EQ(t.rows(), 1);
      EXPECT_EQ(t.persistentBytes(), intBytes + 5);
      EXPECT_EQ(t.stepConfig(Optimizer::AdamW, StateType::F32).scale,
                ScaleMode::Tensor);
    }
  }
}

TEST(PerRowInit, RefusesWhatMakesNoSense) {
  at::Generator gen = at::detail::createCPUGenerator(12);
  EXPECT_NE(errorMessage([&] {
              QuantizedWeight::fromFloat(at::randn({10}, gen), Grid{8},
                                         Storage::Int8, ScaleMode::Row);
            }).find("a per-row scale needs a weight of at least 2 dimensions"),
            std::string::npos);
  QuantizedWeight rows = QuantizedWeight::fromFloat(
      at::randn({4, 6}, gen), Grid{4}, Storage::Int8, ScaleMode::Row);
  QuantizedWeight tensor =
      QuantizedWeight::fromFloat(at::randn({4, 6}, gen), Grid{4});
  EXPECT_NE(errorMessage([&] { rows.delta(); }).find("one delta per row"),
            std::string::npos);
  EXPECT_NE(errorMessage([&] { rows.nextDelta(); }).find("one delta per row"),
            std::string::npos);
  EXPECT_NE(
      errorMessage([&] { rows.update(0.5f, 3); }).find("one delta per row"),
      std::string::npos);
  EXPECT_NE(
      errorMessage([&] { tensor.deltaRows(); }).find("one delta per tensor"),
      std::string::npos);
  EXPECT_NE(
      errorMessage([&] { tensor.maxQRows(); }).find("one delta per tensor"),
      std::string::npos);
  EXPECT_NE(errorMessage([&] {
              tensor.update(at::ones({4}), at::ones({4}, at::kChar));
            }).find("one delta per tensor"),
            std::string::npos);

  at::Tensor delta = rows.deltaRows().clone(), maxq = rows.maxQRows().clone();
  auto refused = [&](const at::Tensor &d, const at::Tensor &m,
                     const std::string &what) {
    EXPECT_NE(errorMessage([&] { rows.update(d, m); }).find(what),
              std::string::npos)
        << what;
    EXPECT_TRUE(sameBytes(rows.deltaRows(), delta));
    EXPECT_TRUE(sameBytes(rows.maxQRows(), maxq));
  };
  refused(at::ones({5}), maxq,
          "the per-row deltas must be Float[4], got Float[5]");
  refused(at::ones({4}, at::kDouble), maxq,
          "the per-row deltas must be Float[4]");
  refused(delta, at::ones({4}),
          "the per-row max q must be Char[4], got Float[4]");
  refused(at::tensor({1.0f, 0.0f, 1.0f, 1.0f}), maxq,
          "every row's delta must be finite and > 0");
  refused(at::tensor({1.0f, NAN, 1.0f, 1.0f}), maxq,
          "every row's delta must be finite and > 0");
  refused(delta, at::full({4}, 8, at::kChar),
          "every row's max q must be in the 4-bit grid [-8, 7]");
}

TEST(PerRowThreads, ResultsDoNotDependOnTheThreadCount) {
  at::Generator gen = at::detail::createCPUGenerator(13);
  // Several chunks of 2^16 elements, cut at whole rows: 45-element rows
  // packed (units of lcm(45, 4) = 180 elements) and 1000-element rows.
  for (auto [shape, kind] :
       {std::pair{std::vector<int64_t>{1601, 45}, Kind{1.58, true}},
        std::pair{std::vector<int64_t>{300, 1000}, Kind{4, false}}}) {
    SCOPED_TRACE(kindName(kind));
    at::Tensor init = at::randn(shape, gen);
    at::Tensor grad = randomGrad(shape, 6, 9973);
    std::vector<at::Tensor> q, m, d, mx;
    std::vector<StepStats> stats;
    int before = at::get_num_threads();
    for (int threads : {1, 2, 3}) {
      at::set_num_threads(threads);
      QuantizedWeight w = QuantizedWeight::fromFloat(
          init, Grid::fromBits(kind.bits), kind.storage(), ScaleMode::Row);
      optim::AdamW adam({&w}, optim::AdamWOptions{0.05});
      for (int t = 0; t < 2; ++t) {
        w.grad().copy_(grad);
        stats.push_back(adam.step()[0]);
      }
      q.push_back(w.q().clone());
      m.push_back(adam.state(0, 1).clone());
      d.push_back(w.deltaRows().clone());
      mx.push_back(w.maxQRows().clone());
    }
    at::set_num_threads(before);
    for (size_t i = 1; i < q.size(); ++i) {
      EXPECT_TRUE(sameBytes(q[0], q[i])) << i;
      EXPECT_TRUE(sameBytes(m[0], m[i])) << i;
      EXPECT_TRUE(sameBytes(d[0], d[i])) << i;
      EXPECT_TRUE(sameBytes(mx[0], mx[i])) << i;
      EXPECT_EQ(stats[1].changed, stats[2 * i + 1].changed);
      EXPECT_EQ(stats[1].maxQ, stats[2 * i + 1].maxQ);
      EXPECT_EQ(stats[1].nonFinite, stats[2 * i + 1].nonFinite);
    }
    EXPECT_GT(stats[1].changed, 0);
  }
}

/// The chunks the fake kernel below was called with: (numel, begin, end).
std::mutex chunksMutex;
std::vector<std::array<int64_t, 3>> chunks;

/// A stand-in for the generated per-row SGD kernel (f32 states, int8 or
/// packed ternary storage) written with the scalar reference: it reads the
/// arguments in the layout of the kernel ABI (dqt/Compiler/KernelAbi.h:
/// q, grad, momentum, delta_rows, delta_next_rows; seed, step, tensor id,
/// row length, lr, momentum, decay; row_max; then begin, end, the
/// reductions), so the launcher's packing, chunking and row_max handling
/// are checked without the compiler.
template <bool Packed> void fakeRowSgdKernel(void **args) {
  // A memref descriptor takes 5 slots (allocated, aligned, offset, size,
  // stride), a scalar 1.
  const int scalars = 5 * 5, rowMaxAt = scalars + 7, chunkAt = rowMaxAt + 5;
  auto buffer = [&](int slot) { return *static_cast<void **>(args[slot + 1]); };
  auto size = [&](int slot) { return *static_cast<int64_t *>(args[slot + 3]); };
  auto i64 = [&](int k) { return *static_cast<int64_t *>(args[k]); };
  auto f32 = [&](int k) { return *static_cast<float *>(args[k]); };
  auto *q = static_cast<int8_t *>(buffer(0));
  auto *g = static_cast<float *>(buffer(5));
  auto *buf = static_cast<float *>(buffer(10));
  auto *delta = static_cast<float *>(buffer(15));
  auto *deltaNext = static_cast<float *>(buffer(20));
  auto *rowMax = static_cast<int32_t *>(buffer(rowMaxAt));
  // The element count from the gradient: packed weights hold 4 per byte.
  int64_t n = size(5), rows = size(15);
  const int s = scalars;
  uint64_t seed = i64(s), step = i64(s + 1), tid = i64(s + 2);
  int64_t length = i64(s + 3);
  float lr = f32(s + 4), mu = f32(s + 5), decay = f32(s + 6);
  int64_t begin = i64(chunkAt), end = i64(chunkAt + 1);
  auto *red = static_cast<int64_t *>(buffer(chunkAt + 2));
  EXPECT_EQ(size(rowMaxAt), rows);
  EXPECT_EQ(rows * length, n);
  {
    std::lock_guard<std::mutex> lock(chunksMutex);
    chunks.push_back({n, begin, end});
  }
  Grid grid = Grid::fromBits(Packed ? 1.58 : 4);
  red[0] = std::numeric_limits<int64_t>::min();
  red[1] = red[2] = 0;
  for (int64_t i = begin; i < end; ++i) {
    int64_t r = i / length;
    int8_t qi = q[i];
    if constexpr (Packed) {
      int code = (reinterpret_cast<uint8_t *>(q)[i / 4] >> (2 * (i % 4))) & 3;
      qi = int8_t(code >= 2 ? code - 4 : code);
    }
    int8_t q1 = qi;
    if (std::isfinite(g[i])) {
      float b1 = mu * buf[i] + g[i];
      float w1 = float(qi) * delta[r] - lr * b1;
      q1 = ref::stochasticRound(w1 - decay * w1, deltaNext[r],
                                ref::uniform(seed, step, tid, i), grid.qn(),
                                grid.qp());
      buf[i] = b1;
    } else {
      ++red[2];
    }
    red[1] += q1 != qi;
    red[0] = std::max<int64_t>(red[0], q1);
    rowMax[r] = std::max<int32_t>(rowMax[r], q1);
    if constexpr (Packed) {
      auto *byte = reinterpret_cast<uint8_t *>(q) + i / 4;
      *byte = uint8_t((*byte & ~(3u << (2 * (i % 4)))) |
                      ((uint8_t(q1) & 3u) << (2 * (i % 4))));
    } else {
      q[i] = q1;
    }
  }
}

/// launchCpu with the fake kernel: per-row parameters cut at whole rows
/// (packed: multiples of lcm(L, 4)), every element stepped once, row_max
/// reset per chunk; the same results as the reference for 1 and 3 threads.
TEST(PerRowLauncher, ChunksCoverWholeRowsAndMatchTheReference) {
  for (bool packed : {false, true}) {
    SCOPED_TRACE(packed);
    Kind kind{packed ? 1.58 : 4.0, packed};
    StepConfig config;
    config.optimizer = Optimizer::SGD;
    config.bits = 4;
    config.ternary = packed;
    config.packed = packed;
    config.scale = ScaleMode::Row;
    Executable kernel;
    kernel.fn = packed ? &fakeRowSgdKernel<true> : &fakeRowSgdKernel<false>;
    std::vector<at::Tensor> results;
    for (int threads : {1, 3}) {
      at::Generator gen = at::detail::createCPUGenerator(31);
      std::vector<QuantizedWeight> ws;
      // 3 threads: chunk boundaries fall inside the first and last weight.
      for (auto shape : {std::vector<int64_t>{5001, 45}, {7, 11}, {300, 1000}})
        ws.push_back(QuantizedWeight::fromFloat(
            at::randn(shape, gen), Grid::fromBits(kind.bits), kind.storage(),
            ScaleMode::Row));
      std::vector<RowRef> refs;
      std::vector<at::Tensor> bufs, grads;
      std::vector<WeightStep> steps;
      for (size_t p = 0; p < ws.size(); ++p) {
        refs.emplace_back(ws[p]);
        grads.push_back(randomGrad(ws[p].sizes(), 40 + p, 101));
        bufs.push_back(at::zeros(ws[p].sizes()));
        steps.emplace_back(ws[p], grads[p].data_ptr<float>(),
                           bufs[p].data_ptr(), nullptr, int64_t(p),
                           StepTarget{});
      }
      std::vector<float> h = {0.05f, 0.9f, 0.001f};
      int before = at::get_num_threads();
      at::set_num_threads(threads);
      chunks.clear();
      std::vector<StepStats> got =
          launchWeightSteps(StepTarget{}, kernel, config, steps, h, 42, 1);
      at::set_num_threads(before);
      for (size_t p = 0; p < ws.size(); ++p) {
        SCOPED_TRACE(p);
        StepStats want = refStep(refs[p], grads[p], false, h, 42, 1, p);
        expectSame(ws[p], refs[p]);
        EXPECT_TRUE(sameBytes(bufs[p].flatten(), refs[p].s0));
        EXPECT_EQ(got[p].maxQ, want.maxQ);
        EXPECT_EQ(got[p].changed, want.changed);
        EXPECT_EQ(got[p].nonFinite, want.nonFinite);
        results.push_back(ws[p].q().clone());
      }
      // Whole rows (and bytes), each element once.
      std::map<int64_t, int64_t> covered;
      for (auto [n, b, e] : chunks) {
        int64_t length = n == 5001 * 45 ? 45 : n == 77 ? 11 : 1000;
        int64_t unit = packed ? std::lcm(length, int64_t(4)) : length;
        EXPECT_EQ(b % unit, 0) << n << " " << b;
        EXPECT_TRUE(e % unit == 0 || e == n) << n << " " << e;
        covered[n] += e - b;
      }
      EXPECT_EQ(covered[5001 * 45], 5001 * 45);
      EXPECT_EQ(covered[77], 77);
      EXPECT_EQ(covered[300000], 300000);
      if (threads > 1) // split: more calls than weights
        EXPECT_GT(chunks.size(), 3u);
    }
    for (size_t i = 0; i < 3; ++i)
      EXPECT_TRUE(sameBytes(results[i], results[i + 3])) << i;
  }
}

/// A small model with per-row weights (and one per-tensor weight), AdamW.
struct Model {
  std::vector<QuantizedWeight> w;
  std::unique_ptr<optim::AdamW> opt;

  Model(uint64_t initSeed, ScaleMode scale) {
    at::Generator gen = at::detail::createCPUGenerator(initSeed);
    w.push_back(QuantizedWeight::fromFloat(
        at::randn({37, 45}, gen), Grid::fromBits(4), Storage::Int8, scale));
    w.push_back(QuantizedWeight::fromFloat(at::randn({64, 128}, gen),
                                           Grid::fromBits(1.58),
                                           Storage::PackedTernary, scale));
    w.push_back(
        QuantizedWeight::fromFloat(at::randn({33}, gen), Grid::fromBits(8)));
    optim::AdamWOptions o;
    o.lr = 0.02;
    opt = std::make_unique<optim::AdamW>(
        std::vector<QuantizedWeight *>{&w[0], &w[1], &w[2]}, o);
  }
  /// The gradient of step t depends only on t (as data would).
  void step(int64_t t) {
    for (size_t p = 0; p < w.size(); ++p)
      w[p].grad().copy_(randomGrad(w[p].sizes(), 1000 * t + p, 131));
    opt->step();
  }
};

class PerRowCheckpoint : public ::testing::Test {
protected:
  void SetUp() override {
    dir = test::freshTestDirectory("dqt-rows");
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path dir;
};

TEST_F(PerRowCheckpoint, ResumeIsBitExact) {
  const int n = 3;
  Model straight(1, ScaleMode::Row);
  for (int t = 1; t <= 2 * n; ++t)
    straight.step(t);

  Model first(1, ScaleMode::Row);
  for (int t = 1; t <= n; ++t)
    first.step(t);
  first.opt->save(dir / "half.safetensors");
  // The file: per-row delta F32 [rows], max q I8 [rows].
  checkpoint::Contents c = checkpoint::load(dir / "half.safetensors");
  EXPECT_EQ(c.get("param.0.delta").sizes(), at::IntArrayRef({37}));
  EXPECT_EQ(c.get("param.0.max_q").scalar_type(), at::kChar);
  EXPECT_EQ(c.get("param.1.max_q").sizes(), at::IntArrayRef({64}));
  EXPECT_EQ(c.get("param.2.delta").sizes(), at::IntArrayRef({1}));
  // A fresh process: other initial weights, then the checkpoint.
  Model resumed(99, ScaleMode::Row);
  resumed.opt->load(dir / "half.safetensors");
  EXPECT_EQ(resumed.opt->stepCount(), n);
  for (int t = n + 1; t <= 2 * n; ++t)
    resumed.step(t);

  for (size_t p = 0; p < straight.w.size(); ++p) {
    SCOPED_TRACE(p);
    const QuantizedWeight &a = straight.w[p], &b = resumed.w[p];
    EXPECT_TRUE(sameBytes(a.q(), b.q()));
    if (a.isRowScaled()) {
      EXPECT_TRUE(sameBytes(a.deltaRows(), b.deltaRows()));
      EXPECT_TRUE(sameBytes(a.maxQRows(), b.maxQRows()));
    } else {
      EXPECT_EQ(a.delta(), b.delta());
    }
    EXPECT_EQ(a.maxQ(), b.maxQ());
    for (int k = 0; k < 2; ++k)
      EXPECT_TRUE(
          sameBytes(straight.opt->state(p, k), resumed.opt->state(p, k)));
  }
}

/// Everything a load may change, to check that a refused load changed
/// nothing.
std::vector<at::Tensor> snapshot(const Model &m) {
  std::vector<at::Tensor> s;
  for (size_t p = 0; p < m.w.size(); ++p) {
    const QuantizedWeight &w = m.w[p];
    s.push_back(w.q().clone());
    s.push_back(w.isRowScaled() ? w.deltaRows().clone()
                                : at::full({1}, w.delta()));
    s.push_back(w.isRowScaled() ? w.maxQRows().clone()
                                : at::full({1}, int64_t(w.maxQ())));
    for (int k = 0; k < 2; ++k)
      s.push_back(m.opt->state(p, k).clone());
  }
  return s;
}

void expectUnchanged(const Model &m, const std::vector<at::Tensor> &before) {
  std::vector<at::Tensor> now = snapshot(m);
  ASSERT_EQ(now.size(), before.size());
  for (size_t i = 0; i < now.size(); ++i)
    EXPECT_TRUE(sameBytes(now[i], before[i])) << i;
  EXPECT_EQ(m.opt->stepCount(), 1);
}

TEST_F(PerRowCheckpoint, MismatchedScaleIsRefusedWithNothingChanged) {
  Model rows(1, ScaleMode::Row), tensor(2, ScaleMode::Tensor);
  rows.step(1);
  tensor.step(1);
  rows.opt->save(dir / "rows.safetensors");
  tensor.opt->save(dir / "tensor.safetensors");
  // Both saved after one step; try to load each into the other.
  std::vector<at::Tensor> beforeRows = snapshot(rows),
                          beforeTensor = snapshot(tensor);
  EXPECT_NE(errorMessage([&] { tensor.opt->load(dir / "rows.safetensors"); })
                .find("parameter 0 has one delta per tensor here and one per "
                      "row in"),
            std::string::npos);
  expectUnchanged(tensor, beforeTensor);
  EXPECT_NE(errorMessage([&] { rows.opt->load(dir / "tensor.safetensors"); })
                .find("parameter 0 has one delta per row here and one per "
                      "tensor in"),
            std::string::npos);
  expectUnchanged(rows, beforeRows);
}

TEST_F(PerRowCheckpoint, BadRowScalesAreRefusedWithNothingChanged) {
  Model rows(1, ScaleMode::Row);
  rows.step(1);
  rows.opt->save(dir / "good.safetensors");
  std::vector<at::Tensor> before = snapshot(rows);
  checkpoint::Contents good = checkpoint::load(dir / "good.safetensors");
  // Rewrites one tensor (checksums recomputed: only the value is wrong).
  auto variant = [&](const std::string &name, const at::Tensor &value) {
    checkpoint::Contents c = good;
    for (auto &[n, t] : c.tensors)
      if (n == name)
        t = value;
    fs::path path = dir / ("bad-" + name + ".safetensors");
    checkpoint::save(path, c);
    return path;
  };
  at::Tensor delta = good.get("param.0.delta").clone();
  delta[5] = -1.0f;
  EXPECT_NE(errorMessage([&] {
              rows.opt->load(variant("param.0.delta", delta));
            }).find("parameter 0: every row's delta must be finite and > 0"),
            std::string::npos);
  expectUnchanged(rows, before);
  delta[5] = INFINITY;
  EXPECT_NE(errorMessage([&] {
              rows.opt->load(variant("param.0.delta", delta));
            }).find("every row's delta must be finite and > 0"),
            std::string::npos);
  expectUnchanged(rows, before);
  EXPECT_NE(errorMessage([&] {
              rows.opt->load(variant("param.1.delta", at::ones({63})));
            }).find("'param.1.delta' is Float[63], expected Float[64]"),
            std::string::npos);
  expectUnchanged(rows, before);
  EXPECT_NE(errorMessage([&] {
              rows.opt->load(
                  variant("param.1.max_q", at::full({64}, 2, at::kChar)));
            }).find("every row's max q must be in the ternary grid"),
            std::string::npos);
  expectUnchanged(rows, before);
}

TEST(PerRowQuantLinear, ForwardBackwardAndStepInBackward) {
  at::Generator gen = at::detail::createCPUGenerator(21);
  for (bool ternary : {false, true}) {
    SCOPED_TRACE(ternary);
    nn::QuantLinear layer(45, 37, Grid::fromBits(4), gen, Storage::Int8,
                          ScaleMode::Row);
    layer.ternaryInference = ternary;
    const QuantizedWeight &w = layer.weight();
    ASSERT_TRUE(w.isRowScaled());
    ASSERT_EQ(w.rows(), 37);
    at::Tensor wf = (w.unpack().to(at::kFloat) * w.deltaRows().view({37, 1}));
    if (ternary)
      wf = nn::ternarize(wf);
    at::Tensor x = at::randn({3, 45}, gen).requires_grad_(true);
    at::Tensor y = layer.forward(x);
    EXPECT_TRUE(at::allclose(y, at::matmul(nn::activationQuant8(x), wf.t()),
                             1e-5, 1e-6));
    at::Tensor gy = at::randn(y.sizes(), gen);
    torch::autograd::backward({y}, {gy});
    EXPECT_TRUE(at::allclose(x.grad(), at::matmul(gy, wf), 1e-5, 1e-6));
    EXPECT_TRUE(at::allclose(
        layer.weight().grad(),
        at::matmul(gy.t(), nn::activationQuant8(x.detach())), 1e-5, 1e-5));

    // Step inside the backward pass: the gradient is gone, the rows moved.
    optim::AdamW adam({&layer.weight()}, optim::AdamWOptions{0.05});
    layer.weight().clearGrad();
    layer.stepInBackward = &adam;
    at::Tensor deltaBefore = layer.weight().deltaRows().clone();
    at::Tensor qBefore = layer.weight().q().clone();
    torch::autograd::backward({layer.forward(x.detach())}, {gy});
    EXPECT_FALSE(layer.weight().hasGrad());
    adam.step();
    EXPECT_EQ(adam.stepCount(), 1);
    EXPECT_FALSE(sameBytes(layer.weight().q(), qBefore));
    EXPECT_TRUE(
        sameBytes(layer.weight().deltaRows(),
                  nextDeltaRows(deltaBefore, (qBefore.amax(1)), w.grid())));
  }
}

} // namespace
