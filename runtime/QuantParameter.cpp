//===- QuantParameter.cpp - any parameter kept as integers ----------------===//

#include "dqt/Runtime/QuantParameter.h"

#include "dqt/Runtime/ParameterStepper.h"

#include <torch/csrc/autograd/custom_function.h>

namespace dqt::nn {

void acceptGradient(QuantizedWeight &weight, const at::Tensor &grad,
                    optim::ParameterStepper *optimizer) {
  weight.grad().add_(grad);
  if (optimizer)
    optimizer->stepParameter(weight);
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct QuantParameterFunction
    : public torch::autograd::Function<QuantParameterFunction> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &anchor,
                            int64_t weightPtr, int64_t optimizerPtr) {
    ctx->saved_data["weight"] = weightPtr;
    ctx->saved_data["optimizer"] = optimizerPtr;
    return reinterpret_cast<QuantizedWeight *>(weightPtr)->dequantize();
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    acceptGradient(
        *reinterpret_cast<QuantizedWeight *>(ctx->saved_data["weight"].toInt()),
        grads[0].contiguous(),
        reinterpret_cast<optim::ParameterStepper *>(
            ctx->saved_data["optimizer"].toInt()));
    return {at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

} // namespace

QuantParameter::QuantParameter(const at::Tensor &value, Grid grid,
                               Storage storage, ScaleMode scale,
                               ScaleRule rule)
    : weight_(QuantizedWeight::fromFloat(value, grid, storage, scale, rule)) {}

at::Tensor QuantParameter::value() {
  return QuantParameterFunction::apply(
      anchor_, reinterpret_cast<int64_t>(&weight_),
      reinterpret_cast<int64_t>(stepInBackward));
}

} // namespace dqt::nn
