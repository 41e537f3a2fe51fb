//===- sround-unbiased.cpp - stochastic rounding statistics ---------------===//
//
// Paper supplement, eqs. 5-9: SR(x) is unbiased and Var[SR(x)] <= delta^2/4.
// Measured on the generated kernel: the SGD step with q = 0, delta = delta'
// = 1, lr = 1, momentum = decay = 0 writes q' = SR(-g), so g = -x draws one
// SR(x) per element, each from its own Philox word.
//
// Tolerances, for N independent draws of e = SR(x) - x (two values,
// P(e = 1 - p) = p with p = x - floor(x)):
//   mean:     |mean(e)| <= 5 * sqrt(sum p_i (1 - p_i)) / N   (5 standard
//             errors of the mean; exact variance of a sum of Bernoullis);
//   variance: for one p, s^2 = mean(e^2) has standard deviation
//             sqrt((mu4 - sigma^4) / N), mu4 = p(1-p)((1-p)^3 + p^3),
//             sigma^2 = p(1-p); we require |s^2 - p(1-p)| <= 5 of those and
//             s^2 <= 1/4 + 5 of those, each plus 2^-23 for the 24-bit
//             resolution of u.
//
//===----------------------------------------------------------------------===//

#include "StepHarness.h"

#include <gtest/gtest.h>

#include <random>

using namespace dqt;

namespace {

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
  EXPECT_LE(std::fabs(mean), 5 * se) << "mean error " << mean << ", SE " << se;
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
    // u has 24 bits, so P(round up) is p to within 2^-24, which moves the
    // second moment by less than 2^-23: the only slack beyond sampling.
    double quantization = std::ldexp(1.0, -23);
    EXPECT_LE(s2, 0.25 + 5 * sd + quantization) << "p = " << p;
    EXPECT_NEAR(s2, sigma2, 5 * sd + quantization) << "p = " << p;
  }
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
