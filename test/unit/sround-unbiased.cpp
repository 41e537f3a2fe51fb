//===- sround-unbiased.cpp - stochastic rounding statistics ---------------===//
//
// Paper supplement, eqs. 5-9: SR(x) is unbiased and Var[SR(x)] <= delta^2/4.
//
// What numerics v2 gives exactly (docs/numerics.md): u = (h + 0.5) * 2^-16
// with h uniform on {0, ..., 65535}, and x (fraction p = x - floor(x))
// rounds up iff u < p. So P(up | p) = c(p) / 65536 with
//   c(p) = #{h : (2h + 1) * 2^-17 < p} = clamp(ceil((2^17 p - 1) / 2), 0, 65536),
// which is 65536 p rounded to a nearest integer (ties, p a midpoint
// (k + 0.5) * 2^-16, round down: u < p is strict). The bias of one rounding,
//   b(p) = E[SR(x)] - x = c(p) / 65536 - p,   |b(p)| <= 2^-17,
// in units of the grid step, with mean 0 over fractions (u(h) + u(65535 - h)
// = 1, so c(p) + c(1 - p) = 65536 away from midpoints: b(1 - p) = -b(p)).
// The second moment of the error e = SR(x) - x is
//   E[e^2] = c/65536 (1 - p)^2 + (1 - c/65536) p^2 = p(1 - p) + b(p)(1 - 2p),
// within 2^-17 |1 - 2p| of p(1 - p), and at most 1/4 + 2^-17.
//
// Exhaustive (the reference's u over all 65536 h, no sampling): c(p) as
// above for chosen fractions, |b| <= 2^-17 for 2^20 fractions, and an
// update of 3 * 2^-18 of a step taken with probability exactly 2^-16 (only
// h = 0 has u = 2^-17 < 3 * 2^-18; the next, 3 * 2^-17, is not): 4/3 of the
// fraction, a bias of +2^-18, inside the bound, and never 0 (not lost).
// Sampled from the reference stream: the three streams and the two halves of
// one word are uncorrelated (|corr| <= 5 / sqrt(pairs)).
//
// Sampled, on the generated kernel: the SGD step with q = 0, delta = delta'
// = 1, lr = 1, momentum = decay = 0 writes q' = SR(-g), so g = -x draws one
// SR(x) per element, each from its own 16 bits of the stream.
// Tolerances, for N independent draws (P(e = 1 - p) = P_up = c(p)/65536):
//   mean:     |mean(e)| <= 5 * sqrt(sum p_i (1 - p_i)) / N + 2^-17: 5
//             standard errors of the mean (the variance of a sum of
//             Bernoullis, taken at p_i: P_up is within 2^-17 of p_i, which
//             changes the standard error by a relative 2^-16 at most, far
//             below the 5-sigma margin) plus the largest bias;
//   variance: for one p, s^2 = mean(e^2) has standard deviation
//             sqrt((mu4 - sigma^4) / N), mu4 = p(1-p)((1-p)^3 + p^3),
//             sigma^2 = p(1-p); we require |s^2 - p(1-p)| <= 5 of those
//             + 2^-17 |1 - 2p| (the bias term above) and s^2 <= 1/4 + 5 of
//             those + 2^-17; and, exactly, |s^2 - E[e^2]| <= 5 of those with
//             E[e^2] from c(p).
//   small update: the number K of elements of N that take x = 3 * 2^-18 is
//             Binomial(N, 2^-16) under the contract; it must equal exactly
//             the number of elements whose reference h_i is 0 (the kernel
//             decides as the reference), and |K - N 2^-16| <= 5 sqrt(N
//             2^-16 (1 - 2^-16)).
//
//===----------------------------------------------------------------------===//

#include "StepHarness.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

using namespace dqt;

