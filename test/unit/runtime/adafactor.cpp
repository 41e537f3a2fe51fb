//===- adafactor.cpp - dqt::optim::Adafactor vs LibTorch ops --------------===//
//
// dqt::optim::Adafactor against an independent reference written with plain
// LibTorch tensor ops: reductions as explicit ordered sums of tensor slices
// in double, element math in f32 (full-size divisors: ATen divides by a 0-dim
// tensor as a multiplication by its reciprocal), the Philox stream from the
// test's scalar implementation. Bit-identical weights, states, scales and
// statistics over several steps; identical for any thread count; non-finite
// gradients masked and counted; bad inputs refused without side effects;
// bit-exact resume; state bytes.
//
//===----------------------------------------------------------------------===//

#include "../StepReference.h"
#include "TestUtil.h"
#include "TorchReference.h"

#include "dqt/Runtime/Adafactor.h"
#include "dqt/Runtime/KernelCache.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

using namespace dqt;
using test::sameBytes;

namespace {

using dqt::test::f;
using dqt::test::randomGrad;
using dqt::test::sqrtIEEE;
using dqt::test::sroundBF16;
using dqt::test::stateBits;
using dqt::test::stochasticRound;
using dqt::test::uniforms;


/// Row sums of a double [R, C] tensor, each summed in column order.
at::Tensor rowSumsInOrder(const at::Tensor &x) {
  at::Tensor acc = at::zeros({x.size(0)}, at::kDouble);
  for (int64_t j = 0; j < x.size(1); ++j)
    acc = acc + x.select(1, j);
  return acc;
}

/// Column sums of a double [R, C] tensor, each summed in row order.
at::Tensor colSumsInOrder(const at::Tensor &x) {
  at::Tensor acc = at::zeros({x.size(1)}, at::kDouble);
  for (int64_t i = 0; i < x.size(0); ++i)
    acc = acc + x.select(0, i);
  return acc;
}

double sumInOrder(const at::Tensor &x) {
  at::Tensor c = x.to(at::kDouble).contiguous();
  const double *p = c.data_ptr<double>();
  double s = 0;
  for (int64_t i = 0; i < c.numel(); ++i)
    s += p[i];
  return s;
}

/// One parameter as the reference sees it.
struct RefParam {
  at::Tensor q;
  float delta;
  int8_t maxq;
  Grid grid;
  std::vector<at::Tensor> states; // r, c or v; then m when beta1 > 0
};

std::vector<at::Tensor> refStates(at::IntArrayRef shape, bool momentum,
                                  at::ScalarType moment = at::kFloat);

RefParam refOf(const QuantizedWeight &w, bool momentum,
               at::ScalarType moment = at::kFloat) {
  return {w.q().clone(), w.delta(), w.maxQ(), w.grid(),
          refStates(w.q().sizes(), momentum, moment)};
}

/// Kernel 1 of the reference (docs/numerics.md): updates `states` (r, c or
/// v) from `grad` and returns the clipped update scaled by 1 - beta1, NaN
/// where the gradient is not finite.
at::Tensor refClippedUpdate(std::vector<at::Tensor> &states,
                            const at::Tensor &g,
                            const optim::AdafactorOptions &o, int64_t t) {
  at::Tensor finite = g.isfinite();
  at::Tensor gd = g.to(at::kDouble);
  at::Tensor g2 = at::where(finite, gd * gd + o.eps1, 0.0);
  double b = 1.0 - std::pow(double(t), o.decayRate), w = 1.0 - b;
  at::Tensor u;
  double sumSq;
  if (g.dim() == 2) {
    int64_t R = g.size(0), C = g.size(1);
    at::Tensor rowMean =
        rowSumsInOrder(g2) / at::full({R}, double(C), at::kDouble);
    at::Tensor colMean =
        colSumsInOrder(g2) / at::full({C}, double(R), at::kDouble);
    at::Tensor &r = states[0], &c = states[1];
    r = (r.to(at::kDouble).mul(b) + rowMean.mul(w)).to(at::kFloat);
    c = (c.to(at::kDouble).mul(b) + colMean.mul(w)).to(at::kFloat);
    float rmean = float(sumInOrder(r) / double(R));
    at::Tensor rn = r / at::full_like(r, rmean);
    at::Tensor vhat = rn.unsqueeze(1) * c.unsqueeze(0);
    u = at::where(finite, g / sqrtIEEE(vhat), f(NAN));
    at::Tensor u2 =
        at::where(u.isfinite(), u.to(at::kDouble) * u.to(at::kDouble), 0.0);
    sumSq = sumInOrder(rowSumsInOrder(u2));
  } else {
    at::Tensor &v = states[0];
    v = at::where(finite,
                  (v.to(at::kDouble).mul(b) + g2.mul(w)).to(at::kFloat), v);
    u = at::where(finite, g / sqrtIEEE(v), f(NAN));
    at::Tensor u2 = at::where(u.isfinite(), u.to(at::kDouble) * u.to(at::kDouble),
                              0.0)
                        .flatten();
    int64_t n = u2.numel(), blocks = (n + 1023) / 1024;
    u2 = at::cat({u2, at::zeros({blocks * 1024 - n}, at::kDouble)});
    sumSq = sumInOrder(rowSumsInOrder(u2.view({blocks, 1024})));
  }
  double rms = std::sqrt(sumSq / double(g.numel()));
  float clip = float(std::max(1.0, rms / o.clipThreshold));
  return (u / at::full_like(u, clip)) * f(1.0f - float(o.beta1));
}

/// The states of a parameter of `shape`: r, c or v; then m when beta1 > 0.
std::vector<at::Tensor> refStates(at::IntArrayRef shape, bool momentum,
                                  at::ScalarType moment) {
  std::vector<at::Tensor> states;
  if (shape.size() == 2) {
    states.push_back(at::zeros({shape[0]}));
    states.push_back(at::zeros({shape[1]}));
  } else {
    states.push_back(at::zeros(shape));
  }
  if (momentum)
    states.push_back(at::zeros(shape, moment));
  return states;
}

/// One Adafactor step of the reference (docs/numerics.md).
StepStats refStep(RefParam &p, const at::Tensor &grad,
                  const optim::AdafactorOptions &o, uint64_t seed, int64_t t,
                  int64_t tid) {
  const at::Tensor &g = grad;
  at::Tensor ut = refClippedUpdate(p.states, g, o, t);

  // The SGD kernel's math with momentum beta1 (docs/numerics.md); a bf16
  // m widens exactly and is stored with stochastic rounding (the state
  // stream's low 16 bits).
  at::Tensor ufin = ut.isfinite();
  at::Tensor stored = o.beta1 > 0 ? p.states.back() : ut;
  bool bf16 = stored.scalar_type() == at::kBFloat16;
  at::Tensor prev = stored.to(at::kFloat);
  at::Tensor buf = f(float(o.beta1)) * prev + ut;
  float deltaNext = ref::nextDelta(p.delta, p.maxq, p.grid.qp());
  at::Tensor wq = p.q.to(at::kFloat) * f(p.delta);
  at::Tensor w1 = wq - f(float(o.lr)) * buf;
  at::Tensor w2 = w1 - f(float(o.lr * o.weightDecay)) * w1;
  at::Tensor q1 = stochasticRound(w2.flatten(), deltaNext,
                                  uniforms(seed, t, tid, g.numel()), p.grid)
                      .view_as(p.q);
  q1 = at::where(ufin, q1, p.q);
  if (o.beta1 > 0)
    p.states.back() =
        bf16 ? at::where(ufin,
                         sroundBF16(buf.flatten(),
                                    stateBits(seed, t, tid, g.numel()) & 0xffff)
                             .view(g.sizes()),
                         stored)
             : at::where(ufin, buf, prev);
  StepStats st{q1.max().item<int8_t>(), (q1 != p.q).sum().item<int64_t>(),
               (~ufin).sum().item<int64_t>()};
  p.q = q1;
  p.delta = deltaNext;
  p.maxq = int8_t(st.maxQ);
  return st;
}

/// (bits, beta1). With beta1 > 0 the first moment holds the update's exact
/// bits (a 1-ulp change of u fails these cases); without it only the
/// weights, r, c and v witness u.
class AdafactorMatchesReference
    : public ::testing::TestWithParam<std::tuple<double, double>> {};

/// Three steps of three parameters against the reference; `moment` is the
/// first moment's storage.
void checkThreeSteps(double bits, double beta1, StateType moment);

TEST_P(AdafactorMatchesReference, ThreeStepsBitIdentical) {
  auto [bits, beta1] = GetParam();
  checkThreeSteps(bits, beta1, StateType::F32);
}

/// The first moment stored as bf16 (stochastic rounding in the kernel).
class AdafactorBF16Moment : public ::testing::TestWithParam<double> {};

TEST_P(AdafactorBF16Moment, ThreeStepsBitIdentical) {
  checkThreeSteps(GetParam(), 0.9, StateType::BF16);
}

INSTANTIATE_TEST_SUITE_P(Grids, AdafactorBF16Moment,
                         ::testing::Values(1.58, 4.0, 8.0),
                         [](const auto &info) {
                           return test::gridName(info.param);
                         });

void checkThreeSteps(double bits, double beta1, StateType moment) {
  at::ScalarType momentDtype =
      moment == StateType::BF16 ? at::kBFloat16 : at::kFloat;
  Grid grid = Grid::fromBits(bits);
  at::Generator gen = at::detail::createCPUGenerator(21);
  // Factored (odd sizes), 1-D and 3-D unfactored: one grid, one launch.
  std::vector<at::Tensor> init = {at::randn({131, 67}, gen),
                                  at::randn({1031}, gen) * 0.1,
                                  at::randn({3, 5, 70}, gen)};
  std::vector<QuantizedWeight> weights;
  for (auto &w : init)
    weights.push_back(QuantizedWeight::fromFloat(w, grid));
  std::vector<RefParam> refs;
  for (auto &w : weights)
    refs.push_back(refOf(w, beta1 > 0, momentDtype));
  optim::AdafactorOptions opts;
  opts.lr = grid.ternary ? 0.2 : 0.02; // large, so many weights move
  opts.beta1 = beta1;
  opts.stateType = moment;
  opts.weightDecay = 0.1;
  optim::Adafactor ada({&weights[0], &weights[1], &weights[2]}, opts);
  ada.setTensorIds({7, 3, 11});
  const int64_t tids[] = {7, 3, 11};
  int64_t changed[3] = {0, 0, 0};
  for (int t = 1; t <= 3; ++t) {
    for (size_t p = 0; p < weights.size(); ++p)
      weights[p].grad().copy_(randomGrad(init[p].sizes(), 10 * t + p, 997));
    if (t == 3) { // a schedule, and a clip that binds
      ada.setLr(opts.lr / 2);
      opts.lr /= 2;
      opts.clipThreshold = 0.5;
      ada.setOptions(opts);
    }
    std::vector<StepStats> got = ada.step();
    for (size_t p = 0; p < weights.size(); ++p) {
      SCOPED_TRACE(::testing::Message() << "step " << t << " param " << p);
      StepStats want =
          refStep(refs[p], weights[p].grad(), opts, opts.seed, t, tids[p]);
      ASSERT_TRUE(sameBytes(weights[p].q(), refs[p].q));
      ASSERT_EQ(ada.numStates(p), refs[p].states.size());
      for (size_t k = 0; k < refs[p].states.size(); ++k)
        ASSERT_TRUE(sameBytes(ada.state(p, k), refs[p].states[k])) << k;
      EXPECT_EQ(weights[p].delta(), refs[p].delta);
      EXPECT_EQ(weights[p].maxQ(), refs[p].maxq);
      EXPECT_EQ(got[p].maxQ, want.maxQ);
      EXPECT_EQ(got[p].changed, want.changed);
      EXPECT_EQ(got[p].nonFinite, want.nonFinite);
      EXPECT_EQ(got[p].nonFinite,
                (~weights[p].grad().isfinite()).sum().item<int64_t>());
      EXPECT_GT(got[p].changed, 0);
      changed[p] += got[p].changed;
    }
  }
  for (size_t p = 0; p < weights.size(); ++p) // the test is not vacuous
    EXPECT_GT(changed[p], weights[p].numel() / 50) << p;
  EXPECT_EQ(ada.stepCount(), 3);
}

INSTANTIATE_TEST_SUITE_P(
    Grids, AdafactorMatchesReference,
    ::testing::Combine(::testing::Values(1.58, 4.0, 8.0),
                       ::testing::Values(0.0, 0.9)),
    [](const auto &info) {
      return test::gridName(std::get<0>(info.param)) +
             (std::get<1>(info.param) > 0 ? "Beta1" : "NoBeta1");
    });

TEST(AdafactorThreads, ResultsDoNotDependOnTheThreadCount) {
  at::Generator gen = at::detail::createCPUGenerator(5);
  // Several row and column chunks, and 2^18 + 3 elements of RMS blocks.
  std::vector<at::Tensor> init = {at::randn({700, 600}, gen),
                                  at::randn({(1 << 18) + 3}, gen)};
  std::vector<at::Tensor> grads = {randomGrad(init[0].sizes(), 6, 997),
                                   randomGrad(init[1].sizes(), 7, 997)};
  std::vector<std::vector<at::Tensor>> results;
  std::vector<std::vector<StepStats>> stats;
  int before = at::get_num_threads();
  for (int threads : {1, 2, 3}) {
    at::set_num_threads(threads);
    std::vector<QuantizedWeight> w;
    for (auto &i : init)
      w.push_back(QuantizedWeight::fromFloat(i, Grid::fromBits(4)));
    optim::AdafactorOptions o;
    o.lr = 0.05;
    o.beta1 = 0.5;
    optim::Adafactor ada({&w[0], &w[1]}, o);
    std::vector<at::Tensor> r;
    for (int t = 0; t < 2; ++t) {
      for (size_t p = 0; p < 2; ++p)
        w[p].grad().copy_(grads[p] * float(t + 1));
      stats.push_back(ada.step());
    }
    for (size_t p = 0; p < 2; ++p) {
      r.push_back(w[p].q().clone());
      for (size_t k = 0; k < ada.numStates(p); ++k)
        r.push_back(ada.state(p, k).clone());
    }
    results.push_back(std::move(r));
  }
  at::set_num_threads(before);
  for (size_t i = 1; i < results.size(); ++i) {
    for (size_t k = 0; k < results[0].size(); ++k)
      EXPECT_TRUE(sameBytes(results[0][k], results[i][k])) << i << " " << k;
    for (size_t s = 0; s < 2; ++s)
      for (size_t p = 0; p < 2; ++p) {
        EXPECT_EQ(stats[s][p].changed, stats[2 * i + s][p].changed);
        EXPECT_EQ(stats[s][p].maxQ, stats[2 * i + s][p].maxQ);
        EXPECT_EQ(stats[s][p].nonFinite, stats[2 * i + s][p].nonFinite);
      }
  }
}

TEST(AdafactorNonFinite, NeverReachWeightsOrStatesAndAreCounted) {
  at::Generator gen = at::detail::createCPUGenerator(12);
  std::vector<QuantizedWeight> w;
  w.push_back(QuantizedWeight::fromFloat(at::randn({40, 30}, gen), Grid{8}));
  w.push_back(QuantizedWeight::fromFloat(at::randn({500}, gen), Grid{8}));
  optim::AdafactorOptions o;
  o.lr = 0.05;
  o.beta1 = 0.9;
  optim::Adafactor ada({&w[0], &w[1]}, o);
  for (auto &x : w)
    x.grad().copy_(at::randn(x.q().sizes(), gen));
  ada.step(); // states not zero
  std::vector<at::Tensor> q0, m0;
  for (size_t p = 0; p < 2; ++p) {
    w[p].grad().copy_(at::randn(w[p].q().sizes(), gen));
    at::Tensor flat = w[p].grad().view({-1});
    flat[0] = NAN;
    flat[7] = INFINITY;
    flat[flat.numel() - 1] = -INFINITY;
    q0.push_back(w[p].q().clone());
    m0.push_back(ada.state(p, ada.numStates(p) - 1).clone());
  }
  at::Tensor v0 = ada.state(1, 0).clone();
  // A whole row of the factored parameter not finite.
  w[0].grad()[5].fill_(NAN);
  std::vector<StepStats> st = ada.step();
  EXPECT_EQ(st[0].nonFinite, 30 + 3);
  EXPECT_EQ(st[1].nonFinite, 3);
  for (size_t p = 0; p < 2; ++p) {
    at::Tensor bad = ~w[p].grad().isfinite();
    EXPECT_TRUE(at::equal(w[p].q().masked_select(bad), q0[p].masked_select(bad)));
    at::Tensor m = ada.state(p, ada.numStates(p) - 1);
    EXPECT_TRUE(sameBytes(m.masked_select(bad), m0[p].masked_select(bad)));
    EXPECT_FALSE(at::equal(w[p].q(), q0[p])); // the finite ones moved
    for (size_t k = 0; k < ada.numStates(p); ++k)
      EXPECT_TRUE(ada.state(p, k).isfinite().all().item<bool>()) << p << k;
  }
  at::Tensor bad1 = ~w[1].grad().isfinite();
  EXPECT_TRUE(sameBytes(ada.state(1, 0).masked_select(bad1),
                        v0.masked_select(bad1)));
}

/// A bad input throws and changes nothing.
class AdafactorBadInput : public ::testing::Test {
protected:
  void SetUp() override {
    at::Generator gen = at::detail::createCPUGenerator(9);
    ws.push_back(QuantizedWeight::fromFloat(at::randn({8, 4}, gen), Grid{8}));
    ws.push_back(QuantizedWeight::fromFloat(at::randn({6}, gen), Grid{4}));
    for (auto &w : ws)
      w.grad().copy_(at::randn(w.q().sizes(), gen));
    optim::AdafactorOptions o;
    o.beta1 = 0.9;
    ada = std::make_unique<optim::Adafactor>(
        std::vector<QuantizedWeight *>{&ws[0], &ws[1]}, o);
    for (auto &w : ws)
      before.push_back(w.q().clone());
  }
  void expectUnchanged() {
    for (size_t p = 0; p < ws.size(); ++p) {
      EXPECT_TRUE(sameBytes(ws[p].q(), before[p])) << p;
      for (size_t k = 0; k < ada->numStates(p); ++k)
        EXPECT_EQ(ada->state(p, k).abs().sum().item<float>(), 0.0f);
    }
    EXPECT_EQ(ada->stepCount(), 0);
  }
  std::string stepError() {
    return test::errorMessage([&] { ada->step(); });
  }
  std::vector<QuantizedWeight> ws;
  std::vector<at::Tensor> before;
  std::unique_ptr<optim::Adafactor> ada;
};

TEST_F(AdafactorBadInput, GradientsRefused) {
  ws[1].grad() = at::zeros({7});
  EXPECT_NE(stepError().find("grad of parameter 1 has shape [7], expected [6]"),
            std::string::npos);
  expectUnchanged();
  ws[1].grad() = at::zeros({6});
  ws[0].grad() = at::zeros({8, 4}, at::kDouble);
  EXPECT_NE(stepError().find("grad of parameter 0 must be float32, got Double"),
            std::string::npos);
  expectUnchanged();
  ws[0].grad() = at::zeros({4, 8}).t();
  EXPECT_NE(stepError().find("must be contiguous"), std::string::npos);
  expectUnchanged();
}

TEST_F(AdafactorBadInput, OptionsNameTheArgument) {
  std::vector<QuantizedWeight *> p = {&ws[0]};
  auto ctorError = [&](optim::AdafactorOptions o) {
    return test::errorMessage([&] { optim::Adafactor(p, o); });
  };
  optim::AdafactorOptions o;
  o.lr = -1e-3;
  EXPECT_NE(ctorError(o).find("lr must be finite and >= 0, got -0.001"),
            std::string::npos);
  o = {};
  o.beta1 = 1.0;
  EXPECT_NE(ctorError(o).find("beta1 must be in [0, 1), got 1"),
            std::string::npos);
  o = {};
  o.decayRate = 0.8;
  EXPECT_NE(ctorError(o).find("decay_rate must be in [-1, 0), got 0.8"),
            std::string::npos);
  o = {};
  o.eps1 = 0;
  EXPECT_NE(ctorError(o).find("eps1 must be finite and > 0"),
            std::string::npos);
  o = {};
  o.clipThreshold = NAN;
  EXPECT_NE(ctorError(o).find("clip_threshold must be finite and > 0"),
            std::string::npos);
  o = {};
  o.weightDecay = -1;
  EXPECT_NE(ctorError(o).find("weight_decay must be finite and >= 0"),
            std::string::npos);
  EXPECT_NE(ctorError({}).find("no error"), std::string::npos);
  // No integer weights: an optimizer of float parameters only.
  EXPECT_NE(test::errorMessage([&] {
              optim::Adafactor(std::vector<QuantizedWeight *>{}, {});
            }).find("no error"),
            std::string::npos);

  // setOptions and setLr validate first and change nothing on error.
  optim::AdafactorOptions live = ada->options();
  o = live;
  o.beta1 = 0;
  EXPECT_NE(test::errorMessage([&] { ada->setOptions(o); })
                .find("beta1 cannot switch between 0 and > 0"),
            std::string::npos);
  o = live;
  o.lr = 0.5;
  o.clipThreshold = -1;
  EXPECT_NE(test::errorMessage([&] { ada->setOptions(o); })
                .find("clip_threshold"),
            std::string::npos);
  EXPECT_NE(test::errorMessage([&] { ada->setLr(INFINITY); })
                .find("lr must be finite"),
            std::string::npos);
  EXPECT_EQ(ada->lr(), live.lr);
  EXPECT_EQ(ada->options().clipThreshold, live.clipThreshold);
  expectUnchanged();
}

TEST_F(AdafactorBadInput, RestoreValidatesFirst) {
  std::vector<std::vector<at::Tensor>> states = {
      {at::ones({8}), at::ones({4}), at::ones({8, 4})},
      {at::ones({6}), at::ones({5})}};
  EXPECT_NE(test::errorMessage([&] { ada->restore(3, 1, states); })
                .find("state 1 of parameter 1 must be Float of shape [6]"),
            std::string::npos);
  expectUnchanged();
  states[1][1] = at::ones({6});
  ada->restore(3, 1, states);
  EXPECT_EQ(ada->stepCount(), 3);
  EXPECT_EQ(ada->seed(), 1u);
  EXPECT_TRUE(at::equal(ada->state(0, 1), at::ones({4})));
}

TEST(AdafactorMemory, StateBytes) {
  at::Generator gen = at::detail::createCPUGenerator(2);
  QuantizedWeight a = QuantizedWeight::fromFloat(at::randn({64, 48}, gen),
                                                 Grid::fromBits(4));
  QuantizedWeight b =
      QuantizedWeight::fromFloat(at::randn({100}, gen), Grid::fromBits(4));
  QuantizedWeight c =
      QuantizedWeight::fromFloat(at::randn({2, 3, 4}, gen), Grid::fromBits(4));
  optim::Adafactor plain({&a, &b, &c});
  EXPECT_TRUE(plain.factored(0));
  EXPECT_FALSE(plain.factored(1));
  EXPECT_FALSE(plain.factored(2));
  EXPECT_EQ(plain.stateBytes(), 4 * (64 + 48) + 4 * 100 + 4 * 24);
  optim::AdafactorOptions o;
  o.beta1 = 0.9;
  optim::Adafactor momentum({&a, &b, &c}, o);
  EXPECT_EQ(momentum.stateBytes(),
            4 * (64 + 48) + 4 * 100 + 4 * 24 + 4 * (64 * 48 + 100 + 24));
  EXPECT_EQ(momentum.numStates(0), 3u);
  EXPECT_EQ(momentum.numStates(1), 2u);
  // A bf16 first moment: 2 bytes per element; the statistics stay f32.
  o.stateType = StateType::BF16;
  optim::Adafactor half({&a, &b, &c}, o);
  EXPECT_EQ(half.stateBytes(),
            4 * (64 + 48) + 4 * 100 + 4 * 24 + 2 * (64 * 48 + 100 + 24));
  EXPECT_EQ(half.state(0, 2).scalar_type(), at::kBFloat16);
  EXPECT_EQ(half.state(0, 0).scalar_type(), at::kFloat);
  // Fixed at construction.
  optim::AdafactorOptions f32 = half.options();
  f32.stateType = StateType::F32;
  EXPECT_THROW(half.setOptions(f32), c10::Error);
}

TEST(AdafactorGroups, OneKernelPerGridAndNoRecompilation) {
  at::Generator gen = at::detail::createCPUGenerator(8);
  std::vector<QuantizedWeight> ws;
  for (double bits : {8.0, 4.0, 8.0, 1.58})
    ws.push_back(QuantizedWeight::fromFloat(at::randn({20, 50}, gen),
                                            Grid::fromBits(bits)));
  std::vector<QuantizedWeight *> ptrs;
  for (auto &w : ws) {
    w.grad().copy_(at::randn({20, 50}, gen));
    ptrs.push_back(&w);
  }
  optim::Adafactor ada(ptrs);
  ada.step();
  int64_t compiled = KernelCache::global().compilations();
  for (auto &w : ws)
    w.grad().copy_(at::randn({20, 50}, gen));
  ada.setLr(1e-4);
  ada.step();
  EXPECT_EQ(KernelCache::global().compilations(), compiled);
}

TEST(AdafactorPacked, PackedTernaryStepsLikeInt8Ternary) {
  at::Generator gen = at::detail::createCPUGenerator(17);
  // Sizes not multiples of 4: the last byte is partial.
  std::vector<at::Tensor> init = {at::randn({37, 29}, gen),
                                  at::randn({103}, gen)};
  Grid ternary = Grid::fromBits(1.58);
  for (double beta1 : {0.0, 0.9}) {
    SCOPED_TRACE(::testing::Message() << "beta1 " << beta1);
    std::vector<QuantizedWeight> plain, packed;
    for (auto &w : init) {
      plain.push_back(QuantizedWeight::fromFloat(w, ternary));
      packed.push_back(
          QuantizedWeight::fromFloat(w, ternary, Storage::PackedTernary));
    }
    optim::AdafactorOptions o;
    o.lr = 0.2;
    o.beta1 = beta1;
    o.weightDecay = 0.1;
    optim::Adafactor a({&plain[0], &plain[1]}, o), b({&packed[0], &packed[1]},
                                                      o);
    EXPECT_TRUE(b.factored(0));
    EXPECT_EQ(a.stateBytes(), b.stateBytes());
    int64_t changed = 0;
    for (int t = 1; t <= 3; ++t) {
      for (size_t p = 0; p < 2; ++p) {
        at::Tensor g = randomGrad(init[p].sizes(), 50 * t + p, 997);
        plain[p].grad().copy_(g);
        packed[p].grad().copy_(g);
      }
      std::vector<StepStats> sa = a.step(), sb = b.step();
      for (size_t p = 0; p < 2; ++p) {
        SCOPED_TRACE(::testing::Message() << "step " << t << " param " << p);
        ASSERT_TRUE(packed[p].isPacked());
        ASSERT_TRUE(sameBytes(packed[p].unpack(), plain[p].q()));
        EXPECT_EQ(packed[p].delta(), plain[p].delta());
        EXPECT_EQ(packed[p].maxQ(), plain[p].maxQ());
        EXPECT_EQ(sa[p].changed, sb[p].changed);
        EXPECT_EQ(sa[p].maxQ, sb[p].maxQ);
        EXPECT_EQ(sa[p].nonFinite, sb[p].nonFinite);
        changed += sb[p].changed;
        for (size_t k = 0; k < a.numStates(p); ++k)
          ASSERT_TRUE(sameBytes(a.state(p, k), b.state(p, k))) << k;
      }
    }
    EXPECT_GT(changed, 0);

    // Resume of packed weights: the bytes, the shape and the storage kind.
    auto dir = test::freshTestDirectory("dqt-adafactor-packed");
    std::filesystem::create_directories(dir);
    b.save(dir / "packed.safetensors");
    std::vector<QuantizedWeight> fresh;
    for (auto &w : init)
      fresh.push_back(QuantizedWeight::fromFloat(w * 0.5, ternary,
                                                 Storage::PackedTernary));
    optim::Adafactor c({&fresh[0], &fresh[1]}, o);
    c.load(dir / "packed.safetensors");
    for (size_t p = 0; p < 2; ++p) {
      EXPECT_TRUE(sameBytes(fresh[p].q(), packed[p].q())) << p;
      for (size_t k = 0; k < c.numStates(p); ++k)
        EXPECT_TRUE(sameBytes(c.state(p, k), b.state(p, k))) << p << k;
    }
    // An int8 model refuses the packed file, unchanged.
    at::Tensor q0 = plain[0].q().clone();
    EXPECT_NE(test::errorMessage([&] {
                a.load(dir / "packed.safetensors");
              }).find("is stored as int8 here and as packed-ternary"),
              std::string::npos);
    EXPECT_TRUE(sameBytes(plain[0].q(), q0));
    std::filesystem::remove_all(dir);
  }
}

/// A small model: a factored and an unfactored weight of different grids.
struct Model {
  std::vector<QuantizedWeight> w;
  std::unique_ptr<optim::Adafactor> opt;

