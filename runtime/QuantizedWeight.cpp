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

at::Tensor packTernary(const at::Tensor &q) {
  at::Tensor src = q.to(at::kCPU, at::kChar).contiguous();
  int64_t n = src.numel();
  at::Tensor bytes = at::zeros({(n + 3) / 4}, src.options().dtype(at::kByte));
  const int8_t *v = src.data_ptr<int8_t>();
  uint8_t *out = bytes.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    TORCH_CHECK(v[i] >= -1 && v[i] <= 1, "dqt: packTernary: element ", i,
                " is ", int(v[i]), ", not ternary");
    out[i / 4] |= uint8_t((uint8_t(v[i]) & 3u) << (2 * (i % 4)));
  }
  return bytes.to(q.device());
}

void checkPackedTernary(const at::Tensor &bytes, int64_t numel,
                        const std::string &who) {
  TORCH_CHECK(bytes.scalar_type() == at::kByte && bytes.dim() == 1 &&
                  bytes.numel() == (numel + 3) / 4,
              who, ": packed ternary storage of ", numel,
              " weights is uint8[", (numel + 3) / 4, "], got ",
              bytes.scalar_type(), bytes.sizes());
  at::Tensor b = bytes.to(at::kCPU).contiguous();
  const uint8_t *p = b.data_ptr<uint8_t>();
  for (int64_t i = 0; i < numel; ++i)
    TORCH_CHECK(((p[i / 4] >> (2 * (i % 4))) & 3u) != 2u, who,
                ": packed ternary storage has the invalid code 0b10 at "
                "element ",
                i);
  if (numel % 4)
    TORCH_CHECK((p[numel / 4] >> (2 * (numel % 4))) == 0, who,
                ": packed ternary storage has non-zero unused bits in its "
                "last byte");
}

at::Tensor unpackTernary(const at::Tensor &bytes, at::IntArrayRef shape) {
  int64_t n = c10::multiply_integers(shape);
  checkPackedTernary(bytes, n, "dqt: unpackTernary");
  at::Tensor b = bytes.to(at::kCPU).contiguous();
  at::Tensor q = at::empty(shape, b.options().dtype(at::kChar));
  const uint8_t *p = b.data_ptr<uint8_t>();
  int8_t *out = q.data_ptr<int8_t>();
  for (int64_t i = 0; i < n; ++i) {
    int code = (p[i / 4] >> (2 * (i % 4))) & 3;
    out[i] = int8_t(code >= 2 ? code - 4 : code);
  }
  return q.to(bytes.device());
}

QuantizedWeight::QuantizedWeight(at::Tensor q, float delta, Grid grid,
                                 Storage storage, std::vector<int64_t> shape)
    : q_(std::move(q)), storage_(storage), shape_(std::move(shape)),
      delta_(delta), grid_(grid) {
  numel_ = c10::multiply_integers(shape_);
  at::Tensor values = unpack();
  maxq_ = numel_ ? values.max().item<int8_t>() : 0;
}

const at::Tensor &QuantizedWeight::packed() const {
  TORCH_CHECK(isPacked(), "dqt: QuantizedWeight.packed: the weight is stored "
                          "as int8, not packed");
  return q_;
}

at::Tensor QuantizedWeight::unpack() const {
  return isPacked() ? unpackTernary(q_, shape_) : q_;
}

QuantizedWeight QuantizedWeight::fromFloat(const at::Tensor &weight,
                                           Grid grid, Storage storage) {
  TORCH_CHECK(storage == Storage::Int8 || grid.ternary,
              "dqt: QuantizedWeight.fromFloat: packed storage (4 per byte) is "
              "for ternary weights only, got ",
              grid.str());
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
  std::vector<int64_t> shape(q.sizes().begin(), q.sizes().end());
  if (storage == Storage::PackedTernary)
    q = packTernary(q);
  return QuantizedWeight(q, 1.0f / s, grid, storage, std::move(shape));
}

at::Tensor QuantizedWeight::dequantize() const {
  return unpack().to(at::kFloat) * delta_;
}

at::Tensor &QuantizedWeight::grad() {
  if (!grad_.defined())
    grad_ = at::zeros(shape_, q_.options().dtype(at::kFloat));
  return grad_;
}

} // namespace dqt
