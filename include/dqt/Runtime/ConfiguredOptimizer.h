//===- ConfiguredOptimizer.h - an optimizer's options -----------*- C++ -*-===//
//
// setOptions() and options() of every DQT optimizer, written once: the
// StepOptimizer holds the lr and seed of the options, this class the rest.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_CONFIGUREDOPTIMIZER_H
#define DQT_RUNTIME_CONFIGUREDOPTIMIZER_H

#include <c10/util/Exception.h>

#include <utility>

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
    checkOptions(options);
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
  /// `options` and the arguments of Base's constructor. The derived
  /// constructor checks the options (checkOptions) and calls initStates().
  template <typename... BaseArgs>
  ConfiguredOptimizer(const Options &options, BaseArgs &&...args)
      : Base(std::forward<BaseArgs>(args)...), options_(options) {}

  /// Throws c10::Error naming the first option of `options` out of range,
  /// or one that may not change from the current options.
  virtual void checkOptions(const Options &options) const = 0;

  /// The options, but for lr and seed (lr() and seed()).
  const Options &config() const { return options_; }

private:
  Options options_;
};

} // namespace dqt::optim

#endif // DQT_RUNTIME_CONFIGUREDOPTIMIZER_H
