//===- step-absmax.cpp - absmax-rule kernels == scalar reference ----------===//
//
// StepConfig::rule = ScaleRule::AbsMax (docs/numerics.md, "Scale rules"):
// the JIT-compiled CPU kernel yields max|w2| (per tensor, or per row) bit
// for bit as the reference computes it, for any chunking, with NaN and
// infinite gradients; its weights, states and other by-products are those
// of the paper-rule kernel given the same deltas (the rule changes only how
// the host picks the next delta); and the rule's keys, refusals and next
// delta.
//
//===----------------------------------------------------------------------===//

#include "StepHarness.h"

#include <gtest/gtest.h>

#include <random>

using namespace dqt;

namespace {

struct Case {
  Optimizer opt;
  int bits;
  ScaleMode scale;
  StateType state = StateType::F32;
};

std::string caseName(const Case &c) {
  return std::string(c.opt == Optimizer::AdamW ? "AdamW" : "SGD") + "Bits" +
         std::to_string(c.bits) +
         (c.scale == ScaleMode::Row ? "PerRow" : "PerTensor") +
         (c.state == StateType::BF16 ? "BF16States" : "");
}

void PrintTo(const Case &c, std::ostream *os) { *os << caseName(c); }

StepConfig configOf(const Case &c, ScaleRule rule) {
  StepConfig cfg;
  cfg.optimizer = c.opt;
  cfg.bits = c.bits;
  cfg.stateType = c.state;
  cfg.scale = c.scale;
  cfg.rule = rule;
  return cfg;
}

class StepAbsMax : public ::testing::TestWithParam<Case> {};

TEST_P(StepAbsMax, ByProductsBitIdenticalToReference) {
  Case cs = GetParam();
  StepConfig c = configOf(cs, ScaleRule::AbsMax);
  StepConfig paper = configOf(cs, ScaleRule::MaxQ);
  auto kernel = compileCpuStep(c);
  auto paperKernel = compileCpuStep(paper);
  ASSERT_TRUE(bool(kernel)) << llvm::toString(kernel.takeError());
  ASSERT_TRUE(bool(paperKernel)) << llvm::toString(paperKernel.takeError());

  const int64_t rowLength = 45, rows = 53, n = rows * rowLength;
  bool perRow = cs.scale == ScaleMode::Row;
  test::StepBuffers init = test::randomBuffers(n, c.qn(), c.qp(), 11);
  ref::Scalars s{};
  s.seed = 0x0123456789abcdefULL;
  s.step = 7;
  s.tid = 3;
  test::setLargeSteps(s, c.optimizer);
  s.delta = 0.02f;
  // The next delta a little smaller: some updated values exceed Qp*delta'
  // and are clamped, which max|w2| still sees.
  s.deltaNext = s.delta * 0.75f;
  std::vector<float> delta(rows), deltaNext(rows);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  for (int64_t r = 0; r < rows; ++r) {
    delta[r] = 0.02f * std::pow(10.0f, ud(rng) * 2.0f - 1.0f);
    deltaNext[r] = delta[r] * (r % 3 ? 0.75f : 1.0f);
  }
  if (perRow) {
    s.rowLength = rowLength;
    s.deltaRows = delta.data();
    s.deltaNextRows = deltaNext.data();
  }

  test::StepBuffers expected = init;
  ref::Reductions want = test::runReference(c, expected, s);
  ASSERT_GT(want.nonfinite, 0);
  ASSERT_GT(want.changed, n / 100);
  // Clamping happened, and max|w2| lies beyond the grid's largest value.
  float amax;
  int32_t bits = int32_t(want.absMax);
  std::memcpy(&amax, &bits, 4);
  if (!perRow)
    EXPECT_GT(amax, float(c.qp()) * s.deltaNext);

  std::vector<int64_t> many = {0};
  while (many.back() < n)
    many.push_back(std::min<int64_t>(n, many.back() + 1 + rng() % 701));
  for (const auto &bounds : std::vector<std::vector<int64_t>>{
           {0, n}, {0, rowLength, 7 * rowLength, n}, many}) {
    SCOPED_TRACE(::testing::Message() << bounds.size() - 1 << " chunks");
    test::StepBuffers got = init;
    ref::Reductions r = test::runChunks(*kernel, c, got, s, bounds);
    EXPECT_EQ(got.q, expected.q) << "integer weights differ";
    EXPECT_EQ(r.maxq, want.maxq);
    EXPECT_EQ(r.changed, want.changed);
    EXPECT_EQ(r.nonfinite, want.nonfinite);
    if (perRow) {
      EXPECT_EQ(r.rowMax, want.rowMax);
      EXPECT_EQ(r.rowAbsMax, want.rowAbsMax);
    } else {
      EXPECT_EQ(r.absMax, want.absMax);
    }
    // The paper's kernel on the same deltas: the same step.
    test::StepBuffers same = init;
    ref::Reductions p = test::runChunks(*paperKernel, paper, same, s, bounds);
    EXPECT_EQ(same.q, got.q);
    EXPECT_EQ(same.s0, got.s0);
    EXPECT_EQ(same.h0, got.h0);
    EXPECT_EQ(p.changed, r.changed);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Grids, StepAbsMax,
    ::testing::Values(Case{Optimizer::AdamW, 8, ScaleMode::Tensor},
                      Case{Optimizer::AdamW, 8, ScaleMode::Row},
                      Case{Optimizer::AdamW, 3, ScaleMode::Tensor},
                      Case{Optimizer::SGD, 4, ScaleMode::Row},
                      Case{Optimizer::AdamW, 4, ScaleMode::Row,
                           StateType::BF16}),
    [](const auto &info) { return caseName(info.param); });

TEST(StepConfigAbsMax, KeysAndRefusals) {
  StepConfig c;
  c.rule = ScaleRule::AbsMax;
  EXPECT_EQ(c.key(), "adamw-b8-absmax-gf32-sf32");
  c.scale = ScaleMode::Row;
  EXPECT_EQ(c.key(), "adamw-b8-rows-absmax-gf32-sf32");
  EXPECT_EQ(StepConfig::fromKey(c.key()).key(), c.key());
  EXPECT_EQ(StepConfig::fromKey(c.key()).rule, ScaleRule::AbsMax);
  c.ternary = true;
  EXPECT_THROW(c.key(), std::invalid_argument);
  StepConfig f;
  f.floatWeights = true;
  f.rule = ScaleRule::AbsMax;
  EXPECT_THROW(f.validate(), std::invalid_argument);
  size_t absmax = 0;
  for (const StepConfig &s : standardStepConfigs())
    absmax += s.rule == ScaleRule::AbsMax;
  // 2 optimizers x 7 widths x 2 scale modes x 2 state types.
  EXPECT_EQ(absmax, 56u);
}

TEST(StepConfigAbsMax, NextDeltaOfTheRule) {
  auto bitsOf = [](float a) {
    int32_t b;
    std::memcpy(&b, &a, 4);
    return b;
  };
  EXPECT_EQ(ref::nextDeltaAbsMax(0.5f, bitsOf(1.27f), 127), 1.27f / 127.0f);
  // Grows past the paper's bound (max q <= Qp keeps delta' <= delta).
  EXPECT_GT(ref::nextDeltaAbsMax(0.01f, bitsOf(2.54f), 127), 0.01f);
  // No element (INT32_MIN), zero, inf and NaN keep delta.
  for (int32_t b : {std::numeric_limits<int32_t>::min(), 0,
                    bitsOf(INFINITY), 0x7fc00000})
    EXPECT_EQ(ref::nextDeltaAbsMax(0.25f, b, 7), 0.25f) << b;
}

} // namespace
