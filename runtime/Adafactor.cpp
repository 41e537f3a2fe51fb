//===- Adafactor.cpp - DQT Adafactor over integer weights -----------------===//
//
// Kernel 1 (the statistics) is written here as plain loops: every reduction
// is summed in double in a fixed order (sequential within a row or block,
// rows combined in row order), parallel only across independent rows or
// columns, so results do not depend on the thread count (ATen's parallel
// reductions do). Kernel 2 is the generated SGD kernel. This file is built
// with -ffp-contract=off: the operation order is the contract of
// docs/numerics.md.
//
//===----------------------------------------------------------------------===//

#include "dqt/Runtime/Adafactor.h"

#include "dqt/Runtime/OptimizerChecks.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace dqt::optim {

namespace {
/// Elements per RMS partial of an unfactored parameter (part of the
/// contract: it fixes the summation order).
constexpr int64_t kRmsBlock = 1024;

bool isFinite(float x) { return std::fabs(x) < INFINITY; }

/// Sum of `partials` in index order, in double.
double sumInOrder(const std::vector<double> &partials) {
  double s = 0;
  for (double x : partials)
    s += x;
  return s;
}

/// Kernel 1 for a factored [R, C] parameter: updates r, c and writes the
/// unclipped update u (NaN where g is not finite); returns sum(u*u) over
/// the finite u, rows summed in column order, then combined in row order.
double factoredUpdate(const float *g, float *r, float *c, float *u, int64_t R,
                      int64_t C, double beta2t, double eps1) {
  double w = 1.0 - beta2t;
  std::vector<double> rowSum(R), colSum(C, 0.0);
  at::parallel_for(0, R, 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      double s = 0;
      for (int64_t j = 0; j < C; ++j) {
        float x = g[i * C + j];
        if (isFinite(x))
          s += double(x) * double(x) + eps1;
      }
      rowSum[i] = s;
    }
  });
  // Each column sums its rows in row order; threads own column ranges.
  at::parallel_for(0, C, 256, [&](int64_t b, int64_t e) {
    for (int64_t i = 0; i < R; ++i)
      for (int64_t j = b; j < e; ++j) {
        float x = g[i * C + j];
        if (isFinite(x))
          colSum[j] += double(x) * double(x) + eps1;
      }
  });
  for (int64_t i = 0; i < R; ++i)
    r[i] = float(beta2t * double(r[i]) + w * (rowSum[i] / double(C)));
  for (int64_t j = 0; j < C; ++j)
    c[j] = float(beta2t * double(c[j]) + w * (colSum[j] / double(R)));
  double rsum = 0;
  for (int64_t i = 0; i < R; ++i)
    rsum += double(r[i]);
  float rmean = float(rsum / double(R));
  std::vector<double> rowSq(R);
  at::parallel_for(0, R, 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float rn = r[i] / rmean;
      double s = 0;
      for (int64_t j = 0; j < C; ++j) {
        float x = g[i * C + j];
        float v = x;
        if (isFinite(x)) {
          v = x / std::sqrt(rn * c[j]);
          if (isFinite(v))
            s += double(v) * double(v);
        } else {
          v = std::numeric_limits<float>::quiet_NaN();
        }
        u[i * C + j] = v;
      }
      rowSq[i] = s;
    }
  });
  return sumInOrder(rowSq);
}

/// Kernel 1 for an unfactored parameter of n elements: updates v and writes
/// u; sum(u*u) in blocks of kRmsBlock, combined in block order.
double unfactoredUpdate(const float *g, float *v, float *u, int64_t n,
                        double beta2t, double eps1) {
  double w = 1.0 - beta2t;
  int64_t blocks = (n + kRmsBlock - 1) / kRmsBlock;
  std::vector<double> blockSq(blocks);
  at::parallel_for(0, blocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      double s = 0;
      for (int64_t i = k * kRmsBlock; i < std::min(n, (k + 1) * kRmsBlock);
           ++i) {
        float x = g[i];
        if (!isFinite(x)) {
          u[i] = std::numeric_limits<float>::quiet_NaN();
          continue;
        }
        v[i] =
            float(beta2t * double(v[i]) + w * (double(x) * double(x) + eps1));
        float ui = x / std::sqrt(v[i]);
        u[i] = ui;
        if (isFinite(ui))
          s += double(ui) * double(ui);
      }
      blockSq[k] = s;
    }
  });
  return sumInOrder(blockSq);
}
} // namespace

Adafactor::Adafactor(std::vector<QuantizedWeight *> params,
                     AdafactorOptions options)
    // The SGD kernel's momentum buffer is m; without one, the f32 update.
    : ConfiguredOptimizer(
          std::move(params), "dqt.optim.Adafactor", Optimizer::SGD,
          options.beta1 > 0 ? options.stateType : StateType::F32, options) {
  init();
}

void Adafactor::checkOptions(const AdafactorOptions &o) const {
  checkBeta(name(), "beta1", o.beta1);
  TORCH_CHECK(o.decayRate >= -1 && o.decayRate < 0, name(),
              ": decay_rate must be in [-1, 0), got ", o.decayRate);
  TORCH_CHECK(std::isfinite(o.eps1) && o.eps1 > 0, name(),
              ": eps1 must be finite and > 0, got ", o.eps1);
  TORCH_CHECK(std::isfinite(o.clipThreshold) && o.clipThreshold > 0, name(),
              ": clip_threshold must be finite and > 0, got ", o.clipThreshold);
  TORCH_CHECK(std::isfinite(o.weightDecay) && o.weightDecay >= 0, name(),
              ": weight_decay must be finite and >= 0, got ", o.weightDecay);
  // At construction config() is `o`.
  TORCH_CHECK((o.beta1 > 0) == (config().beta1 > 0), name(),
              ": beta1 cannot switch between 0 and > 0 after construction "
              "(the first-moment state exists or not), got ",
              o.beta1);
}

