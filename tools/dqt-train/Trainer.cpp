//===- Trainer.cpp - the training run of dqt-train ------------------------===//

#include "Trainer.h"

#include "dqt/Runtime/TorchCuda.h"

#include "Data.h"
#include "RunState.h"

#include "dqt/Runtime/Checkpoint.h"

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>

namespace fs = std::filesystem;

namespace dqt::train {

void TrainOptions::validate(int world) const {
  dqt::train::preset(preset); // throws on an unknown name
  TORCH_CHECK(method == "fp32" || method == "bitnet" || method == "dqt",
              "dqt-train: --method must be fp32, bitnet or dqt, got '", method,
              "'");
  if (method == "dqt")
    Grid::fromBits(bits, "dqt-train: --bits");
  TORCH_CHECK(!packed || (method == "dqt" && bits > 1 && bits < 2),
              "dqt-train: --packed-ternary needs --method dqt --bits 1.58");
  TORCH_CHECK(scale == "tensor" || scale == "row",
              "dqt-train: --scale must be tensor or row, got '", scale, "'");
  TORCH_CHECK(scale == "tensor" || method == "dqt",
              "dqt-train: --scale row needs --method dqt");
  ScaleRule rule = ScaleRule::MaxQ;
  try {
    rule = scaleRuleFromName(scaleRule);
  } catch (const std::invalid_argument &) {
    TORCH_CHECK(false, "dqt-train: --scale-rule must be maxq or absmax, got '",
                scaleRule, "'");
  }
  TORCH_CHECK(rule == ScaleRule::MaxQ || (method == "dqt" && bits >= 2),
              "dqt-train: --scale-rule absmax needs --method dqt with --bits "
              "2..8 (ternary weights keep the paper's rule)");
  TORCH_CHECK(!ternaryInference || method == "dqt",
              "dqt-train: --ternary-inference needs --method dqt");
  TORCH_CHECK(optimizer == "adamw" || optimizer == "adafactor",
              "dqt-train: --optimizer must be adamw or adafactor, got '",
              optimizer, "'");
  TORCH_CHECK(optimizer == "adamw" || method == "dqt",
              "dqt-train: --optimizer adafactor needs --method dqt (the float "
              "baselines use AdamW)");
  TORCH_CHECK(optimizer == "adamw" || stateDtype == "f32",
              "dqt-train: --optimizer adafactor keeps f32 states");
  TORCH_CHECK(quantize == "linear" || quantize == "all",
              "dqt-train: --quantize must be linear or all, got '", quantize,
              "'");
  TORCH_CHECK(stateDtype == "f32" || stateDtype == "bf16",
              "dqt-train: --state-dtype must be f32 or bf16, got '",
              stateDtype, "'");
  TORCH_CHECK(stateDtype == "f32" || method == "dqt",
              "dqt-train: --state-dtype bf16 needs --method dqt (the float "
              "baselines keep torch's f32 AdamW states)");
  Precision env = precisionFromName(precision, "dqt-train: --precision");
  TORCH_CHECK(env != Precision::Fp8 || quantize == "linear",
              "dqt-train: --precision fp8 needs --quantize linear (FP8 "
              "covers the float GEMM weights; quantized embeddings and norms "
              "have no FP8 form)");
  TORCH_CHECK(dim >= 0 && ffn >= 0 && layers >= 0 && heads >= 0,
              "dqt-train: --dim, --ffn, --layers and --heads must be >= 0");
  ModelShape s = shape();
  TORCH_CHECK(s.dim > 0 && s.ffn > 0 && s.layers > 0 && s.heads > 0 &&
                  s.dim % s.heads == 0 && (s.dim / s.heads) % 2 == 0,
              "dqt-train: --dim ", s.dim, " must split into --heads ", s.heads,
              " heads of even size");
  if (memoryOnly)
    return;
  TORCH_CHECK(steps > 0, "dqt-train: --steps must be > 0, got ", steps);
  TORCH_CHECK(!dataDir.empty(), "dqt-train: --data-dir is required");
  checkDataDir(dataDir);
  TORCH_CHECK(!out.empty(), "dqt-train: --out is required");
  TORCH_CHECK(std::isfinite(lr) && lr >= 0, "dqt-train: --lr must be >= 0");
  TORCH_CHECK(seqLen >= 0 && batch >= 0 && vocab >= 0 && saveEvery >= 0 &&
                  logEvery > 0 && evalTokens > 0 && stopAfter >= 0 &&
                  verifyEvery >= 0,
              "dqt-train: sizes and intervals must be positive");
  TORCH_CHECK(nproc >= 1, "dqt-train: --nproc must be >= 1, got ", nproc);
  TORCH_CHECK(std::isfinite(distTimeout) && distTimeout > 0,
              "dqt-train: --dist-timeout must be > 0 seconds");
  if (world == 1)
    return;
  TORCH_CHECK(s.batch % world == 0, "dqt-train: --batch ", s.batch,
              " (the global batch) does not split over ", world,
              " processes: use a multiple of ", world);
  TORCH_CHECK(device == "cpu",
              "dqt-train: --nproc runs on the CPU (Gloo); --device ", device,
              " is not supported with it");
  TORCH_CHECK(env != Precision::Fp8,
              "dqt-train: --precision fp8 is not supported with --nproc (its "
              "gradients are FP8 with per-tensor scales; the all-reduce "
              "handles f32 gradients)");
  // The hook would step each weight on the local gradient, before the
  // all-reduce (as dqt.distributed refuses step_in_backward()).
  TORCH_CHECK(!stepInBackward,
              "dqt-train: --step-in-backward true is not possible with "
              "--nproc: the integer weights step after the gradient "
              "all-reduce");
}

MethodConfig TrainOptions::methodConfig() const {
  MethodConfig m;
  m.method = method == "fp32"     ? Method::Fp32
             : method == "bitnet" ? Method::BitNet
                                  : Method::Dqt;
  if (m.method == Method::Dqt)
    m.grid = Grid::fromBits(bits, "dqt-train: --bits");
  m.ternaryInference = ternaryInference;
  m.quantizeAll = m.method == Method::Dqt && quantize == "all";
  m.packed = packed;
  m.rowScale = m.method == Method::Dqt && scale == "row";
  if (m.method == Method::Dqt)
    m.rule = scaleRuleFromName(scaleRule);
  m.precision = precisionFromName(precision, "dqt-train: --precision");
  return m;
}

ModelShape TrainOptions::shape() const {
  ModelShape s = dqt::train::preset(preset);
  if (seqLen)
    s.seqLen = seqLen;
  if (batch)
    s.batch = batch;
  if (vocab)
    s.vocab = vocab;
  if (dim)
    s.dim = dim;
  if (ffn)
    s.ffn = ffn;
  if (layers)
    s.layers = layers;
  if (heads)
    s.heads = heads;
  s.tiedEmbeddings = tieEmbeddings;
  return s;
}

MemoryAccount accountMemory(Model &model, const TrainOptions &opts) {
  MemoryAccount a;
  for (Weight *w : model.weights()) {
    int64_t n = w->numel();
    a.params += n;
    if (w->isFp8()) {
      // e4m3 weight, e5m2 gradient, f16 master copy, e4m3 m, f16 v (MS-AMP
      // O2), and six f32 scales.
      a.bytes += 7 * n + 6 * 4;
    } else if (w->quantized()) {
      QuantizedWeight &q = w->quantizedWeight();
      a.quantizedParams += n;
      a.bytes += q.persistentBytes();
      if (opts.optimizer == "adafactor") {
        // Factored r [rows] and c [cols] for matrices, v otherwise (beta1 0:
        // no first moment); the gradient lives until the step unless it is
        // taken inside the backward pass.
        auto sizes = q.sizes();
        a.bytes += sizes.size() == 2 ? 4 * (sizes[0] + sizes[1]) : 4 * n;
        if (!opts.stepInBackward)
          a.bytes += 4 * n;
        continue;
      }
      // m and v (f32 or bf16); the gradient only lives until the step
      // unless it is taken inside the backward pass.
      int64_t stateBytes = opts.stateDtype == "bf16" ? 2 : 4;
      a.bytes += 2 * stateBytes * n;
      if (!opts.stepInBackward)
        a.bytes += 4 * n;
    } else {
      a.bytes += 16 * n; // f32 weight, gradient, m, v (in every environment)
    }
  }
  return a;
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

int64_t peakRssBytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return int64_t(u.ru_maxrss) * 1024;
}

/// Linear warmup, then cosine decay to 0 (HuggingFace's
/// get_cosine_schedule_with_warmup). `step` is 0-based.
double scheduledLr(const TrainOptions &o, int64_t warmup, int64_t step) {
  if (step < warmup)
    return o.lr * double(step + 1) / double(warmup);
  double progress = double(step - warmup) / double(std::max<int64_t>(1, o.steps - warmup));
  return o.lr * 0.5 * (1.0 + std::cos(M_PI * std::min(progress, 1.0)));
}

std::string formatDuration(double s) {
  char buf[32];
  int64_t t = int64_t(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", (long long)t / 3600,
                  (long long)(t % 3600) / 60);
  else
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", (long long)t / 60,
                  (long long)t % 60);
  return buf;
}

