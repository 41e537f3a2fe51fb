//===- Optimizers.cpp - DQT optimizers over integer weights ---------------===//

#include "dqt/Runtime/Optimizers.h"

#include "dqt/Runtime/KernelCache.h"
#include "dqt/Runtime/OptimizerChecks.h"
#include "dqt/Runtime/OptimizerFile.h"
#include "dqt/Runtime/WeightStep.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace dqt::optim {

namespace {
void checkLr(const char *name, double lr) {
  TORCH_CHECK(std::isfinite(lr) && lr >= 0, name,
              ": lr must be finite and >= 0, got ", lr);
}
void checkBeta(const char *name, const char *which, double beta) {
  TORCH_CHECK(beta >= 0 && beta < 1, name, ": ", which,
              " must be in [0, 1), got ", beta);
}
void checkAdamW(const char *name, const AdamWOptions &o) {
  checkLr(name, o.lr);
  checkBeta(name, "beta1", o.beta1);
  checkBeta(name, "beta2", o.beta2);
  TORCH_CHECK(o.eps > 0, name, ": eps must be > 0, got ", o.eps);
  TORCH_CHECK(o.weightDecay >= 0, name, ": weight_decay must be >= 0, got ",
              o.weightDecay);
}
void checkSGD(const char *name, const SGDOptions &o) {
  checkLr(name, o.lr);
  checkBeta(name, "momentum", o.momentum);
  TORCH_CHECK(o.weightDecay >= 0, name, ": weight_decay must be >= 0, got ",
              o.weightDecay);
}
} // namespace

QuantizedOptimizer::QuantizedOptimizer(std::vector<QuantizedWeight *> params,
                                       Optimizer kind, int numStates, double lr,
                                       uint64_t seed, const char *name,
                                       StateType stateType)
    : name_(name), lr_(lr), params_(std::move(params)), kind_(kind),
      stateType_(stateType), seed_(seed) {
  checkLr(name_, lr);
  checkParameters(name_, params_);
  for (size_t p = 0; p < params_.size(); ++p) {
    const at::Tensor &q = params_[p]->q();
    std::vector<at::Tensor> states;
    for (int k = 0; k < numStates; ++k)
      states.push_back(
          at::zeros(params_[p]->sizes(), q.options().dtype(stateDtype())));
    states_.push_back(std::move(states));
  }
  stepped_.assign(params_.size(), false);
  pendingStats_.assign(params_.size(), StepStats{});
  for (size_t p = 0; p < params_.size(); ++p)
    tensorIds_.push_back(int64_t(p));
}

void QuantizedOptimizer::setTensorIds(std::vector<int64_t> ids) {
  checkTensorIds(name_, ids, params_.size());
  tensorIds_ = std::move(ids);
}

void QuantizedOptimizer::restore(
    int64_t step, uint64_t seed,
    const std::vector<std::vector<at::Tensor>> &states) {
  TORCH_CHECK(step >= 0, name_, ".restore: step must be >= 0, got ", step);
  checkStatesLike(name_, states, states_);
  TORCH_CHECK(std::find(stepped_.begin(), stepped_.end(), true) ==
                  stepped_.end(),
              name_, ".restore: a step is in progress (stepInBackward)");
  for (size_t p = 0; p < params_.size(); ++p)
    for (size_t k = 0; k < states[p].size(); ++k)
      states_[p][k].copy_(states[p][k]);
  step_ = step;
  seed_ = seed;
}

void QuantizedOptimizer::setLr(double lr) {
  checkLr(name_, lr);
  lr_ = lr;
}

int64_t QuantizedOptimizer::stateBytes() const {
  int64_t bytes = 0;
  for (const auto *all : {&states_, &floatStates_})
    for (const auto &states : *all)
      for (const at::Tensor &s : states)
        bytes += s.numel() * int64_t(s.element_size());
  return bytes;
}

void QuantizedOptimizer::addFloatParameters(std::vector<at::Tensor> params) {
  checkFloatParameters(name_, step_, stepped_, floatParams_, params);
  size_t numStates = states_.front().size();
  for (at::Tensor &p : params) {
    std::vector<at::Tensor> states;
    for (size_t k = 0; k < numStates; ++k)
      states.push_back(at::zeros_like(p));
    floatStates_.push_back(std::move(states));
    floatParams_.push_back(std::move(p));
  }
}

StepConfig QuantizedOptimizer::floatConfig() const {
  StepConfig c;
  c.optimizer = kind_;
  c.floatWeights = true;
  return c;
}

std::vector<StepStats>
QuantizedOptimizer::runFloat(const CpuStepKernel &kernel) {
  std::vector<StepOperands> ops;
  for (size_t i = 0; i < floatParams_.size(); ++i) {
    at::Tensor &p = floatParams_[i];
    auto &st = floatStates_[i];
    // The kernel writes p in place, under autograd's nose: p is a leaf whose
    // value the optimizer owns, as torch.optim's in-place updates.
    ops.push_back(
        StepOperands::floatMode(p, p.grad().data_ptr<float>(), st[0].data_ptr(),
                                st.size() > 1 ? st[1].data_ptr() : nullptr));
  }
  return launchCpu(kernel, floatConfig(), ops, hyperParameters(step_ + 1),
                   seed_, uint64_t(step_ + 1));
}

