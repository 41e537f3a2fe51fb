//===- Fp8.cpp - dqt-train's FP8 environment (MS-AMP O2, simulated) -------===//

#include "Fp8.h"

#include "dqt/Runtime/QuantLinear.h"

#include <c10/core/impl/LocalDispatchKeySet.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

namespace dqt::train {

namespace {

double largestFinite(at::ScalarType type) {
  switch (type) {
  case at::kFloat8_e4m3fn:
    return 448.0;
  case at::kFloat8_e5m2:
    return 57344.0;
  case at::kHalf:
    return 65504.0;
  default:
    TORCH_CHECK(false, "dqt-train: no FP8 scaling for ", type);
  }
}

/// a @ b of FP8 operands, exact products accumulated in f32 (an FP8 tensor
/// core's arithmetic), divided by both scales.
at::Tensor scaledMatmul(const at::Tensor &a, const at::Tensor &sa,
                        const at::Tensor &b, const at::Tensor &sb) {
  return at::matmul(a.to(at::kFloat), b.to(at::kFloat)) / (sa * sb);
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// The FP8 GEMM node: saves its input as e4m3 (1 byte an element) and
/// re-derives the weight from the Fp8Weight in the backward pass.
struct Fp8LinearFunction : public torch::autograd::Function<Fp8LinearFunction> {
  static ScaledTensor gemmWeight(Fp8Weight &w, bool bitnet) {
    if (!bitnet)
      return w.weight;
    return ScaledTensor::cast(nn::ternarize(w.weight.dequantize()),
                              at::kFloat8_e4m3fn);
  }

  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x,
                            const at::Tensor &anchor, int64_t weightPtr,
                            bool bitnet) {
    c10::impl::ExcludeDispatchKeyGuard noAutocast(c10::autocast_dispatch_keyset);
    auto &w = *reinterpret_cast<Fp8Weight *>(weightPtr);
    at::Tensor xf = x.to(at::kFloat);
    if (bitnet)
      xf = nn::activationQuant8(xf);
    ScaledTensor x8 = ScaledTensor::cast(xf, at::kFloat8_e4m3fn);
    ScaledTensor w8 = gemmWeight(w, bitnet);
    ctx->save_for_backward({x8.data, x8.scale});
    ctx->saved_data["weight"] = weightPtr;
    ctx->saved_data["bitnet"] = bitnet;
    return scaledMatmul(x8.data, x8.scale, w8.data.t(), w8.scale)
        .to(at::kBFloat16);
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    variable_list saved = ctx->get_saved_variables();
    auto &w = *reinterpret_cast<Fp8Weight *>(ctx->saved_data["weight"].toInt());
    ScaledTensor w8 = gemmWeight(w, ctx->saved_data["bitnet"].toBool());
    ScaledTensor g8 = ScaledTensor::cast(grads[0], at::kFloat8_e5m2);
    int64_t out = g8.data.size(-1), in = saved[0].size(-1);
    at::Tensor gx;
    if (ctx->needs_input_grad(0))
      gx = scaledMatmul(g8.data, g8.scale, w8.data, w8.scale)
               .to(at::kBFloat16);
    w.accumulateGrad(scaledMatmul(g8.data.reshape({-1, out}).t(), g8.scale,
                                  saved[0].reshape({-1, in}), saved[1]));
    return {gx, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

} // namespace

at::Tensor ScaledTensor::dequantize() const {
  return data.to(at::kFloat) / scale;
}

ScaledTensor ScaledTensor::cast(const at::Tensor &x, at::ScalarType type) {
  double top = largestFinite(type);
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor amax = xf.abs().amax();
  at::Tensor scale = at::where(at::isfinite(amax) & (amax > 0), top / amax,
                               at::ones_like(amax));
  // The clamp keeps x * scale, rounded up by one ulp of f32, from becoming
  // NaN in e4m3 (which has no infinity); a NaN input stays NaN.
  return {(xf * scale).clamp(-top, top).to(type), scale};
}

Fp8Weight::Fp8Weight(const at::Tensor &init) {
  master = ScaledTensor::cast(init, at::kHalf);
  m = ScaledTensor::cast(at::zeros_like(init), at::kFloat8_e4m3fn);
  v = ScaledTensor::cast(at::zeros_like(init), at::kHalf);
  refreshWeight();
}

at::Tensor Fp8Weight::linear(const at::Tensor &x, bool bitnet) {
  TORCH_CHECK(x.size(-1) == weight.data.size(1), "dqt-train: FP8 linear: ",
              "input has ", x.size(-1), " features, the weight takes ",
              weight.data.size(1));
  return Fp8LinearFunction::apply(x, anchor_, reinterpret_cast<int64_t>(this),
                                  bitnet);
}

void Fp8Weight::accumulateGrad(const at::Tensor &g) {
  grad = ScaledTensor::cast(grad.defined() ? grad.dequantize() + g : g,
                            at::kFloat8_e5m2);
}

void Fp8Weight::refreshWeight() {
  weight = ScaledTensor::cast(master.dequantize(), at::kFloat8_e4m3fn);
}

void Fp8Weight::to(at::Device device) {
  for (ScaledTensor *t : {&master, &weight, &grad, &m, &v})
    if (t->defined())
      *t = {t->data.to(device), t->scale.to(device)};
  anchor_ = anchor_.detach().to(device).requires_grad_(true);
}

void Fp8AdamW::step() {
  for (Fp8Weight *w : weights) {
    if (!w->grad.defined())
      continue;
    ++w->step;
    at::Tensor g = w->grad.dequantize();
    at::Tensor m = w->m.dequantize().mul_(beta1).add_(g, 1 - beta1);
    at::Tensor v =
        w->v.dequantize().mul_(beta2).addcmul_(g, g, 1 - beta2);
    at::Tensor p = w->master.dequantize().mul_(1 - lr * weightDecay);
    double bc1 = 1 - std::pow(beta1, double(w->step));
    double bc2 = 1 - std::pow(beta2, double(w->step));
    at::Tensor denom = (v.sqrt() / std::sqrt(bc2)).add_(eps);
    p.addcdiv_(m, denom, -lr / bc1);
    w->master = ScaledTensor::cast(p, at::kHalf);
    w->m = ScaledTensor::cast(m, at::kFloat8_e4m3fn);
    w->v = ScaledTensor::cast(v, at::kHalf);
    w->refreshWeight();
  }
}

void Fp8AdamW::zeroGrad() {
  for (Fp8Weight *w : weights)
    w->grad = ScaledTensor();
}

} // namespace dqt::train
