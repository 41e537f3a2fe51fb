//===- StepOptimizer.h - the step protocol of DQT optimizers ----*- C++ -*-===//
//
// What AdamW, SGD and Adafactor share: the parameters and their states, the
// step count, seed and lr, grouping the parameters by kernel configuration
// (one launch per group), stepping inside the backward pass, float
// parameters in float mode, restore and the optimizer file. An optimizer
// adds its states' layout, its hyper-parameters and what the generated
// kernel reads in place of the gradient and states.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_STEPOPTIMIZER_H
#define DQT_RUNTIME_STEPOPTIMIZER_H

#include "dqt/Runtime/CpuLauncher.h"
#include "dqt/Runtime/ParameterStepper.h"
#include "dqt/Runtime/QuantizedWeight.h"
#include "dqt/Runtime/StepStatsList.h"
#include "dqt/Runtime/StepTarget.h"

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace dqt::optim {

/// An optimizer of QuantizedWeights (and float parameters) stepped by the
/// generated kernels: parameters grouped by configuration, one kernel
/// launch per group, hyper-parameters as runtime arguments (a learning-rate
/// schedule never recompiles), per-tensor statistics.
class StepOptimizer : public ParameterStepper {
public:
  virtual ~StepOptimizer() = default;

  /// One step over every parameter with a gradient; one without is
  /// skipped, as torch.optim skips it (its statistics are {-1, -1, -1}; a
  /// skipped float parameter has none). A non-finite gradient element
  /// leaves its weight and states untouched and is counted. Throws
  /// c10::Error, changing nothing, on mismatched inputs.
  ///
  /// Parameters on a GPU are stepped there, one launch per configuration on
  /// LibTorch's current stream, and step() does not wait for the GPU: the
  /// next scales are computed on the device, and the returned statistics
  /// stay in device memory until read (StepStatsList::get synchronizes).
  StepStatsList step();

  /// Steps one parameter now, inside the backward pass, with the step count
  /// of the step in progress, and frees its gradient (ParameterStepper).
  void stepParameter(QuantizedWeight &weight) override;

  /// Adds non-quantized parameters, stepped by the same generated kernel in
  /// float mode (StepConfig::floatWeights: the f32 weights updated in place
  /// by the same math and non-finite masking, no grid), all in one launch
  /// per step, after the integer weights. Each must be a defined, non-empty,
  /// contiguous f32 tensor on the integer weights' device, given once,
  /// before the first step; its
  /// gradient is autograd's `grad()`, needed at every step(). Their states
  /// (the layout of an integer weight's) are f32, saved and loaded with the
  /// rest (float.<i>.*); their StepStats come after the integer weights'
  /// ones, with maxQ and changed -1. Not inside the backward pass. Throws
  /// c10::Error, changing nothing.
  void addFloatParameters(std::vector<at::Tensor> params);
  size_t numFloatParams() const { return floatParams_.size(); }
  /// Number of state tensors of float parameter `i`.
  size_t numFloatStates(size_t i) const { return floatStates_[i].size(); }
  /// Sets every float parameter's states (`states[i][k]`, of the live
  /// state's dtype and shape), as restore() does for the integer weights
  /// (the step count and seed are restore()'s). Validated first: on error
  /// this throws c10::Error and nothing changes.
  void restoreFloat(const std::vector<std::vector<at::Tensor>> &states);
  /// Where the parameters live: the integer weights' device, else the float
  /// parameters' (CPU when there are none).
  at::Device device() const;
  /// State tensor `k` of float parameter `i` (the order of `state`).
  const at::Tensor &floatState(size_t i, size_t k) const {
    return floatStates_[i][k];
  }

  /// Learning rate of the next steps (finite, >= 0).
  void setLr(double lr);
  double lr() const { return lr_; }
  int64_t stepCount() const { return step_; }
  uint64_t seed() const { return seed_; }
  size_t numParams() const { return params_.size(); }
  /// Number of state tensors of parameter `p`.
  size_t numStates(size_t p) const { return states_[p].size(); }
  /// State tensor `k` of parameter `p` (each optimizer documents its order).
  const at::Tensor &state(size_t p, size_t k) const { return states_[p][k]; }
  /// How the states that follow the weight's values are stored (the
  /// options' stateType; Adafactor's statistics are f32 regardless).
  StateType stateType() const { return stateType_; }
  /// The dtype of those states: float32 or bfloat16.
  at::ScalarType stateDtype() const {
    return stateType_ == StateType::BF16 ? at::kBFloat16 : at::kFloat;
  }

  /// The Philox `tensor_id` of each parameter, in order (default 0..n-1).
  /// An owner that splits one model's parameters over several optimizers
  /// (the Python param groups) passes global indices so that every tensor
  /// draws its own stream. Ids must be distinct and in [0, 2^32).
  void setTensorIds(std::vector<int64_t> ids);
  const std::vector<int64_t> &tensorIds() const { return tensorIds_; }
  /// The kernel configuration of parameter `p` on the CPU, and that of the
  /// float parameters: what a training graph containing their steps
  /// compiles (dqt.export_training_graph).
  StepConfig stepConfig(size_t p) const;
  StepConfig floatConfig() const;
  /// The f32 hyper-parameters the kernels get at step `t`, in kernel order.
  std::vector<float> kernelHyperParameters(int64_t t) const {
    return hyperParameters(t);
  }

  /// Sets the step count, seed and every state tensor (`states[p][k]`, of
  /// the live state's dtype and shape) of the integer weights, e.g. from a
  /// Python state_dict; the weights are the model's business (float
  /// parameters' states travel with save/load only). Everything is
  /// validated before anything changes: on error this throws c10::Error and
  /// nothing is modified.
  void restore(int64_t step, uint64_t seed,
               const std::vector<std::vector<at::Tensor>> &states);
  /// Bytes of optimizer state, float parameters included.
  int64_t stateBytes() const;

  /// Saves the weights (q, delta, max q), the states, the step count, seed
  /// and lr to `path` (dqt::checkpoint format, written atomically, under
  /// the optimizer's name).
  void save(const std::string &path) const;
  /// Restores what `save` wrote. Everything (names, shapes, dtypes, grids,
  /// optimizer kind, checksums) is validated before anything changes: on
  /// error this throws c10::Error and the optimizer, the weights and the
  /// file are untouched.
  void load(const std::string &path);

protected:
  /// `params` stepped by the generated `kernel` optimizer with states of
  /// `stateType`, named `name` in errors and files. Checks `lr` and the
  /// parameters; the derived constructor then checks its other options and
  /// calls initStates().
  StepOptimizer(std::vector<QuantizedWeight *> params, const char *name,
                Optimizer kernel, StateType stateType, double lr,
                uint64_t seed);

  /// Creates the states of every parameter with makeStates. Called by the
  /// derived constructor: a base constructor cannot call a virtual.
  void initStates();

  /// The zero states of a parameter of `shape`: those that follow the
  /// weight's values of dtype `dtype` (stateDtype(), f32 for float
  /// parameters), the others f32; `options` gives the device.
  virtual std::vector<at::Tensor> makeStates(at::IntArrayRef shape,
                                             at::TensorOptions options,
                                             at::ScalarType dtype) const = 0;

  /// The kernel's f32 hyper-parameters for step `t`, in kernel order.
  virtual std::vector<float> hyperParameters(int64_t t) const = 0;

  /// What the kernel reads for one parameter in place of its gradient and
  /// its states, and a tensor that must live until the launch.
  struct KernelInputs {
    float *grad = nullptr;
    void *state0 = nullptr;
    void *state1 = nullptr;
    at::Tensor keepAlive;
  };
  /// The kernel inputs of a parameter with gradient `grad` (its shape: the
  /// weight's) and `states`, for step `t`. An optimizer with work of its
  /// own before the kernel (Adafactor's statistics) does it here.
  virtual KernelInputs kernelInputs(const at::Tensor &grad,
                                    std::vector<at::Tensor> &states,
                                    int64_t t) const = 0;

  /// The name in errors and in the optimizer file ("dqt.optim.AdamW").
  const char *name() const { return name_; }
  /// Integer parameter `p`.
  const QuantizedWeight &parameter(size_t p) const { return *params_[p]; }

private:
  /// Runs the kernels of parameters `which` for step `stepCount() + 1`,
  /// recording their statistics. The states' layout is checked and the
  /// kernels fetched first: a bad state or a failed compilation changes
  /// nothing.
  void run(const std::vector<size_t> &which);
  /// Steps the float parameters (float mode) for step `stepCount() + 1`
  /// with `kernel`, fetched before anything changed.
  /// Steps the float parameters `which` (those with a gradient).
  StepStatsList runFloat(const StepTarget &target, const Executable &kernel,
                         const std::vector<size_t> &which);
  /// Refuses `what` while a step is in progress (stepParameter).
  void checkNoStepInProgress(const char *what) const;
  /// The kernels read states raw: `states` (of parameter `p`, or of float
  /// parameter `p` when `isFloat`) must still be contiguous with the dtype
  /// and shape they were made with (the live tensors are handed out).
  void checkStateLayout(const std::vector<at::Tensor> &states,
                        const std::vector<at::Tensor> &layout, size_t p,
                        bool isFloat) const;

  const char *name_;
  Optimizer kernel_;
  StateType stateType_;
  double lr_;
  std::vector<QuantizedWeight *> params_;
  std::vector<int64_t> tensorIds_;
  std::vector<std::vector<at::Tensor>> states_;
  std::vector<at::Tensor> floatParams_;
  std::vector<std::vector<at::Tensor>> floatStates_;
  /// The states as made, on the meta device (dtype and shape, no data).
  std::vector<std::vector<at::Tensor>> layout_, floatLayout_;
  int64_t step_ = 0;
  uint64_t seed_;
  /// Where the parameters are stepped now (LibTorch's current stream).
  StepTarget target() const;

  /// Stepped already in the step in progress (stepParameter), and the
  /// statistics of the step in progress.
  std::vector<bool> stepped_;
  std::vector<StepStatsList::Slot> pendingStats_;
};

} // namespace dqt::optim

#endif // DQT_RUNTIME_STEPOPTIMIZER_H
