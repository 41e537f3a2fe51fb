//===- absmax-rule.cpp - the absmax scale rule in the runtime -------------===//
//
// QuantizedWeight under ScaleRule::AbsMax (docs/numerics.md, "Scale rules"):
// the initialization maps max|W| to Qp, the weight keeps max|w2| from each
// step and takes the next delta from it, so the grid can grow where the
// paper's rule only shrinks; ternary is refused.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "dqt/Runtime/Checkpoint.h"
#include "dqt/Runtime/Optimizers.h"
#include "dqt/Runtime/QuantizedWeight.h"

#include <gtest/gtest.h>

#include <filesystem>

using namespace dqt;
namespace fs = std::filesystem;

namespace {

TEST(AbsMaxRule, InitializationMapsTheLargestMagnitudeToQp) {
  at::Generator gen = at::detail::createCPUGenerator(3);
  at::Tensor w = at::randn({16, 40}, gen);
  for (ScaleMode scale : {ScaleMode::Tensor, ScaleMode::Row}) {
    QuantizedWeight q = QuantizedWeight::fromFloat(
        w, Grid::fromBits(8), Storage::Int8, scale, ScaleRule::AbsMax);
    int64_t rows = scale == ScaleMode::Row ? 16 : 1;
    at::Tensor amax = w.view({rows, -1}).abs().amax(1);
    EXPECT_TRUE(at::equal(q.absMaxes(), amax));
    // No weight saturates beyond the row's largest one: max|q| = Qp.
    EXPECT_TRUE(at::equal(q.q().view({rows, -1}).abs().amax(1),
                          at::full({rows}, 127, at::kChar)));
    EXPECT_EQ(q.stepConfig(Optimizer::AdamW, StateType::F32).rule,
              ScaleRule::AbsMax);
    // The paper's initialization saturates a Gaussian's tails.
    QuantizedWeight p =
        QuantizedWeight::fromFloat(w, Grid::fromBits(8), Storage::Int8, scale);
    EXPECT_GT(p.q().eq(127).sum().item<int64_t>(), rows);
    EXPECT_FALSE(p.absMaxes().defined());
  }
}

TEST(AbsMaxRule, TernaryIsRefused) {
  try {
    QuantizedWeight::fromFloat(at::randn({4, 4}), Grid::fromBits(1.58),
                               Storage::Int8, ScaleMode::Tensor,
                               ScaleRule::AbsMax);
    FAIL() << "no error";
  } catch (const c10::Error &e) {
    EXPECT_NE(std::string(e.what()).find("ternary weights keep the paper's"),
              std::string::npos)
        << e.what();
  }
}

TEST(AbsMaxRule, TheGridGrowsWhereThePaperRuleCannot) {
  at::Generator gen = at::detail::createCPUGenerator(5);
  at::Tensor w = at::randn({8, 64}, gen) * 0.02;
  for (ScaleMode scale : {ScaleMode::Tensor, ScaleMode::Row}) {
    SCOPED_TRACE(scale == ScaleMode::Row ? "per row" : "per tensor");
    QuantizedWeight a = QuantizedWeight::fromFloat(
        w, Grid::fromBits(4), Storage::Int8, scale, ScaleRule::AbsMax);
    QuantizedWeight p =
        QuantizedWeight::fromFloat(w, Grid::fromBits(4), Storage::Int8, scale);
    at::Tensor d0 = a.deltas().clone(), p0 = p.deltas().clone();
    optim::AdamWOptions opts;
    opts.lr = 0.01;
    opts.weightDecay = 0;
    optim::AdamW adamA({&a}, opts), adamP({&p}, opts);
    for (int t = 0; t < 5; ++t) {
      // The max|w| kept from the last step (or the initialization) gives
      // the delta this step rounds to: a / Qp.
      at::Tensor want = a.absMaxes().div(at::full_like(a.absMaxes(), 7.0f));
      // A gradient that pushes every weight outward (away from 0).
      a.grad().copy_(-a.dequantize().sign() - 0.1);
      p.grad().copy_(-p.dequantize().sign() - 0.1);
      adamA.step();
      adamP.step();
      EXPECT_TRUE(at::equal(a.deltas(), want)) << "step " << t;
    }
    EXPECT_TRUE((a.deltas() > d0).all().item<bool>());
    EXPECT_TRUE((p.deltas() <= p0).all().item<bool>());
  }
}

/// Two absmax weights (per tensor and per row) under AdamW; the gradient
/// of step t depends only on t.
struct AbsMaxModel {
  std::vector<QuantizedWeight> w;
  std::unique_ptr<optim::AdamW> opt;
  explicit AbsMaxModel(ScaleRule rule = ScaleRule::AbsMax) {
    at::Generator gen = at::detail::createCPUGenerator(11);
    w.push_back(QuantizedWeight::fromFloat(at::randn({24, 32}, gen) * 0.05,
                                           Grid::fromBits(4), Storage::Int8,
                                           ScaleMode::Tensor, rule));
    w.push_back(QuantizedWeight::fromFloat(at::randn({16, 20}, gen) * 0.05,
                                           Grid::fromBits(8), Storage::Int8,
                                           ScaleMode::Row, rule));
    optim::AdamWOptions o;
    o.lr = 0.01;
    opt = std::make_unique<optim::AdamW>(
        std::vector<QuantizedWeight *>{&w[0], &w[1]}, o);
  }
  void step(int64_t t) {
    for (size_t p = 0; p < w.size(); ++p) {
      at::Generator gen = at::detail::createCPUGenerator(100 * t + p);
      w[p].grad().copy_(at::randn(w[p].q().sizes(), gen));
    }
    opt->step();
  }
};

TEST(AbsMaxRule, ResumeFromACheckpointIsBitExact) {
  fs::path dir = test::freshTestDirectory("dqt-absmax");
  fs::create_directories(dir);
  AbsMaxModel straight, first, resumed;
  for (int64_t t = 0; t < 6; ++t)
    straight.step(t);
  for (int64_t t = 0; t < 3; ++t)
    first.step(t);
  first.opt->save((dir / "half.safetensors").string());
  // The file holds max|w2|: without it the next delta could not be chosen.
  checkpoint::Contents c = checkpoint::load((dir / "half.safetensors").string());
  EXPECT_EQ(c.metadata.at("param.0.rule"), "absmax");
  EXPECT_TRUE(at::equal(c.get("param.1.abs_max"), first.w[1].absMaxes()));
  resumed.opt->load((dir / "half.safetensors").string());
  for (size_t p = 0; p < 2; ++p)
    EXPECT_TRUE(at::equal(resumed.w[p].absMaxes(), first.w[p].absMaxes()));
  for (int64_t t = 3; t < 6; ++t)
    resumed.step(t);
  for (size_t p = 0; p < 2; ++p) {
    EXPECT_TRUE(at::equal(resumed.w[p].q(), straight.w[p].q())) << p;
    EXPECT_TRUE(at::equal(resumed.w[p].deltas(), straight.w[p].deltas()));
    EXPECT_TRUE(at::equal(resumed.w[p].absMaxes(), straight.w[p].absMaxes()));
  }
  fs::remove_all(dir);
}

TEST(AbsMaxRule, AFileOfTheOtherRuleIsRefusedAndChangesNothing) {
  fs::path dir = test::freshTestDirectory("dqt-absmax");
  fs::create_directories(dir);
  AbsMaxModel absmax, paper(ScaleRule::MaxQ);
  absmax.step(0);
  paper.step(0);
  absmax.opt->save((dir / "absmax.safetensors").string());
  paper.opt->save((dir / "paper.safetensors").string());
  at::Tensor q0 = absmax.w[0].q().clone(), a0 = absmax.w[0].absMaxes().clone();
  std::string msg = test::errorMessage(
      [&] { absmax.opt->load((dir / "paper.safetensors").string()); });
  EXPECT_NE(msg.find("follows the absmax scale rule here and the maxq rule"),
            std::string::npos)
      << msg;
  EXPECT_TRUE(at::equal(absmax.w[0].q(), q0));
  EXPECT_TRUE(at::equal(absmax.w[0].absMaxes(), a0));
  msg = test::errorMessage(
      [&] { paper.opt->load((dir / "absmax.safetensors").string()); });
  EXPECT_NE(msg.find("follows the maxq scale rule here and the absmax rule"),
            std::string::npos)
      << msg;
  // A negative max|w| cannot come from a kernel.
  checkpoint::Contents c =
      checkpoint::load((dir / "absmax.safetensors").string());
  for (auto &[key, t] : c.tensors)
    if (key == "param.1.abs_max")
      t = at::full_like(t, -1.0f);
  checkpoint::save((dir / "bad.safetensors").string(), c);
  msg = test::errorMessage(
      [&] { absmax.opt->load((dir / "bad.safetensors").string()); });
  EXPECT_NE(msg.find("negative or NaN max|w|"), std::string::npos) << msg;
  EXPECT_TRUE(at::equal(absmax.w[0].q(), q0));
  fs::remove_all(dir);
}

} // namespace
