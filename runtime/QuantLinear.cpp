//===- QuantLinear.cpp - a linear layer with integer-only weights ---------===//

#include "dqt/Runtime/QuantLinear.h"

#include "dqt/Runtime/QuantParameter.h"

#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

namespace dqt::nn {

ActivationQuant8 activationQuant8Parts(const at::Tensor &x) {
  at::Tensor s = 127.0 / x.abs().amax(-1, /*keepdim=*/true).clamp_min(1e-5);
  // The rounded values are integers in [-128, 127]: exact in int8.
  return {(x * s).round().clamp(-128, 127).to(at::kChar), s};
}

at::Tensor activationQuant8(const at::Tensor &x) {
  return activationQuant8Parts(x).dequantize();
}

at::Tensor ternarize(const at::Tensor &w) {
  at::Tensor s = 1.0 / w.abs().mean().clamp_min(1e-5);
  return (w * s).round().clamp(-1, 1) / s;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// The autograd node of QuantLinear. The weight is integers, reached through
/// a pointer saved in the context; `anchor` (an empty tensor that requires
/// grad) puts the node in the graph even when x does not require grad, as
/// for a network's first layer.
struct QuantLinearFunction
    : public torch::autograd::Function<QuantLinearFunction> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x,
                            const at::Tensor &anchor, int64_t weightPtr,
                            bool ternary, int64_t optimizerPtr) {
    auto *w = reinterpret_cast<QuantizedWeight *>(weightPtr);
    ActivationQuant8 a = activationQuant8Parts(x);
    at::Tensor wf = w->dequantize();
    if (ternary)
      wf = ternarize(wf);
    // The input is kept for backward as what it is after quantization, int8
    // and a scale per token (1 byte an element, not 4); the weight is
    // re-derived from its integers there, so no float copy of either
    // survives between forward and backward.
    ctx->save_for_backward({a.q, a.s});
    ctx->saved_data["weight"] = weightPtr;
    ctx->saved_data["ternary"] = ternary;
    ctx->saved_data["optimizer"] = optimizerPtr;
    return at::matmul(a.dequantize(), wf.t());
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    variable_list saved = ctx->get_saved_variables();
    at::Tensor xq = ActivationQuant8{saved[0], saved[1]}.dequantize();
    auto *w =
        reinterpret_cast<QuantizedWeight *>(ctx->saved_data["weight"].toInt());
    at::Tensor wf = w->dequantize();
    if (ctx->saved_data["ternary"].toBool())
      wf = ternarize(wf);
    const at::Tensor &gy = grads[0];
    // Straight-through: both quantizers pass gradients unchanged.
    at::Tensor gx;
    if (ctx->needs_input_grad(0))
      gx = at::matmul(gy, wf);
    int64_t out = gy.size(-1), in = xq.size(-1);
    acceptGradient(*w,
                   at::matmul(gy.reshape({-1, out}).t(), xq.reshape({-1, in})),
                   reinterpret_cast<optim::ParameterStepper *>(
                       ctx->saved_data["optimizer"].toInt()));
    return {gx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor kaimingUniform(int64_t in, int64_t out,
                          std::optional<at::Generator> gen) {
  double bound = 1.0 / std::sqrt(double(in));
  return at::empty({out, in}, at::kFloat).uniform_(-bound, bound, gen);
}

} // namespace

QuantLinear::QuantLinear(int64_t in, int64_t out, Grid grid,
                         std::optional<at::Generator> gen, Storage storage,
                         ScaleMode scale, ScaleRule rule)
    : QuantLinear(kaimingUniform(in, out, gen), grid, storage, scale, rule) {}

static const at::Tensor &checked2D(const at::Tensor &weight) {
  TORCH_CHECK(weight.dim() == 2,
              "dqt.nn.QuantLinear: weight must be 2-D [out, in], got ",
              weight.sizes());
  return weight;
}

QuantLinear::QuantLinear(const at::Tensor &weight, Grid grid, Storage storage,
                         ScaleMode scale, ScaleRule rule)
    : weight_(QuantizedWeight::fromFloat(checked2D(weight), grid, storage,
                                         scale, rule)) {}

at::Tensor QuantLinear::forward(const at::Tensor &x) {
  TORCH_CHECK(x.scalar_type() == at::kFloat,
              "dqt.nn.QuantLinear: input must be float32, got ",
              x.scalar_type());
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == inFeatures(),
              "dqt.nn.QuantLinear: input has ", x.dim() ? x.size(-1) : 0,
              " features, the layer takes ", inFeatures());
  return QuantLinearFunction::apply(
      x, anchor_, reinterpret_cast<int64_t>(&weight_), ternaryInference,
      reinterpret_cast<int64_t>(stepInBackward));
}

} // namespace dqt::nn
