//===- QuantizedWeight.cpp - integer-only weight storage ------------------===//

#include "dqt/Runtime/QuantizedWeight.h"

#include <c10/util/Exception.h>

#include <cmath>

namespace dqt {

Grid Grid::fromBits(double bits, const char *who) {
  if (bits > 1.0 && bits < 2.0)
    return Grid{8, true};
  TORCH_CHECK(bits == std::floor(bits) && bits >= 2 && bits <= 8, who,
              ": bits must be 1.58 (ternary) or an integer in [2, 8], got ",
              bits);
  return Grid{int(bits), false};
}

std::string Grid::str() const {
  return ternary ? std::string("ternary") : std::to_string(bits) + "-bit";
}

QuantizedWeight::QuantizedWeight(at::Tensor q, float delta, Grid grid)
    : q_(std::move(q)), delta_(delta), grid_(grid) {
  maxq_ = q_.numel() ? q_.max().item<int8_t>() : 0;
}

QuantizedWeight QuantizedWeight::fromFloat(const at::Tensor &weight,
                                           Grid grid) {
  TORCH_CHECK(weight.defined() && weight.numel() > 0,
              "dqt: QuantizedWeight.fromFloat: weight is empty");
  TORCH_CHECK(weight.is_floating_point(),
              "dqt: QuantizedWeight.fromFloat: weight must be floating point, "
              "got ",
              weight.scalar_type());
  TORCH_CHECK(weight.isfinite().all().item<bool>(),
              "dqt: QuantizedWeight.fromFloat: weight has non-finite values");
  at::Tensor w = weight.detach().to(at::kFloat).contiguous();
  // mean|W| summed in double in element order: ATen's parallel reductions
  // depend on the thread count, and the scale must not.
  const float *data = w.data_ptr<float>();
  double sum = 0;
  for (int64_t i = 0, n = w.numel(); i < n; ++i)
    sum += std::fabs(double(data[i]));
  double meanAbs = sum / double(w.numel());
  float s = float(double(grid.qp()) / std::max(meanAbs, 1e-5));
  // round() in ATen rounds half to even.
  at::Tensor q =
      (w * s).round().clamp(double(grid.qn()), double(grid.qp())).to(at::kChar);
  return QuantizedWeight(q, 1.0f / s, grid);
}

at::Tensor QuantizedWeight::dequantize() const {
  return q_.to(at::kFloat) * delta_;
}

at::Tensor &QuantizedWeight::grad() {
  if (!grad_.defined())
    grad_ = at::zeros(q_.sizes(), q_.options().dtype(at::kFloat));
  return grad_;
}

} // namespace dqt
