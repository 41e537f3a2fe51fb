//===- RunState.cpp - what a dqt-train run saves and resumes --------------===//

#include "RunState.h"

#include "dqt/Runtime/Adafactor.h"
#include "dqt/Runtime/Checkpoint.h"
#include "dqt/Runtime/Optimizers.h"

#include <c10/util/Exception.h>
#include <openssl/evp.h>

#include <cstdio>
#include <filesystem>

namespace fs = std::filesystem;

namespace dqt::train {

std::unique_ptr<optim::StepOptimizer>
makeIntegerOptimizer(std::vector<QuantizedWeight *> params,
                     const TrainOptions &o) {
  if (o.optimizer == "adafactor") {
    optim::AdafactorOptions a;
    a.lr = o.lr;
    a.weightDecay = o.weightDecay;
    a.seed = o.seed;
    return std::make_unique<optim::Adafactor>(std::move(params), a);
  }
  optim::AdamWOptions a;
  a.lr = o.lr;
  a.beta1 = o.beta1;
  a.beta2 = o.beta2;
  a.eps = o.eps;
  a.weightDecay = o.weightDecay;
  a.seed = o.seed;
  a.stateType = o.stateDtype == "bf16" ? StateType::BF16 : StateType::F32;
  return std::make_unique<optim::AdamW>(std::move(params), a);
}

RunState::RunState(Model &model, const TrainOptions &opts) : model(model) {
  std::vector<QuantizedWeight *> q;
  std::vector<at::Tensor> f;
  for (Weight *w : model.weights()) {
    if (w->isFp8()) {
      fp8Weights.push_back(w);
    } else if (w->quantized()) {
      quantizedWeights.push_back(w);
      q.push_back(&w->quantizedWeight());
    } else {
      floatWeights.push_back(w);
      f.push_back(w->parameter());
    }
  }
  if (!q.empty())
    dqt = makeIntegerOptimizer(q, opts);
  // Float parameters (embeddings, head, norms with --quantize linear; every
  // weight of fp32 and bitnet) use LibTorch's AdamW with the same
  // hyper-parameters, whatever --optimizer says.
  if (!f.empty())
    floats = std::make_unique<torch::optim::AdamW>(
        f, torch::optim::AdamWOptions(opts.lr)
               .betas({opts.beta1, opts.beta2})
               .eps(opts.eps)
               .weight_decay(opts.weightDecay));
  if (!fp8Weights.empty()) {
    fp8 = std::make_unique<Fp8AdamW>();
    for (Weight *w : fp8Weights)
      fp8->weights.push_back(&w->fp8());
    fp8->lr = opts.lr;
    fp8->beta1 = opts.beta1;
    fp8->beta2 = opts.beta2;
    fp8->eps = opts.eps;
    fp8->weightDecay = opts.weightDecay;
  }
}

void RunState::setLr(double lr) {
  if (dqt)
    dqt->setLr(lr);
  if (floats)
    for (auto &group : floats->param_groups())
      static_cast<torch::optim::AdamWOptions &>(group.options()).lr(lr);
  if (fp8)
    fp8->lr = lr;
}

namespace {

constexpr const char *kModelFile = "model.safetensors";
constexpr const char *kOptimizerFile = "dqt-optimizer.safetensors";

std::string stepDirName(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step-%07lld", (long long)step);
  return name;
}

/// The tensors an FP8 weight saves, by checkpoint name (the e4m3 weight is
/// derived from the master copy and not saved).
std::vector<std::pair<std::string, at::Tensor *>> fp8Tensors(Weight *w) {
  Fp8Weight &f = w->fp8();
  std::string p = "fp8." + w->name() + ".";
  return {{p + "master", &f.master.data}, {p + "master_scale", &f.master.scale},
          {p + "exp_avg", &f.m.data},     {p + "exp_avg_scale", &f.m.scale},
          {p + "exp_avg_sq", &f.v.data},  {p + "exp_avg_sq_scale", &f.v.scale}};
}

torch::optim::AdamWParamState *adamState(RunState &s, Weight *w) {
  auto &states = s.floats->state();
  auto it = states.find(w->parameter().unsafeGetTensorImpl());
  if (it == states.end())
    return nullptr;
  return static_cast<torch::optim::AdamWParamState *>(it->second.get());
}

} // namespace

std::string saveCheckpoint(const std::string &out, int64_t step,
                           RunState &state, const RunConfig &config) {
  fs::path root = fs::path(out) / "checkpoints";
  fs::create_directories(root);
  fs::path final = root / stepDirName(step);
  fs::path tmp = root / (".tmp-" + stepDirName(step));
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  checkpoint::Contents c;
  c.metadata = config;
  c.metadata["run.step"] = std::to_string(step);
  for (Weight *w : state.floatWeights) {
    c.tensors.emplace_back("param." + w->name(), w->parameter().detach());
    if (auto *st = adamState(state, w)) {
      c.tensors.emplace_back("adamw." + w->name() + ".exp_avg", st->exp_avg());
      c.tensors.emplace_back("adamw." + w->name() + ".exp_avg_sq",
                             st->exp_avg_sq());
      c.metadata["adamw." + w->name() + ".step"] = std::to_string(st->step());
    }
  }
  for (Weight *w : state.fp8Weights) {
    for (auto &[name, t] : fp8Tensors(w))
      c.tensors.emplace_back(name, *t);
    c.metadata["fp8." + w->name() + ".step"] = std::to_string(w->fp8().step);
  }
  checkpoint::save((tmp / kModelFile).string(), c);
  if (state.dqt)
    state.dqt->save((tmp / kOptimizerFile).string());
  // A re-save of the same step (a resumed run ending where it started)
  // replaces the old directory.
  fs::remove_all(final);
  fs::rename(tmp, final);
  return final.string();
}

std::string newestCheckpoint(const std::string &out) {
  fs::path root = fs::path(out) / "checkpoints";
  if (!fs::is_directory(root))
    return "";
  std::string best;
  for (const auto &e : fs::directory_iterator(root)) {
    std::string name = e.path().filename().string();
    if (e.is_directory() && name.rfind("step-", 0) == 0 && name > best)
      best = name; // zero-padded: lexical order is step order
  }
  return best.empty() ? "" : (root / best).string();
}

int64_t loadCheckpoint(const std::string &dir, RunState &state,
                       const RunConfig &config) {
  checkpoint::Contents c = checkpoint::load((fs::path(dir) / kModelFile).string());
  auto meta = [&](const std::string &key) -> std::string {
    auto it = c.metadata.find(key);
    TORCH_CHECK(it != c.metadata.end(), "dqt-train: checkpoint ", dir,
                " has no '", key, "'");
    return it->second;
  };
  for (const auto &[key, value] : config)
    TORCH_CHECK(meta(key) == value, "dqt-train: cannot resume from ", dir,
                ": it was run with ", key, " = ", meta(key), ", this run has ",
                value);
  // A setting the checkpoint has and this run lacks (a key written only
  // when set, such as run.tie_embeddings) is a mismatch too.
  for (const auto &[key, value] : c.metadata)
    TORCH_CHECK(key.rfind("run.", 0) != 0 || key == "run.step" ||
                    config.count(key),
                "dqt-train: cannot resume from ", dir, ": it was run with ",
                key, " = ", value, ", this run has no such setting");
  int64_t step = std::stoll(meta("run.step"));

  // Validate the float side completely before touching anything.
  size_t expected = 0;
  auto expect = [&](const std::string &name, const at::Tensor &like) {
    const at::Tensor &t = c.get(name);
    TORCH_CHECK(t.sizes() == like.sizes() &&
                    t.scalar_type() == like.scalar_type(),
                "dqt-train: checkpoint ", dir, ": '", name, "' is ",
                t.scalar_type(), t.sizes(), ", the model has ",
                like.scalar_type(), like.sizes());
    ++expected;
    return t;
  };
  bool hasAdam = false;
  for (Weight *w : state.floatWeights) {
    expect("param." + w->name(), w->parameter());
    if (c.metadata.count("adamw." + w->name() + ".step")) {
      hasAdam = true;
      expect("adamw." + w->name() + ".exp_avg", w->parameter());
      expect("adamw." + w->name() + ".exp_avg_sq", w->parameter());
    }
  }
  for (Weight *w : state.fp8Weights) {
    for (auto &[name, t] : fp8Tensors(w))
      expect(name, *t);
    meta("fp8." + w->name() + ".step");
  }
  TORCH_CHECK(c.tensors.size() == expected, "dqt-train: checkpoint ", dir,
              " holds ", c.tensors.size(), " tensors, expected ", expected);
  fs::path optFile = fs::path(dir) / kOptimizerFile;
  TORCH_CHECK(!state.dqt || fs::exists(optFile), "dqt-train: checkpoint ", dir,
              " has no ", kOptimizerFile);
  // StepOptimizer::load validates its file completely, then commits.
  if (state.dqt)
    state.dqt->load(optFile.string());

  torch::NoGradGuard noGrad;
  for (Weight *w : state.floatWeights) {
    w->parameter().copy_(c.get("param." + w->name()));
    if (!hasAdam)
      continue;
    auto st = std::make_unique<torch::optim::AdamWParamState>();
    st->step(std::stoll(meta("adamw." + w->name() + ".step")));
    st->exp_avg(c.get("adamw." + w->name() + ".exp_avg").clone());
    st->exp_avg_sq(c.get("adamw." + w->name() + ".exp_avg_sq").clone());
    state.floats->state()[w->parameter().unsafeGetTensorImpl()] = std::move(st);
  }
  for (Weight *w : state.fp8Weights) {
    for (auto &[name, t] : fp8Tensors(w))
      *t = c.get(name).to(t->device()).clone();
    w->fp8().step = std::stoll(meta("fp8." + w->name() + ".step"));
    w->fp8().refreshWeight();
  }
  return step;
}

std::string stateSha256(RunState &state) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  auto add = [&](const at::Tensor &t) {
    at::Tensor c = t.detach().cpu().contiguous(); // a CUDA run's too
    EVP_DigestUpdate(ctx, c.data_ptr(), c.numel() * c.element_size());
  };
  for (Weight *w : state.model.weights()) {
    EVP_DigestUpdate(ctx, w->name().data(), w->name().size());
    if (w->isFp8()) {
      for (auto &[name, t] : fp8Tensors(w))
        add(*t);
    } else if (w->quantized()) {
      QuantizedWeight &q = w->quantizedWeight();
      add(q.q());
      if (q.isRowScaled()) {
        add(q.deltaRows());
      } else {
        float delta = q.delta();
        EVP_DigestUpdate(ctx, &delta, sizeof(delta));
      }
      if (q.rule() == ScaleRule::AbsMax)
        add(q.absMaxes());
    } else {
      add(w->parameter());
      if (auto *st = state.floats ? adamState(state, w) : nullptr) {
        add(st->exp_avg());
        add(st->exp_avg_sq());
      }
    }
  }
  if (state.dqt)
    for (size_t p = 0; p < state.dqt->numParams(); ++p)
      for (size_t k = 0; k < state.dqt->numStates(p); ++k)
        add(state.dqt->state(p, k));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  char buf[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", digest[i]);
    hex += buf;
  }
  return hex;
}

} // namespace dqt::train
