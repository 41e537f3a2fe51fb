//===- Model.cpp - the LLaMA-structured decoder of dqt-train --------------===//

#include "Model.h"

#include <c10/util/Exception.h>

#include <cmath>

namespace dqt::train {

ModelShape preset(const std::string &name) {
  // dim, ffn, layers, heads, vocab, seqLen, batch
  if (name == "tiny")
    return {64, 176, 2, 4, 512, 64, 8};
  if (name == "small")
    return {256, 688, 4, 4, 2048, 128, 8};
  // The paper's shapes (LLaMA tokenizer vocabulary).
  if (name == "130m")
    return {768, 2048, 12, 12, 32000, 2048, 8};
  if (name == "320m")
    return {1024, 2048, 24, 16, 32000, 2048, 8};
  if (name == "1b")
    return {2048, 3072, 24, 32, 32000, 2048, 8};
  TORCH_CHECK(false, "dqt-train: unknown preset '", name,
              "' (known: tiny, small, 130m, 320m, 1b)");
}

std::string MethodConfig::label() const {
  switch (method) {
  case Method::Fp32:
    return "fp32";
  case Method::BitNet:
    return "bitnet";
  case Method::Dqt: {
    std::string l =
        "dqt-" + (grid.ternary ? std::string("1.58") : std::to_string(grid.bits));
    if (ternaryInference)
      l += "-ti";
    if (quantizeAll)
      l += "-all";
    if (packed)
      l += "-packed";
    if (rowScale)
      l += "-rows";
    if (rule == ScaleRule::AbsMax)
      l += "-absmax";
    return l;
  }
  }
  return "?";
}

Weight::Weight(std::string name, const at::Tensor &init, const MethodConfig &m,
               bool linear, bool gemm)
    : name_(std::move(name)), linear_(linear), method_(m.method) {
  if (m.method == Method::Dqt && linear) {
    qlinear_ = std::make_unique<nn::QuantLinear>(
        init, m.grid, m.storage(), m.scale(init.dim()), m.rule);
    qlinear_->ternaryInference = m.ternaryInference;
    // MS-AMP O1's weight gradients: the integer weights' too.
    if (m.precision == Precision::Fp8)
      qlinear_->gradientTransform = [](const at::Tensor &g) {
        return ScaledTensor::cast(g, at::kFloat8_e5m2).dequantize();
      };
  } else if (m.precision == Precision::Fp8 && gemm) {
    fp8_ = std::make_unique<Fp8Weight>(init);
  } else if (m.method == Method::Dqt && m.quantizeAll) {
    qparam_ = std::make_unique<nn::QuantParameter>(
        init, m.grid, m.storage(), m.scale(init.dim()), m.rule);
  } else {
    param_ = init.clone().requires_grad_(true);
  }
}

Fp8Weight &Weight::fp8() {
  TORCH_CHECK(fp8_, "dqt-train: ", name_, " is not an FP8 weight");
  return *fp8_;
}

QuantizedWeight &Weight::quantizedWeight() {
  TORCH_CHECK(quantized(), "dqt-train: ", name_, " is not quantized");
  return qlinear_ ? qlinear_->weight() : qparam_->weight();
}

int64_t Weight::numel() const {
  if (qlinear_)
    return qlinear_->weight().numel();
  if (qparam_)
    return qparam_->weight().numel();
  if (fp8_)
    return fp8_->numel();
  return param_.numel();
}

at::Tensor Weight::linear(const at::Tensor &x) {
  if (qlinear_)
    return qlinear_->forward(x);
  if (fp8_)
    return fp8_->linear(x, method_ == Method::BitNet && linear_);
  if (method_ == Method::BitNet && linear_) {
    // BitNet b1.58: float master weight, absmean ternary weight and 8-bit
    // activations in the forward pass, straight-through in the backward.
    at::Tensor xq = x + (nn::activationQuant8(x) - x).detach();
    at::Tensor wq = param_ + (nn::ternarize(param_) - param_).detach();
    return at::matmul(xq, wq.t());
  }
  return at::matmul(x, value().t());
}

at::Tensor Weight::value() { return qparam_ ? qparam_->value() : param_; }

void Weight::to(at::Device device) {
  if (quantized())
    quantizedWeight().moveTo(device);
  else if (fp8_)
    fp8_->to(device);
  else
    param_ = param_.detach().to(device).requires_grad_(true);
}

void Weight::setStepInBackward(optim::ParameterStepper *opt) {
  if (qlinear_)
    qlinear_->stepInBackward = opt;
  if (qparam_)
    qparam_->stepInBackward = opt;
}

Weight &Model::add(std::string name, const at::Tensor &init, bool linear,
                   std::optional<bool> gemm) {
  weights_.push_back(
      std::make_unique<Weight>(std::move(name), init, method_, linear,
                               gemm.value_or(linear)));
  return *weights_.back();
}

Model::Model(const ModelShape &shape, const MethodConfig &method, uint64_t seed)
    : shape_(shape), method_(method) {
  TORCH_CHECK(shape.dim % shape.heads == 0 && (shape.dim / shape.heads) % 2 == 0,
              "dqt-train: dim must split into heads of even size");
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto normal = [&](int64_t rows, int64_t cols) {
    return at::empty({rows, cols}, at::kFloat).normal_(0.0, 0.02, gen);
  };
  auto ones = [&] { return at::ones({shape.dim}, at::kFloat); };
  int64_t d = shape.dim, f = shape.ffn;
  embed_ = &add("embed_tokens", normal(shape.vocab, d), false);
  for (int64_t l = 0; l < shape.layers; ++l) {
    std::string p = "layers." + std::to_string(l) + ".";
    Block b;
    b.attnNorm = &add(p + "input_layernorm", ones(), false);
    b.q = &add(p + "self_attn.q_proj", normal(d, d), true);
    b.k = &add(p + "self_attn.k_proj", normal(d, d), true);
    b.v = &add(p + "self_attn.v_proj", normal(d, d), true);
    b.attnSubNorm = &add(p + "self_attn.inner_attn_ln", ones(), false);
    b.o = &add(p + "self_attn.o_proj", normal(d, d), true);
    b.mlpNorm = &add(p + "post_attention_layernorm", ones(), false);
    b.gate = &add(p + "mlp.gate_proj", normal(f, d), true);
    b.up = &add(p + "mlp.up_proj", normal(f, d), true);
    b.mlpSubNorm = &add(p + "mlp.ffn_layernorm", at::ones({f}), false);
    b.down = &add(p + "mlp.down_proj", normal(d, f), true);
    blocks_.push_back(b);
  }
  finalNorm_ = &add("norm", ones(), false);
  if (!shape.tiedEmbeddings)
    head_ = &add("lm_head", normal(shape.vocab, d), false, true);

  // forward() extends the tables when a longer sequence comes.
  ropeTables(shape.seqLen);
}

void Model::ropeTables(int64_t maxT) {
  // theta 10000; angles in double, then rounded once to f32.
  int64_t half = shape_.dim / shape_.heads / 2;
  at::Tensor inv = at::pow(10000.0, -at::arange(half, at::kDouble) / half);
  at::Tensor angles = at::outer(at::arange(maxT, at::kDouble), inv);
  cos_ = angles.cos().to(at::kFloat);
  sin_ = angles.sin().to(at::kFloat);
}

std::vector<Weight *> Model::weights() {
  std::vector<Weight *> out;
  for (auto &w : weights_)
    out.push_back(w.get());
  return out;
}

int64_t Model::numParams() {
  int64_t n = 0;
  for (auto &w : weights_)
    n += w->numel();
  return n;
}

void Model::to(at::Device device) {
  for (auto &w : weights_)
    w->to(device);
  cos_ = cos_.to(device);
  sin_ = sin_.to(device);
}

at::Tensor Model::rmsNorm(const at::Tensor &x, Weight &gain) {
  at::Tensor r = at::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + 1e-6);
  return x * r * gain.value();
}