void QuantizedOptimizer::run(const std::vector<size_t> &which) {
  int64_t t = step_ + 1;
  std::vector<float> hyper = hyperParameters(t);
  // One launch per configuration (grid).
  std::map<std::string, std::vector<size_t>> groups;
  std::map<std::string, StepConfig> configs;
  for (size_t p : which) {
    StepConfig c = params_[p]->stepConfig(kind_, stateType_);
    groups[c.key()].push_back(p);
    configs[c.key()] = c;
  }
  for (auto &[key, members] : groups) {
    const StepConfig &config = configs[key];
    const CpuStepKernel &kernel = KernelCache::global().cpu(config);
    std::vector<WeightStep> steps;
    for (size_t p : members) {
      QuantizedWeight &w = *params_[p];
      auto &st = states_[p];
      for (size_t k = 0; k < st.size(); ++k) // the kernel reads raw bytes
        TORCH_CHECK(st[k].scalar_type() == stateDtype() &&
                        st[k].is_contiguous() && st[k].sizes() == w.sizes(),
                    name_, ": state ", k, " of parameter ", p, " is ",
                    st[k].scalar_type(), st[k].sizes(), ", expected ",
                    stateDtype(), w.sizes());
      steps.emplace_back(w, w.grad().data_ptr<float>(), st[0].data_ptr(),
                         st.size() > 1 ? st[1].data_ptr() : nullptr,
                         tensorIds_[p]);
    }
    std::vector<StepStats> groupStats =
        launchWeightSteps(kernel, config, steps, hyper, seed_, uint64_t(t));
    for (size_t i = 0; i < members.size(); ++i) {
      pendingStats_[members[i]] = groupStats[i];
      stepped_[members[i]] = true;
    }
  }
}

void QuantizedOptimizer::stepParameter(QuantizedWeight &weight) {
  run({checkStepParameter(name_, params_, stepped_, weight)});
  weight.clearGrad(); // the lowest-memory mode: the gradient dies here
}

std::vector<StepStats> QuantizedOptimizer::step() {
  // Check everything (and compile) first: a bad input changes nothing.
  std::vector<size_t> remaining = checkUnstepped(name_, params_, stepped_);
  checkFloatGradients(name_, floatParams_);
  const CpuStepKernel *floatKernel =
      floatParams_.empty() ? nullptr
                           : &KernelCache::global().cpu(floatConfig());
  run(remaining);
  std::vector<StepStats> stats = pendingStats_;
  if (floatKernel) {
    std::vector<StepStats> f = runFloat(*floatKernel);
    stats.insert(stats.end(), f.begin(), f.end());
  }
  ++step_;
  std::fill(stepped_.begin(), stepped_.end(), false);
  return stats;
}

void QuantizedOptimizer::save(const std::string &path) const {
  saveOptimizerFile(path, name_, {step_, seed_, lr_}, params_, states_,
                    {floatParams_, floatStates_});
}

void QuantizedOptimizer::load(const std::string &path) {
  FloatEntries floats{floatParams_, floatStates_};
  OptimizerFileHeader h =
      loadOptimizerFile(path, name_, params_, states_, &floats);
  step_ = h.step;
  seed_ = h.seed;
  lr_ = h.lr;
}

AdamW::AdamW(std::vector<QuantizedWeight *> params, AdamWOptions options)
    : QuantizedOptimizer(std::move(params), Optimizer::AdamW, 2, options.lr,
                         options.seed, "dqt.optim.AdamW", options.stateType),
      options_(options) {
  checkAdamW(name_, options);
}

void AdamW::setOptions(const AdamWOptions &options) {
  checkAdamW(name_, options);
  options_ = options;
  lr_ = options.lr;
}

AdamWOptions AdamW::options() const {
  AdamWOptions o = options_;
  o.lr = lr_;
  o.seed = seed();
  return o;
}

std::vector<float> AdamW::hyperParameters(int64_t t) const {
  const AdamWOptions &o = options_;
  double alpha = lr_ * std::sqrt(1 - std::pow(o.beta2, double(t))) /
                 (1 - std::pow(o.beta1, double(t)));
  return {float(o.beta1), float(o.beta2), float(alpha), float(o.eps),
          float(lr_ * o.weightDecay)};
}

SGD::SGD(std::vector<QuantizedWeight *> params, SGDOptions options)
    : QuantizedOptimizer(std::move(params), Optimizer::SGD, 1, options.lr,
                         options.seed, "dqt.optim.SGD", options.stateType),
      options_(options) {
  checkSGD(name_, options);
}

void SGD::setOptions(const SGDOptions &options) {
  checkSGD(name_, options);
  options_ = options;
  lr_ = options.lr;
}

SGDOptions SGD::options() const {
  SGDOptions o = options_;
  o.lr = lr_;
  o.seed = seed();
  return o;
}

std::vector<float> SGD::hyperParameters(int64_t) const {
  return {float(lr_), float(options_.momentum),
          float(lr_ * options_.weightDecay)};
}

} // namespace dqt::optim
