//===- Optimizers.cpp - DQT optimizers over integer weights ---------------===//

#include "dqt/Runtime/Optimizers.h"

#include "dqt/Runtime/OptimizerChecks.h"

#include <c10/util/Exception.h>

#include <cmath>

namespace dqt::optim {

QuantizedOptimizer::QuantizedOptimizer(std::vector<QuantizedWeight *> params,
                                       const char *name, Optimizer kernel,
                                       StateType stateType, double lr,
                                       uint64_t seed, size_t numStates)
    : StepOptimizer(std::move(params), name, kernel, stateType, lr, seed),
      numStates_(numStates) {}

std::vector<at::Tensor>
QuantizedOptimizer::makeStates(at::IntArrayRef shape, at::TensorOptions options,
                               at::ScalarType dtype) const {
  std::vector<at::Tensor> states;
  for (size_t k = 0; k < numStates_; ++k)
    states.push_back(at::zeros(shape, options.dtype(dtype)));
  return states;
}

StepOptimizer::KernelInputs QuantizedOptimizer::kernelInputs(
    const at::Tensor &grad, std::vector<at::Tensor> &states, int64_t) const {
  KernelInputs in;
  in.grad = grad.data_ptr<float>();
  in.state0 = states[0].data_ptr();
  if (states.size() > 1)
    in.state1 = states[1].data_ptr();
  return in;
}

AdamW::AdamW(std::vector<QuantizedWeight *> params, AdamWOptions options)
    : ConfiguredOptimizer(std::move(params), "dqt.optim.AdamW",
                          Optimizer::AdamW, options.stateType, options, 2) {
  init();
}

void AdamW::checkOptions(const AdamWOptions &o) const {
  checkBeta(name(), "beta1", o.beta1);
  checkBeta(name(), "beta2", o.beta2);
  TORCH_CHECK(o.eps > 0, name(), ": eps must be > 0, got ", o.eps);
  TORCH_CHECK(o.weightDecay >= 0, name(), ": weight_decay must be >= 0, got ",
              o.weightDecay);
}

std::vector<float> AdamW::hyperParameters(int64_t t) const {
  const AdamWOptions &o = config();
  double lr = this->lr();
  double alpha = lr * std::sqrt(1 - std::pow(o.beta2, double(t))) /
                 (1 - std::pow(o.beta1, double(t)));
  return {float(o.beta1), float(o.beta2), float(alpha), float(o.eps),
          float(lr * o.weightDecay)};
}

SGD::SGD(std::vector<QuantizedWeight *> params, SGDOptions options)
    : ConfiguredOptimizer(std::move(params), "dqt.optim.SGD", Optimizer::SGD,
                          options.stateType, options, 1) {
  init();
}

void SGD::checkOptions(const SGDOptions &o) const {
  checkBeta(name(), "momentum", o.momentum);
  TORCH_CHECK(o.weightDecay >= 0, name(), ": weight_decay must be >= 0, got ",
              o.weightDecay);
}

std::vector<float> SGD::hyperParameters(int64_t) const {
  return {float(lr()), float(config().momentum),
          float(lr() * config().weightDecay)};
}

} // namespace dqt::optim
