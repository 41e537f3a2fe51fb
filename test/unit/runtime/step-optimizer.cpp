//===- step-optimizer.cpp - the step protocol every optimizer shares ------===//
//
// StepOptimizer's guarantees, for each of AdamW, SGD and Adafactor: states
// changed in place behind the kernels' back, load() during a step and a
// new state type in setOptions() are refused with nothing changed.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "dqt/Runtime/Adafactor.h"
#include "dqt/Runtime/Optimizers.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

using namespace dqt;
using dqt::test::errorMessage;
using dqt::test::sameBytes;

namespace {

template <typename Opt> struct OptionsOf;
template <> struct OptionsOf<optim::AdamW> {
  using type = optim::AdamWOptions;
};
template <> struct OptionsOf<optim::SGD> { using type = optim::SGDOptions; };
template <> struct OptionsOf<optim::Adafactor> {
  using type = optim::AdafactorOptions;
};

template <typename Opt> class StepProtocol : public ::testing::Test {
protected:
  using Options = typename OptionsOf<Opt>::type;

  StepProtocol()
      : gen(at::detail::createCPUGenerator(3)),
        w{QuantizedWeight::fromFloat(at::randn({8, 4}, gen), Grid::fromBits(8)),
          QuantizedWeight::fromFloat(at::randn({33}, gen), Grid::fromBits(4))} {
    Options o;
    if constexpr (std::is_same_v<Opt, optim::Adafactor>)
      o.beta1 = 0.9; // a first moment, so a state of the weight's shape
    opt =
        std::make_unique<Opt>(std::vector<QuantizedWeight *>{&w[0], &w[1]}, o);
    setGrads();
  }
  void setGrads() {
    for (QuantizedWeight &q : w)
      q.grad() = at::randn(q.sizes(), gen);
  }
  /// Everything a refused call must leave as it was.
  std::vector<at::Tensor> snapshot() const {
    std::vector<at::Tensor> all;
    for (const QuantizedWeight &q : w)
      all.push_back(q.q().clone());
    for (size_t p = 0; p < opt->numParams(); ++p)
      for (size_t k = 0; k < opt->numStates(p); ++k)
        all.push_back(opt->state(p, k).clone());
    return all;
  }
  void expectUnchanged(const std::vector<at::Tensor> &before) const {
    std::vector<at::Tensor> now = snapshot();
    ASSERT_EQ(now.size(), before.size());
    for (size_t i = 0; i < now.size(); ++i)
      EXPECT_TRUE(sameBytes(now[i], before[i])) << i;
  }

  at::Generator gen;
  QuantizedWeight w[2];
  std::unique_ptr<Opt> opt;
};

using Optimizers = ::testing::Types<optim::AdamW, optim::SGD, optim::Adafactor>;
TYPED_TEST_SUITE(StepProtocol, Optimizers);

TYPED_TEST(StepProtocol, AStateResizedInPlaceIsRefused) {
  this->opt->step();
  this->setGrads();
  // The last state of parameter 1 has the weight's shape [33].
  size_t k = this->opt->numStates(1) - 1;
  at::Tensor live = this->opt->state(1, k);
  live.resize_({32});
  std::vector<at::Tensor> before = this->snapshot();
  std::string msg = errorMessage([&] { this->opt->step(); });
  EXPECT_NE(msg.find("state " + std::to_string(k) + " of parameter 1 is"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("expected"), std::string::npos) << msg;
  this->expectUnchanged(before);
  EXPECT_EQ(this->opt->stepCount(), 1);
}

TYPED_TEST(StepProtocol, LoadDuringAStepIsRefused) {
  namespace fs = std::filesystem;
  fs::path dir = test::freshTestDirectory("dqt-step-protocol");
  fs::create_directories(dir);
  this->opt->save(dir / "opt.safetensors");
  this->opt->stepParameter(this->w[0]);
  std::vector<at::Tensor> before = this->snapshot();
  std::string msg =
      errorMessage([&] { this->opt->load(dir / "opt.safetensors"); });
  EXPECT_NE(msg.find(".load: a step is in progress"), std::string::npos) << msg;
  this->expectUnchanged(before);
  this->opt->step(); // finishes the step
  EXPECT_EQ(this->opt->stepCount(), 1);
  fs::remove_all(dir);
}

TYPED_TEST(StepProtocol, TheStateTypeIsFixedAtConstruction) {
  auto o = this->opt->options();
  o.stateType = StateType::BF16;
  o.lr = 0.125;
  EXPECT_NE(errorMessage([&] {
              this->opt->setOptions(o);
            }).find("the state type is fixed at construction"),
            std::string::npos);
  EXPECT_EQ(this->opt->options().stateType, StateType::F32);
  EXPECT_NE(this->opt->lr(), 0.125);
}

} // namespace
