//===- bf16-states.cpp - optimizers with bf16 states ----------------------===//
//
// dqt::optim::AdamW / SGD with `stateType = StateType::BF16`: states stored as
// at::kBFloat16 (2 bytes per element), against a reference written with
// plain LibTorch ops (exact widening with ATen's bf16 -> f32 conversion, the
// f32 math as 0-dim f32 tensors, the stochastic rounding to bf16 as integer
// tensor ops with the state stream of the test's own Philox); bit-exact
// resume through checkpoints holding BF16 tensors; states of the wrong dtype
// refused with a message naming them.
//
//===----------------------------------------------------------------------===//

#include "../StepReference.h"
#include "TestUtil.h"
#include "TorchReference.h"

#include "dqt/Runtime/Checkpoint.h"
#include "dqt/Runtime/Functional.h"
#include "dqt/Runtime/KernelCache.h"
#include "dqt/Runtime/Optimizers.h"

#include <gtest/gtest.h>

#include <filesystem>

using namespace dqt;
namespace fs = std::filesystem;

namespace {

using dqt::test::f;
using dqt::test::optimizerUpdate;
using dqt::test::randomGrad;
using dqt::test::sroundBF16;
using dqt::test::stateBits;

using test::sameBytes;

struct RefParam {
  at::Tensor q, s0, s1; // bf16 states
  float delta;
  int8_t maxq;
  Grid grid;
};

/// One reference step of a parameter with bf16 states.
void refStep(RefParam &p, const at::Tensor &grad, bool adam,
             const std::vector<float> &h, uint64_t seed, uint64_t t,
             int64_t tid) {
  at::Tensor g = grad.flatten(), q = p.q.flatten();
  at::Tensor finite = g.isfinite();
  float deltaNext = ref::nextDelta(p.delta, p.maxq, p.grid.qp());
  at::Tensor w = q.to(at::kFloat) * f(p.delta);
  // bf16 states widen to f32 exactly.
  auto [w2, s0, s1] = optimizerUpdate(
      w, g, p.s0.flatten().to(at::kFloat),
      adam ? p.s1.flatten().to(at::kFloat) : at::Tensor(), adam, h);
  // Weight rounding as the contract (element by element, reference SR).
  int64_t n = g.numel();
  at::Tensor q1 = at::empty({n}, at::kChar);
  const float *w2p = w2.contiguous().data_ptr<float>();
  for (int64_t i = 0; i < n; ++i)
    q1.data_ptr<int8_t>()[i] =
        ref::stochasticRound(w2p[i], deltaNext, ref::uniform(seed, t, tid, i),
                             p.grid.qn(), p.grid.qp());
  q1 = at::where(finite, q1, q);
  at::Tensor bits = stateBits(seed, t, tid, n);
  at::Tensor b0 = sroundBF16(s0, bits & 0xffff);
  p.s0 = at::where(finite, b0, p.s0.flatten()).view_as(p.q);
  if (adam) {
    at::Tensor b1 = sroundBF16(s1, bits.bitwise_right_shift(16));
    p.s1 = at::where(finite, b1, p.s1.flatten()).view_as(p.q);
  }
  p.q = q1.view_as(p.q);
  p.delta = deltaNext;
  p.maxq = q1.max().item<int8_t>();
}

class BF16States : public ::testing::TestWithParam<double> {};

TEST_P(BF16States, AdamWMatchesLibTorchReference) {
  Grid grid = Grid::fromBits(GetParam());
  at::Generator gen = at::detail::createCPUGenerator(3);
  std::vector<at::Tensor> init = {at::randn({129, 67}, gen),
                                  at::randn({1031}, gen) * 0.1};
  std::vector<QuantizedWeight> weights;
  std::vector<RefParam> refs;
  for (auto &w : init) {
    weights.push_back(QuantizedWeight::fromFloat(w, grid));
    at::Tensor z = at::zeros(w.sizes(), at::kBFloat16);
    refs.push_back({weights.back().q().clone(), z, z.clone(),
                    weights.back().delta(), weights.back().maxQ(), grid});
  }
  optim::AdamWOptions opts;
  opts.lr = 0.05;
  opts.stateType = StateType::BF16;
  optim::AdamW adam({&weights[0], &weights[1]}, opts);
  EXPECT_EQ(adam.state(0, 0).scalar_type(), at::kBFloat16);
  EXPECT_EQ(adam.stateBytes(), 2 * 2 * (129 * 67 + 1031));
  for (int t = 1; t <= 3; ++t) {
    for (size_t p = 0; p < weights.size(); ++p)
      weights[p].grad().copy_(randomGrad(init[p].sizes(), 10 * t + p, 4999));
    double alpha = opts.lr * std::sqrt(1 - std::pow(opts.beta2, t)) /
                   (1 - std::pow(opts.beta1, t));
    std::vector<float> h = {float(opts.beta1), float(opts.beta2), float(alpha),
                            float(opts.eps), float(opts.lr * opts.weightDecay)};
    std::vector<StepStats> got = adam.step();
    for (size_t p = 0; p < weights.size(); ++p) {
      SCOPED_TRACE(::testing::Message() << "step " << t << " param " << p);
      refStep(refs[p], weights[p].grad(), true, h, opts.seed, t, p);
      ASSERT_TRUE(sameBytes(weights[p].q(), refs[p].q));
      ASSERT_TRUE(sameBytes(adam.state(p, 0), refs[p].s0));
      ASSERT_TRUE(sameBytes(adam.state(p, 1), refs[p].s1));
      EXPECT_EQ(weights[p].delta(), refs[p].delta);
      EXPECT_EQ(got[p].maxQ, refs[p].maxq);
      EXPECT_GT(got[p].nonFinite, 0);
    }
  }
}

TEST_P(BF16States, SGDMatchesLibTorchReference) {
  Grid grid = Grid::fromBits(GetParam());
  at::Generator gen = at::detail::createCPUGenerator(4);
  at::Tensor init = at::randn({133, 101}, gen);
  QuantizedWeight w = QuantizedWeight::fromFloat(init, grid);
  RefParam ref{w.q().clone(), at::zeros(init.sizes(), at::kBFloat16), {},
               w.delta(), w.maxQ(), grid};
  optim::SGDOptions opts;
  opts.lr = 0.02;
  opts.weightDecay = 0.01;
  opts.stateType = StateType::BF16;
  optim::SGD sgd({&w}, opts);
  EXPECT_EQ(sgd.stateBytes(), 2 * 133 * 101);
  for (int t = 1; t <= 3; ++t) {
    w.grad().copy_(randomGrad(init.sizes(), 7 * t, 4999));
    std::vector<float> h = {float(opts.lr), float(opts.momentum),
                            float(opts.lr * opts.weightDecay)};
    sgd.step();
    refStep(ref, w.grad(), false, h, opts.seed, t, 0);
    ASSERT_TRUE(sameBytes(w.q(), ref.q)) << "step " << t;
    ASSERT_TRUE(sameBytes(sgd.state(0, 0), ref.s0)) << "step " << t;
    EXPECT_EQ(w.delta(), ref.delta);
  }
}

INSTANTIATE_TEST_SUITE_P(Grids, BF16States,
                         ::testing::Values(1.58, 4.0, 8.0),
                         [](const auto &info) {
                           return test::gridName(info.param);
                         });

/// A small model (two grids) with AdamW or SGD and bf16 states.
struct Model {
  std::vector<QuantizedWeight> w;
  std::unique_ptr<optim::QuantizedOptimizer> opt;

