//===- QuantParameter.h - any parameter kept as integers -------*- C++ -*-===//
//
// A quantized parameter that is not the weight of a QuantLinear: an
// embedding table, an output head, a norm's gain. Its forward value is
// q * delta with no activation quantization (the official DQT code quantizes
// every parameter this way with `--quantize all`).
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_QUANTPARAMETER_H
#define DQT_RUNTIME_QUANTPARAMETER_H

#include "dqt/Runtime/QuantizedWeight.h"

#include <ATen/ATen.h>

namespace dqt::optim {
class ParameterStepper;
} // namespace dqt::optim

namespace dqt::nn {

/// Adds `grad` to the weight's gradient buffer and, when `optimizer` is set,
/// steps the weight at once and frees the buffer (the step-in-backward mode
/// shared by QuantLinear and QuantParameter).
void acceptGradient(QuantizedWeight &weight, const at::Tensor &grad,
                    optim::ParameterStepper *optimizer);

/// A parameter stored as integers whose value, q * delta, enters the graph
/// through an autograd node that routes the gradient to acceptGradient.
class QuantParameter {
public:
  /// `value` quantized as QuantizedWeight::fromFloat does (per-row `scale`
  /// needs at least 2 dimensions).
  QuantParameter(const at::Tensor &value, Grid grid,
                 Storage storage = Storage::Int8,
                 ScaleMode scale = ScaleMode::Tensor,
                 ScaleRule rule = ScaleRule::MaxQ);
  /// q * delta as a transient f32 tensor in the autograd graph.
  at::Tensor value();
  QuantizedWeight &weight() { return weight_; }
  /// As QuantLinear::stepInBackward: the value must be used once per forward.
  optim::ParameterStepper *stepInBackward = nullptr;

private:
  QuantizedWeight weight_;
  /// Puts the node in the graph (nothing else requires grad upstream).
  at::Tensor anchor_ = at::empty({0}).requires_grad_(true);
};

} // namespace dqt::nn

#endif // DQT_RUNTIME_QUANTPARAMETER_H
