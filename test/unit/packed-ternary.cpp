//===- packed-ternary.cpp - packed ternary kernels == int8 ternary --------===//
//
// Ternary weights stored 4 per byte (StepConfig::packed): the JIT-compiled
// packed kernel, unpacked, is bit-identical to the independent reference and
// to the int8 ternary kernel for the same inputs (weights, states,
// by-products), for AdamW and SGD, f32 and bf16 states, sizes that are not
// multiples of 4, many chunkings, NaN/inf gradients; the last byte's unused
// bits stay 0.
//
//===----------------------------------------------------------------------===//

#include "StepHarness.h"

#include <gtest/gtest.h>

#include <random>

using namespace dqt;

namespace {

struct Case {
  Optimizer opt;
  StateType state;
};

std::string caseName(const ::testing::TestParamInfo<Case> &info) {
  return std::string(info.param.opt == Optimizer::AdamW ? "AdamW" : "SGD") +
         (info.param.state == StateType::BF16 ? "BF16States" : "F32States");
}

StepConfig configOf(const Case &c, bool packed) {
  StepConfig cfg;
  cfg.optimizer = c.opt;
  cfg.ternary = true;
  cfg.packed = packed;
  cfg.stateType = c.state;
  return cfg;
}

ref::Scalars scalarsOf(Optimizer opt) {
  ref::Scalars s{};
  s.seed = 0xfeedbeef12345ULL;
  s.step = 11;
  s.tid = 5;
  s.delta = 0.02f;
  s.deltaNext = 0.02f;
  test::setLargeSteps(s, opt);
  return s;
}

void expectSame(const test::StepBuffers &a, const test::StepBuffers &b) {
  ASSERT_EQ(a.q, b.q) << "integer weights differ";
  ASSERT_EQ(0, std::memcmp(a.s0.data(), b.s0.data(), a.s0.size() * 4));
  ASSERT_EQ(0, std::memcmp(a.s1.data(), b.s1.data(), a.s1.size() * 4));
  ASSERT_EQ(a.h0, b.h0);
  ASSERT_EQ(a.h1, b.h1);
}

class PackedTernary : public ::testing::TestWithParam<Case> {};

TEST_P(PackedTernary, MatchesReferenceAndInt8KernelForAnyChunking) {
  StepConfig packed = configOf(GetParam(), true);
  StepConfig plain = configOf(GetParam(), false);
  auto kp = compileCpuStep(packed);
  ASSERT_TRUE(bool(kp)) << llvm::toString(kp.takeError());
  auto ki = compileCpuStep(plain);
  ASSERT_TRUE(bool(ki)) << llvm::toString(ki.takeError());
  ref::Scalars s = scalarsOf(packed.optimizer);
  std::mt19937 rng(3);
  for (int64_t n : {int64_t(1), int64_t(2), int64_t(3), int64_t(5),
                    int64_t(31), int64_t(33), int64_t(4099),
                    (int64_t(1) << 18) + 1, (int64_t(1) << 18) + 2,
                    (int64_t(1) << 18) + 3}) {
    SCOPED_TRACE(::testing::Message() << "n = " << n);
    test::StepBuffers init = test::randomBuffers(n, -1, 1, uint32_t(n));
    test::StepBuffers want = init;
    ref::Reductions r = test::runReference(packed, want, s);
    test::StepBuffers viaInt8 = init;
    ref::Reductions ri = test::runChunks(*ki, plain, viaInt8, s, {0, n});
    expectSame(viaInt8, want);
    EXPECT_EQ(ri.changed, r.changed);

    // Aligned chunkings (what the runtime runs concurrently) and, run in
    // order, unaligned ones (read-modify-write of a shared byte).
    std::vector<std::vector<int64_t>> chunkings = {{0, n}};
    std::vector<int64_t> aligned = {0}, odd = {0};
    while (aligned.back() < n)
      aligned.push_back(std::min<int64_t>(n, aligned.back() + 4 * (1 + rng() % 9000)));
    while (odd.back() < n)
      odd.push_back(std::min<int64_t>(n, odd.back() + 1 + rng() % 777));
    chunkings.push_back(aligned);
    chunkings.push_back(odd);
    for (const auto &bounds : chunkings) {
      SCOPED_TRACE(::testing::Message() << bounds.size() - 1 << " chunks");
      test::StepBuffers got = init;
      std::vector<uint8_t> bytes;
      ref::Reductions rp =
          test::runChunksPacked(*kp, packed, got, s, bounds, &bytes);
      expectSame(got, want);
      EXPECT_EQ(rp.maxq, r.maxq);
      EXPECT_EQ(rp.changed, r.changed);
      EXPECT_EQ(rp.nonfinite, r.nonfinite);
      ASSERT_EQ(int64_t(bytes.size()), (n + 3) / 4);
      if (n % 4)
        EXPECT_EQ(bytes.back() >> (2 * (n % 4)), 0)
            << "unused bits of the last byte";
      // No code is 0b10.
      for (uint8_t byte : bytes)
        for (int k = 0; k < 4; ++k)
          ASSERT_NE((byte >> (2 * k)) & 3, 2);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Configs, PackedTernary,
    ::testing::Values(Case{Optimizer::AdamW, StateType::F32},
                      Case{Optimizer::AdamW, StateType::BF16},
                      Case{Optimizer::SGD, StateType::F32},
                      Case{Optimizer::SGD, StateType::BF16}),
    caseName);

TEST(PackedTernaryConfig, KeyAndValidation) {
  StepConfig c;
  c.ternary = true;
  c.packed = true;
  EXPECT_EQ(c.key(), "adamw-ternary-p2-gf32-sf32");
  c.stateType = StateType::BF16;
  c.optimizer = Optimizer::SGD;
  EXPECT_EQ(c.key(), "sgd-ternary-p2-gf32-sbf16");
  c.ternary = false;
  EXPECT_THROW(c.key(), std::invalid_argument);
}

TEST(PackedTernaryReference, PackUnpackRoundTrip) {
  int8_t q[7] = {-1, 0, 1, 1, -1, -1, 0};
  uint8_t bytes[2];
  ref::packTernary(q, 7, bytes);
  EXPECT_EQ(bytes[0], 0x53); // 01 01 00 11
  EXPECT_EQ(bytes[1], 0x0f); // 00 11 11, unused bits 0
  int8_t back[7];
  ref::unpackTernary(bytes, 7, back);
  EXPECT_EQ(0, std::memcmp(q, back, 7));
}

} // namespace
