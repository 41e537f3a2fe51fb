//===- quant-linear.cpp - QuantLinear forward, backward, training ---------===//

#include "TestUtil.h"

#include "dqt/Runtime/Adafactor.h"
#include "dqt/Runtime/Optimizers.h"
#include "dqt/Runtime/QuantLinear.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

using namespace dqt;

namespace {

/// The same layer as a float graph: straight-through quantizers written as
/// x + (q(x) - x).detach(), the dequantized weight a leaf.
struct FloatTwin {
  at::Tensor w; // leaf, requires grad
  explicit FloatTwin(const QuantizedWeight &qw, bool ternary) {
    at::Tensor wf = qw.dequantize();
    if (ternary)
      wf = nn::ternarize(wf);
    w = wf.detach().requires_grad_(true);
  }
  at::Tensor forward(const at::Tensor &x) {
    at::Tensor xs = x + (nn::activationQuant8(x) - x).detach();
    return at::matmul(xs, w.t());
  }
};

class QuantLinearTest : public ::testing::TestWithParam<bool> {};

TEST_P(QuantLinearTest, ForwardAndBackwardMatchTheFloatGraph) {
  bool ternary = GetParam();
  at::Generator gen = at::detail::createCPUGenerator(1);
  nn::QuantLinear layer(48, 24, Grid::fromBits(4), gen);
  layer.ternaryInference = ternary;
  FloatTwin twin(layer.weight(), ternary);

  at::Tensor x = at::randn({3, 5, 48}, gen).requires_grad_(true);
  at::Tensor x2 = x.detach().clone().requires_grad_(true);
  at::Tensor y = layer.forward(x), y2 = twin.forward(x2);
  EXPECT_TRUE(at::allclose(y, y2, 1e-5, 1e-6));
  at::Tensor gy = at::randn(y.sizes(), gen);
  torch::autograd::backward({y}, {gy});
  torch::autograd::backward({y2}, {gy});
  EXPECT_TRUE(at::allclose(x.grad(), x2.grad(), 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(layer.weight().grad(), twin.w.grad(), 1e-5, 1e-5));

  // Gradients accumulate across backward passes.
  at::Tensor once = layer.weight().grad().clone();
  torch::autograd::backward({layer.forward(x)}, {gy});
  EXPECT_TRUE(at::allclose(layer.weight().grad(), 2 * once, 1e-5, 1e-5));
}

INSTANTIATE_TEST_SUITE_P(Modes, QuantLinearTest, ::testing::Bool(),
                         [](const auto &info) {
                           return info.param ? "TernaryInference" : "NBit";
                         });

TEST(QuantLinearQuantizers, MatchTheirDefinitions) {
  at::Tensor x =
      at::tensor({0.5f, -1.0f, 0.25f, 0.0f, 0.0f, 0.0f}).view({2, 3});
  at::Tensor xq = nn::activationQuant8(x);
  // Row 0: s = 127; row 1 (all zero) stays zero.
  EXPECT_TRUE(test::sameBytes(xq[0], (x[0] * 127.0f).round().clamp(-128, 127) /
                                         127.0f));
  EXPECT_EQ(xq[1].abs().sum().item<float>(), 0.0f);
  at::Tensor w = at::tensor({0.3f, -0.9f, 0.05f, 0.6f});
  at::Tensor t = nn::ternarize(w);
  float s = 1.0f / 0.4625f; // 1 / mean|w|
  EXPECT_TRUE(at::allclose(t, at::tensor({1.0f, -1.0f, 0.0f, 1.0f}) / s));
}

TEST(QuantLinearTraining, LossFallsWithDQTAdamW) {
  at::Generator gen = at::detail::createCPUGenerator(7);
  // Within what the grid can express: the DQT initialization puts Qp at
  // mean|W| (0.088 for this layer's kaiming-uniform start), and the grid
  // only grows when max q exceeds Qp, which it cannot.
  at::Tensor target = (at::rand({32, 16}, gen) * 2 - 1) * 0.08;
  at::Tensor x = at::randn({256, 32}, gen);
  at::Tensor y = at::matmul(x, target);
  nn::QuantLinear layer(32, 16, Grid::fromBits(8), gen);
  optim::AdamWOptions o;
  o.lr = 1e-2;
  optim::AdamW adam({&layer.weight()}, o);
  float first = 0, last = 0;
  for (int step = 0; step < 200; ++step) {
    layer.weight().grad().zero_();
    at::Tensor loss = (layer.forward(x) - y).pow(2).mean();
    torch::autograd::backward({loss});
    adam.step();
    (step == 0 ? first : last) = loss.item<float>();
  }
  // Stated margin: the loss falls to under half of its first value.
  EXPECT_LT(last, 0.5f * first) << "first " << first << ", last " << last;
}

// The environment's hook sees dL/dW before the weight does (dqt-train's FP8
// environment casts it to e5m2 there).
TEST(QuantLinearGradientTransform, MapsTheWeightGradient) {
  at::Generator gen = at::detail::createCPUGenerator(3);
  nn::QuantLinear layer(16, 8, Grid::fromBits(8), gen);
  at::Tensor x = at::randn({4, 16}, gen), gy = at::randn({4, 8}, gen);
  torch::autograd::backward({layer.forward(x)}, {gy});
  at::Tensor plain = layer.weight().grad().clone();
  layer.weight().clearGrad();
  int calls = 0;
  layer.gradientTransform = [&](const at::Tensor &g) {
    ++calls;
    return -3 * g;
  };
  torch::autograd::backward({layer.forward(x)}, {gy});
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(at::equal(layer.weight().grad(), -3 * plain));
}

// Under bf16 autocast an f32 input gives bf16, the integers multiplied in
// bf16; the result is close to the f32 path's.
TEST(QuantLinearBf16, AutocastComputesInBf16) {
  at::Generator gen = at::detail::createCPUGenerator(4);
  nn::QuantLinear layer(64, 32, Grid::fromBits(8), gen);
  at::Tensor x = at::randn({5, 64}, gen);
  at::Tensor y32 = layer.forward(x);
  EXPECT_FALSE(nn::QuantLinear::computesInBf16(x));
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCPU, true);
  EXPECT_TRUE(nn::QuantLinear::computesInBf16(x));
  at::Tensor y = layer.forward(x);
  at::autocast::set_autocast_enabled(at::kCPU, false);
  EXPECT_EQ(y.scalar_type(), at::kBFloat16);
  double err = (y.to(at::kFloat) - y32).abs().max().item<double>();
  EXPECT_GT(err, 0);
  EXPECT_LE(err, 1e-2 * y32.abs().max().item<double>());
  EXPECT_EQ(layer.forward(x.to(at::kBFloat16)).scalar_type(), at::kBFloat16);
}

TEST(QuantLinearInput, BadShapesAndTypesAreRefused) {
  nn::QuantLinear layer(8, 4, Grid::fromBits(8));
  EXPECT_NE(test::errorMessage([&] {
              layer.forward(at::zeros({2, 7}));
            }).find("input has 7 features, the layer takes 8"),
            std::string::npos);
  EXPECT_NE(test::errorMessage([&] {
              layer.forward(at::zeros({2, 8}, at::kDouble));
            }).find("input must be float32 or bfloat16, got Double"),
            std::string::npos);
  EXPECT_NE(test::errorMessage([&] {
              nn::QuantLinear(at::zeros({8}), Grid::fromBits(8));
            }).find("weight must be 2-D"),
            std::string::npos);
}

} // namespace

