//===- QuantLinear.h - a linear layer with integer-only weights -*- C++ -*-===//

#ifndef DQT_RUNTIME_QUANTLINEAR_H
#define DQT_RUNTIME_QUANTLINEAR_H

#include "dqt/Runtime/QuantizedWeight.h"

namespace dqt::optim {
class ParameterStepper;
} // namespace dqt::optim

#include <ATen/ATen.h>

#include <functional>

namespace dqt::nn {

/// Per-token absmax 8-bit fake quantization of activations (BitLinear):
/// s = 127 / max(|x|_row, 1e-5), x_q = clamp(round(x*s), -128, 127) / s.
at::Tensor activationQuant8(const at::Tensor &x);

/// activationQuant8's parts: the integers clamp(round(x*s), -128, 127) as
/// int8 in x's shape and the per-token scale s (f32, [..., 1]);
/// `q.to(kFloat) / s` is activationQuant8(x) bit for bit.
struct ActivationQuant8 {
  at::Tensor q, s;
  at::Tensor dequantize() const { return q.to(at::kFloat) / s; }
};
ActivationQuant8 activationQuant8Parts(const at::Tensor &x);

/// BitNet b1.58's absmean ternarization of a float weight:
/// s = 1 / max(mean|w|, 1e-5), w_t = clamp(round(w*s), -1, 1) / s.
at::Tensor ternarize(const at::Tensor &w);

/// y = actquant8(x) @ W^T with W = q * delta (per tensor or per output
/// feature; a transient f32 copy per call). For a bf16 input, or inside a
/// bf16 autocast region of the input's device, the same integers are
/// multiplied in bf16 (exact operands, f32 accumulation) with the scales
/// applied after, and y is bf16 (docs/numerics.md, "Precision
/// environments");
/// both quantizers straight-through in the backward pass. Backward returns
/// dL/dx and accumulates dL/dW into the weight's gradient buffer. With
/// `ternaryInference`, the forward uses ternarize(q * delta) instead (the
/// paper's ternary-inference variant; the n-bit integers are what is
/// updated). No float copy of the weight survives a call.
class QuantLinear {
public:
  /// A layer initialized like torch.nn.Linear (kaiming-uniform, bound
  /// 1/sqrt(in)), then quantized to `grid` in `storage` with one delta per
  /// tensor or per output feature (`scale`).
  QuantLinear(int64_t in, int64_t out, Grid grid,
              std::optional<at::Generator> gen = std::nullopt,
              Storage storage = Storage::Int8,
              ScaleMode scale = ScaleMode::Tensor,
              ScaleRule rule = ScaleRule::MaxQ);
  /// A layer over an existing float weight [out, in]; `storage`, `scale`
  /// and `rule` as in QuantizedWeight::fromFloat (packed: ternary grids
  /// only; per row: one delta per output feature).
  QuantLinear(const at::Tensor &weight, Grid grid,
              Storage storage = Storage::Int8,
              ScaleMode scale = ScaleMode::Tensor,
              ScaleRule rule = ScaleRule::MaxQ);

  /// x: [..., in] float32 or bfloat16; autograd-aware.
  at::Tensor forward(const at::Tensor &x);
  /// Whether forward(x) computes in bf16 (x is bf16, or bf16 autocast is on
  /// for x's device).
  static bool computesInBf16(const at::Tensor &x);

  QuantizedWeight &weight() { return weight_; }
  int64_t inFeatures() const { return weight_.sizes()[1]; }
  int64_t outFeatures() const { return weight_.sizes()[0]; }
  bool ternaryInference = false;
  /// When set, the backward pass steps this layer's weight with `optimizer`
  /// right after computing its gradient and frees the gradient (lowest
  /// memory: at most one layer's gradient exists at a time). The layer must
  /// run once per forward; call optimizer.step() after backward as usual.
  optim::ParameterStepper *stepInBackward = nullptr;
  /// When set, maps dL/dW (f32) before the weight receives it: how a
  /// training environment stores weight gradients (dqt-train's FP8
  /// environment casts them to e5m2 with a per-tensor scale).
  std::function<at::Tensor(const at::Tensor &)> gradientTransform;

private:
  QuantizedWeight weight_;
  /// Puts every forward in the autograd graph (see QuantLinearFunction).
  at::Tensor anchor_ = at::empty({0}).requires_grad_(true);
};

/// QuantLinear::forward over a weight it does not own, with dL/dW returned
/// through autograd as the gradient of `param` instead of going to the
/// weight's buffer: `param` stands for the weight in the autograd graph
/// (float32, the weight's shape and device; in Python the torch.Tensor
/// subclass that holds the weight, so the gradient lands in its `.grad`).
/// When `param` does not require grad, dL/dW is neither computed nor
/// returned (a frozen weight).
at::Tensor quantLinear(const at::Tensor &x, QuantizedWeight &weight,
                       const at::Tensor &param, bool ternaryInference);

} // namespace dqt::nn

#endif // DQT_RUNTIME_QUANTLINEAR_H