  Model(uint64_t initSeed, double beta1, StateType moment = StateType::F32) {
    at::Generator gen = at::detail::createCPUGenerator(initSeed);
    w.push_back(QuantizedWeight::fromFloat(at::randn({64, 48}, gen),
                                           Grid::fromBits(4)));
    w.push_back(QuantizedWeight::fromFloat(at::randn({777}, gen),
                                           Grid::fromBits(1.58)));
    optim::AdafactorOptions o;
    o.lr = 0.05;
    o.beta1 = beta1;
    o.weightDecay = 0.01;
    o.stateType = moment;
    opt = std::make_unique<optim::Adafactor>(
        std::vector<QuantizedWeight *>{&w[0], &w[1]}, o);
  }
  void step(int64_t t) {
    for (size_t p = 0; p < w.size(); ++p)
      w[p].grad().copy_(
          randomGrad(w[p].q().sizes(), 1000 * t + p, t == 2 ? 997 : 0));
    opt->step();
  }
};

/// A fresh directory per test.
class AdafactorFiles {
protected:
  AdafactorFiles() {
    dir = test::freshTestDirectory("dqt-adafactor");
    std::filesystem::create_directories(dir);
  }
  ~AdafactorFiles() { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
};

class AdafactorCheckpoints : public AdafactorFiles,
                             public ::testing::TestWithParam<double> {};
class AdafactorBF16Checkpoints : public AdafactorFiles,
                                 public ::testing::Test {};

TEST_P(AdafactorCheckpoints, ResumeIsBitExact) {
  const int n = 3;
  double beta1 = GetParam();
  Model straight(1, beta1);
  for (int t = 1; t <= 2 * n; ++t)
    straight.step(t);

  Model first(1, beta1);
  for (int t = 1; t <= n; ++t)
    first.step(t);
  first.opt->save(dir / "half.safetensors");
  Model resumed(99, beta1); // a fresh process: other weights
  resumed.opt->load(dir / "half.safetensors");
  EXPECT_EQ(resumed.opt->stepCount(), n);
  for (int t = n + 1; t <= 2 * n; ++t)
    resumed.step(t);

  for (size_t p = 0; p < 2; ++p) {
    EXPECT_TRUE(sameBytes(straight.w[p].q(), resumed.w[p].q())) << p;
    EXPECT_EQ(straight.w[p].delta(), resumed.w[p].delta()) << p;
    EXPECT_EQ(straight.w[p].maxQ(), resumed.w[p].maxQ()) << p;
    for (size_t k = 0; k < straight.opt->numStates(p); ++k)
      EXPECT_TRUE(
          sameBytes(straight.opt->state(p, k), resumed.opt->state(p, k)))
          << p << " " << k;
  }

  // A file of the other beta1 kind (one state more or less) is refused and
  // changes nothing.
  Model other(5, beta1 > 0 ? 0.0 : 0.9);
  at::Tensor q = other.w[0].q().clone();
  EXPECT_THROW(other.opt->load(dir / "half.safetensors"), c10::Error);
  EXPECT_TRUE(sameBytes(other.w[0].q(), q));
  EXPECT_EQ(other.opt->stepCount(), 0);
}

TEST_F(AdafactorBF16Checkpoints, ResumeIsBitExactAndF32FilesAreRefused) {
  Model straight(1, 0.9, StateType::BF16);
  for (int t = 1; t <= 4; ++t)
    straight.step(t);
  Model first(1, 0.9, StateType::BF16);
  for (int t = 1; t <= 2; ++t)
    first.step(t);
  first.opt->save(dir / "half.safetensors");
  Model resumed(99, 0.9, StateType::BF16);
  resumed.opt->load(dir / "half.safetensors");
  for (int t = 3; t <= 4; ++t)
    resumed.step(t);
  for (size_t p = 0; p < 2; ++p) {
    EXPECT_TRUE(sameBytes(straight.w[p].q(), resumed.w[p].q())) << p;
    for (size_t k = 0; k < straight.opt->numStates(p); ++k)
      EXPECT_TRUE(
          sameBytes(straight.opt->state(p, k), resumed.opt->state(p, k)))
          << p << " " << k;
  }
  // A file with an f32 first moment does not load into a bf16 one.
  Model f32(3, 0.9);
  f32.step(1);
  f32.opt->save(dir / "f32.safetensors");
  at::Tensor m = resumed.opt->state(0, 2).clone();
  EXPECT_THROW(resumed.opt->load(dir / "f32.safetensors"), c10::Error);
  EXPECT_TRUE(sameBytes(resumed.opt->state(0, 2), m));
  EXPECT_EQ(resumed.opt->stepCount(), 4);
}

INSTANTIATE_TEST_SUITE_P(Beta1, AdafactorCheckpoints,
                         ::testing::Values(0.0, 0.9),
                         [](const auto &info) {
                           return std::string(info.param > 0 ? "Beta1"
                                                             : "NoBeta1");
                         });

/// Float parameters (float mode): kernel 1, then the generated SGD kernel on
/// f32 weights. The reference: the same update, w2 where it is finite.
class AdafactorFloatParams : public ::testing::TestWithParam<double> {};

TEST_P(AdafactorFloatParams, MatchReferenceBitForBitWithNonFiniteMasked) {
  double beta1 = GetParam();
  at::Generator gen = at::detail::createCPUGenerator(31);
  QuantizedWeight q =
      QuantizedWeight::fromFloat(at::randn({40, 24}, gen), Grid::fromBits(8));
  // Factored 2-D, unfactored 1-D and 3-D.
  std::vector<at::Tensor> floats = {at::randn({33, 17}, gen),
                                    at::randn({257}, gen),
                                    at::randn({2, 3, 11}, gen)};
  std::vector<at::Tensor> ref;
  std::vector<std::vector<at::Tensor>> refSt;
  for (const at::Tensor &p : floats) {
    ref.push_back(p.clone());
    refSt.push_back(refStates(p.sizes(), beta1 > 0));
  }
  optim::AdafactorOptions o;
  o.lr = 0.05;
  o.beta1 = beta1;
  o.weightDecay = 0.1;
  optim::Adafactor ada({&q}, o);
  ada.addFloatParameters(floats);
  ASSERT_EQ(ada.numFloatParams(), 3u);
  for (int t = 1; t <= 3; ++t) {
    q.grad().copy_(randomGrad(q.sizes(), 50 + t, 0));
    for (size_t i = 0; i < floats.size(); ++i)
      floats[i].mutable_grad() = randomGrad(floats[i].sizes(), 10 * t + i, 97);
    std::vector<StepStats> got = ada.step();
    ASSERT_EQ(got.size(), 1 + floats.size());
    for (size_t i = 0; i < floats.size(); ++i) {
      SCOPED_TRACE(::testing::Message() << "step " << t << " float " << i);
      const at::Tensor &g = floats[i].grad();
      at::Tensor ut = refClippedUpdate(refSt[i], g, o, t);
      at::Tensor fin = ut.isfinite();
      at::Tensor prev = beta1 > 0 ? refSt[i].back() : ut;
      at::Tensor buf = f(float(beta1)) * prev + ut;
      at::Tensor w1 = ref[i] - f(float(o.lr)) * buf;
      at::Tensor w2 = w1 - f(float(o.lr * o.weightDecay)) * w1;
      at::Tensor moved = at::where(fin, w2, ref[i]) != ref[i];
      ref[i] = at::where(fin, w2, ref[i]);
      if (beta1 > 0)
        refSt[i].back() = at::where(fin, buf, prev);
      ASSERT_TRUE(sameBytes(floats[i], ref[i]));
      for (size_t k = 0; k < refSt[i].size(); ++k)
        ASSERT_TRUE(sameBytes(ada.floatState(i, k), refSt[i][k])) << k;
      const StepStats &st = got[1 + i];
      EXPECT_EQ(st.maxQ, -1);
      EXPECT_EQ(st.changed, -1);
      EXPECT_EQ(st.nonFinite, (~g.isfinite()).sum().item<int64_t>());
      EXPECT_GT(st.nonFinite, 0);
      EXPECT_GT(moved.sum().item<int64_t>(), floats[i].numel() / 2);
    }
  }
  // 4(R + C) + 4n unfactored, + 4n each for m.
  int64_t bytes = 4 * (40 + 24) + 4 * (33 + 17) + 4 * 257 + 4 * 66;
  if (beta1 > 0)
    bytes += 4 * (40 * 24 + 33 * 17 + 257 + 66);
  EXPECT_EQ(ada.stateBytes(), bytes);
}

TEST_P(AdafactorFloatParams, ResumeIsBitExact) {
  double beta1 = GetParam();
  std::filesystem::path dir = test::freshTestDirectory("dqt-adafactor-float");
  std::filesystem::create_directories(dir);
  struct Run {
    QuantizedWeight q;
    at::Tensor a, b;
    std::unique_ptr<optim::Adafactor> opt;
    Run(uint64_t seed, double beta1)
        : q(QuantizedWeight::fromFloat(
              at::randn({16, 8}, at::detail::createCPUGenerator(seed)),
              Grid::fromBits(4))) {
      at::Generator gen = at::detail::createCPUGenerator(seed + 1);
      a = at::randn({12, 10}, gen);
      b = at::randn({77}, gen);
      optim::AdafactorOptions o;
      o.lr = 0.05;
      o.beta1 = beta1;
      opt = std::make_unique<optim::Adafactor>(
          std::vector<QuantizedWeight *>{&q}, o);
      opt->addFloatParameters({a, b});
    }
    void step(int t) {
      q.grad().copy_(randomGrad(q.sizes(), 100 + t, 0));
      a.mutable_grad() = randomGrad(a.sizes(), 200 + t, 31);
      b.mutable_grad() = randomGrad(b.sizes(), 300 + t, 0);
      opt->step();
    }
  };
  Run straight(1, beta1), first(1, beta1), resumed(9, beta1);
  for (int t = 1; t <= 4; ++t)
    straight.step(t);
  for (int t = 1; t <= 2; ++t)
    first.step(t);
  first.opt->save(dir / "half.safetensors");
  resumed.opt->load(dir / "half.safetensors");
  for (int t = 3; t <= 4; ++t)
    resumed.step(t);
  EXPECT_TRUE(sameBytes(straight.q.q(), resumed.q.q()));
  EXPECT_TRUE(sameBytes(straight.a, resumed.a));
  EXPECT_TRUE(sameBytes(straight.b, resumed.b));
  for (size_t i = 0; i < 2; ++i)
    for (size_t k = 0; k < (beta1 > 0 ? 2u : 1u) + (i == 0); ++k)
      EXPECT_TRUE(sameBytes(straight.opt->floatState(i, k),
                            resumed.opt->floatState(i, k)))
          << i << " " << k;
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Beta1, AdafactorFloatParams,
                         ::testing::Values(0.0, 0.9), [](const auto &info) {
                           return std::string(info.param > 0 ? "Beta1"
                                                             : "NoBeta1");
                         });

TEST(AdafactorFloatParamsInput, BadParametersAndGradientsAreRefused) {
  QuantizedWeight q =
      QuantizedWeight::fromFloat(at::randn({8, 8}), Grid::fromBits(8));
  optim::Adafactor ada({&q}, {});
  at::Tensor p = at::randn({5, 3});
  EXPECT_THROW(ada.addFloatParameters({at::randn({4}, at::kDouble)}),
               c10::Error);
  EXPECT_THROW(ada.addFloatParameters({p, p}), c10::Error);
  EXPECT_EQ(ada.numFloatParams(), 0u);
  ada.addFloatParameters({p});
  EXPECT_THROW(ada.addFloatParameters({p}), c10::Error); // given twice
  // A gradient of the wrong shape: nothing steps, not even q.
  q.grad().copy_(randomGrad(q.sizes(), 1, 0));
  at::Tensor qBefore = q.q().clone(), pBefore = p.clone();
  p.mutable_grad() = at::randn({3, 5});
  EXPECT_THROW(ada.step(), c10::Error);
  EXPECT_TRUE(sameBytes(q.q(), qBefore));
  EXPECT_TRUE(sameBytes(p, pBefore));
  EXPECT_EQ(ada.stepCount(), 0);
  // No gradient on the float parameter: it is skipped, q steps.
  p.mutable_grad() = at::Tensor();
  ada.step();
  EXPECT_TRUE(sameBytes(p, pBefore));
  EXPECT_FALSE(sameBytes(q.q(), qBefore));
  EXPECT_EQ(ada.stepCount(), 1);
  EXPECT_THROW(ada.addFloatParameters({at::randn({2})}), c10::Error);
}

} // namespace

namespace {

/// adafactorUpdateOps (kernel 1 by ATen ops, what a GPU gradient runs) on
/// CPU tensors against the host loops the optimizer runs: the statistics
/// and, through the first moment after one step (m = (1 - beta1) * clipped
/// update, m starting at 0), the update agree up to the summation order of
/// the double sums; non-finite gradient elements leave v untouched and give
/// NaN updates. A clip factor > 1 is exercised (large gradients).
TEST(AdafactorDeviceOps, MatchTheHostLoops) {
  for (std::vector<int64_t> shape :
       {std::vector<int64_t>{37, 45}, std::vector<int64_t>{101}}) {
    SCOPED_TRACE(shape.size() == 2 ? "factored" : "unfactored");
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(3);
    QuantizedWeight w = QuantizedWeight::fromFloat(
        at::randn(shape, gen) * 0.05, Grid{8, false});
    optim::AdafactorOptions o;
    o.beta1 = 0.9;
    o.lr = 0;
    optim::Adafactor opt({&w}, o);
    at::Tensor g = at::randn(shape, gen) * 3.0;
    g.view({-1})[5] = NAN;
    w.grad().copy_(g);
    opt.step();

    std::vector<at::Tensor> states;
    for (size_t k = 0; k + 1 < opt.numStates(0); ++k)
      states.push_back(at::zeros_like(opt.state(0, k)));
    double beta2t = 1.0 - std::pow(1.0, o.decayRate);
    at::Tensor u = optim::adafactorUpdateOps(g, states, beta2t, o.eps1,
                                      o.clipThreshold, 1.0f - float(o.beta1));
    for (size_t k = 0; k < states.size(); ++k)
      EXPECT_TRUE(at::allclose(states[k], opt.state(0, k), 1e-6, 0))
          << "state " << k;
    EXPECT_TRUE(std::isnan(u[5].item<float>()));
    at::Tensor m = opt.state(0, states.size()).reshape({-1});
    at::Tensor finite = g.reshape({-1}).isfinite();
    EXPECT_TRUE(at::allclose(u.masked_select(finite), m.masked_select(finite),
                             1e-5, 1e-12));
    EXPECT_GT(u.masked_select(finite).abs().max().item<float>(), 0.0f);
  }
}

} // namespace
