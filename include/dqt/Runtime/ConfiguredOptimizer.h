//===- ConfiguredOptimizer.h - an optimizer's options -----------*- C++ -*-===//
//
// setOptions() and options() of every DQT optimizer, written once: the
// StepOptimizer holds the lr and seed of the options, this class the rest.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_CONFIGUREDOPTIMIZER_H
#define DQT_RUNTIME_CONFIGUREDOPTIMIZER_H

#include "dqt/Runtime/OptimizerChecks.h"
#include "dqt/Runtime/StepOptimizer.h"

#include <c10/util/Exception.h>

#include <utility>
#include <vector>

namespace dqt::optim {

/// A StepOptimizer `Base` configured by an `Options` struct with fields lr,
/// seed and stateType.
template <typename Base, typename Options>
class ConfiguredOptimizer : public Base {
public:
  /// Changes the options for the next steps, validated first (on error
  /// nothing changes). The seed is fixed at construction (restore()
  /// changes it), so `options.seed` is ignored; so is the state type,
  /// which must not change. Hyper-parameters are kernel arguments: no
  /// recompilation.
  void setOptions(const Options &options) {
    validate(options);
    TORCH_CHECK(options.stateType == options_.stateType, this->name(),
                ": the state type is fixed at construction");
    options_ = options;
    this->setLr(options.lr);
  }
  /// The current options (lr and seed as the optimizer holds them).
  Options options() const {
    Options o = options_;
    o.lr = this->lr();
    o.seed = this->seed();
    return o;
  }

protected:
  /// Base's constructor with `options`' lr and seed, and `extra` (Base's
  /// arguments after those). The derived constructor then calls init().
  template <typename... Extra>
  ConfiguredOptimizer(std::vector<QuantizedWeight *> params, const char *name,
                      Optimizer kernel, StateType stateType,
                      const Options &options, Extra &&...extra)
      : Base(std::move(params), name, kernel, stateType, options.lr,
             options.seed, std::forward<Extra>(extra)...),
        options_(options) {}

  /// The derived constructor's last step (a base constructor cannot call
  /// the virtuals): checks the options and makes the states.
  void init() {
    validate(options_);
    this->initStates();
  }

  /// Throws c10::Error naming the first option of `options` out of range
  /// (lr aside: checked before), or one that may not change from the
  /// current options.
  virtual void checkOptions(const Options &options) const = 0;

  /// The options, but for lr and seed (lr() and seed()).
  const Options &config() const { return options_; }

private:
  void validate(const Options &options) const {
    checkLr(this->name(), options.lr);
    checkOptions(options);
  }

  Options options_;
};

} // namespace dqt::optim

#endif // DQT_RUNTIME_CONFIGUREDOPTIMIZER_H
