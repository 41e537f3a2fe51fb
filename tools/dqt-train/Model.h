//===- Model.h - the LLaMA-structured decoder of dqt-train ------*- C++ -*-===//
//
// Decoder-only, LLaMA-structured (RMSNorm, RoPE, SwiGLU, causal multi-head
// attention, untied embeddings unless ModelShape::tiedEmbeddings) with BitNet
// b1.58's sub-layer norms before o_proj and down_proj: the graph of Hugging
// Face's BitNetForCausalLM with hidden_act silu, and, with tied embeddings,
// of llama.cpp's `bitnet` architecture (docs/design.md, "Export"). Every
// weight is a `Weight`: a float parameter (fp32, bitnet) or integers only
// (dqt).
//
//===----------------------------------------------------------------------===//

#ifndef DQT_TRAIN_MODEL_H
#define DQT_TRAIN_MODEL_H

#include "Fp8.h"
#include "Precision.h"

#include "dqt/Runtime/QuantLinear.h"
#include "dqt/Runtime/QuantParameter.h"

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dqt::train {

/// Model shape. `vocab` is the tokenizer's size.
struct ModelShape {
  int64_t dim, ffn, layers, heads, vocab;
  int64_t seqLen, batch; ///< defaults of the preset's training runs
  /// The LM head is the token embedding (no lm_head weight), as llama.cpp's
  /// `bitnet` graph computes it.
  bool tiedEmbeddings = false;
};

/// The named presets: tiny, small, 130m, 320m, 1b. Throws on an unknown name.
ModelShape preset(const std::string &name);

enum class Method { Fp32, BitNet, Dqt };

/// How the model's weights are stored and used.
struct MethodConfig {
  Method method = Method::Fp32;
  Grid grid;                     ///< dqt only
  bool ternaryInference = false; ///< dqt only
  bool quantizeAll = false;      ///< dqt: embeddings, head and norms too
  bool packed = false;           ///< dqt ternary: 4 weights per byte
  /// dqt: one delta per output row for weights of 2 or more dimensions
  /// (1-D norm gains keep one per tensor).
  bool rowScale = false;
  /// dqt: how each step's next delta is chosen (docs/numerics.md, "Scale
  /// rules"); AbsMax on 2..8-bit grids only.
  ScaleRule rule = ScaleRule::MaxQ;
  /// The training environment: autocast bf16 around the weights under bf16
  /// and fp8, and FP8 float GEMM weights under fp8 (Precision.h). Not part
  /// of label().
  Precision precision = Precision::Fp32;
  /// A short label: fp32, bitnet, dqt-8, dqt-1.58, dqt-8-ti, ...
  std::string label() const;
  Storage storage() const {
    return packed ? Storage::PackedTernary : Storage::Int8;
  }
  /// The scale mode of a quantized weight of `dims` dimensions.
  ScaleMode scale(int64_t dims) const {
    return rowScale && dims >= 2 ? ScaleMode::Row : ScaleMode::Tensor;
  }
};

/// One weight of the model, in the storage the method asks for.
class Weight {
public:
  /// `linear`: a projection inside a block (quantized by bitnet and dqt);
  /// otherwise an embedding, the head or a norm gain (quantized only by dqt
  /// with quantizeAll). `gemm`: used through linear() (the projections and
  /// an untied head): under fp8 a float one is an Fp8Weight.
  Weight(std::string name, const at::Tensor &init, const MethodConfig &m,
         bool linear, bool gemm);
  const std::string &name() const { return name_; }
  bool quantized() const { return linear_ ? bool(qlinear_) : bool(qparam_); }
  /// An FP8 weight of the fp8 environment (Fp8.h).
  bool isFp8() const { return bool(fp8_); }
  Fp8Weight &fp8();
  /// The float parameter (fp32/bitnet, and unquantized dqt weights; not
  /// for FP8 weights).
  at::Tensor &parameter() { return param_; }
  /// The integer weight (dqt).
  QuantizedWeight &quantizedWeight();
  int64_t numel() const;
  /// y = x W^T with the method's quantizers (linear weights only).
  at::Tensor linear(const at::Tensor &x);
  /// The value as a float tensor in the graph (non-linear weights).
  at::Tensor value();
  /// Switches a dqt linear weight's forward to ternary (evaluation of the
  /// ternary-inference variant); no-op for other weights.
  void setTernaryInference(bool on) {
    if (qlinear_)
      qlinear_->ternaryInference = on;
  }
  /// Sets the optimizer that steps this weight inside the backward pass.
  void setStepInBackward(optim::ParameterStepper *opt);
  /// Moves the weight (integers and scales, or the float leaf) to `device`.
  void to(at::Device device);

private:
  std::string name_;
  bool linear_;
  Method method_;
  at::Tensor param_;
  std::unique_ptr<nn::QuantLinear> qlinear_;
  std::unique_ptr<nn::QuantParameter> qparam_;
  std::unique_ptr<Fp8Weight> fp8_;
};

/// The weights of one decoder layer.
struct Block {
  Weight *attnNorm, *q, *k, *v, *attnSubNorm, *o;
  Weight *mlpNorm, *gate, *up, *mlpSubNorm, *down;
};

/// The decoder. Parameters are initialized like HuggingFace's Llama (normal,
/// std 0.02; norm gains 1) from `seed`, then quantized as the method asks.
class Model {
public:
  Model(const ModelShape &shape, const MethodConfig &method, uint64_t seed);
  /// tokens [B, T] int64 -> logits [B, T, vocab]. With tied embeddings the
  /// embedding's value is taken once and used by both ends, so its gradient
  /// reaches the weight (and a step inside the backward pass) once.
  at::Tensor forward(const at::Tensor &tokens);
  std::vector<Weight *> weights();
  const ModelShape &shape() const { return shape_; }
  int64_t numParams();
  /// Moves every weight and the RoPE tables to `device` (before the
  /// optimizers are made: they keep their states where the weights are).
  void to(at::Device device);
  at::Device device() const { return cos_.device(); }
  /// The dtype of the last forward pass's attention projections' output
  /// (what the environment computes activations in).
  at::ScalarType activationDtype() const { return activationDtype_; }

private:
  at::Tensor rmsNorm(const at::Tensor &x, Weight &gain);
  at::Tensor attention(Block &b, const at::Tensor &x);
  /// `gemm` (Weight's) defaults to `linear`: only the head is a GEMM weight
  /// that is not a projection.
  Weight &add(std::string name, const at::Tensor &init, bool linear,
              std::optional<bool> gemm = std::nullopt);
  /// RoPE cos/sin tables for positions [0, maxT).
  void ropeTables(int64_t maxT);

  ModelShape shape_;
  MethodConfig method_;
  std::vector<std::unique_ptr<Weight>> weights_;
  Weight *embed_, *finalNorm_;
  Weight *head_ = nullptr; ///< null with tied embeddings
  std::vector<Block> blocks_;
  at::Tensor cos_, sin_; ///< RoPE tables [maxT, headDim/2]
  at::ScalarType activationDtype_ = at::kFloat;
};

} // namespace dqt::train

#endif // DQT_TRAIN_MODEL_H