namespace {

/// 2^-17: the largest bias of one rounding, in grid steps.
const double kBiasBound = std::ldexp(1.0, -17);

/// c(p) of the contract: how many of the 65536 h round a fraction p up.
int64_t roundUpCount(double p) {
  double c = std::ceil((std::ldexp(p, 17) - 1) / 2);
  return int64_t(std::min(65536.0, std::max(0.0, c)));
}

/// The same by counting: every h, its u as the reference computes it
/// (ref::uniform's formula; the stream supplies h).
int64_t roundUpCountExhaustive(float p) {
  int64_t c = 0;
  for (uint32_t h = 0; h < 65536; ++h)
    c += float(2 * h + 1) * (1.0f / 131072.0f) < p;
  return c;
}

TEST(StochasticRoundingContract, UniformsAreTheMidpointsOfSixteenBits) {
  // Every u is (h + 0.5) * 2^-16, exactly, strictly inside (0, 1).
  for (uint32_t h = 0; h < 65536; ++h) {
    float u = float(2 * h + 1) * (1.0f / 131072.0f);
    ASSERT_EQ(double(u), (double(h) + 0.5) / 65536.0) << h;
    ASSERT_EQ(u + float(2 * (65535 - h) + 1) * (1.0f / 131072.0f), 1.0f) << h;
  }
}

TEST(StochasticRoundingContract, RoundUpCountsExhaustively) {
  const double q = std::ldexp(1.0, -18);
  struct Case {
    double p;
    int64_t count; // c(p) by hand
  } cases[] = {
      {3 * q, 1},               // only h = 0: u = 2^-17 < 3 * 2^-18
      {q, 0},                   // 2^-18 < every u: never taken
      {2 * q, 0},               // 2^-17 = u(0): strict, not taken
      {2 * q + q / 4, 1},       // just above u(0)
      {0.1, 6554},              // f32(0.1): 6553.6 -> 6554
      {0.25, 16384},            // 16384 exactly (between midpoints)
      {0.5, 32768},
      {0.75, 49152},
      {0.9, 58982},             // f32(0.9): 58982.4 -> 58982
      {1 - 3 * q, 65535},       // all but h = 65535
      {1 - q, 65536},           // every u < 1 - 2^-18
  };
  for (const Case &c : cases) {
    float p = float(c.p); // the fraction as the kernel sees it
    EXPECT_EQ(roundUpCountExhaustive(p), c.count) << "p = " << c.p;
    EXPECT_EQ(roundUpCount(p), c.count) << "p = " << c.p;
    EXPECT_LE(std::fabs(double(c.count) / 65536 - double(p)), kBiasBound)
        << "p = " << c.p;
  }
}

TEST(StochasticRoundingContract, BiasIsBoundedAndCancelsOverFractions) {
  // p = (k + 0.5) * 2^-20 for all k < 2^20 (exact in f32, never a midpoint
  // of u): |b(p)| <= 2^-17 for each, and the biases sum to exactly 0
  // (b(1 - p) = -b(p), and the set is symmetric).
  int64_t sumCounts = 0;
  double worst = 0;
  const int64_t k20 = int64_t(1) << 20;
  for (int64_t k = 0; k < k20; ++k) {
    double p = (double(k) + 0.5) / double(k20);
    int64_t c = roundUpCount(p);
    sumCounts += c;
    worst = std::max(worst, std::fabs(double(c) / 65536 - p));
  }
  EXPECT_LE(worst, kBiasBound);
  EXPECT_GT(worst, kBiasBound / 2) << "the bound is attained up to 2^-20";
  // sum of p over the set = 2^20 / 2; sum of c / 65536 must equal it.
  EXPECT_EQ(sumCounts, (k20 / 2) * 65536);
  // Spot-check the formula against counting on a stride of the same set.
  for (int64_t k = 0; k < k20; k += 4099) {
    float p = float((double(k) + 0.5) / double(k20));
    ASSERT_EQ(roundUpCountExhaustive(p), roundUpCount(p)) << k;
  }
}

TEST(StochasticRoundingContract, SmallUpdateTakenThroughTheReferenceStream) {
  // x = 3 * 2^-18 (and -3 * 2^-18: floor -1, fraction 1 - 3 * 2^-18, stays
  // at -1 only for h = 65535) over N = 2^22 elements of 4 steps of the
  // reference stream: taken iff h_i == 0 (resp. 65535), probability 2^-16,
  // K ~ Binomial(2^24, 2^-16): mean 256, sd sqrt(256 (1 - 2^-16)) ~ 16.
  const float x = float(3 * std::ldexp(1.0, -18));
  const int64_t n = int64_t(1) << 22;
  int64_t up = 0, downStays = 0, zeros = 0, maxes = 0;
  for (uint64_t step = 1; step <= 4; ++step)
    for (int64_t i = 0; i < n; ++i) {
      uint32_t h = ref::randomHalf(7, step, 1, i, ref::kWeightStream);
      float u = ref::uniform(7, step, 1, i);
      up += ref::stochasticRound(x, 1.0f, u, -128, 127) == 1;
      downStays += ref::stochasticRound(-x, 1.0f, u, -128, 127) == -1;
      zeros += h == 0;
      maxes += h == 65535;
    }
  EXPECT_EQ(up, zeros);
  EXPECT_EQ(downStays, maxes);
  double draws = 4.0 * double(n), pr = std::ldexp(1.0, -16);
  double mean = draws * pr, sd = std::sqrt(draws * pr * (1 - pr));
  EXPECT_LE(std::fabs(double(up) - mean), 5 * sd) << up << " of " << draws;
  EXPECT_LE(std::fabs(double(downStays) - mean), 5 * sd)
      << downStays << " of " << draws;
}

TEST(StochasticRoundingContract, StreamsAndWordHalvesAreUncorrelated) {
  // v2 gives two elements one Philox word and three streams one block
  // index. Over N = 2^20 elements, the sample correlation of independent
  // uniform h has standard deviation 1/sqrt(N) (and about 1/sqrt(N/2) for
  // the N/2 pairs of halves of one word): we require 5 of those for the
  // weight stream against each state stream, the two state streams, and the
  // low against the high half of each word.
  const int64_t n = int64_t(1) << 20;
  std::vector<double> hw(n), h0(n), h1(n);
  for (int64_t i = 0; i < n; ++i) {
    hw[i] = ref::randomHalf(99, 3, 5, i, ref::kWeightStream);
    h0[i] = ref::randomHalf(99, 3, 5, i, ref::kStateStream0);
    h1[i] = ref::randomHalf(99, 3, 5, i, ref::kStateStream1);
    uint32_t bits = ref::stateBits(99, 3, 5, i);
    ASSERT_EQ(bits & 0xffffu, uint32_t(h0[i])) << i;
    ASSERT_EQ(bits >> 16, uint32_t(h1[i])) << i;
  }
  auto corr = [](const double *a, const double *b, int64_t m, int64_t stride) {
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    int64_t k = 0;
    for (int64_t i = 0; i < m; i += stride, ++k) {
      sa += a[i], sb += b[i], saa += a[i] * a[i], sbb += b[i] * b[i];
      sab += a[i] * b[i];
    }
    double cov = sab / k - (sa / k) * (sb / k);
    return cov / std::sqrt((saa / k - (sa / k) * (sa / k)) *
                           (sbb / k - (sb / k) * (sb / k)));
  };
  double tol = 5 / std::sqrt(double(n));
  EXPECT_LE(std::fabs(corr(hw.data(), h0.data(), n, 1)), tol);
  EXPECT_LE(std::fabs(corr(hw.data(), h1.data(), n, 1)), tol);
  EXPECT_LE(std::fabs(corr(h0.data(), h1.data(), n, 1)), tol);
  // Even element 2k against odd element 2k + 1: the two halves of a word.
  double tolPairs = 5 / std::sqrt(double(n / 2));
  EXPECT_LE(std::fabs(corr(hw.data(), hw.data() + 1, n - 1, 2)), tolPairs);
  EXPECT_LE(std::fabs(corr(h0.data(), h0.data() + 1, n - 1, 2)), tolPairs);
}

class StochasticRounding : public ::testing::TestWithParam<bool> {
protected:
  void SetUp() override {
    config.optimizer = Optimizer::SGD;
    config.ternary = GetParam();
    auto k = compileCpuStep(config);
    ASSERT_TRUE(bool(k)) << llvm::toString(k.takeError());
    kernel = std::move(*k);
  }

