//===- Fp8.h - dqt-train's FP8 environment (MS-AMP O2, simulated) -*- C++ -*-===//
//
// What MS-AMP's O2 level keeps in low precision, with torch's float8 types
// and one f32 scale per tensor (docs/numerics.md, "Precision environments"):
// a float GEMM weight is stored as FP8 e4m3, its gradient as FP8 e5m2, its
// AdamW master copy as f16, the first moment as e4m3 and the second as f16.
// The GEMM casts its input (e4m3) and output gradient (e5m2) too and
// multiplies the FP8 values exactly, accumulating in f32: the CPU has no FP8
// matmul. This is a simulation of the numerics, not of the speed.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_TRAIN_FP8_H
#define DQT_TRAIN_FP8_H

#include <ATen/ATen.h>

#include <vector>

namespace dqt::train {

/// A tensor in a narrow float type with one f32 scale (MS-AMP's
/// ScalingTensor): value = data / scale, scale = max(type) / max|x|.
struct ScaledTensor {
  at::Tensor data;  ///< e4m3, e5m2 or f16
  at::Tensor scale; ///< f32, 0-dimensional, on data's device
  /// data / scale as f32.
  at::Tensor dequantize() const;
  bool defined() const { return data.defined(); }
  /// Casts `x` to `type` with the scale that maps max|x| to the type's
  /// largest finite value (1 when max|x| is 0 or not finite).
  static ScaledTensor cast(const at::Tensor &x, at::ScalarType type);
};

/// A float GEMM weight of the FP8 environment: what MS-AMP O2 stores for it,
/// stepped by Fp8AdamW.
class Fp8Weight {
public:
  /// From the f32 initialization [out, in].
  explicit Fp8Weight(const at::Tensor &init);
  /// y = x W^T through FP8 (bf16 result). With `bitnet`, BitNet b1.58's
  /// quantizers come first (8-bit activations, absmean ternary weight of
  /// the FP8 weight), straight-through in the backward pass.
  at::Tensor linear(const at::Tensor &x, bool bitnet);
  /// Adds dL/dW to the e5m2 gradient (re-cast with a new scale).
  void accumulateGrad(const at::Tensor &grad);
  /// weight = e4m3(master), after a step or a load.
  void refreshWeight();
  void to(at::Device device);
  int64_t numel() const { return master.data.numel(); }

  ScaledTensor master; ///< f16
  ScaledTensor weight; ///< e4m3, what the forward pass multiplies
  ScaledTensor grad;   ///< e5m2; undefined until a backward pass
  ScaledTensor m;      ///< e4m3 first moment
  ScaledTensor v;      ///< f16 second moment
  int64_t step = 0;    ///< AdamW steps taken

private:
  /// Puts every linear() in the autograd graph (as QuantLinear's anchor).
  at::Tensor anchor_ = at::empty({0}).requires_grad_(true);
};

/// AdamW (torch.optim.AdamW's formulas, in f32) over Fp8Weights: each step
/// dequantizes master, m, v and the gradient, updates, and stores them back
/// in their types; weights without a gradient are skipped.
struct Fp8AdamW {
  std::vector<Fp8Weight *> weights;
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0;
  void step();
  void zeroGrad();
};

} // namespace dqt::train

#endif // DQT_TRAIN_FP8_H