static at::Tensor rope(const at::Tensor &x, const at::Tensor &cos,
                       const at::Tensor &sin) {
  // x [B, T, H, D]: rotate pairs (x1, x2) = (first half, second half), as
  // HuggingFace's Llama does.
  int64_t half = x.size(-1) / 2;
  at::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  at::Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1); // [T, 1, D/2]
  return at::cat({x1 * c - x2 * s, x2 * c + x1 * s}, -1);
}

at::Tensor Model::attention(Block &b, const at::Tensor &x) {
  int64_t B = x.size(0), T = x.size(1), H = shape_.heads,
          D = shape_.dim / shape_.heads;
  at::Tensor cos = cos_.narrow(0, 0, T), sin = sin_.narrow(0, 0, T);
  auto heads = [&](Weight *w, bool rotate) {
    at::Tensor t = w->linear(x).view({B, T, H, D});
    activationDtype_ = t.scalar_type();
    if (rotate)
      t = rope(t, cos, sin);
    return t.transpose(1, 2); // [B, H, T, D]
  };
  at::Tensor q = heads(b.q, true), k = heads(b.k, true), v = heads(b.v, false);
  at::Tensor a = at::scaled_dot_product_attention(q, k, v, {}, 0.0,
                                                  /*is_causal=*/true);
  a = a.transpose(1, 2).reshape({B, T, shape_.dim});
  return b.o->linear(rmsNorm(a, *b.attnSubNorm));
}

at::Tensor Model::forward(const at::Tensor &tokens) {
  TORCH_CHECK(tokens.dim() == 2 && tokens.scalar_type() == at::kLong,
              "dqt-train: tokens must be int64 [batch, time]");
  AutocastGuard autocast(method_.precision, tokens.device());
  int64_t T = tokens.size(1);
  if (T > cos_.size(0))
    ropeTables(T);
  at::Tensor embed = embed_->value();
  at::Tensor h = at::embedding(embed, tokens);
  for (Block &b : blocks_) {
    h = h + attention(b, rmsNorm(h, *b.attnNorm));
    at::Tensor x = rmsNorm(h, *b.mlpNorm);
    at::Tensor m = at::silu(b.gate->linear(x)) * b.up->linear(x);
    h = h + b.down->linear(rmsNorm(m, *b.mlpSubNorm));
  }
  h = rmsNorm(h, *finalNorm_);
  // The tied head is a float matmul, as an untied one (Weight::linear of a
  // non-linear weight): no activation quantization.
  // Logits in f32 for the loss in every environment (as HF's Llama casts
  // them): a no-op under fp32.
  return (head_ ? head_->linear(h) : at::matmul(h, embed.t()))
      .to(at::kFloat);
}

} // namespace dqt::train
