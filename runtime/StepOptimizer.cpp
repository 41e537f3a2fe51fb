//===- StepOptimizer.cpp - the step protocol of every DQT optimizer -------===//

#include "dqt/Runtime/StepOptimizer.h"

#include "dqt/Runtime/OptimizerChecks.h"
#include "dqt/Runtime/OptimizerFile.h"
#include "dqt/Runtime/WeightStep.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <map>

namespace dqt::optim {

namespace {
/// Dtype and shape of each of `states`, without data.
std::vector<at::Tensor> layoutOf(const std::vector<at::Tensor> &states) {
  std::vector<at::Tensor> layout;
  for (const at::Tensor &s : states)
    layout.push_back(at::empty(s.sizes(), s.options().device(at::kMeta)));
  return layout;
}
} // namespace

StepOptimizer::StepOptimizer(std::vector<QuantizedWeight *> params,
                             const char *name, Optimizer kernel,
                             StateType stateType, double lr, uint64_t seed)
    : name_(name), kernel_(kernel), stateType_(stateType), lr_(lr),
      params_(std::move(params)), seed_(seed) {
  checkLr(name_, lr);
  checkParameters(name_, params_);
  for (size_t p = 0; p < params_.size(); ++p)
    tensorIds_.push_back(int64_t(p));
  stepped_.assign(params_.size(), false);
  pendingStats_.assign(params_.size(), StepStatsList::Slot{});
}

void StepOptimizer::initStates() {
  for (QuantizedWeight *w : params_) {
    // The weight's shape: q is 1-D bytes when packed.
    states_.push_back(makeStates(w->sizes(), w->q().options(), stateDtype()));
    layout_.push_back(layoutOf(states_.back()));
  }
}

void StepOptimizer::setLr(double lr) {
  checkLr(name_, lr);
  lr_ = lr;
}

void StepOptimizer::setTensorIds(std::vector<int64_t> ids) {
  checkTensorIds(name_, ids, params_.size());
  tensorIds_ = std::move(ids);
}

void StepOptimizer::checkNoStepInProgress(const char *what) const {
  TORCH_CHECK(std::find(stepped_.begin(), stepped_.end(), true) ==
                  stepped_.end(),
              name_, ".", what, ": a step is in progress (stepInBackward)");
}

void StepOptimizer::restore(
    int64_t step, uint64_t seed,
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

void StepOptimizer::restoreFloat(
    const std::vector<std::vector<at::Tensor>> &states) {
  checkStatesLike(name_, states, floatStates_);
  checkNoStepInProgress("restoreFloat");
  for (size_t i = 0; i < floatStates_.size(); ++i)
    for (size_t k = 0; k < states[i].size(); ++k)
      floatStates_[i][k].copy_(states[i][k]);
}

int64_t StepOptimizer::stateBytes() const {
  int64_t bytes = 0;
  for (const auto *all : {&states_, &floatStates_})
    for (const auto &states : *all)
      for (const at::Tensor &s : states)
        bytes += s.numel() * int64_t(s.element_size());
  return bytes;
}

void StepOptimizer::addFloatParameters(std::vector<at::Tensor> params) {
  // The optimizer's device; a float-only optimizer takes its first
  // parameter's.
  at::Device where = params_.empty() && floatParams_.empty() && !params.empty() &&
                             params.front().defined()
                         ? params.front().device()
                         : device();
  checkFloatParameters(name_, step_, stepped_, floatParams_, params, where);
  for (at::Tensor &p : params) {
    // Float mode keeps f32 states.
    floatStates_.push_back(makeStates(p.sizes(), p.options(), at::kFloat));
    floatLayout_.push_back(layoutOf(floatStates_.back()));
    floatParams_.push_back(std::move(p));
  }
}

void StepOptimizer::checkStateLayout(const std::vector<at::Tensor> &states,
                                     const std::vector<at::Tensor> &layout,
                                     size_t p, bool isFloat) const {
  at::Device device = isFloat ? floatParams_[p].device() : params_[p]->device();
  for (size_t k = 0; k < states.size(); ++k) {
    TORCH_CHECK(
        states[k].scalar_type() == layout[k].scalar_type() &&
            states[k].is_contiguous() && states[k].sizes() == layout[k].sizes(),
        name_, ": state ", k, " of ", isFloat ? "float " : "", "parameter ", p,
        " is ", states[k].scalar_type(), states[k].sizes(), ", expected ",
        layout[k].scalar_type(), layout[k].sizes());
    TORCH_CHECK(states[k].device() == device, name_, ": state ", k, " of ",
                isFloat ? "float " : "", "parameter ", p, " is on ",
                states[k].device(), ", the parameter on ", device,
                " (build the optimizer after moving its parameters)");
  }
}

at::Device StepOptimizer::device() const {
  if (!params_.empty())
    return params_.front()->device();
  return floatParams_.empty() ? at::Device(at::kCPU)
                              : floatParams_.front().device();
}

StepTarget StepOptimizer::target() const { return StepTarget::of(device(), name_); }

StepConfig StepOptimizer::stepConfig(size_t p) const {
  TORCH_CHECK(p < params_.size(), name_, ": no parameter ", p, " (it has ",
              params_.size(), ")");
  return params_[p]->stepConfig(kernel_, stateType_);
}

StepConfig StepOptimizer::floatConfig() const {
  StepConfig c;
  c.optimizer = kernel_;
  c.floatWeights = true;
  return c;
}

void StepOptimizer::run(const std::vector<size_t> &which) {
  for (size_t p : which)
    checkStateLayout(states_[p], layout_[p], p, /*isFloat=*/false);
  StepTarget where = target();
  // One launch per configuration (grid, storage, scale mode) on `where`.
  std::map<std::string, std::vector<size_t>> groups;
  std::map<std::string, StepConfig> configs;
  for (size_t p : which) {
    StepConfig c =
        stepConfigOn(where, params_[p]->stepConfig(kernel_, stateType_));
    groups[c.key()].push_back(p);
    configs[c.key()] = c;
  }
  std::map<std::string, const Executable *> kernels;
  for (auto &[key, config] : configs)
    kernels[key] = &where.kernel(config);

  int64_t t = step_ + 1;
  std::vector<float> hyper = hyperParameters(t);
  for (auto &[key, members] : groups) {
    std::vector<WeightStep> steps;
    std::vector<at::Tensor> keepAlive;
    for (size_t p : members) {
      QuantizedWeight &w = *params_[p];
      KernelInputs in = kernelInputs(w.grad(), states_[p], t);
      steps.emplace_back(w, in.grad, in.state0, in.state1, tensorIds_[p],
                         where);
      keepAlive.push_back(std::move(in.keepAlive));
    }
    StepStatsList groupStats = launchWeightSteps(
        where, *kernels[key], configs[key], steps, hyper, seed_, uint64_t(t));
    for (size_t i = 0; i < members.size(); ++i) {
      pendingStats_[members[i]] = groupStats.slot(i);
      stepped_[members[i]] = true;
    }
  }
}

StepStatsList StepOptimizer::runFloat(const StepTarget &where,
                                      const Executable &kernel,
                                      const std::vector<size_t> &which) {
  int64_t t = step_ + 1;
  std::vector<at::Tensor> keepAlive;
  std::vector<StepOperands> ops;
  for (size_t i : which) {
    at::Tensor &p = floatParams_[i];
    KernelInputs in = kernelInputs(p.grad(), floatStates_[i], t);
    // The kernel writes p in place, under autograd's nose: p is a leaf whose
    // value the optimizer owns, as torch.optim's in-place updates.
    ops.push_back(StepOperands::floatMode(p, in.grad, in.state0, in.state1));
    keepAlive.push_back(std::move(in.keepAlive));
  }
  return launchStep(where, kernel, floatConfig(), ops, hyperParameters(t),
                    seed_, uint64_t(t), device());
}

void StepOptimizer::stepParameter(QuantizedWeight &weight) {
  run({checkStepParameter(name_, params_, stepped_, weight)});
  weight.clearGrad(); // the lowest-memory mode: the gradient dies here
}

StepStatsList StepOptimizer::step() {
  // Check everything (and compile) first: a bad input changes nothing.
  std::vector<size_t> remaining = checkUnstepped(name_, params_, stepped_);
  std::vector<size_t> floats = checkFloatGradients(name_, floatParams_);
  for (size_t i : floats)
    checkStateLayout(floatStates_[i], floatLayout_[i], i, /*isFloat=*/true);
  StepTarget where = target();
  const Executable *floatKernel =
      floats.empty() ? nullptr : &where.kernel(floatConfig());
  // Parameters without a gradient are skipped: their statistics say so.
  for (size_t p = 0; p < params_.size(); ++p)
    if (!stepped_[p])
      pendingStats_[p] = StepStatsList::Slot{StepStats{-1, -1, -1}};
  run(remaining);
  StepStatsList stats(pendingStats_);
  if (floatKernel)
    stats.append(runFloat(where, *floatKernel, floats));
  ++step_;
  std::fill(stepped_.begin(), stepped_.end(), false);
  return stats;
}

void StepOptimizer::save(const std::string &path) const {
  saveOptimizerFile(path, name_, {step_, seed_, lr_}, params_, states_,
                    {floatParams_, floatStates_});
}

void StepOptimizer::load(const std::string &path) {
  checkNoStepInProgress("load");
  // A file with another state layout (another optimizer setting) is refused
  // there.
  FloatEntries floats{floatParams_, floatStates_};
  OptimizerFileHeader h =
      loadOptimizerFile(path, name_, params_, states_, &floats);
  step_ = h.step;
  seed_ = h.seed;
  lr_ = h.lr;
}

} // namespace dqt::optim
