//===- float-params.cpp - float parameters in float mode ------------------===//
//
// Non-quantized parameters of a DQT optimizer are stepped by the generated
// kernels in float mode (StepConfig::floatWeights): the same math as the
// integer weights' update, without grid or rounding, checked bit for bit
// against the LibTorch-ops reference, with non-finite masking, resume and
// bad input.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"
#include "TorchReference.h"

#include "dqt/Runtime/Optimizers.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <filesystem>

using namespace dqt;
using dqt::test::optimizerUpdate;
using dqt::test::randomGrad;
using dqt::test::sameBytes;

namespace {

/// One integer weight and two float parameters (a matrix and a vector).
struct Model {
  at::Generator gen;
  QuantizedWeight q;
  std::vector<at::Tensor> floats;
  explicit Model(uint64_t seed)
      : gen(at::detail::createCPUGenerator(seed)),
        q(QuantizedWeight::fromFloat(at::randn({16, 8}, gen),
                                     Grid::fromBits(8))),
        floats{at::randn({33, 7}, gen), at::randn({1025}, gen) * 0.1} {}
  /// Gradients of step t: the float ones with non-finite elements.
  void setGrads(int t) {
    q.grad().copy_(randomGrad(q.sizes(), 1000 + t, 0));
    for (size_t i = 0; i < floats.size(); ++i)
      floats[i].mutable_grad() = randomGrad(floats[i].sizes(), 10 * t + i, 97);
  }
};

std::unique_ptr<optim::QuantizedOptimizer> makeOptimizer(bool adam,
                                                         Model &m) {
  std::unique_ptr<optim::QuantizedOptimizer> opt;
  if (adam) {
    optim::AdamWOptions o;
    o.lr = 0.05;
    opt = std::make_unique<optim::AdamW>(std::vector<QuantizedWeight *>{&m.q},
                                         o);
  } else {
    optim::SGDOptions o;
    o.lr = 0.05;
    o.weightDecay = 0.01;
    opt = std::make_unique<optim::SGD>(std::vector<QuantizedWeight *>{&m.q},
                                       o);
  }
  opt->addFloatParameters(m.floats);
  return opt;
}

/// The kernel's hyper-parameters at step t (as AdamW/SGD compute them).
std::vector<float> hyper(bool adam, int t) {
  if (adam) {
    optim::AdamWOptions o;
    double alpha = 0.05 * std::sqrt(1 - std::pow(o.beta2, t)) /
                   (1 - std::pow(o.beta1, t));
    return {float(o.beta1), float(o.beta2), float(alpha), float(o.eps),
            float(0.05 * o.weightDecay)};
  }
  optim::SGDOptions o;
  return {0.05f, float(o.momentum), float(0.05 * 0.01)};
}

class FloatParams : public ::testing::TestWithParam<bool> {};

TEST_P(FloatParams, MatchReferenceBitForBitWithNonFiniteMasked) {
  bool adam = GetParam();
  Model m(1);
  auto opt = makeOptimizer(adam, m);
  ASSERT_EQ(opt->numFloatParams(), 2u);
  std::vector<at::Tensor> w, s0, s1;
  for (const at::Tensor &p : m.floats) {
    w.push_back(p.clone());
    s0.push_back(at::zeros_like(p));
    s1.push_back(at::zeros_like(p));
  }
  for (int t = 1; t <= 3; ++t) {
    m.setGrads(t);
    std::vector<StepStats> stats = opt->step();
    ASSERT_EQ(stats.size(), 3u); // the integer weight, then the floats
    for (size_t i = 0; i < m.floats.size(); ++i) {
      SCOPED_TRACE(::testing::Message() << "step " << t << " float " << i);
      at::Tensor g = m.floats[i].grad(), finite = g.isfinite();
      auto [w2, n0, n1] = optimizerUpdate(w[i], g, s0[i], s1[i], adam,
                                          hyper(adam, t));
      w[i] = at::where(finite, w2, w[i]);
      s0[i] = at::where(finite, n0, s0[i]);
      if (adam)
        s1[i] = at::where(finite, n1, s1[i]);
      EXPECT_TRUE(sameBytes(m.floats[i], w[i]));
      EXPECT_TRUE(sameBytes(opt->floatState(i, 0), s0[i]));
      if (adam)
        EXPECT_TRUE(sameBytes(opt->floatState(i, 1), s1[i]));
      const StepStats &st = stats[1 + i];
      EXPECT_EQ(st.nonFinite, (~finite).sum().item<int64_t>());
      EXPECT_GT(st.nonFinite, 0);
      EXPECT_EQ(st.maxQ, -1);
      EXPECT_EQ(st.changed, -1);
    }
    EXPECT_GT(stats[0].changed, 0); // the integer weight still steps
  }
  // f32 states: 4 bytes per state element of every parameter.
  int64_t n = m.q.numel() + m.floats[0].numel() + m.floats[1].numel();
  EXPECT_EQ(opt->stateBytes(), (adam ? 8 : 4) * n);
}

TEST_P(FloatParams, ResumeIsBitExact) {
  bool adam = GetParam();
  std::string path = (std::filesystem::temp_directory_path() /
                      ("dqt-float-params-" + std::to_string(adam) + ".st"))
                         .string();
  Model a(2), b(2), c(3);
  auto optA = makeOptimizer(adam, a), optB = makeOptimizer(adam, b);
  for (int t = 1; t <= 4; ++t) {
    a.setGrads(t);
    optA->step();
  }
  for (int t = 1; t <= 2; ++t) {
    b.setGrads(t);
    optB->step();
  }
  optB->save(path);
  auto optC = makeOptimizer(adam, c); // other values: all from the file
  optC->load(path);
  for (int t = 3; t <= 4; ++t) {
    c.setGrads(t);
    optC->step();
  }
  for (size_t i = 0; i < a.floats.size(); ++i) {
    EXPECT_TRUE(sameBytes(a.floats[i], c.floats[i])) << i;
    for (size_t k = 0; k < (adam ? 2u : 1u); ++k)
      EXPECT_TRUE(sameBytes(optA->floatState(i, k), optC->floatState(i, k)));
  }
  EXPECT_TRUE(sameBytes(a.q.q(), c.q.q()));
  // A model without the float parameters does not load that file.
  Model d(2);
  optim::AdamWOptions o;
  optim::AdamW plain({&d.q}, o);
  if (adam)
    EXPECT_THROW(plain.load(path), c10::Error);
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(Optimizers, FloatParams, ::testing::Bool(),
                         [](const auto &info) {
                           return info.param ? "AdamW" : "SGD";
                         });

TEST(FloatParamsInput, BadParametersAndGradientsAreRefused) {
  Model m(4);
  optim::AdamW opt({&m.q});
  auto message = [](auto &&fn) {
    try {
      fn();
    } catch (const c10::Error &e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] {
              opt.addFloatParameters({at::zeros({4}, at::kDouble)});
            }).find("float parameter 0 must be"),
            std::string::npos);
  EXPECT_NE(message([&] {
              opt.addFloatParameters({m.floats[0], m.floats[0]});
            }).find("float parameter 1 is given twice"),
            std::string::npos);
  EXPECT_EQ(opt.numFloatParams(), 0u);
  opt.addFloatParameters(m.floats);
  // A gradient of the wrong shape refuses the whole step: nothing changes.
  m.setGrads(1);
  at::Tensor q0 = m.q.q().clone(), f0 = m.floats[0].clone(),
             f1 = m.floats[1].clone();
  m.floats[1].mutable_grad() = at::zeros({3});
  EXPECT_NE(message([&] { opt.step(); }).find("grad of float parameter 1"),
            std::string::npos);
  EXPECT_TRUE(sameBytes(m.q.q(), q0));
  EXPECT_TRUE(sameBytes(m.floats[0], f0));
  EXPECT_EQ(opt.stepCount(), 0);
  // A missing float gradient skips that parameter, as torch.optim does.
  m.floats[1].mutable_grad() = at::Tensor();
  std::vector<StepStats> stats = opt.step();
  EXPECT_EQ(stats.size(), 2u); // the integer weight and float parameter 0
  EXPECT_TRUE(sameBytes(m.floats[1], f1));
  EXPECT_EQ(opt.floatState(1, 0).abs().sum().item<float>(), 0.0f);
  EXPECT_FALSE(sameBytes(m.floats[0], f0));
  EXPECT_EQ(opt.stepCount(), 1);
}

} // namespace