/// Mean cross-entropy (nats per token) of the model on `windows`.
double evaluate(Model &model, const at::Tensor &windows, int64_t batch) {
  torch::NoGradGuard noGrad;
  double sum = 0;
  int64_t count = 0;
  int64_t T = windows.size(1) - 1;
  for (int64_t i = 0; i < windows.size(0); i += batch) {
    at::Tensor w = windows.narrow(0, i, std::min(batch, windows.size(0) - i))
                       .to(model.device());
    at::Tensor logits = model.forward(w.narrow(1, 0, T));
    at::Tensor loss = at::cross_entropy_loss(
        logits.reshape({-1, logits.size(-1)}), w.narrow(1, 1, T).reshape(-1),
        {}, at::Reduction::Sum);
    sum += loss.item<double>();
    count += w.size(0) * T;
  }
  return sum / double(count);
}

/// The dtypes of the tensors a training step really holds, read off the live
/// tensors after a backward pass (before the optimizers step).
nlohmann::json liveDtypes(RunState &state) {
  auto name = [](const at::Tensor &t) {
    return std::string(c10::toString(t.scalar_type()));
  };
  nlohmann::json j;
  j["activations"] = c10::toString(state.model.activationDtype());
  if (!state.floatWeights.empty()) {
    Weight *w = state.floatWeights.front();
    j["float_weights"] = name(w->parameter());
    if (w->parameter().grad().defined())
      j["float_grads"] = name(w->parameter().grad());
  }
  if (!state.quantizedWeights.empty()) {
    QuantizedWeight &q = state.quantizedWeights.front()->quantizedWeight();
    j["integer_weights"] = name(q.q());
    if (state.dqt && state.dqt->numParams() && state.dqt->numStates(0))
      j["integer_states"] = name(state.dqt->state(0, 0));
  }
  if (!state.fp8Weights.empty()) {
    Fp8Weight &f = state.fp8Weights.front()->fp8();
    j["fp8_weights"] = name(f.weight.data);
    if (f.grad.defined())
      j["fp8_grads"] = name(f.grad.data);
    j["fp8_master"] = name(f.master.data);
    j["fp8_exp_avg"] = name(f.m.data);
    j["fp8_exp_avg_sq"] = name(f.v.data);
  }
  return j;
}