  Model(uint64_t initSeed, bool adam, StateType state = StateType::BF16) {
    at::Generator gen = at::detail::createCPUGenerator(initSeed);
    w.push_back(QuantizedWeight::fromFloat(at::randn({64, 48}, gen),
                                           Grid::fromBits(4)));
    w.push_back(QuantizedWeight::fromFloat(at::randn({777}, gen),
                                           Grid::fromBits(1.58)));
    std::vector<QuantizedWeight *> ps = {&w[0], &w[1]};
    if (adam) {
      optim::AdamWOptions o;
      o.lr = 0.02;
      o.stateType = state;
      opt = std::make_unique<optim::AdamW>(ps, o);
    } else {
      optim::SGDOptions o;
      o.lr = 0.05;
      o.stateType = state;
      opt = std::make_unique<optim::SGD>(ps, o);
    }
  }
  void step(int64_t t) {
    for (size_t p = 0; p < w.size(); ++p) {
      at::Generator gen = at::detail::createCPUGenerator(1000 * t + p);
      w[p].grad().copy_(at::randn(w[p].q().sizes(), gen));
    }
    opt->step();
  }
};

class BF16Checkpoints : public ::testing::TestWithParam<bool> {
protected:
  void SetUp() override {
    dir = test::freshTestDirectory("dqt-bf16-ckpt");
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path dir;
};

TEST_P(BF16Checkpoints, ResumeIsBitExact) {
  bool adam = GetParam();
  const int n = 3;
  Model straight(1, adam);
  for (int t = 1; t <= 2 * n; ++t)
    straight.step(t);

  Model first(1, adam);
  for (int t = 1; t <= n; ++t)
    first.step(t);
  fs::path path = dir / "half.safetensors";
  first.opt->save(path);
  // The states are stored as BF16 tensors (2 bytes each), not widened.
  checkpoint::Contents c = checkpoint::load(path);
  EXPECT_EQ(c.get("param.0.state.0").scalar_type(), at::kBFloat16);
  EXPECT_TRUE(sameBytes(c.get("param.1.state.0"), first.opt->state(1, 0)));

  Model resumed(99, adam);
  resumed.opt->load(path);
  for (int t = n + 1; t <= 2 * n; ++t)
    resumed.step(t);
  size_t numStates = adam ? 2 : 1;
  for (size_t p = 0; p < 2; ++p) {
    EXPECT_TRUE(sameBytes(straight.w[p].q(), resumed.w[p].q())) << p;
    EXPECT_EQ(straight.w[p].delta(), resumed.w[p].delta()) << p;
    for (size_t k = 0; k < numStates; ++k)
      EXPECT_TRUE(sameBytes(straight.opt->state(p, k),
                            resumed.opt->state(p, k)))
          << p << " " << k;
  }
}

TEST_P(BF16Checkpoints, StatesOfTheWrongDtypeAreRefused) {
  bool adam = GetParam();
  // A checkpoint with f32 states cannot be loaded into bf16 states (nor the
  // other way): refused, naming the tensor, nothing changed.
  Model f32(1, adam, StateType::F32);
  f32.step(1);
  f32.opt->save(dir / "f32.safetensors");
  Model bf16(2, adam);
  bf16.step(1);
  at::Tensor q = bf16.w[0].q().clone(), s = bf16.opt->state(0, 0).clone();
  std::string msg =
      test::errorMessage([&] { bf16.opt->load(dir / "f32.safetensors"); });
  EXPECT_NE(msg.find("'param.0.state.0' is Float"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected BFloat16"), std::string::npos) << msg;
  EXPECT_TRUE(sameBytes(bf16.w[0].q(), q));
  EXPECT_TRUE(sameBytes(bf16.opt->state(0, 0), s));
  EXPECT_EQ(bf16.opt->stepCount(), 1);

  bf16.opt->save(dir / "bf16.safetensors");
  msg = test::errorMessage([&] { f32.opt->load(dir / "bf16.safetensors"); });
  EXPECT_NE(msg.find("'param.0.state.0' is BFloat16"), std::string::npos)
      << msg;
}

INSTANTIATE_TEST_SUITE_P(Optimizers, BF16Checkpoints,
                         ::testing::Values(true, false), [](const auto &info) {
                           return info.param ? "AdamW" : "SGD";
                         });

TEST(BF16StatesFunctional, MatchesTheOptimizerAndRefusesMixedStates) {
  at::Generator gen = at::detail::createCPUGenerator(5);
  QuantizedWeight w =
      QuantizedWeight::fromFloat(at::randn({1001}, gen), Grid::fromBits(8));
  at::Tensor q = w.q().clone();
  int64_t maxQ = w.maxQ();
  float delta = w.delta();
  optim::AdamWOptions opts;
  opts.stateType = StateType::BF16;
  optim::AdamW adam({&w}, opts);
  w.grad().copy_(randomGrad({1001}, 9, 4999));
  at::Tensor g = w.grad().clone();
  adam.step();

  at::Tensor m = at::zeros({1001}, at::kBFloat16), v = m.clone();
  functional::AdamWStepArgs a{1,      opts.lr,          opts.beta1,
                              opts.beta2, opts.eps,     opts.weightDecay,
                              8.0,    opts.seed,        0};
  functional::adamwStep(q, delta, maxQ, g, m, v, a);
  EXPECT_TRUE(sameBytes(q, w.q()));
  EXPECT_TRUE(sameBytes(m, adam.state(0, 0)));
  EXPECT_TRUE(sameBytes(v, adam.state(0, 1)));

  at::Tensor vf = at::zeros({1001}, at::kFloat);
  at::Tensor before = q.clone();
  std::string msg = test::errorMessage(
      [&] { functional::adamwStep(q, delta, maxQ, g, m, vf, a); });
  EXPECT_NE(msg.find("exp_avg_sq must be bfloat16 like exp_avg, got Float"),
            std::string::npos)
      << msg;
  EXPECT_TRUE(sameBytes(q, before));
}

} // namespace