// An optimizer of float parameters only (a param group without integer
// weights) steps them as a mixed one does, and restoreFloat continues a run.
TEST(FloatParams, FloatOnlyOptimizerAndRestoreFloat) {
  Model a(5), b(5), c(5);
  auto mixed = makeOptimizer(true, a);
  optim::AdamWOptions o;
  o.lr = 0.05;
  optim::AdamW only(std::vector<QuantizedWeight *>{}, o);
  only.addFloatParameters(b.floats);
  EXPECT_EQ(only.device(), at::Device(at::kCPU));
  for (int t = 1; t <= 2; ++t) {
    a.setGrads(t);
    b.setGrads(t);
    mixed->step();
    std::vector<StepStats> st = only.step();
    EXPECT_EQ(st.size(), 2u);
    for (size_t i = 0; i < 2; ++i)
      EXPECT_TRUE(sameBytes(a.floats[i], b.floats[i])) << t << " " << i;
  }
  optim::AdamW again(std::vector<QuantizedWeight *>{}, o);
  for (size_t i = 0; i < 2; ++i)
    c.floats[i].copy_(b.floats[i]);
  again.addFloatParameters(c.floats);
  std::vector<std::vector<at::Tensor>> states;
  for (size_t i = 0; i < 2; ++i)
    states.push_back({only.floatState(i, 0).clone(), only.floatState(i, 1).clone()});
  EXPECT_NE(test::errorMessage([&] {
              again.restoreFloat({states[0]});
            }).find("got states of 1 parameters, expected 2"),
            std::string::npos);
  again.restore(only.stepCount(), only.seed(), {});
  again.restoreFloat(states);
  b.setGrads(3);
  c.setGrads(3);
  only.step();
  again.step();
  for (size_t i = 0; i < 2; ++i)
    EXPECT_TRUE(sameBytes(b.floats[i], c.floats[i])) << i;
}