/// The settings a resumed run must share with the checkpoint.
RunConfig runConfig(const TrainOptions &o, const ModelShape &s) {
  auto num = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%a", v); // exact
    return std::string(buf);
  };
  RunConfig c = {{"run.preset", o.preset},
                 {"run.method", o.methodConfig().label()},
                 {"run.optimizer", o.optimizer},
                 {"run.state_dtype", o.stateDtype},
                 {"run.shape",
                  std::to_string(s.dim) + "/" + std::to_string(s.ffn) + "/" +
                      std::to_string(s.layers) + "/" + std::to_string(s.heads) +
                      "/" + std::to_string(s.vocab)},
                 {"run.seq_len", std::to_string(s.seqLen)},
                 {"run.batch", std::to_string(s.batch)},
                 {"run.seed", std::to_string(o.seed)},
                 {"run.lr", num(o.lr)},
                 {"run.weight_decay", num(o.weightDecay)},
                 {"run.betas", num(o.beta1) + "," + num(o.beta2)},
                 {"run.eps", num(o.eps)}};
  // Only when set: checkpoints of untied fp32 runs stay as they were.
  if (s.tiedEmbeddings)
    c["run.tie_embeddings"] = "1";
  if (o.precision != "fp32")
    c["run.precision"] = o.precision;
  return c;
}

