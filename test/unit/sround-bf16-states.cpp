//===- sround-bf16-states.cpp - statistics of bf16 state rounding ---------===//
//
// bf16 optimizer states are written with stochastic rounding from the state
// streams (docs/numerics.md, v2: m from state stream 0's 16 bits h_i, v from
// state stream 1's). Measured on the generated kernels:
//
// - Unbiased: the SGD step with momentum 0 stores buf' = SR_bf16(g) (0*buf
//   + g is exact), one draw per element. With s_i the bf16 spacing at x_i
//   and p_i = the dropped fraction, e_i = (SR(x_i) - x_i) / s_i has mean 0
//   and variance p_i (1 - p_i) exactly (16 random bits against a 16-bit
//   fraction: no resolution slack). We require
//   |sum e_i| <= 5 * sqrt(sum p_i (1 - p_i))   (5 standard errors).
// - Independent: the AdamW step with beta1 = beta2 = 0 stores SR(g) as m
//   and SR(g*g) as v while the weight rounds with its own u. For a constant
//   g, the round-up indicators of m, v and q are Bernoulli; independent
//   ones have a sample correlation with standard deviation 1/sqrt(N): we
//   require |corr| <= 5/sqrt(N) for each pair.
//
//===----------------------------------------------------------------------===//

#include "StepHarness.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

using namespace dqt;

namespace {

CpuStepKernel compile(Optimizer opt) {
  StepConfig c;
  c.optimizer = opt;
  c.stateType = StateType::BF16;
  auto k = compileCpuStep(c);
  EXPECT_TRUE(bool(k)) << llvm::toString(k.takeError());
  return k ? std::move(*k) : CpuStepKernel{};
}

StepConfig bf16Config(Optimizer opt) {
  StepConfig c;
  c.optimizer = opt;
  c.stateType = StateType::BF16;
  return c;
}

/// The bf16 below x (truncation) and the spacing above it.
void bracket(float x, double &below, double &spacing) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  uint16_t lo = uint16_t(bits >> 16);
  below = ref::bf16ToFloat(lo);
  spacing = std::fabs(double(ref::bf16ToFloat(uint16_t(lo + 1))) - below);
}

TEST(BF16StateRounding, MeanErrorIsZeroWithinFiveStandardErrors) {
  StepConfig c = bf16Config(Optimizer::SGD);
  CpuStepKernel kernel = compile(c.optimizer);
  ASSERT_TRUE(kernel.fn);
  const int64_t n = int64_t(1) << 21;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  std::uniform_int_distribution<int> expo(-140, 100); // subnormals included
  test::StepBuffers b;
  b.q.assign(n, 0);
  b.g.resize(n);
  b.h0.assign(n, 0);
  for (int64_t i = 0; i < n; ++i)
    b.g[i] = std::ldexp(mant(rng), expo(rng)) * ((i & 1) ? -1.0f : 1.0f);
  ref::Scalars s{};
  s.seed = 42;
  s.step = 1;
  s.delta = s.deltaNext = 1.0f;
  s.h[0] = 0.0f; // lr: the weights do not matter here
  s.h[1] = 0.0f; // momentum: buf' = g
  test::runChunks(kernel, c, b, s, {0, n});

  double sum = 0, var = 0;
  int64_t up = 0;
  for (int64_t i = 0; i < n; ++i) {
    double x = b.g[i], below, spacing;
    bracket(b.g[i], below, spacing);
    double got = ref::bf16ToFloat(b.h0[i]);
    double p = (x - below) / spacing; // signed magnitudes: both toward 0
    ASSERT_TRUE(got == below ||
                std::fabs(got - below) == spacing) // the next one out
        << "x = " << x << " rounded to " << got;
    up += got != below;
    sum += (std::fabs(got) - std::fabs(x)) / spacing;
    var += std::fabs(p) * (1 - std::fabs(p));
  }
  double se = std::sqrt(var);
  RecordProperty("mean_error_in_spacings", std::to_string(sum / n));
  EXPECT_LE(std::fabs(sum), 5 * se) << "sum of errors " << sum << ", SE " << se;
  EXPECT_GT(up, n / 8) << "rounding up should be common";
}

TEST(BF16StateRounding, StatesAndWeightRoundIndependently) {
  StepConfig c = bf16Config(Optimizer::AdamW);
  CpuStepKernel kernel = compile(c.optimizer);
  ASSERT_TRUE(kernel.fn);
  const int64_t n = int64_t(1) << 21;
  const float g = 1.239f; // m = SR(g), v = SR(g*g): fractions ~0.59, ~0.50
  test::StepBuffers b;
  b.q.assign(n, 0);
  b.g.assign(n, g);
  b.h0.assign(n, 0);
  b.h1.assign(n, 0);
  ref::Scalars s{};
  s.seed = 0xfeedULL;
  s.step = 5;
  s.tid = 2;
  s.delta = s.deltaNext = 1.0f;
  float h[5] = {0.0f, 0.0f, 0.3f, 1e-6f, 0.0f}; // x = -0.3 * g/(|g|+eps)
  std::memcpy(s.h, h, sizeof(h));
  test::runChunks(kernel, c, b, s, {0, n});

  float v = g * g;
  double mBelow, mSpacing, vBelow, vSpacing;
  bracket(g, mBelow, mSpacing);
  bracket(v, vBelow, vSpacing);
  std::vector<double> ups[3];
  for (auto &u : ups)
    u.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    ups[0][i] = ref::bf16ToFloat(b.h0[i]) != mBelow;
    ups[1][i] = ref::bf16ToFloat(b.h1[i]) != vBelow;
    ups[2][i] = b.q[i] == 0; // x is in (-1, 0): 0 is rounding up
  }
  double mean[3], sd[3];
  for (int k = 0; k < 3; ++k) {
    double sum = 0;
    for (double x : ups[k])
      sum += x;
    mean[k] = sum / n;
    ASSERT_GT(mean[k], 0.05) << "stream " << k;
    ASSERT_LT(mean[k], 0.95) << "stream " << k;
    sd[k] = std::sqrt(mean[k] * (1 - mean[k]));
  }
  const char *names[3] = {"m", "v", "q"};
  for (int a = 0; a < 3; ++a)
    for (int bIdx = a + 1; bIdx < 3; ++bIdx) {
      double cov = 0;
      for (int64_t i = 0; i < n; ++i)
        cov += (ups[a][i] - mean[a]) * (ups[bIdx][i] - mean[bIdx]);
      double corr = cov / n / (sd[a] * sd[bIdx]);
      EXPECT_LE(std::fabs(corr), 5 / std::sqrt(double(n)))
          << names[a] << " and " << names[bIdx] << " round together: corr "
          << corr;
    }
}

} // namespace
