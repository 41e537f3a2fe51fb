//===- step-matches-reference.cpp - JIT kernel == scalar reference --------===//
//
// The JIT-compiled CPU step, for ternary, 2, 3, 4 and 8 bits, AdamW and SGD,
// f32 and (ternary, 4, 8 bits) bf16 states, on 2^20 + 3 elements (a tail that
// is not a whole group of 8), against the independent reference: weights,
// states and by-products bit-identical, and identical for any chunking.
//
//===----------------------------------------------------------------------===//

#include "StepHarness.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

using namespace dqt;

namespace {

struct Case {
  Optimizer opt;
  int bits; // 0: ternary
  StateType state = StateType::F32;
};

std::string caseName(const ::testing::TestParamInfo<Case> &info) {
  std::string n = info.param.opt == Optimizer::AdamW ? "AdamW" : "SGD";
  return n +
         (info.param.bits ? "Bits" + std::to_string(info.param.bits)
                          : std::string("Ternary")) +
         (info.param.state == StateType::BF16 ? "BF16States" : "");
}

class StepMatchesReference : public ::testing::TestWithParam<Case> {
protected:
  static constexpr int64_t kN = (int64_t(1) << 20) + 3;

  StepConfig config() const {
    StepConfig c;
    c.optimizer = GetParam().opt;
    c.ternary = GetParam().bits == 0;
    c.bits = c.ternary ? 8 : GetParam().bits;
    c.stateType = GetParam().state;
    return c;
  }

  /// Weights over the whole grid, gradients of mixed scales with some
  /// non-finite ones, states as after a few steps.
  test::StepBuffers makeBuffers(const StepConfig &c, uint32_t seed) const {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> qd(c.qn(), c.qp());
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<float> ud(0.0f, 1.0f);
    test::StepBuffers b;
    b.q.resize(kN);
    b.g.resize(kN);
    b.s0.resize(kN);
    b.s1.resize(kN);
    for (int64_t i = 0; i < kN; ++i) {
      b.q[i] = int8_t(qd(rng));
      float scale = std::pow(10.0f, ud(rng) * 6.0f - 4.0f);
      b.g[i] = nd(rng) * scale;
      if (i % 9973 == 5)
        b.g[i] = NAN;
      if (i % 7919 == 3)
        b.g[i] = (i & 1) ? INFINITY : -INFINITY;
      b.s0[i] = nd(rng) * 0.01f;
      b.s1[i] = std::fabs(nd(rng)) * 1e-4f;
    }
    if (c.stateType == StateType::BF16) {
      b.h0.resize(kN);
      b.h1.resize(kN);
      for (int64_t i = 0; i < kN; ++i) {
        b.h0[i] = ref::truncBF16(b.s0[i]);
        b.h1[i] = ref::truncBF16(b.s1[i]);
      }
      // Stored specials: NaN (quiet, signalling, negative), +-inf, and
      // values next to the largest bf16 (their new value may round to inf).
      const uint16_t special[] = {0x7fc0, 0x7f81, 0xffc1, 0x7f80,
                                  0xff80, 0x7f7f, 0xff7f, 0x0001};
      for (int64_t k = 0; k < 8 * 64; ++k) {
        int64_t i = (k * 2053 + 11) % kN;
        b.h0[i] = special[k % 8];
        b.h1[i] = special[(k / 8) % 8] & 0x7fff; // v >= 0 (or NaN)
      }
    }
    return b;
  }