/// Writes the evaluation windows ("tokens" [n, T+1] int64) and the model's
/// logits on them ("logits" [n, T, vocab] f32, the forward pass that gave
/// eval_loss) to `path`, in the checkpoint format.
void dumpEval(Model &model, const at::Tensor &windows, int64_t batch,
              double evalLoss, const std::string &path) {
  torch::NoGradGuard noGrad;
  int64_t T = windows.size(1) - 1;
  std::vector<at::Tensor> parts;
  for (int64_t i = 0; i < windows.size(0); i += batch) {
    at::Tensor w = windows.narrow(0, i, std::min(batch, windows.size(0) - i));
    parts.push_back(
        model.forward(w.narrow(1, 0, T).to(model.device())).cpu().contiguous());
  }
  checkpoint::Contents c;
  c.tensors.emplace_back("tokens", windows.contiguous());
  c.tensors.emplace_back("logits", at::cat(parts, 0));
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", evalLoss);
  c.metadata["eval_loss"] = buf;
  checkpoint::save(path, c);
}

/// One row of log.csv.
struct LogRow {
  int64_t step;
  double loss, lr, tokensPerS;
  double changedFraction; ///< NaN when no weight is quantized
  int64_t nonFinite;
};

/// Keeps the rows of an existing log.csv up to `step` (a resumed run
/// rewrites what came after its checkpoint).
std::vector<std::string> keptLogLines(const fs::path &path, int64_t step,
                                      double *initialLoss) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (header) {
      header = false;
      continue;
    }
    int64_t s = std::stoll(line.substr(0, line.find(',')));
    if (s > step)
      break;
    if (lines.empty() && initialLoss) {
      size_t a = line.find(',') + 1;
      *initialLoss = std::stod(line.substr(a, line.find(',', a) - a));
    }
    lines.push_back(line);
  }
  return lines;
}

/// The first 64 bits of the state's SHA-256: what the replicas compare.
uint64_t stateHash64(RunState &state) {
  return std::stoull(stateSha256(state).substr(0, 16), nullptr, 16);
}

/// The gradients a data-parallel step all-reduces (f32), in model order.
/// Every replica has the same model, so the same list.
std::vector<at::Tensor> gradients(RunState &state) {
  std::vector<at::Tensor> g;
  for (Weight *w : state.model.weights()) {
    if (w->quantized()) {
      QuantizedWeight &q = w->quantizedWeight();
      if (q.hasGrad())
        g.push_back(q.grad());
    } else if (!w->isFp8() && w->parameter().grad().defined()) {
      g.push_back(w->parameter().grad());
    }
  }
  return g;
}

/// A test-only fault "RANK:STEP" from the environment variable `name`: the
/// data-parallel tests use it to kill a rank or to make replicas differ at
/// a known step (docs/design.md, "Data parallel").
std::optional<std::pair<int, int64_t>> testFault(const char *name) {
  const char *v = std::getenv(name);
  if (!v || !*v)
    return std::nullopt;
  int rank = 0;
  long long step = 0;
  TORCH_CHECK(std::sscanf(v, "%d:%lld", &rank, &step) == 2, "dqt-train: ", name,
              " must be RANK:STEP, got '", v, "'");
  return std::make_pair(rank, int64_t(step));
}

} // namespace

