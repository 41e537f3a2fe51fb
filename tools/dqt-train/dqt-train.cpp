//===- dqt-train.cpp - train LLaMA-structured models with integer weights -===//
//
//   dqt-train --preset small --method dqt --bits 8 --steps 400 \
//             --data-dir ../shared/data --out runs/dqt-8 [--resume] [--nproc N]
//
// Writes OUT/log.csv, OUT/summary.json and checkpoints under
// OUT/checkpoints (see docs/results.md).
//
//===----------------------------------------------------------------------===//

#include "Trainer.h"

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include <iostream>

int main(int argc, char **argv) {
  dqt::train::TrainOptions o;
  CLI::App app{"dqt-train: train a LLaMA-structured language model whose "
               "weights are only ever n-bit integers (Direct Quantized "
               "Training), or the fp32 / BitNet b1.58 baselines."};
  app.get_formatter()->column_width(34);
  app.add_option("--preset", o.preset,
                 "Model shape: tiny (<1M params, tests), small (~4M, the "
                 "reporting configuration), 130m, 320m, 1b (the paper's "
                 "shapes; use with --memory-only here)")
      ->capture_default_str();
  app.add_option("--method", o.method,
                 "fp32 (float AdamW), bitnet (b1.58: float master weights, "
                 "absmean ternary forward with STE, 8-bit activations) or dqt "
                 "(integer weights only, stochastic rounding)")
      ->capture_default_str();
  app.add_option("--bits", o.bits,
                 "dqt weight bits: 1.58 (ternary) or 2..8")
      ->capture_default_str();
  app.add_flag("--ternary-inference", o.ternaryInference,
               "dqt: forward with absmean-ternarized q*delta (STE), update "
               "the n-bit integers");
  app.add_option("--optimizer", o.optimizer,
                 "dqt integer weights: adamw or adafactor (factored second "
                 "moment, no first moment; float parameters always use "
                 "AdamW)")
      ->capture_default_str();
  app.add_option("--quantize", o.quantize,
                 "dqt: linear (the decoder's projections) or all (also "
                 "embeddings, head and norm gains, as the official code)")
      ->capture_default_str();
  app.add_flag("--packed-ternary", o.packed,
               "dqt --bits 1.58: store the weights packed, 4 per byte");
  app.add_option("--scale", o.scale,
                 "dqt: one delta per tensor, or per output row (row; weights "
                 "of 2 or more dimensions, norm gains keep one per tensor)")
      ->capture_default_str();
  app.add_option("--scale-rule", o.scaleRule,
                 "dqt --bits 2..8: how each step picks the next delta: maxq "
                 "(the paper's, max(q)*delta/Qp: the grid only shrinks) or "
                 "absmax (max|w| before clamping / Qp: it can grow; "
                 "docs/numerics.md, \"Scale rules\")")
      ->capture_default_str();
  app.add_option("--precision", o.precision,
                 "Training environment: fp32; bf16 (autocast: activations, "
                 "matmuls and their gradients in bf16); fp8 (MS-AMP O2, "
                 "simulated: float GEMM weights, gradients and AdamW states "
                 "in FP8/f16 with per-tensor scales). DQT's integer weights "
                 "and kernel are the same in all (docs/numerics.md, "
                 "\"Precision environments\")")
      ->capture_default_str();
  app.add_option("--state-dtype", o.stateDtype,
                 "dqt optimizer state dtype: f32 or bf16 (written with "
                 "stochastic rounding)")
      ->capture_default_str();
  app.add_option("--steps", o.steps, "Total number of training steps");
  app.add_option("--data-dir", o.dataDir,
                 "Directory laid out as shared/data (train: gutenberg/big.txt "
                 "+ tinyshakespeare/input.txt + wikitext-2/valid.txt; eval: "
                 "wikitext-2/test.txt)");
  app.add_option("--out", o.out,
                 "Run directory: log.csv, summary.json, checkpoints/, "
                 "tokenizer.model");
  app.add_flag("--resume", o.resume,
               "Continue from the newest checkpoint in OUT (bit-exact)");
  app.add_option("--lr", o.lr, "Peak learning rate (cosine decay to 0)")
      ->capture_default_str();
  app.add_option("--warmup", o.warmup,
                 "Linear warmup steps (-1: 10% of the steps, at most 100)")
      ->capture_default_str();
  app.add_option("--weight-decay", o.weightDecay, "Decoupled weight decay")
      ->capture_default_str();
  app.add_option("--beta1", o.beta1)->capture_default_str();
  app.add_option("--beta2", o.beta2)->capture_default_str();
  app.add_option("--eps", o.eps)->capture_default_str();
  app.add_option("--seed", o.seed,
                 "Seed of initialization, data order and stochastic rounding")
      ->capture_default_str();
  app.add_option("--seq-len", o.seqLen, "Tokens per sequence (0: preset's)")
      ->capture_default_str();
  app.add_option("--batch", o.batch, "Sequences per step (0: preset's)")
      ->capture_default_str();
  app.add_option("--dim", o.dim, "Model width (0: preset's)")
      ->capture_default_str();
  app.add_option("--ffn", o.ffn, "MLP width (0: preset's)")
      ->capture_default_str();
  app.add_option("--layers", o.layers, "Decoder layers (0: preset's)")
      ->capture_default_str();
  app.add_option("--heads", o.heads, "Attention heads (0: preset's)")
      ->capture_default_str();
  app.add_flag("--tie-embeddings", o.tieEmbeddings,
               "LM head = token embedding (no lm_head weight), as llama.cpp's "
               "bitnet architecture computes it (needed for GGUF export)");
  app.add_option("--vocab", o.vocab,
                 "Tokenizer pieces to train (0: preset's)")
      ->capture_default_str();
  app.add_option("--tokenizer", o.tokenizer,
                 "SentencePiece model to use, trained there when missing "
                 "(default OUT/tokenizer.model)");
  app.add_option("--save-every", o.saveEvery,
                 "Checkpoint every N steps (0: only at the end)")
      ->capture_default_str();
  app.add_option("--log-every", o.logEvery,
                 "Progress line every N steps when not on a terminal")
      ->capture_default_str();
  app.add_flag("--byte-fallback", o.byteFallback,
               "Train the tokenizer with SentencePiece's 256 byte pieces for "
               "characters outside its vocabulary (llama.cpp's tokenizer "
               "needs them to take any text)");
  app.add_option("--eval-tokens", o.evalTokens,
                 "WikiText-2 test tokens evaluated at the end")
      ->capture_default_str();
  app.add_option("--device", o.device,
                 "cpu (default), cuda or cuda:N: where the model, the "
                 "batches and the optimizer steps run");
  app.add_option("--dump-eval", o.dumpEval,
                 "Also write the evaluation windows and their logits to this "
                 "file (safetensors; for checking exported models)");
  app.add_option("--threads", o.threads, "CPU threads (0: ATen's default)")
      ->capture_default_str();
  app.add_option("--step-in-backward", o.stepInBackward,
                 "dqt: step each integer weight inside the backward pass and "
                 "free its gradient at once (lowest memory)")
      ->capture_default_str();
  app.add_option("--stop-after", o.stopAfter,
                 "Stop (with a checkpoint) after this step, as if "
                 "interrupted; the schedule still spans --steps")
      ->capture_default_str();
  app.add_option("--nproc", o.nproc,
                 "Data parallel: run N processes on this machine (Gloo over "
                 "loopback), each on batch/N sequences of every step; under "
                 "torchrun (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set) "
                 "the process joins that group instead")
      ->capture_default_str();
  app.add_option("--verify-every", o.verifyEvery,
                 "--nproc: compare the replicas' state hashes every N steps "
                 "(0: only at the start, before checkpoints and at the end)")
      ->capture_default_str();
  app.add_option("--dist-timeout", o.distTimeout,
                 "--nproc: seconds the rendezvous and each collective may "
                 "wait for the other processes")
      ->capture_default_str();
  app.add_flag("--memory-only", o.memoryOnly,
               "Build the model and print its training-state accounting "
               "(JSON) without data or training");
  CLI11_PARSE(app, argc, argv);
  try {
    // torchrun (or --nproc's launcher, which re-runs this command line in
    // each rank) describes the group in the environment.
    std::optional<dqt::train::DistEnv> dist =
        o.memoryOnly ? std::nullopt : dqt::train::distEnvFromEnvironment();
    int world = dist ? dist->world : o.memoryOnly ? 1 : o.nproc;
    TORCH_CHECK(!dist || app.count("--nproc") == 0 || o.nproc == dist->world,
                "dqt-train: --nproc ", o.nproc, " but WORLD_SIZE is ",
                dist->world);
    // The integer weights step after the all-reduce, not inside the
    // backward pass (validate() refuses an explicit request).
    if (world > 1 && app.count("--step-in-backward") == 0)
      o.stepInBackward = false;
    if (!dist && world > 1) {
      // Checked once here rather than by each rank.
      o.validate(world);
      return dqt::train::launchRanks(world, argc, argv);
    }
    return dqt::train::run(o, dist);
  } catch (const c10::Error &e) {
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
  } catch (const std::exception &e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  return 1;
}
