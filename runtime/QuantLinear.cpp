//===- QuantLinear.cpp - a linear layer with integer-only weights ---------===//

#include "dqt/Runtime/QuantLinear.h"

#include "dqt/Runtime/QuantParameter.h"

#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
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

namespace {

/// ternarize's parts: the values clamp(round(w*s), -1, 1) (f32) and s.
std::pair<at::Tensor, at::Tensor> ternarizeParts(const at::Tensor &w) {
  at::Tensor s = 1.0 / w.abs().mean().clamp_min(1e-5);
  return {(w * s).round().clamp(-1, 1), s};
}

} // namespace

at::Tensor ternarize(const at::Tensor &w) {
  auto [t, s] = ternarizeParts(w);
  return t / s;
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// The weight as integers times a scale per output feature, the form the
/// bf16 path multiplies in: the integers are exact in bf16 (|q| <= 128) and
/// the scales are applied in f32 after the matmul.
struct IntegerWeight {
  at::Tensor ints;     ///< [out, in], f32 integer values
  at::Tensor outScale; ///< [out] or [1], f32
};

IntegerWeight integerWeight(const QuantizedWeight &w, bool ternary) {
  if (!ternary)
    return {w.unpack().to(at::kFloat), w.deltas()};
  auto [t, s] = ternarizeParts(w.dequantize()); // ternarize(q * delta)
  return {t, (1.0 / s).reshape({1})};
}

/// The autograd node of QuantLinear and quantLinear(). The weight is
/// integers, whose pointer is saved in the context. `anchor` puts the node in
/// the graph even when x does not require grad, as for a network's first
/// layer. Where dL/dW goes: with a `layerPtr` (the C++ layer) into the
/// weight's buffer through the layer's gradientTransform and stepInBackward
/// (`anchor` is then an empty tensor and receives nothing); without one
/// (quantLinear) it is returned as `anchor`'s gradient, `anchor` being the
/// tensor that stands for the weight in autograd. With `lowPrecision` the
/// matmuls run in bf16 (docs/numerics.md, "Precision environments").
struct QuantLinearFunction
    : public torch::autograd::Function<QuantLinearFunction> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x,
                            const at::Tensor &anchor, int64_t weightPtr,
                            int64_t layerPtr, bool ternary, bool lowPrecision) {
    // The node chooses its own dtypes: an enclosing autocast region must
    // not recast the f32 operands below.
    c10::impl::ExcludeDispatchKeyGuard noAutocast(c10::autocast_dispatch_keyset);
    auto *w = reinterpret_cast<QuantizedWeight *>(weightPtr);
    ActivationQuant8 a = activationQuant8Parts(x.to(at::kFloat));
    // The input is kept for backward as what it is after quantization, int8
    // and a scale per token (1 byte an element, not 4); the weight is
    // re-derived from its integers there, so no float copy of either
    // survives between forward and backward.
    ctx->save_for_backward({a.q, a.s});
    ctx->saved_data["weight"] = weightPtr;
    ctx->saved_data["layer"] = layerPtr;
    ctx->saved_data["ternary"] = ternary;
    ctx->saved_data["low_precision"] = lowPrecision;
    if (lowPrecision) {
      IntegerWeight iw = integerWeight(*w, ternary);
      at::Tensor y = at::matmul(a.q.to(at::kBFloat16),
                                iw.ints.to(at::kBFloat16).t());
      return (y.to(at::kFloat) * iw.outScale / a.s).to(at::kBFloat16);
    }
    at::Tensor wf = w->dequantize();
    if (ternary)
      wf = ternarize(wf);
    return at::matmul(a.dequantize(), wf.t());
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    variable_list saved = ctx->get_saved_variables();
    ActivationQuant8 a{saved[0], saved[1]};
    auto *w = reinterpret_cast<QuantizedWeight *>(
        ctx->saved_data["weight"].toInt());
    auto *layer =
        reinterpret_cast<QuantLinear *>(ctx->saved_data["layer"].toInt());
    bool ternary = ctx->saved_data["ternary"].toBool();
    // A frozen weight (quantLinear with an anchor that does not require
    // grad) gets no gradient, and none is computed.
    bool needsGw = layer || ctx->needs_input_grad(1);
    const at::Tensor &gy = grads[0];
    int64_t out = gy.size(-1), in = a.q.size(-1);
    // Straight-through: both quantizers pass gradients unchanged.
    at::Tensor gx, gw;
    if (ctx->saved_data["low_precision"].toBool()) {
      // dL/dx = (gy * scale_out) @ ints and dL/dW = (gy / s)^T @ q_x, each
      // one bf16 matmul of an exact integer operand.
      IntegerWeight iw = integerWeight(*w, ternary);
      at::Tensor gyf = gy.to(at::kFloat);
      if (ctx->needs_input_grad(0))
        gx = at::matmul((gyf * iw.outScale).to(at::kBFloat16),
                        iw.ints.to(at::kBFloat16));
      if (needsGw)
        gw = at::matmul((gyf / a.s).reshape({-1, out}).t().to(at::kBFloat16),
                        a.q.reshape({-1, in}).to(at::kBFloat16))
                 .to(at::kFloat);
    } else {
      at::Tensor xq = a.dequantize();
      at::Tensor wf = w->dequantize();
      if (ternary)
        wf = ternarize(wf);
      if (ctx->needs_input_grad(0))
        gx = at::matmul(gy, wf);
      if (needsGw)
        gw = at::matmul(gy.reshape({-1, out}).t(), xq.reshape({-1, in}));
    }
    if (!layer)
      return {gx, gw, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    if (layer->gradientTransform)
      gw = layer->gradientTransform(gw);
    acceptGradient(*w, gw, layer->stepInBackward);
    return {gx,          at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor()};
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

bool QuantLinear::computesInBf16(const at::Tensor &x) {
  if (x.scalar_type() == at::kBFloat16)
    return true;
  at::DeviceType d = x.device().type();
  return at::autocast::is_autocast_enabled(d) &&
         at::autocast::get_autocast_dtype(d) == at::kBFloat16;
}

static void checkInput(const at::Tensor &x, const QuantizedWeight &w) {
  TORCH_CHECK(x.scalar_type() == at::kFloat ||
                  x.scalar_type() == at::kBFloat16,
              "dqt.nn.QuantLinear: input must be float32 or bfloat16, got ",
              x.scalar_type());
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == w.sizes()[1],
              "dqt.nn.QuantLinear: input has ", x.dim() ? x.size(-1) : 0,
              " features, the layer takes ", w.sizes()[1]);
}

at::Tensor QuantLinear::forward(const at::Tensor &x) {
  checkInput(x, weight_);
  return QuantLinearFunction::apply(
      x, anchor_, reinterpret_cast<int64_t>(&weight_),
      reinterpret_cast<int64_t>(this), ternaryInference, computesInBf16(x));
}

at::Tensor quantLinear(const at::Tensor &x, QuantizedWeight &weight,
                       const at::Tensor &param, bool ternaryInference) {
  TORCH_CHECK(weight.sizes().size() == 2,
              "dqt.nn.QuantLinear: weight must be 2-D [out, in], got ",
              weight.sizes());
  TORCH_CHECK(param.sizes() == weight.sizes() &&
                  param.scalar_type() == at::kFloat &&
                  param.device() == weight.device(),
              "dqt.nn.QuantLinear: param must be float32 of the weight's "
              "shape ",
              weight.sizes(), " on ", weight.device(), ", got ",
              param.scalar_type(), param.sizes(), " on ", param.device());
  checkInput(x, weight);
  return QuantLinearFunction::apply(
      x, param, reinterpret_cast<int64_t>(&weight), int64_t(0),
      ternaryInference, QuantLinear::computesInBf16(x));
}

} // namespace dqt::nn