std::vector<at::Tensor> Adafactor::makeStates(at::IntArrayRef shape,
                                              at::TensorOptions options,
                                              at::ScalarType dtype) const {
  at::TensorOptions f32 = options.dtype(at::kFloat);
  std::vector<at::Tensor> states;
  if (shape.size() == 2) {
    states.push_back(at::zeros({shape[0]}, f32));
    states.push_back(at::zeros({shape[1]}, f32));
  } else {
    states.push_back(at::zeros(shape, f32));
  }
  if (config().beta1 > 0)
    states.push_back(at::zeros(shape, options.dtype(dtype)));
  return states;
}

/// The SGD kernel's hyper-parameters for Adafactor's update: lr, momentum
/// beta1 (the update is pre-scaled by 1 - beta1), decoupled decay lr*lambda.
std::vector<float> Adafactor::hyperParameters(int64_t) const {
  return {float(lr()), float(config().beta1),
          float(lr() * config().weightDecay)};
}

at::Tensor adafactorUpdateOps(const at::Tensor &grad,
                              std::vector<at::Tensor> &st, double beta2t,
                              double eps1, double clipThreshold,
                              float oneMinusBeta1) {
  double w = 1.0 - beta2t;
  at::Tensor finite = grad.isfinite();
  at::Tensor g64 = grad.to(at::kDouble);
  at::Tensor sq = at::where(finite, g64 * g64 + eps1, at::zeros_like(g64));
  at::Tensor u;
  if (grad.dim() == 2) {
    int64_t R = grad.size(0), C = grad.size(1);
    at::Tensor &r = st[0], &c = st[1];
    r.copy_((r.to(at::kDouble) * beta2t + sq.sum(1) / double(C) * w)
                .to(at::kFloat));
    c.copy_((c.to(at::kDouble) * beta2t + sq.sum(0) / double(R) * w)
                .to(at::kFloat));
    at::Tensor rmean = (r.to(at::kDouble).sum() / double(R)).to(at::kFloat);
    at::Tensor rn = r / rmean;
    u = grad / at::sqrt(rn.view({R, 1}) * c.view({1, C}));
  } else {
    at::Tensor &v = st[0];
    at::Tensor next =
        (v.to(at::kDouble) * beta2t + sq * w).to(at::kFloat);
    v.copy_(at::where(finite, next, v));
    u = grad / at::sqrt(v);
  }
  u = at::where(finite, u, at::full_like(u, NAN));
  at::Tensor u64 = u.to(at::kDouble);
  at::Tensor ss =
      at::where(u.isfinite(), u64 * u64, at::zeros_like(u64)).sum();
  at::Tensor rms = at::sqrt(ss / double(grad.numel()));
  at::Tensor clip = at::clamp_min(rms / clipThreshold, 1.0).to(at::kFloat);
  return ((u / clip) * oneMinusBeta1).reshape({-1}).contiguous();
}

StepOptimizer::KernelInputs Adafactor::kernelInputs(const at::Tensor &grad,
                                                    std::vector<at::Tensor> &st,
                                                    int64_t t) const {
  const AdafactorOptions &o = config();
  double beta2t = 1.0 - std::pow(double(t), o.decayRate);
  if (!grad.device().is_cpu()) {
    // On a GPU: the same math by device operations, no host round trip.
    at::Tensor u = adafactorUpdateOps(grad, st, beta2t, o.eps1,
                                      o.clipThreshold, 1.0f - float(o.beta1));
    KernelInputs in;
    in.grad = u.data_ptr<float>();
    in.state0 = o.beta1 > 0 ? st.back().data_ptr() : in.grad;
    in.keepAlive = std::move(u);
    return in;
  }
  at::IntArrayRef shape = grad.sizes(); // the weight's, checked
  const float *g = grad.data_ptr<float>();
  int64_t n = c10::multiply_integers(shape);
  at::Tensor u = at::empty({n}, at::kFloat);
  float *up = u.data_ptr<float>();
  double sumSq =
      shape.size() == 2
          ? factoredUpdate(g, st[0].data_ptr<float>(), st[1].data_ptr<float>(),
                           up, shape[0], shape[1], beta2t, o.eps1)
          : unfactoredUpdate(g, st[0].data_ptr<float>(), up, n, beta2t, o.eps1);
  double rms = std::sqrt(sumSq / double(n));
  float clip = float(std::max(1.0, rms / o.clipThreshold));
  // Scaled by (1 - beta1): the SGD kernel then computes
  // m' = beta1*m + (1-beta1)*u.
  float oneMinusBeta1 = 1.0f - float(o.beta1);
  at::parallel_for(0, n, int64_t(1) << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      up[i] = (up[i] / clip) * oneMinusBeta1;
  });

  // Kernel 2 reads u as its gradient. Without a first moment the update is
  // its own momentum buffer: with momentum 0 the kernel stores 0*u + u == u
  // (bit for bit, finite u) and skips non-finite u, so the aliased buffer
  // never changes value.
  KernelInputs in;
  in.grad = up;
  in.state0 = o.beta1 > 0 ? st.back().data_ptr() : up;
  in.keepAlive = std::move(u);
  return in;
}

} // namespace dqt::optim