  /// One SR draw per element of `xs`; returns the rounded integers.
  std::vector<int8_t> round(const std::vector<float> &xs, uint64_t step) {
    int64_t n = xs.size();
    test::StepBuffers b;
    b.q.assign(n, 0);
    b.g.resize(n);
    b.s0.assign(n, 0.0f);
    for (int64_t i = 0; i < n; ++i)
      b.g[i] = -xs[i];
    ref::Scalars s{};
    s.seed = 42;
    s.step = step;
    s.tid = 0;
    s.delta = 1.0f;
    s.deltaNext = 1.0f;
    s.h[0] = 1.0f; // lr
    test::runChunks(kernel, config, b, s, {0, n});
    return b.q;
  }

  StepConfig config;
  CpuStepKernel kernel;
};

TEST_P(StochasticRounding, MeanErrorIsZeroWithinFiveStandardErrors) {
  const int64_t n = int64_t(1) << 21;
  double lo = GetParam() ? -1.0 : -3.5, hi = -lo;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> xd(lo, hi);
  std::vector<float> xs(n);
  for (float &x : xs)
    x = xd(rng);
  std::vector<int8_t> q = round(xs, 1);
  double sum = 0, var = 0;
  for (int64_t i = 0; i < n; ++i) {
    double p = double(xs[i]) - std::floor(double(xs[i]));
    ASSERT_TRUE(q[i] == std::floor(xs[i]) || q[i] == std::floor(xs[i]) + 1)
        << "x = " << xs[i] << " rounded to " << int(q[i]);
    sum += double(q[i]) - double(xs[i]);
    var += p * (1 - p);
  }
  double mean = sum / n, se = std::sqrt(var) / n;
  RecordProperty("mean_error", std::to_string(mean));
  EXPECT_LE(std::fabs(mean), 5 * se + kBiasBound)
      << "mean error " << mean << ", SE " << se;
}

TEST_P(StochasticRounding, VarianceIsAtMostAQuarterStepSquared) {
  const int64_t n = int64_t(1) << 20;
  for (double p : {0.1, 0.25, 0.5, 0.75, 0.9}) {
    float x = float((GetParam() ? -1.0 : -2.0) + p);
    double pf = double(x) - std::floor(double(x)); // p as stored in f32
    std::vector<int8_t> q = round(std::vector<float>(n, x), 3);
    // Second moment about the true mean 0 (unbiasedness is the other test).
    double s2 = 0;
    for (int8_t v : q)
      s2 += (double(v) - x) * (double(v) - x);
    s2 /= n;
    double sigma2 = pf * (1 - pf);
    double mu4 = sigma2 * ((1 - pf) * (1 - pf) * (1 - pf) + pf * pf * pf);
    double sd = std::sqrt((mu4 - sigma2 * sigma2) / n);
    // P(round up) is c(p)/65536, within 2^-17 of p: E[e^2] = p(1-p) +
    // b(1-2p), the only slack beyond sampling.
    double b = double(roundUpCount(pf)) / 65536 - pf;
    double exact = sigma2 + b * (1 - 2 * pf);
    EXPECT_LE(std::fabs(b), kBiasBound) << "p = " << p;
    EXPECT_LE(s2, 0.25 + 5 * sd + kBiasBound) << "p = " << p;
    EXPECT_NEAR(s2, sigma2, 5 * sd + kBiasBound * std::fabs(1 - 2 * pf))
        << "p = " << p;
    EXPECT_NEAR(s2, exact, 5 * sd) << "p = " << p;
  }
}

TEST_P(StochasticRounding, SmallUpdatesAreTakenWithTheContractsProbability) {
  // x = 3 * 2^-18 of a grid step, N = 2^22 elements over 4 steps: the kernel
  // rounds up exactly the elements whose reference h_i is 0, and their
  // number is within 5 sd of N 2^-16 (see the header).
  const float x = float(3 * std::ldexp(1.0, -18));
  const int64_t n = int64_t(1) << 22;
  int64_t up = 0, expected = 0;
  for (uint64_t step = 1; step <= 4; ++step) {
    std::vector<int8_t> q = round(std::vector<float>(n, x), step);
    for (int64_t i = 0; i < n; ++i) {
      bool refUp = ref::randomHalf(42, step, 0, i, ref::kWeightStream) == 0;
      ASSERT_EQ(q[i], refUp ? 1 : 0) << "element " << i << ", step " << step;
      up += q[i] == 1;
      expected += refUp;
    }
  }
  EXPECT_EQ(up, expected);
  double draws = 4.0 * double(n), pr = std::ldexp(1.0, -16);
  EXPECT_LE(std::fabs(double(up) - draws * pr),
            5 * std::sqrt(draws * pr * (1 - pr)))
      << up << " of " << draws;
  EXPECT_GT(up, 0) << "small updates are lost";
}

TEST_P(StochasticRounding, ClampsToTheGrid) {
  std::vector<float> xs = {1e6f, -1e6f, 500.5f, -500.5f, INFINITY, -INFINITY};
  std::vector<int8_t> q = round(xs, 9);
  int64_t qp = config.qp(), qn = config.qn();
  EXPECT_EQ(q[0], qp);
  EXPECT_EQ(q[1], qn);
  EXPECT_EQ(q[2], qp);
  EXPECT_EQ(q[3], qn);
  // An infinite gradient is non-finite: the element is left alone.
  EXPECT_EQ(q[4], 0);
  EXPECT_EQ(q[5], 0);
}

INSTANTIATE_TEST_SUITE_P(Grids, StochasticRounding,
                         ::testing::Values(false, true), [](const auto &info) {
                           return info.param ? "Ternary" : "Bits8";
                         });

} // namespace