  ref::Scalars scalars(const StepConfig &c) const {
    ref::Scalars s{};
    s.seed = 0x123456789abcdefULL;
    s.step = 7;
    s.tid = 3;
    s.delta = 0.02f;
    s.deltaNext = ref::nextDelta(
        s.delta, int8_t(c.qp() - 1 > 0 ? c.qp() - 1 : 1), c.qp());
    test::setLargeSteps(s, c.optimizer);
    return s;
  }

};

void expectSame(const test::StepBuffers &a, const test::StepBuffers &b,
                const StepConfig &c) {
  ASSERT_EQ(0, std::memcmp(a.q.data(), b.q.data(), a.q.size()))
      << "integer weights differ";
  if (c.stateType == StateType::BF16) {
    ASSERT_EQ(0, std::memcmp(a.h0.data(), b.h0.data(), a.h0.size() * 2))
        << "first state (bf16) differs";
    if (c.optimizer == Optimizer::AdamW)
      ASSERT_EQ(0, std::memcmp(a.h1.data(), b.h1.data(), a.h1.size() * 2))
          << "second moment (bf16) differs";
    return;
  }
  ASSERT_EQ(0, std::memcmp(a.s0.data(), b.s0.data(), a.s0.size() * 4))
      << "first state differs";
  if (c.optimizer == Optimizer::AdamW)
    ASSERT_EQ(0, std::memcmp(a.s1.data(), b.s1.data(), a.s1.size() * 4))
        << "second moment differs";
}

TEST_P(StepMatchesReference, BitIdenticalForAnyChunking) {
  StepConfig c = config();
  auto kernel = compileCpuStep(c);
  ASSERT_TRUE(bool(kernel)) << llvm::toString(kernel.takeError());
  // Reported, not asserted: speed is the benchmark's business.
  std::cout << "[jit] " << c.key() << ": built, lowered and compiled in "
            << kernel->compileSeconds * 1e3 << " ms\n";

  test::StepBuffers init = makeBuffers(c, 42);
  ref::Scalars s = scalars(c);

  test::StepBuffers expected = init;
  ref::Reductions want = test::runReference(c, expected, s);
  // The step must do something for the comparison to mean anything.
  ASSERT_GT(want.changed, kN / 100);
  ASSERT_GT(want.nonfinite, 0);

  std::mt19937 rng(7);
  std::vector<std::vector<int64_t>> chunkings = {
      {0, kN},                     // one chunk
      {0, 1, 6, 4097, kN - 2, kN}, // odd, unaligned boundaries
  };
  std::vector<int64_t> many = {0};
  while (many.back() < kN)
    many.push_back(std::min<int64_t>(kN, many.back() + 1 + rng() % 70001));
  chunkings.push_back(many);

  for (const auto &bounds : chunkings) {
    test::StepBuffers got = init;
    ref::Reductions r = test::runChunks(*kernel, c, got, s, bounds);
    SCOPED_TRACE(::testing::Message() << bounds.size() - 1 << " chunks");
    expectSame(got, expected, c);
    EXPECT_EQ(r.maxq, want.maxq);
    EXPECT_EQ(r.changed, want.changed);
    EXPECT_EQ(r.nonfinite, want.nonfinite);
  }
}

TEST_P(StepMatchesReference, NonFiniteGradientsLeaveElementsUntouched) {
  StepConfig c = config();
  auto kernel = compileCpuStep(c);
  ASSERT_TRUE(bool(kernel)) << llvm::toString(kernel.takeError());
  test::StepBuffers b = makeBuffers(c, 1);
  test::StepBuffers before = b;
  ref::Scalars s = scalars(c);
  ref::Reductions r = test::runChunks(*kernel, c, b, s, {0, kN});
  int64_t bad = 0;
  for (int64_t i = 0; i < kN; ++i) {
    if (std::isfinite(before.g[i]))
      continue;
    ++bad;
    ASSERT_EQ(b.q[i], before.q[i]) << "element " << i;
    ASSERT_EQ(0, std::memcmp(&b.s0[i], &before.s0[i], 4)) << "element " << i;
    ASSERT_EQ(0, std::memcmp(&b.s1[i], &before.s1[i], 4)) << "element " << i;
    if (c.stateType == StateType::BF16) {
      ASSERT_EQ(b.h0[i], before.h0[i]) << "element " << i;
      ASSERT_EQ(b.h1[i], before.h1[i]) << "element " << i;
    }
  }
  EXPECT_EQ(r.nonfinite, bad);
  // And every state that was finite is still finite.
  for (int64_t i = 0; i < kN; ++i) {
    if (c.stateType == StateType::BF16) {
      if (std::isfinite(ref::bf16ToFloat(before.h0[i])) &&
          std::isfinite(ref::bf16ToFloat(before.h1[i])) &&
          std::fabs(ref::bf16ToFloat(before.h1[i])) < 1e38f)
        ASSERT_TRUE(std::isfinite(ref::bf16ToFloat(b.h0[i])) &&
                    std::isfinite(ref::bf16ToFloat(b.h1[i])))
            << i;
      continue;
    }
    ASSERT_TRUE(std::isfinite(b.s0[i]) && std::isfinite(b.s1[i])) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Grids, StepMatchesReference,
    ::testing::Values(Case{Optimizer::AdamW, 0}, Case{Optimizer::AdamW, 2},
                      Case{Optimizer::AdamW, 3}, Case{Optimizer::AdamW, 4},
                      Case{Optimizer::AdamW, 8}, Case{Optimizer::SGD, 0},
                      Case{Optimizer::SGD, 4}, Case{Optimizer::SGD, 8}),
    caseName);

INSTANTIATE_TEST_SUITE_P(
    BF16States, StepMatchesReference,
    ::testing::Values(Case{Optimizer::AdamW, 0, StateType::BF16},
                      Case{Optimizer::AdamW, 4, StateType::BF16},
                      Case{Optimizer::AdamW, 8, StateType::BF16},
                      Case{Optimizer::SGD, 0, StateType::BF16},
                      Case{Optimizer::SGD, 4, StateType::BF16},
                      Case{Optimizer::SGD, 8, StateType::BF16}),
    caseName);

TEST(StepConfig, KeyNamesTheStateType) {
  StepConfig c;
  c.stateType = StateType::BF16;
  EXPECT_EQ(c.key(), "adamw-b8-gf32-sbf16");
  c.optimizer = Optimizer::SGD;
  c.ternary = true;
  EXPECT_EQ(c.key(), "sgd-ternary-gf32-sbf16");
}

TEST(StepConfig, RejectsBitWidthsOutOfRange) {
  for (int bits : {-1, 0, 1, 9, 16}) {
    StepConfig c;
    c.bits = bits;
    EXPECT_THROW(c.key(), std::invalid_argument) << bits;
  }
  StepConfig t;
  t.ternary = true;
  EXPECT_EQ(t.key(), "adamw-ternary-gf32-sf32");
}

} // namespace