namespace {

/// The optimizers a QuantLinear can be stepped by inside the backward pass,
/// and their states in a common form.
std::unique_ptr<optim::AdamW> makeOptimizer(std::vector<QuantizedWeight *> ws,
                                            optim::AdamW *) {
  optim::AdamWOptions o;
  o.lr = 1e-2;
  return std::make_unique<optim::AdamW>(std::move(ws), o);
}
std::unique_ptr<optim::Adafactor>
makeOptimizer(std::vector<QuantizedWeight *> ws, optim::Adafactor *) {
  optim::AdafactorOptions o;
  o.lr = 1e-2;
  o.beta1 = 0.9; // the first moment too
  return std::make_unique<optim::Adafactor>(std::move(ws), o);
}
std::vector<at::Tensor> statesOf(const optim::AdamW &o) {
  std::vector<at::Tensor> out;
  for (size_t p = 0; p < o.numParams(); ++p)
    for (size_t k = 0; k < o.numStates(); ++k)
      out.push_back(o.state(p, k));
  return out;
}
std::vector<at::Tensor> statesOf(const optim::Adafactor &o) {
  std::vector<at::Tensor> out;
  for (size_t p = 0; p < o.numParams(); ++p)
    for (size_t k = 0; k < o.numStates(p); ++k)
      out.push_back(o.state(p, k));
  return out;
}

/// Two QuantLinear layers with a ReLU, trained by `Opt`.
template <class Opt> struct TwoLayers {
  std::unique_ptr<nn::QuantLinear> l1, l2;
  std::unique_ptr<Opt> opt;
  explicit TwoLayers(bool inBackward) {
    at::Generator gen = at::detail::createCPUGenerator(21);
    l1 = std::make_unique<nn::QuantLinear>(16, 32, Grid::fromBits(8), gen);
    l2 = std::make_unique<nn::QuantLinear>(32, 8, Grid::fromBits(4), gen);
    opt = makeOptimizer({&l1->weight(), &l2->weight()},
                        static_cast<Opt *>(nullptr));
    if (inBackward)
      l1->stepInBackward = l2->stepInBackward = opt.get();
  }
  std::vector<StepStats> iteration(int t, bool *gradsFreed = nullptr) {
    at::Generator gen = at::detail::createCPUGenerator(100 + t);
    at::Tensor x = at::randn({64, 16}, gen), y = at::randn({64, 8}, gen);
    for (QuantizedWeight *w : {&l1->weight(), &l2->weight()})
      if (w->hasGrad())
        w->grad().zero_();
    at::Tensor loss = (l2->forward(l1->forward(x).relu()) - y).pow(2).mean();
    torch::autograd::backward({loss});
    if (gradsFreed)
      *gradsFreed = !l1->weight().hasGrad() && !l2->weight().hasGrad();
    return opt->step();
  }
};

template <class Opt> class QuantLinearStepInBackward : public testing::Test {};
using SteppingOptimizers = testing::Types<optim::AdamW, optim::Adafactor>;
TYPED_TEST_SUITE(QuantLinearStepInBackward, SteppingOptimizers);

TYPED_TEST(QuantLinearStepInBackward, SameResultsAndNoGradientLeft) {
  TwoLayers<TypeParam> normal(false), fused(true);
  for (int t = 1; t <= 3; ++t) {
    bool freed = false;
    std::vector<StepStats> a = normal.iteration(t);
    std::vector<StepStats> b = fused.iteration(t, &freed);
    EXPECT_TRUE(freed) << "step " << t;
    for (size_t p = 0; p < 2; ++p) {
      EXPECT_EQ(a[p].changed, b[p].changed) << t << " " << p;
      EXPECT_EQ(a[p].maxQ, b[p].maxQ) << t << " " << p;
    }
    EXPECT_GT(a[0].changed + a[1].changed, 0) << "nothing moved at step " << t;
    EXPECT_TRUE(
        test::sameBytes(normal.l1->weight().q(), fused.l1->weight().q()));
    EXPECT_TRUE(
        test::sameBytes(normal.l2->weight().q(), fused.l2->weight().q()));
    std::vector<at::Tensor> sa = statesOf(*normal.opt), sb = statesOf(*fused.opt);
    ASSERT_EQ(sa.size(), sb.size());
    for (size_t k = 0; k < sa.size(); ++k)
      EXPECT_TRUE(test::sameBytes(sa[k], sb[k])) << "state " << k;
    EXPECT_EQ(normal.opt->stepCount(), fused.opt->stepCount());
  }
}

TYPED_TEST(QuantLinearStepInBackward, UsedTwiceInOneForwardIsRefused) {
  TwoLayers<TypeParam> net(true);
  at::Tensor x = at::randn({4, 16});
  // l1 twice in one forward: its second gradient would step it again.
  at::Tensor loss = net.l1->forward(x).sum() + net.l1->forward(x).sum();
  std::string error;
  try {
    torch::autograd::backward({loss});
  } catch (const std::exception &e) { // rethrown by the autograd engine
    error = e.what();
  }
  EXPECT_NE(error.find("already stepped in this step"), std::string::npos)
      << error;
}

} // namespace
