//===- optim-matches-torch-reference.cpp - runtime vs LibTorch ops --------===//
//
// dqt::optim::AdamW / SGD (JIT kernels launched with at::parallel_for)
// against an independent reference written with plain LibTorch tensor ops
// (f32 scalars as 0-dim f32 tensors so every op rounds in f32), with the
// Philox stream from the test's own scalar implementation. Bit-identical
// weights, states, scales and statistics over several steps, for every grid;
// identical for any thread count; bad inputs refused without side effects.
//
//===----------------------------------------------------------------------===//

#include "../StepReference.h"
#include "TestUtil.h"
#include "TorchReference.h"

#include "dqt/Runtime/KernelCache.h"
#include "dqt/Runtime/Optimizers.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

using namespace dqt;

namespace {

using dqt::test::f;
using dqt::test::optimizerUpdate;
using dqt::test::stochasticRound;
using dqt::test::randomGrad;
using dqt::test::uniforms;

/// One parameter as the reference sees it.
struct RefParam {
  at::Tensor q, s0, s1; // s1: AdamW only
  float delta;
  int8_t maxq;
  Grid grid;
};


/// One step of the reference; returns (max q', changed, non-finite).
StepStats refStep(RefParam &p, const at::Tensor &grad, bool adam,
                  const std::vector<float> &h, uint64_t seed, uint64_t t,
                  int64_t tid) {
  at::Tensor g = grad.flatten(), q = p.q.flatten();
  at::Tensor finite = g.isfinite();
  float deltaNext = ref::nextDelta(p.delta, p.maxq, p.grid.qp());
  at::Tensor w = q.to(at::kFloat) * f(p.delta);
  auto [w2, s0, s1] = optimizerUpdate(
      w, g, p.s0.flatten(), adam ? p.s1.flatten() : at::Tensor(), adam, h);
  at::Tensor q1 =
      stochasticRound(w2, deltaNext, uniforms(seed, t, tid, g.numel()), p.grid);
  q1 = at::where(finite, q1, q);
  StepStats st{q1.max().item<int8_t>(), (q1 != q).sum().item<int64_t>(),
               (~finite).sum().item<int64_t>()};
  p.q = q1.view_as(p.q);
  p.s0 = at::where(finite, s0, p.s0.flatten()).view_as(p.q);
  if (adam)
    p.s1 = at::where(finite, s1, p.s1.flatten()).view_as(p.q);
  p.delta = deltaNext;
  p.maxq = int8_t(st.maxQ);
  return st;
}

using test::sameBytes;

class OptimMatchesReference : public ::testing::TestWithParam<double> {};

TEST_P(OptimMatchesReference, AdamWThreeStepsBitIdentical) {
  Grid grid = Grid::fromBits(GetParam());
  at::Generator gen = at::detail::createCPUGenerator(3);
  // Two parameters of one grid (one launch), odd sizes.
  std::vector<at::Tensor> init = {at::randn({513, 257}, gen),
                                  at::randn({1031}, gen) * 0.1};
  std::vector<QuantizedWeight> weights;
  std::vector<RefParam> refs;
  for (auto &w : init) {
    weights.push_back(QuantizedWeight::fromFloat(w, grid));
    refs.push_back({weights.back().q().clone(), at::zeros_like(w),
                    at::zeros_like(w), weights.back().delta(),
                    weights.back().maxQ(), grid});
  }
  optim::AdamWOptions opts;
  opts.lr = 0.05; // large, so many weights move
  optim::AdamW adam({&weights[0], &weights[1]}, opts);
  for (int t = 1; t <= 3; ++t) {
    for (size_t p = 0; p < weights.size(); ++p)
      weights[p].grad().copy_(randomGrad(init[p].sizes(), 10 * t + p, 9973));
    double alpha = opts.lr * std::sqrt(1 - std::pow(opts.beta2, t)) /
                   (1 - std::pow(opts.beta1, t));
    std::vector<float> h = {float(opts.beta1), float(opts.beta2), float(alpha),
                            float(opts.eps), float(opts.lr * opts.weightDecay)};
    std::vector<StepStats> got = adam.step();
    for (size_t p = 0; p < weights.size(); ++p) {
      SCOPED_TRACE(::testing::Message() << "step " << t << " param " << p);
      StepStats want =
          refStep(refs[p], weights[p].grad(), true, h, opts.seed, t, p);
      ASSERT_TRUE(sameBytes(weights[p].q(), refs[p].q));
      ASSERT_TRUE(sameBytes(adam.state(p, 0), refs[p].s0));
      ASSERT_TRUE(sameBytes(adam.state(p, 1), refs[p].s1));
      EXPECT_EQ(weights[p].delta(), refs[p].delta);
      EXPECT_EQ(got[p].maxQ, want.maxQ);
      EXPECT_EQ(got[p].changed, want.changed);
      EXPECT_EQ(got[p].nonFinite, want.nonFinite);
      EXPECT_GT(got[p].nonFinite, 0);
      if (p == 0) {
        EXPECT_GT(got[p].changed, weights[p].numel() / 100);
      }
    }
  }
}

TEST_P(OptimMatchesReference, SGDThreeStepsBitIdentical) {
  Grid grid = Grid::fromBits(GetParam());
  at::Generator gen = at::detail::createCPUGenerator(4);
  at::Tensor init = at::randn({333, 301}, gen);
  QuantizedWeight w = QuantizedWeight::fromFloat(init, grid);
  RefParam ref{w.q().clone(), at::zeros_like(init), {}, w.delta(), w.maxQ(),
               grid};
  optim::SGDOptions opts;
  opts.lr = 0.02;
  opts.weightDecay = 0.01;
  optim::SGD sgd({&w}, opts);
  for (int t = 1; t <= 3; ++t) {
    w.grad().copy_(randomGrad(init.sizes(), 7 * t, 9973));
    std::vector<float> h = {float(opts.lr), float(opts.momentum),
                            float(opts.lr * opts.weightDecay)};
    StepStats got = sgd.step()[0];
    StepStats want = refStep(ref, w.grad(), false, h, opts.seed, t, 0);
    ASSERT_TRUE(sameBytes(w.q(), ref.q)) << "step " << t;
    ASSERT_TRUE(sameBytes(sgd.state(0, 0), ref.s0)) << "step " << t;
    EXPECT_EQ(w.delta(), ref.delta);
    EXPECT_EQ(got.changed, want.changed);
    EXPECT_EQ(got.maxQ, want.maxQ);
    EXPECT_EQ(got.nonFinite, want.nonFinite);
  }
}

INSTANTIATE_TEST_SUITE_P(Grids, OptimMatchesReference,
                         ::testing::Values(1.58, 2.0, 3.0, 4.0, 8.0),
                         [](const auto &info) {
                           return test::gridName(info.param);
                         });

TEST(OptimThreads, ResultsDoNotDependOnTheThreadCount) {
  at::Generator gen = at::detail::createCPUGenerator(5);
  at::Tensor init = at::randn({1 << 19}, gen); // 8 chunks of 2^16
  at::Tensor grad = randomGrad(init.sizes(), 6, 9973);
  std::vector<at::Tensor> q, m;
  std::vector<StepStats> stats;
  int before = at::get_num_threads();
  for (int threads : {1, 2, 3}) {
    at::set_num_threads(threads);
    QuantizedWeight w = QuantizedWeight::fromFloat(init, Grid::fromBits(4));
    optim::AdamW adam({&w}, optim::AdamWOptions{0.05});
    w.grad().copy_(grad);
    stats.push_back(adam.step()[0]);
    q.push_back(w.q().clone());
    m.push_back(adam.state(0, 1).clone());
  }
  at::set_num_threads(before);
  for (size_t i = 1; i < q.size(); ++i) {
    EXPECT_TRUE(sameBytes(q[0], q[i])) << i;
    EXPECT_TRUE(sameBytes(m[0], m[i])) << i;
    EXPECT_EQ(stats[0].changed, stats[i].changed);
    EXPECT_EQ(stats[0].maxQ, stats[i].maxQ);
    EXPECT_EQ(stats[0].nonFinite, stats[i].nonFinite);
  }
}

TEST(OptimGroups, OneKernelPerConfiguration) {
  at::Generator gen = at::detail::createCPUGenerator(8);
  std::vector<QuantizedWeight> ws;
  for (double bits : {8.0, 4.0, 8.0, 1.58, 4.0})
    ws.push_back(QuantizedWeight::fromFloat(at::randn({1000}, gen),
                                            Grid::fromBits(bits)));
  std::vector<QuantizedWeight *> ptrs;
  for (auto &w : ws) {
    w.grad().copy_(at::randn({1000}, gen));
    ptrs.push_back(&w);
  }
  optim::AdamW adam(ptrs);
  adam.step();
  int64_t compiled = KernelCache::global().compilations();
  for (auto &w : ws)
    w.grad().copy_(at::randn({1000}, gen));
  adam.setLr(1e-4); // a schedule never recompiles
  adam.step();
  EXPECT_EQ(KernelCache::global().compilations(), compiled);
  EXPECT_EQ(adam.stepCount(), 2);
}

/// A bad input throws and changes nothing.
class OptimBadInput : public ::testing::Test {
protected:
  void SetUp() override {
    at::Generator gen = at::detail::createCPUGenerator(9);
    ws.push_back(QuantizedWeight::fromFloat(at::randn({8, 4}, gen), Grid{8}));
    ws.push_back(QuantizedWeight::fromFloat(at::randn({6}, gen), Grid{8}));
    for (auto &w : ws)
      w.grad().copy_(at::randn(w.q().sizes(), gen));
    adam = std::make_unique<optim::AdamW>(
        std::vector<QuantizedWeight *>{&ws[0], &ws[1]});
    for (auto &w : ws)
      before.push_back(w.q().clone());
  }
  void expectUnchanged() {
    for (size_t p = 0; p < ws.size(); ++p) {
      EXPECT_TRUE(sameBytes(ws[p].q(), before[p])) << p;
      EXPECT_EQ(adam->state(p, 0).abs().sum().item<float>(), 0.0f);
    }
    EXPECT_EQ(adam->stepCount(), 0);
  }
  std::vector<QuantizedWeight> ws;
  std::vector<at::Tensor> before;
  std::unique_ptr<optim::AdamW> adam;
};

TEST_F(OptimBadInput, GradShapeMismatchNamesTheParameter) {
  ws[1].grad() = at::zeros({7});
  EXPECT_NE(test::errorMessage([&] {
              adam->step();
            }).find("grad of parameter 1 has shape [7], expected [6]"),
            std::string::npos);
  expectUnchanged();
}

TEST_F(OptimBadInput, GradDtypeMismatch) {
  ws[0].grad() = at::zeros({8, 4}, at::kDouble);
  EXPECT_NE(test::errorMessage([&] {
              adam->step();
            }).find("grad of parameter 0 must be float32, got Double"),
            std::string::npos);
  expectUnchanged();
}

TEST_F(OptimBadInput, MissingGradientSkipsTheParameter) {
  // As torch.optim: a parameter without a gradient is left as it is.
  ws[1].clearGrad();
  std::vector<StepStats> stats = adam->step();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_TRUE(sameBytes(ws[1].q(), before[1]));
  EXPECT_EQ(adam->state(1, 0).abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(stats[1].maxQ, -1);
  EXPECT_EQ(stats[1].changed, -1);
  EXPECT_GT(stats[0].changed, 0);
  EXPECT_FALSE(sameBytes(ws[0].q(), before[0]));
  EXPECT_EQ(adam->stepCount(), 1);
}

TEST_F(OptimBadInput, NonContiguousGradient) {
  ws[0].grad() = at::zeros({4, 8}).t();
  EXPECT_NE(
      test::errorMessage([&] { adam->step(); }).find("must be contiguous"),
      std::string::npos);
  expectUnchanged();
}

TEST_F(OptimBadInput, HyperParametersOutOfRange) {
  std::vector<QuantizedWeight *> p = {&ws[0]};
  EXPECT_NE(test::errorMessage([&] {
              optim::AdamW(p, optim::AdamWOptions{-1e-3});
            }).find("lr must be finite and >= 0, got -0.001"),
            std::string::npos);
  optim::AdamWOptions o;
  o.beta1 = 1.0;
  EXPECT_NE(test::errorMessage([&] {
              optim::AdamW(p, o);
            }).find("beta1 must be in [0, 1), got 1"),
            std::string::npos);
  o = {};
  o.beta2 = -0.5;
  EXPECT_NE(test::errorMessage([&] {
              optim::AdamW(p, o);
            }).find("beta2 must be in [0, 1)"),
            std::string::npos);
  EXPECT_NE(
      test::errorMessage([&] { adam->setLr(NAN); }).find("lr must be finite"),
      std::string::npos);
  EXPECT_EQ(adam->lr(), 5e-4);
  expectUnchanged();
}

TEST(QuantizedWeightInit, MatchesTheContractAndRefusesBadInput) {
  at::Generator gen = at::detail::createCPUGenerator(11);
  at::Tensor w = at::randn({64, 33}, gen);
  for (double bits : {1.58, 2.0, 4.0, 8.0}) {
    Grid g = Grid::fromBits(bits);
    QuantizedWeight q = QuantizedWeight::fromFloat(w, g);
    double sum = 0; // in element order, in double (docs/numerics.md)
    for (int64_t i = 0; i < w.numel(); ++i)
      sum += std::fabs(double(w.view({-1})[i].item<float>()));
    float s = float(double(g.qp()) / std::max(sum / w.numel(), 1e-5));
    at::Tensor want =
        (w * s).round().clamp(double(g.qn()), double(g.qp())).to(at::kChar);
    EXPECT_TRUE(sameBytes(q.q(), want)) << bits;
    EXPECT_EQ(q.delta(), 1.0f / s);
    EXPECT_EQ(q.maxQ(), want.max().item<int8_t>());
    EXPECT_EQ(q.persistentBytes(), w.numel() + 5);
    EXPECT_TRUE(at::allclose(q.dequantize(), want.to(at::kFloat) / s));
  }
  EXPECT_THROW(Grid::fromBits(9), c10::Error);
  EXPECT_THROW(Grid::fromBits(1), c10::Error);
  EXPECT_THROW(Grid::fromBits(2.5), c10::Error);
  EXPECT_THROW(QuantizedWeight::fromFloat(at::empty({0}), Grid{}), c10::Error);
  EXPECT_THROW(QuantizedWeight::fromFloat(at::full({3}, NAN), Grid{}),
               c10::Error);
  EXPECT_THROW(QuantizedWeight::fromFloat(at::ones({3}, at::kInt), Grid{}),
               c10::Error);
}

} // namespace