int run(const TrainOptions &opts, const std::optional<DistEnv> &dist) {
  int world = dist ? dist->world : 1;
  opts.validate(world);
  if (opts.threads > 0)
    at::set_num_threads(opts.threads);
  else if (world > 1)
    // ATen's default is every core, for each of the processes.
    at::set_num_threads(
        std::max(1, int(std::thread::hardware_concurrency()) / world));
  ModelShape shape = opts.shape();
  MethodConfig method = opts.methodConfig();

  if (opts.memoryOnly) {
    Model model(shape, method, opts.seed);
    MemoryAccount a = accountMemory(model, opts);
    nlohmann::json j = {{"preset", opts.preset},
                        {"method", method.label()},
                        {"precision", opts.precision},
                        {"params", a.params},
                        {"quantized_params", a.quantizedParams},
                        {"state_bytes", a.bytes},
                        {"state_bytes_per_param", a.perParam()},
                        {"peak_rss_bytes", peakRssBytes()}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  at::Device device = openDevice(opts.device, "dqt-train");
  std::unique_ptr<ProcessGroup> group;
  if (world > 1)
    group = std::make_unique<ProcessGroup>(
        *dist, std::chrono::milliseconds(int64_t(opts.distTimeout * 1000)));
  int rank = group ? group->rank() : 0;
  // Rank 0 alone prints progress and writes the log, the checkpoints and
  // the summary: the replicas are identical (checked by their hashes).
  bool lead = rank == 0;
  fs::create_directories(opts.out);
  auto t0 = Clock::now();
  // Data: tokenizer (shared when --tokenizer names an existing file), then
  // the train and eval token streams. With several processes rank 0 trains
  // a missing tokenizer while the others wait (for up to an hour: training
  // one on the full corpus takes minutes), then they load it.
  std::string tokPath = opts.tokenizer.empty()
                            ? (fs::path(opts.out) / "tokenizer.model").string()
                            : opts.tokenizer;
  std::optional<Tokenizer> tokHolder;
  if (lead)
    tokHolder.emplace(tokPath, opts.dataDir, int(shape.vocab),
                      opts.byteFallback);
  if (group)
    group->barrier(
        "waiting for rank 0's tokenizer",
        std::max(std::chrono::milliseconds(3600 * 1000),
                 std::chrono::milliseconds(int64_t(opts.distTimeout * 1000))));
  if (!lead)
    tokHolder.emplace(tokPath, opts.dataDir, int(shape.vocab),
                      opts.byteFallback);
  Tokenizer &tok = *tokHolder;
  shape.vocab = tok.size();
  std::vector<int32_t> trainTokens;
  for (const std::string &f : trainFiles()) {
    std::vector<int32_t> ids =
        tok.encodeFile((fs::path(opts.dataDir) / f).string());
    trainTokens.insert(trainTokens.end(), ids.begin(), ids.end());
  }
  Batches batches(std::move(trainTokens), shape.seqLen, shape.batch, opts.seed);
  at::Tensor evalSet = evalWindows(
      tok.encodeFile((fs::path(opts.dataDir) / evalFile()).string()),
      shape.seqLen, opts.evalTokens);
  if (lead)
    std::printf("dqt-train: %s, %s; tokenizer %s (%d pieces); %lld train "
                "tokens; data ready in %.1f s\n",
                opts.preset.c_str(), method.label().c_str(), tokPath.c_str(),
                tok.size(), (long long)batches.numTokens(),
                seconds(t0, Clock::now()));
  if (lead && group)
    std::printf("dqt-train: %d processes (Gloo), %lld sequences each of the "
                "global batch of %lld\n",
                world, (long long)(shape.batch / world),
                (long long)shape.batch);

  Model model(shape, method, opts.seed);
  model.to(device); // initialized on the CPU: the same weights on any device
  RunState state(model, opts);
  if (state.dqt && opts.stepInBackward)
    for (Weight *w : state.quantizedWeights)
      w->setStepInBackward(state.dqt.get());
  MemoryAccount memory = accountMemory(model, opts);
  RunConfig config = runConfig(opts, shape);

  int64_t start = 0;
  double initialLoss = NAN;
  fs::path logPath = fs::path(opts.out) / "log.csv";
  std::vector<std::string> kept;
  if (opts.resume) {
    std::string dir = newestCheckpoint(opts.out);
    TORCH_CHECK(!dir.empty(), "dqt-train: --resume: no checkpoint in ",
                (fs::path(opts.out) / "checkpoints").string());
    start = loadCheckpoint(dir, state, config);
    if (lead) {
      kept = keptLogLines(logPath, start, &initialLoss);
      std::printf("dqt-train: resumed from %s (step %lld)\n", dir.c_str(),
                  (long long)start);
    }
  }
  std::ofstream log;
  if (lead) {
    {
      std::ofstream fresh(logPath, std::ios::trunc);
      fresh << "step,loss,lr,tokens_per_s,changed_fraction,nonfinite\n";
      for (const std::string &l : kept)
        fresh << l << "\n";
    }
    log.open(logPath, std::ios::app);
  }

  // The replicas compare 64 bits of their state's SHA-256; a difference is
  // a bug (or a fault), never rounding: every replica steps on the same
  // all-reduced gradients with the same seed.
  int64_t replicaChecks = 0;
  auto verifyReplicas = [&](int64_t step) {
    if (!group)
      return;
    std::vector<uint64_t> h =
        group->allGather(stateHash64(state), "the replica check after step " +
                                                 std::to_string(step));
    ++replicaChecks;
    for (int r = 1; r < world; ++r) {
      if (h[r] == h[0])
        continue;
      std::string list;
      char buf[40];
      for (int k = 0; k < world; ++k) {
        std::snprintf(buf, sizeof(buf), "%s%d: %016llx", k ? ", " : "", k,
                      (unsigned long long)h[k]);
        list += buf;
      }
      TORCH_CHECK(false, "dqt-train: rank ", rank, " of ", world,
                  ": the replicas differ after step ", step,
                  " (state hashes by rank: ", list,
                  "); stopping without a checkpoint");
    }
  };
  // After initializing or resuming: also the barrier that keeps rank 0
  // from replacing a checkpoint the others may still be reading.
  verifyReplicas(start);
  auto killAt = testFault("DQT_TRAIN_TEST_KILL");
  auto hangAt = testFault("DQT_TRAIN_TEST_HANG");
  auto perturbAt = testFault("DQT_TRAIN_TEST_PERTURB");

  int64_t warmup = opts.warmup >= 0
                       ? opts.warmup
                       : std::min<int64_t>(100, std::max<int64_t>(1, opts.steps / 10));
  int64_t end = opts.stopAfter ? std::min(opts.stopAfter, opts.steps) : opts.steps;
  bool tty = ::isatty(::fileno(stdout));
  int64_t T = shape.seqLen, tokensPerStep = shape.batch * shape.seqLen;
  std::vector<double> recentLosses;
  double timedSeconds = 0;
  int64_t timedSteps = 0;
  nlohmann::json dtypes;
  auto trainStart = Clock::now();

  for (int64_t step = start; step < end; ++step) {
    auto s0 = Clock::now();
    double lr = scheduledLr(opts, warmup, step);
    state.setLr(lr);
    // Test-only: a rank dying, or hanging, mid-run.
    if (killAt && killAt->first == rank && killAt->second == step + 1)
      std::raise(SIGKILL);
    if (hangAt && hangAt->first == rank && hangAt->second == step + 1)
      for (;;)
        ::pause();
    at::Tensor batch = batches.get(step);
    if (group) // this rank's rows of the global batch
      batch =
          batch.narrow(0, rank * (shape.batch / world), shape.batch / world);
    batch = batch.to(device);
    at::Tensor logits = model.forward(batch.narrow(1, 0, T));
    at::Tensor loss = at::cross_entropy_loss(
        logits.reshape({-1, logits.size(-1)}),
        batch.narrow(1, 1, T).reshape(-1));
    loss.backward();
    if (step == start)
      dtypes = liveDtypes(state);
    LogRow row{step + 1, loss.item<double>(), lr, 0, NAN, 0};
    if (group) {
      // The mean of the ranks' gradients (each the mean over its equal
      // share of the batch's tokens) is the global batch's gradient, up to
      // rounding; the loss travels with them for the log.
      std::vector<at::Tensor> grads = gradients(state);
      at::Tensor meanLoss = loss.detach().to(at::kFloat).reshape({1}).clone();
      grads.push_back(meanLoss);
      group->allReduceMean(grads, "the gradient all-reduce of step " +
                                      std::to_string(step + 1));
      row.loss = meanLoss.item<double>();
    }
    if (state.dqt) {
      int64_t changed = 0;
      for (const StepStats &st : state.dqt->step()) {
        changed += st.changed;
        row.nonFinite += st.nonFinite;
      }
      for (Weight *w : state.quantizedWeights)
        w->quantizedWeight().clearGrad();
      row.changedFraction = double(changed) / double(memory.quantizedParams);
    }
    if (state.floats) {
      state.floats->step();
      state.floats->zero_grad();
    }
    if (state.fp8) {
      state.fp8->step();
      state.fp8->zeroGrad();
    }
    if (perturbAt && perturbAt->first == rank &&
        perturbAt->second == step + 1) {
      // Test-only: one replica's state changes behind the others' back.
      torch::NoGradGuard noGrad;
      at::Tensor t = state.dqt ? state.dqt->state(0, 0)
                               : state.floatWeights.front()->parameter();
      t.view(-1)[0].add_(1);
    }
    bool saving =
        opts.saveEvery && (step + 1) % opts.saveEvery == 0 && step + 1 != end;
    if (step + 1 == end || saving ||
        (opts.verifyEvery && (step + 1) % opts.verifyEvery == 0))
      verifyReplicas(step + 1);
    double dt = seconds(s0, Clock::now());
    row.tokensPerS = tokensPerStep / dt;
    // The first steps of a process include JIT compiles and allocator warm-up.
    if (step - start >= 2) {
      timedSeconds += dt;
      ++timedSteps;
    }
    if (std::isnan(initialLoss))
      initialLoss = row.loss;
    recentLosses.push_back(row.loss);

    if (!lead)
      continue;
    char changed[32] = "";
    if (!std::isnan(row.changedFraction))
      std::snprintf(changed, sizeof(changed), "%.6g", row.changedFraction);
    log << row.step << "," << row.loss << "," << row.lr << ","
        << row.tokensPerS << "," << changed << "," << row.nonFinite << "\n";
    log.flush();

    double elapsed = seconds(trainStart, Clock::now());
    double eta = elapsed / double(step + 1 - start) * double(end - step - 1);
    if (tty) {
      int width = 30, done = int(width * (step + 1) / end);
      std::printf("\r[%s%s] %lld/%lld loss %.4f %.0f tok/s ETA %s ",
                  std::string(done, '#').c_str(),
                  std::string(width - done, '.').c_str(),
                  (long long)(step + 1), (long long)end, row.loss,
                  row.tokensPerS, formatDuration(eta).c_str());
      std::fflush(stdout);
    } else if ((step + 1) % opts.logEvery == 0 || step + 1 == end) {
      std::printf("step %lld/%lld loss %.4f lr %.3g %.0f tok/s ETA %s\n",
                  (long long)(step + 1), (long long)end, row.loss, lr,
                  row.tokensPerS, formatDuration(eta).c_str());
      std::fflush(stdout);
    }
    if (saving)
      saveCheckpoint(opts.out, step + 1, state, config);
  }
  // The other replicas are rank 0's state, checked: only rank 0 saves and
  // evaluates.
  if (!lead)
    return 0;
  if (tty)
    std::printf("\n");
  std::string ckpt = saveCheckpoint(opts.out, end, state, config);
  double trainWall = seconds(trainStart, Clock::now());

  // Evaluation on WikiText-2 test (and, for n-bit DQT, with its weights
  // ternarized as in the ternary-inference variant).
  auto e0 = Clock::now();
  double evalLoss = evaluate(model, evalSet, shape.batch);
  if (!opts.dumpEval.empty())
    dumpEval(model, evalSet, shape.batch, evalLoss, opts.dumpEval);
  nlohmann::json summary;
  if (method.method == Method::Dqt && !method.ternaryInference) {
    for (Weight *w : state.quantizedWeights)
      w->setTernaryInference(true);
    double ternaryLoss = evaluate(model, evalSet, shape.batch);
    for (Weight *w : state.quantizedWeights)
      w->setTernaryInference(false);
    summary["eval_loss_ternary"] = ternaryLoss;
    summary["eval_ppl_ternary"] = std::exp(ternaryLoss);
  }
  double evalSeconds = seconds(e0, Clock::now());

  size_t window = std::min<size_t>(10, recentLosses.size());
  double finalLoss = 0;
  for (size_t i = recentLosses.size() - window; i < recentLosses.size(); ++i)
    finalLoss += recentLosses[i] / double(window);
  summary["label"] = method.label() +
                     (opts.stateDtype == "bf16" ? "-bf16" : "") +
                     (opts.optimizer == "adafactor" ? "-adafactor" : "") +
                     (opts.precision != "fp32" ? "-in-" + opts.precision : "");
  summary["preset"] = opts.preset;
  summary["method"] = opts.method;
  summary["bits"] = method.method == Method::Dqt ? opts.bits : 32.0;
  summary["quantize"] = opts.quantize;
  summary["state_dtype"] = opts.stateDtype;
  summary["precision"] = opts.precision;
  summary["dtypes"] = dtypes;
  summary["scale"] = opts.scale;
  summary["scale_rule"] = opts.scaleRule;
  summary["optimizer"] = opts.optimizer;
  summary["steps"] = end;
  summary["resumed_from"] = start;
  summary["seq_len"] = shape.seqLen;
  summary["batch"] = shape.batch;
  summary["vocab"] = shape.vocab;
  summary["shape"] = {{"dim", shape.dim},
                      {"ffn", shape.ffn},
                      {"layers", shape.layers},
                      {"heads", shape.heads},
                      {"tie_embeddings", shape.tiedEmbeddings}};
  summary["params"] = memory.params;
  summary["quantized_params"] = memory.quantizedParams;
  summary["initial_loss"] = initialLoss;
  summary["final_train_loss"] = finalLoss;
  summary["final_train_loss_window"] = window;
  summary["eval_loss"] = evalLoss;
  summary["eval_ppl"] = std::exp(evalLoss);
  summary["eval_tokens"] = evalSet.size(0) * T;
  summary["state_bytes"] = memory.bytes;
  summary["state_bytes_per_param"] = memory.perParam();
  summary["peak_rss_bytes"] = peakRssBytes();
  summary["tokens_per_s"] =
      timedSteps ? double(timedSteps * tokensPerStep) / timedSeconds : 0.0;
  summary["step_seconds"] = timedSteps ? timedSeconds / timedSteps : 0.0;
  summary["train_wall_s"] = trainWall;
  summary["eval_wall_s"] = evalSeconds;
  summary["threads"] = at::get_num_threads();
  summary["nproc"] = world;
  summary["replica_checks"] = replicaChecks;
  summary["state_sha256"] = stateSha256(state);
  summary["checkpoint"] = ckpt;
  {
    fs::path tmp = fs::path(opts.out) / "summary.json.tmp";
    std::ofstream(tmp) << summary.dump(2) << "\n";
    fs::rename(tmp, fs::path(opts.out) / "summary.json");
  }
  std::printf("dqt-train: %s: loss %.4f -> %.4f, eval ppl %.2f, %.2f "
              "B/param, %.0f tok/s; %s\n",
              method.label().c_str(), initialLoss, finalLoss,
              std::exp(evalLoss), memory.perParam(),
              summary["tokens_per_s"].get<double>(),
              (fs::path(opts.out) / "summary.json").c_str());
  return 0;
}

} // namespace dqt::train
