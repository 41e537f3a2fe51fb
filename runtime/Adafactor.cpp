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

#include "dqt/Runtime/KernelCache.h"
#include "dqt/Runtime/OptimizerChecks.h"
#include "dqt/Runtime/OptimizerFile.h"
#include "dqt/Runtime/WeightStep.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace dqt::optim {

namespace {
/// Elements per RMS partial of an unfactored parameter (part of the
/// contract: it fixes the summation order).
constexpr int64_t kRmsBlock = 1024;

bool isFinite(float x) { return std::fabs(x) < INFINITY; }

void checkLr(const char *name, double lr) {
  TORCH_CHECK(std::isfinite(lr) && lr >= 0, name,
              ": lr must be finite and >= 0, got ", lr);
}

void checkOptions(const char *name, const AdafactorOptions &o) {
  checkLr(name, o.lr);
  TORCH_CHECK(o.beta1 >= 0 && o.beta1 < 1, name,
              ": beta1 must be in [0, 1), got ", o.beta1);
  TORCH_CHECK(o.decayRate >= -1 && o.decayRate < 0, name,
              ": decay_rate must be in [-1, 0), got ", o.decayRate);
  TORCH_CHECK(std::isfinite(o.eps1) && o.eps1 > 0, name,
              ": eps1 must be finite and > 0, got ", o.eps1);
  TORCH_CHECK(std::isfinite(o.clipThreshold) && o.clipThreshold > 0, name,
              ": clip_threshold must be finite and > 0, got ", o.clipThreshold);
  TORCH_CHECK(std::isfinite(o.weightDecay) && o.weightDecay >= 0, name,
              ": weight_decay must be finite and >= 0, got ", o.weightDecay);
}

/// The SGD kernel's hyper-parameters for Adafactor's update: lr, momentum
/// beta1 (the update is pre-scaled by 1 - beta1), decoupled decay lr*lambda.
std::vector<float> sgdHyperParameters(const AdafactorOptions &o) {
  return {float(o.lr), float(o.beta1), float(o.lr * o.weightDecay)};
}

/// The float-mode SGD kernel's configuration.
StepConfig floatConfig() {
  StepConfig c;
  c.optimizer = Optimizer::SGD;
  c.floatWeights = true;
  return c;
}

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
    : params_(std::move(params)), options_(options), seed_(options.seed) {
  checkOptions(name_, options);
  checkParameters(name_, params_);
  for (size_t p = 0; p < params_.size(); ++p) {
    // The weight's shape: q is 1-D bytes when packed.
    states_.push_back(makeStates(params_[p]->sizes(),
                                 params_[p]->q().options().dtype(at::kFloat),
                                 options.stateType));
    tensorIds_.push_back(int64_t(p));
  }
  stepped_.assign(params_.size(), false);
  pendingStats_.resize(params_.size());
}

std::vector<at::Tensor> Adafactor::makeStates(at::IntArrayRef shape,
                                              at::TensorOptions f32,
                                              StateType moment) const {
  std::vector<at::Tensor> states;
  if (shape.size() == 2) {
    states.push_back(at::zeros({shape[0]}, f32));
    states.push_back(at::zeros({shape[1]}, f32));
  } else {
    states.push_back(at::zeros(shape, f32));
  }
  if (options_.beta1 > 0)
    states.push_back(at::zeros(
        shape,
        f32.dtype(moment == StateType::BF16 ? at::kBFloat16 : at::kFloat)));
  return states;
}

void Adafactor::addFloatParameters(std::vector<at::Tensor> params) {
  checkFloatParameters(name_, step_, stepped_, floatParams_, params);
  for (at::Tensor &p : params) {
    // Float mode keeps f32 states.
    floatStates_.push_back(makeStates(p.sizes(), p.options(), StateType::F32));
    floatParams_.push_back(std::move(p));
  }
}

void Adafactor::checkNoStepInProgress(const char *what) const {
  TORCH_CHECK(std::find(stepped_.begin(), stepped_.end(), true) ==
                  stepped_.end(),
              name_, ".", what, ": a step is in progress (stepInBackward)");
}

void Adafactor::setOptions(const AdafactorOptions &options) {
  checkOptions(name_, options);
  TORCH_CHECK((options.beta1 > 0) == (options_.beta1 > 0), name_,
              ": beta1 cannot switch between 0 and > 0 after construction "
              "(the first-moment state exists or not), got ",
              options.beta1);
  TORCH_CHECK(options.stateType == options_.stateType, name_,
              ": the first moment's state type is fixed at construction");
  uint64_t seed = options_.seed;
  options_ = options;
  options_.seed = seed;
}

AdafactorOptions Adafactor::options() const {
  AdafactorOptions o = options_;
  o.seed = seed_;
  return o;
}

void Adafactor::setLr(double lr) {
  checkLr(name_, lr);
  options_.lr = lr;
}

void Adafactor::setTensorIds(std::vector<int64_t> ids) {
  checkTensorIds(name_, ids, params_.size());
  tensorIds_ = std::move(ids);
}

void Adafactor::restore(int64_t step, uint64_t seed,
                        const std::vector<std::vector<at::Tensor>> &states) {
  TORCH_CHECK(step >= 0, name_, ".restore: step must be >= 0, got ", step);
  checkStatesLike(name_, states, states_);
  checkNoStepInProgress("restore");
  for (size_t p = 0; p < params_.size(); ++p)
    for (size_t k = 0; k < states[p].size(); ++k)
      states_[p][k].copy_(states[p][k]);
  step_ = step;
  seed_ = seed;
}

int64_t Adafactor::stateBytes() const {
  int64_t bytes = 0;
  for (const auto *all : {&states_, &floatStates_})
    for (const auto &states : *all)
      for (const at::Tensor &s : states)
        bytes += s.numel() * int64_t(s.element_size());
  return bytes;
}

std::vector<StepStats> Adafactor::step() {
  // Check everything (and compile) first: a bad input changes nothing.
  std::vector<size_t> remaining = checkUnstepped(name_, params_, stepped_);
  checkFloatGradients(name_, floatParams_);
  const CpuStepKernel *floatKernel =
      floatParams_.empty() ? nullptr
                           : &KernelCache::global().cpu(floatConfig());
  run(remaining);
  std::vector<StepStats> stats = pendingStats_;
  if (floatKernel) {
    std::vector<StepStats> f = runFloat(*floatKernel, step_ + 1);
    stats.insert(stats.end(), f.begin(), f.end());
  }
  ++step_;
  std::fill(stepped_.begin(), stepped_.end(), false);
  return stats;
}

void Adafactor::stepParameter(QuantizedWeight &weight) {
  run({checkStepParameter(name_, params_, stepped_, weight)});
  weight.clearGrad(); // the lowest-memory mode: the gradient dies here
}

void Adafactor::run(const std::vector<size_t> &which) {
  // Fetch the kernels first: a failed compilation changes nothing.
  std::map<std::string, std::vector<size_t>> groups;
  std::map<std::string, StepConfig> configs;
  for (size_t p : which) {
    // The SGD kernel's momentum buffer is m; without one, the f32 update.
    StepConfig c = params_[p]->stepConfig(
        Optimizer::SGD,
        options_.beta1 > 0 ? options_.stateType : StateType::F32);
    groups[c.key()].push_back(p);
    configs[c.key()] = c;
  }
  std::map<std::string, const CpuStepKernel *> kernels;
  for (auto &[key, config] : configs)
    kernels[key] = &KernelCache::global().cpu(config);

  const AdafactorOptions &o = options_;
  int64_t t = step_ + 1;
  double beta2t = 1.0 - std::pow(double(t), o.decayRate);
  std::vector<float> hyper = sgdHyperParameters(o);

  // Kernel 1: statistics, the states r, c (or v) and the clipped update u.
  std::vector<at::Tensor> updates(params_.size());
  for (size_t p : which) {
    QuantizedWeight &w = *params_[p];
    updates[p] = clippedUpdate(w.grad().data_ptr<float>(), w.sizes(),
                               states_[p], beta2t);
  }

  // Kernel 2: the generated SGD step, one launch per grid. Without a first
  // moment the update is its own momentum buffer: with momentum 0 the kernel
  // stores 0*u + u == u (bit for bit, finite u) and skips non-finite u, so
  // the aliased buffer never changes value.
  for (auto &[key, members] : groups) {
    std::vector<WeightStep> steps;
    for (size_t p : members) {
      QuantizedWeight &w = *params_[p];
      float *u = updates[p].data_ptr<float>();
      void *buffer = o.beta1 > 0 ? states_[p].back().data_ptr() : u;
      steps.emplace_back(w, u, buffer, nullptr, tensorIds_[p]);
    }
    std::vector<StepStats> groupStats = launchWeightSteps(
        *kernels[key], configs[key], steps, hyper, seed_, uint64_t(t));
    for (size_t i = 0; i < members.size(); ++i) {
      pendingStats_[members[i]] = groupStats[i];
      stepped_[members[i]] = true;
    }
  }
}

at::Tensor Adafactor::clippedUpdate(const float *g, at::IntArrayRef shape,
                                    std::vector<at::Tensor> &st,
                                    double beta2t) const {
  const AdafactorOptions &o = options_;
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
  return u;
}

std::vector<StepStats> Adafactor::runFloat(const CpuStepKernel &kernel,
                                           int64_t t) {
  const AdafactorOptions &o = options_;
  double beta2t = 1.0 - std::pow(double(t), o.decayRate);
  std::vector<at::Tensor> updates;
  std::vector<StepOperands> ops;
  for (size_t i = 0; i < floatParams_.size(); ++i) {
    at::Tensor &p = floatParams_[i];
    updates.push_back(clippedUpdate(p.grad().data_ptr<float>(), p.sizes(),
                                    floatStates_[i], beta2t));
    float *u = updates.back().data_ptr<float>();
    // As for the integer weights: without a first moment the update is
    // its own momentum buffer.
    void *buffer = o.beta1 > 0 ? floatStates_[i].back().data_ptr() : u;
    ops.push_back(StepOperands::floatMode(p, u, buffer, nullptr));
  }
  return launchCpu(kernel, floatConfig(), ops, sgdHyperParameters(o), seed_,
                   uint64_t(t));
}

void Adafactor::save(const std::string &path) const {
  saveOptimizerFile(path, name_, {step_, seed_, options_.lr}, params_, states_,
                    {floatParams_, floatStates_});
}

void Adafactor::load(const std::string &path) {
  checkNoStepInProgress("load");
  // A beta1 > 0 file holds one state more per parameter: refused there.
  FloatEntries floats{floatParams_, floatStates_};
  OptimizerFileHeader h =
      loadOptimizerFile(path, name_, params_, states_, &floats);
  step_ = h.step;
  seed_ = h.seed;
  options_.lr = h.lr;
}

} // namespace dqt::optim
