//===- Trainer.h - the training run of dqt-train ----------------*- C++ -*-===//

#ifndef DQT_TRAIN_TRAINER_H
#define DQT_TRAIN_TRAINER_H

#include "Distributed.h"
#include "Model.h"

#include <cstdint>
#include <string>

namespace dqt::train {

/// Everything a run is configured with (dqt-train's command line).
struct TrainOptions {
  std::string preset = "small";
  std::string method = "dqt"; ///< fp32 | bitnet | dqt
  double bits = 8;            ///< dqt: 1.58 (ternary) or 2..8
  bool ternaryInference = false;
  std::string optimizer = "adamw"; ///< dqt: adamw | adafactor
  std::string quantize = "linear"; ///< linear | all
  bool packed = false;             ///< dqt ternary: 4 weights per byte
  std::string scale = "tensor";    ///< dqt: tensor | row (delta per row)
  std::string scaleRule = "maxq";  ///< dqt: maxq (the paper's) | absmax
  std::string stateDtype = "f32";  ///< dqt: f32 | bf16 (stochastic rounding)
  std::string precision = "fp32";  ///< fp32 | bf16 | fp8 (Precision.h)
  int64_t steps = 0;
  std::string dataDir;
  std::string out;
  bool resume = false;
  double lr = 5e-4;
  int64_t warmup = -1; ///< -1: 10% of the steps, at most 100
  double weightDecay = 0.01;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-6;
  uint64_t seed = 42;
  int64_t seqLen = 0, batch = 0; ///< 0: the preset's
  int64_t dim = 0, ffn = 0, layers = 0, heads = 0; ///< 0: the preset's
  bool tieEmbeddings = false;    ///< LM head = token embedding (llama.cpp)
  int vocab = 0;                 ///< 0: the preset's
  std::string tokenizer;         ///< default OUT/tokenizer.model
  bool byteFallback = false;     ///< tokenizer with byte pieces (llama.cpp)
  int64_t saveEvery = 0;         ///< 0: only at the end
  int64_t logEvery = 10;
  int64_t evalTokens = 65536;
  /// Also write the evaluation windows and their logits there (tests of
  /// the exported models: docs/design.md, "Export").
  std::string dumpEval;
  int threads = 0; ///< 0: ATen's default
  std::string device = "cpu"; ///< cpu | cuda | cuda:N
  bool stepInBackward = true;
  int64_t stopAfter = 0; ///< stop after this step (simulated interruption)
  bool memoryOnly = false;
  /// Data parallel (Distributed.h): processes `--nproc` starts (1: none).
  int nproc = 1;
  /// Compare the replicas' state hashes every N steps (0: only after
  /// starting, before each checkpoint and at the end). Not every step by
  /// default: hashing the state (SHA-256) costs about a fifth of a `small`
  /// step on one thread.
  int64_t verifyEvery = 10;
  double distTimeout = 300; ///< seconds: rendezvous and each collective

  /// Throws c10::Error naming the first invalid option, for a run of
  /// `world` processes.
  void validate(int world = 1) const;
  MethodConfig methodConfig() const;
  ModelShape shape() const;
};

/// Persistent training state in bytes: weights, gradients that live until
/// the optimizer step, optimizer states (docs/results.md defines it).
struct MemoryAccount {
  int64_t params = 0, quantizedParams = 0, bytes = 0;
  double perParam() const { return params ? double(bytes) / params : 0; }
};
MemoryAccount accountMemory(Model &model, const TrainOptions &opts);

/// Runs training (or, with memoryOnly, builds the model and prints its
/// accounting). Returns the process exit code. With `dist` (more than one
/// process), this process is one replica: it trains on its slice of every
/// batch, all-reduces the gradients and checks the replicas' hashes; rank 0
/// alone writes the log, the checkpoints and the summary.
int run(const TrainOptions &opts, const std::optional<DistEnv> &dist = {});

} // namespace dqt::train

#endif // DQT_TRAIN_TRAINER_H
