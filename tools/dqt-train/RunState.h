//===- RunState.h - what a dqt-train run saves and resumes ------*- C++ -*-===//
//
// A checkpoint is a directory OUT/checkpoints/step-NNNNNNN holding two files
// in the runtime's format (dqt::checkpoint: safetensors + per-tensor
// checksums): `dqt-optimizer.safetensors` (integer weights, deltas, DQT
// optimizer states: StepOptimizer::save) and `model.safetensors` (float
// parameters, their AdamW states, the run's configuration and step). The
// directory is written under a temporary name and renamed, so a checkpoint
// is either complete or absent.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_TRAIN_RUNSTATE_H
#define DQT_TRAIN_RUNSTATE_H

#include "Model.h"
#include "Trainer.h"

#include "dqt/Runtime/StepOptimizer.h"

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

namespace dqt::train {

/// The optimizer of the integer weights: DQT AdamW or Adafactor
/// (`opts.optimizer`).
std::unique_ptr<optim::StepOptimizer>
makeIntegerOptimizer(std::vector<QuantizedWeight *> params,
                     const TrainOptions &opts);

/// The model's weights split by storage, and their optimizers.
struct RunState {
  RunState(Model &model, const TrainOptions &opts);
  Model &model;
  std::vector<Weight *> floatWeights, quantizedWeights, fp8Weights;
  std::unique_ptr<optim::StepOptimizer> dqt;   ///< integer weights
  std::unique_ptr<torch::optim::AdamW> floats; ///< float parameters
  std::unique_ptr<Fp8AdamW> fp8;               ///< FP8 GEMM weights
  void setLr(double lr);
};

/// Settings that must match for a resume (everything but the step count).
using RunConfig = std::map<std::string, std::string>;

/// Saves step `step` under `out`/checkpoints; returns the directory.
std::string saveCheckpoint(const std::string &out, int64_t step,
                           RunState &state, const RunConfig &config);
/// The newest complete checkpoint directory under `out`, or "".
std::string newestCheckpoint(const std::string &out);
/// Restores `dir` into `state` and returns its step. Validates everything
/// (files, checksums, configuration, names, shapes, dtypes) before changing
/// anything; throws c10::Error with the reason and leaves the files and the
/// state untouched.
int64_t loadCheckpoint(const std::string &dir, RunState &state,
                       const RunConfig &config);
/// SHA-256 (hex) of every weight and optimizer state, in model order.
std::string stateSha256(RunState &state);

} // namespace dqt::train

#endif // DQT_TRAIN_RUNSTATE_H
