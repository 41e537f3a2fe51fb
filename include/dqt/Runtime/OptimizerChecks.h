//===- OptimizerChecks.h - input checks of the DQT optimizers --*- C++ -*-===//
//
// Made by StepOptimizer and by the optimizers' option checks: each throws
// c10::Error naming the optimizer `name` and the offending argument, before
// anything changes.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_OPTIMIZERCHECKS_H
#define DQT_RUNTIME_OPTIMIZERCHECKS_H

#include "dqt/Runtime/QuantizedWeight.h"

#include <ATen/ATen.h>

#include <vector>

namespace dqt::optim {

/// The learning rate is finite and >= 0.
void checkLr(const char *name, double lr);

/// `beta` (a moment's decay, named `which`) is in [0, 1).
void checkBeta(const char *name, const char *which, double beta);

/// Each parameter non-null, non-empty, contiguous, on the CPU or a CUDA
/// device, all on the same one (none at all is allowed: an optimizer of
/// float parameters only).
void checkParameters(const char *name,
                     const std::vector<QuantizedWeight *> &params);

/// One id per parameter, each in [0, 2^32) (the Philox counter holds 32
/// bits), no id twice.
void checkTensorIds(const char *name, const std::vector<int64_t> &ids,
                    size_t numParams);

/// Parameter `p` has a gradient of its shape, f32, contiguous, on its
/// device (the kernels read it raw).
void checkGradient(const char *name, QuantizedWeight &weight, size_t p);

/// The index of `weight` among `params` for stepping it inside the backward
/// pass: it must be one of them, not stepped yet in this step (`stepped`)
/// and have a valid gradient.
size_t checkStepParameter(const char *name,
                          const std::vector<QuantizedWeight *> &params,
                          const std::vector<bool> &stepped,
                          QuantizedWeight &weight);

/// The parameters a step() still has to step: not in `stepped` and with a
/// gradient (one without is skipped, as torch.optim skips it); each
/// gradient checked.
std::vector<size_t> checkUnstepped(const char *name,
                                   const std::vector<QuantizedWeight *> &params,
                                   const std::vector<bool> &stepped);

/// Non-quantized parameters to add to `existing`: only before the first
/// step (step count `step` 0, no parameter `stepped` in the backward pass);
/// each a defined, non-empty, contiguous f32 tensor on `device` (the
/// quantized weights'), none given twice (here or before).
void checkFloatParameters(const char *name, int64_t step,
                          const std::vector<bool> &stepped,
                          const std::vector<at::Tensor> &existing,
                          const std::vector<at::Tensor> &params,
                          at::Device device);

/// The float parameters with a gradient (the others are skipped), each an
/// f32 gradient of its shape, contiguous, on its device (the float-mode
/// kernels read it raw).
std::vector<size_t> checkFloatGradients(const char *name,
                         const std::vector<at::Tensor> &params);

/// `states` has the layout of `live`: as many parameters and states, each
/// defined with the live tensor's dtype and shape.
void checkStatesLike(const char *name,
                     const std::vector<std::vector<at::Tensor>> &states,
                     const std::vector<std::vector<at::Tensor>> &live);

} // namespace dqt::optim

#endif // DQT_RUNTIME_OPTIMIZERCHECKS_H
