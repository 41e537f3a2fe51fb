//===- ParameterStepper.h - stepping one parameter in backward -*- C++ -*-===//

#ifndef DQT_RUNTIME_PARAMETERSTEPPER_H
#define DQT_RUNTIME_PARAMETERSTEPPER_H

namespace dqt {
class QuantizedWeight;
} // namespace dqt

namespace dqt::optim {

/// An optimizer that can step one parameter inside the backward pass, as
/// soon as its gradient is complete, and free the gradient there (the
/// lowest-memory mode: QuantLinear::stepInBackward,
/// QuantParameter::stepInBackward). StepOptimizer is one, so AdamW, SGD and
/// Adafactor are.
class ParameterStepper {
public:
  virtual ~ParameterStepper() = default;

  /// Steps `weight` (one of the optimizer's parameters, with its gradient)
  /// for the step in progress and frees its gradient. The next step()
  /// finishes the step: it steps the parameters not stepped yet, advances
  /// the step count and returns every parameter's statistics. Throws
  /// c10::Error, changing nothing, if the weight is not a parameter, was
  /// stepped already in this step, or its gradient does not match.
  virtual void stepParameter(QuantizedWeight &weight) = 0;
};

} // namespace dqt::optim

#endif // DQT_RUNTIME_PARAMETERSTEPPER_H
