//===- step-per-row.cpp - per-row delta kernels == scalar reference -------===//
//
// StepConfig::scale = ScaleMode::Row: one delta per output row. The
// JIT-compiled CPU kernel is bit-identical to the independent reference
// (weights, states, each row's max(q'), the tensor's by-products) for AdamW
// and SGD, 8, 4 bits and ternary (int8 and packed), f32 and bf16 states,
// row lengths that are and are not multiples of 4 and of the 32-element
// vector block, any chunking; and with every row's delta equal it is the
// per-tensor kernel.
//
//===----------------------------------------------------------------------===//

#include "StepHarness.h"

#include <gtest/gtest.h>

#include <random>

using namespace dqt;

namespace {

struct Case {
  Optimizer opt;
  int bits; // 0: ternary
  bool packed = false;
  StateType state = StateType::F32;
};

std::string caseName(const ::testing::TestParamInfo<Case> &info) {
  const Case &c = info.param;
  return std::string(c.opt == Optimizer::AdamW ? "AdamW" : "SGD") +
         (c.bits ? "Bits" + std::to_string(c.bits) : std::string("Ternary")) +
         (c.packed ? "Packed" : "") +
         (c.state == StateType::BF16 ? "BF16States" : "");
}

/// How GoogleTest (and ctest's test list) prints a Case: its name.
void PrintTo(const Case &c, std::ostream *os) {
  *os << caseName(::testing::TestParamInfo<Case>(c, 0));
}

StepConfig configOf(const Case &c, ScaleMode scale) {
  StepConfig cfg;
  cfg.optimizer = c.opt;
  cfg.ternary = c.bits == 0;
  cfg.bits = cfg.ternary ? 8 : c.bits;
  cfg.packed = c.packed;
  cfg.stateType = c.state;
  cfg.scale = scale;
  return cfg;
}

ref::Scalars scalarsOf(const StepConfig &c) {
  ref::Scalars s{};
  s.seed = 0xfeedfacecafef00dULL;
  s.step = 11;
  s.tid = 5;
  test::setLargeSteps(s, c.optimizer);
  return s;
}

ref::Reductions runKernel(const CpuStepKernel &k, const StepConfig &c,
                          test::StepBuffers &b, const ref::Scalars &s,
                          const std::vector<int64_t> &bounds) {
  return c.packed ? test::runChunksPacked(k, c, b, s, bounds, nullptr)
                  : test::runChunks(k, c, b, s, bounds);
}

void expectSameBuffers(const test::StepBuffers &a, const test::StepBuffers &b,
                       const StepConfig &c) {
  ASSERT_EQ(a.q, b.q) << "integer weights differ";
  if (c.stateType == StateType::BF16) {
    ASSERT_EQ(a.h0, b.h0) << "first state (bf16) differs";
    ASSERT_EQ(a.h1, b.h1) << "second state (bf16) differs";
    return;
  }
  ASSERT_EQ(0, std::memcmp(a.s0.data(), b.s0.data(), a.s0.size() * 4))
      << "first state differs";
  ASSERT_EQ(0, std::memcmp(a.s1.data(), b.s1.data(), a.s1.size() * 4))
      << "second state differs";
}

class StepPerRow : public ::testing::TestWithParam<std::tuple<Case, int64_t>> {
};

TEST_P(StepPerRow, BitIdenticalToReferenceForAnyChunking) {
  auto [cs, rowLength] = GetParam();
  StepConfig c = configOf(cs, ScaleMode::Row);
  EXPECT_NE(c.key().find("-rows"), std::string::npos) << c.key();
  auto kernel = compileCpuStep(c);
  ASSERT_TRUE(bool(kernel)) << llvm::toString(kernel.takeError());

  const int64_t rows = 67;
  const int64_t n = rows * rowLength;
  test::StepBuffers init = test::randomBuffers(n, c.qn(), c.qp(), 42);
  // Rows of very different scales, some with maxq <= 0 (delta kept).
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  std::vector<float> delta(rows), deltaNext(rows);
  for (int64_t r = 0; r < rows; ++r) {
    delta[r] = 0.02f * std::pow(10.0f, ud(rng) * 2.0f - 1.0f);
    int8_t maxq = int8_t(r % 5 == 0 ? 0 : c.qp() - int64_t(r % 2));
    deltaNext[r] = ref::nextDelta(delta[r], maxq, c.qp());
  }
  ref::Scalars s = scalarsOf(c);
  s.rowLength = rowLength;
  s.deltaRows = delta.data();
  s.deltaNextRows = deltaNext.data();

  test::StepBuffers expected = init;
  ref::Reductions want = test::runReference(c, expected, s);
  ASSERT_GT(want.changed, n / 100);
  ASSERT_GT(want.nonfinite, 0);
  ASSERT_EQ(int64_t(want.rowMax.size()), rows);

  std::vector<std::vector<int64_t>> chunkings = {
      {0, n},                             // one chunk
      {0, rowLength, 5 * rowLength, n},   // whole rows
      {0, 1, 6, rowLength + 3, n - 2, n}, // rows cut anywhere
  };
  std::vector<int64_t> many = {0};
  while (many.back() < n)
    many.push_back(std::min<int64_t>(n, many.back() + 1 + rng() % 701));
  chunkings.push_back(many);
  for (const auto &bounds : chunkings) {
    if (c.packed && llvm::any_of(bounds, [&](int64_t b) {
          return b % 4 && b != n; // packed chunks own whole bytes
        }))
      continue;
    SCOPED_TRACE(::testing::Message() << bounds.size() - 1 << " chunks");
    test::StepBuffers got = init;
    ref::Reductions r = runKernel(*kernel, c, got, s, bounds);
    expectSameBuffers(got, expected, c);
    EXPECT_EQ(r.rowMax, want.rowMax);
    EXPECT_EQ(r.maxq, want.maxq);
    EXPECT_EQ(r.changed, want.changed);
    EXPECT_EQ(r.nonfinite, want.nonfinite);
  }
}

TEST_P(StepPerRow, EqualRowDeltasAreThePerTensorStep) {
  auto [cs, rowLength] = GetParam();
  StepConfig rowsConfig = configOf(cs, ScaleMode::Row);
  StepConfig tensorConfig = configOf(cs, ScaleMode::Tensor);
  auto rowsKernel = compileCpuStep(rowsConfig);
  auto tensorKernel = compileCpuStep(tensorConfig);
  ASSERT_TRUE(bool(rowsKernel)) << llvm::toString(rowsKernel.takeError());
  ASSERT_TRUE(bool(tensorKernel)) << llvm::toString(tensorKernel.takeError());
  const int64_t rows = 9, n = rows * rowLength;
  test::StepBuffers a = test::randomBuffers(n, rowsConfig.qn(), rowsConfig.qp(),
                                            7),
                    b = a;
  ref::Scalars s = scalarsOf(rowsConfig);
  s.delta = 0.03f;
  s.deltaNext =
      ref::nextDelta(s.delta, int8_t(rowsConfig.qp()), rowsConfig.qp());
  std::vector<float> delta(rows, s.delta), deltaNext(rows, s.deltaNext);
  ref::Reductions perTensor =
      runKernel(*tensorKernel, tensorConfig, a, s, {0, n});
  s.rowLength = rowLength;
  s.deltaRows = delta.data();
  s.deltaNextRows = deltaNext.data();
  ref::Reductions perRow = runKernel(*rowsKernel, rowsConfig, b, s, {0, n});
  expectSameBuffers(a, b, rowsConfig);
  EXPECT_EQ(perRow.maxq, perTensor.maxq);
  EXPECT_EQ(perRow.changed, perTensor.changed);
  EXPECT_EQ(perRow.nonfinite, perTensor.nonfinite);
  EXPECT_EQ(*std::max_element(perRow.rowMax.begin(), perRow.rowMax.end()),
            perTensor.maxq);
}

INSTANTIATE_TEST_SUITE_P(
    Grids, StepPerRow,
    ::testing::Combine(
        ::testing::Values(Case{Optimizer::AdamW, 8}, Case{Optimizer::AdamW, 4},
                          Case{Optimizer::AdamW, 0},
                          Case{Optimizer::AdamW, 0, /*packed=*/true},
                          Case{Optimizer::SGD, 8},
                          Case{Optimizer::SGD, 0, /*packed=*/true},
                          Case{Optimizer::AdamW, 4, false, StateType::BF16}),
        // Odd, a multiple of 4 but not of the vector block, several blocks.
        ::testing::Values(int64_t(45), int64_t(20), int64_t(128))),
    [](const auto &info) {
      return caseName(::testing::TestParamInfo<Case>(std::get<0>(info.param),
                                                     info.index)) +
             "Row" + std::to_string(std::get<1>(info.param));
    });

TEST(StepConfig, PerRowKeyAndFloatModeRefusal) {
  StepConfig c;
  c.scale = ScaleMode::Row;
  EXPECT_EQ(c.key(), "adamw-b8-rows-gf32-sf32");
  c.ternary = true;
  c.packed = true;
  EXPECT_EQ(c.key(), "adamw-ternary-p2-rows-gf32-sf32");
  StepConfig f;
  f.floatWeights = true;
  f.scale = ScaleMode::Row;
  EXPECT_THROW(f.key(), std::invalid_argument);
}

} // namespace
