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

namespace {
/// s_r = Qp / max(mean|W_r|, 1e-5) in f32 for each of the `rows` rows of
/// the flattened f32 `w` (per tensor: one row), mean|W_r| summed in double
/// in element order: ATen's parallel reductions depend on the thread count,
/// and the scales must not.
std::vector<float> absmeanScales(const at::Tensor &w, int64_t rows,
                                 int64_t qp) {
  at::Tensor host = w.cpu().contiguous();
  const float *data = host.data_ptr<float>();
  int64_t length = host.numel() / rows;
  std::vector<float> scales(rows);
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (int64_t i = r * length; i < (r + 1) * length; ++i)
      sum += std::fabs(double(data[i]));
    double meanAbs = sum / double(length);
    scales[r] = float(double(qp) / std::max(meanAbs, 1e-5));
  }
  return scales;
}
} // namespace

QuantizedWeight::QuantizedWeight(at::Tensor q, Grid grid, Storage storage,
                                 ScaleMode scale, std::vector<int64_t> shape,
                                 at::Tensor deltas)
    : q_(std::move(q)), storage_(storage), scale_(scale),
      shape_(std::move(shape)), grid_(grid) {
  numel_ = c10::multiply_integers(shape_);
  at::Tensor values = unpack();
  if (isRowScaled()) {
    update(deltas, values.reshape({rows(), rowLength()}).amax(1));
  } else {
    delta_ = deltas.item<float>();
    maxq_ = numel_ ? values.max().item<int8_t>() : 0;
  }
}

const at::Tensor &QuantizedWeight::packed() const {
  TORCH_CHECK(isPacked(), "dqt: QuantizedWeight.packed: the weight is stored "
                          "as int8, not packed");
  return q_;
}

at::Tensor QuantizedWeight::unpack() const {
  return isPacked() ? unpackTernary(q_, shape_) : q_;
}

QuantizedWeight QuantizedWeight::fromFloat(const at::Tensor &weight, Grid grid,
                                           Storage storage, ScaleMode scale) {
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
  TORCH_CHECK(scale == ScaleMode::Tensor || weight.dim() >= 2,
              "dqt: QuantizedWeight.fromFloat: a per-row scale needs a weight "
              "of at least 2 dimensions [out, ...], got shape ",
              weight.sizes(), " (use a per-tensor scale)");
  TORCH_CHECK(weight.isfinite().all().item<bool>(),
              "dqt: QuantizedWeight.fromFloat: weight has non-finite values");
  at::Tensor w = weight.detach().to(at::kFloat).contiguous();
  std::vector<int64_t> shape(w.sizes().begin(), w.sizes().end());
  int64_t rows = scale == ScaleMode::Row ? shape[0] : 1;
  std::vector<float> s = absmeanScales(w, rows, grid.qp());
  at::Tensor deltas = at::empty({rows}, at::kFloat);
  for (int64_t r = 0; r < rows; ++r)
    deltas.data_ptr<float>()[r] = 1.0f / s[r];
  at::Tensor sRows = at::tensor(s, at::kFloat).to(w.device()).view({rows, 1});
  // f32 products W*s_r; round() in ATen rounds half to even.
  at::Tensor q = (w.view({rows, -1}) * sRows)
                     .round()
                     .clamp(double(grid.qn()), double(grid.qp()))
                     .to(at::kChar)
                     .view(shape);
  if (storage == Storage::PackedTernary)
    q = packTernary(q);
  return QuantizedWeight(q, grid, storage, scale, std::move(shape),
                         deltas.to(q.device()));
}

float QuantizedWeight::delta() const {
  TORCH_CHECK(!isRowScaled(), "dqt: QuantizedWeight.delta: the weight has one "
                              "delta per row (use deltaRows())");
  return delta_;
}

float QuantizedWeight::nextDelta() const {
  TORCH_CHECK(!isRowScaled(), "dqt: QuantizedWeight.nextDelta: the weight "
                              "has one delta per row (use nextDeltaRows())");
  return grid_.nextDelta(delta_, maxq_);
}

const at::Tensor &QuantizedWeight::deltaRows() const {
  TORCH_CHECK(isRowScaled(), "dqt: QuantizedWeight.deltaRows: the weight has "
                             "one delta per tensor (use delta())");
  return deltaRows_;
}

const at::Tensor &QuantizedWeight::maxQRows() const {
  TORCH_CHECK(isRowScaled(), "dqt: QuantizedWeight.maxQRows: the weight has "
                             "one delta per tensor (use maxQ())");
  return maxqRows_;
}

at::Tensor QuantizedWeight::nextDeltaRows() const {
  at::Tensor delta = deltaRows().cpu().contiguous();
  at::Tensor maxq = maxqRows_.cpu().contiguous();
  at::Tensor next = at::empty_like(delta);
  const float *d = delta.data_ptr<float>();
  const int8_t *m = maxq.data_ptr<int8_t>();
  float *out = next.data_ptr<float>();
  // The per-tensor formula row by row: the f32 mul, then the f32 div.
  for (int64_t r = 0, n = delta.numel(); r < n; ++r)
    out[r] = grid_.nextDelta(d[r], m[r]);
  return next.to(deltaRows_.device());
}

void QuantizedWeight::update(float delta, int8_t maxq) {
  TORCH_CHECK(!isRowScaled(), "dqt: QuantizedWeight.update: the weight has "
                              "one delta per row: pass deltaRows and maxqRows");
  delta_ = delta;
  maxq_ = maxq;
}

void QuantizedWeight::checkRowScales(const at::Tensor &deltaRows,
                                     const at::Tensor &maxqRows,
                                     const std::string &who) const {
  TORCH_CHECK(isRowScaled(), who,
              ": the weight has one delta per tensor, "
              "got per-row deltas");
  auto describe = [](const at::Tensor &t) {
    return t.defined() ? c10::str(t.scalar_type(), t.sizes())
                       : std::string("an undefined tensor");
  };
  TORCH_CHECK(deltaRows.defined() && deltaRows.scalar_type() == at::kFloat &&
                  deltaRows.dim() == 1 && deltaRows.size(0) == rows(),
              who, ": the per-row deltas must be Float[", rows(), "], got ",
              describe(deltaRows));
  TORCH_CHECK(maxqRows.defined() && maxqRows.scalar_type() == at::kChar &&
                  maxqRows.dim() == 1 && maxqRows.size(0) == rows(),
              who, ": the per-row max q must be Char[", rows(), "], got ",
              describe(maxqRows));
  at::Tensor d = deltaRows.cpu();
  TORCH_CHECK((d.isfinite() & (d > 0)).all().item<bool>(), who,
              ": every row's delta must be finite and > 0");
  at::Tensor m = maxqRows.cpu();
  TORCH_CHECK(((m >= grid_.qn()) & (m <= grid_.qp())).all().item<bool>(), who,
              ": every row's max q must be in the ", grid_.str(), " grid [",
              grid_.qn(), ", ", grid_.qp(), "]");
}

void QuantizedWeight::update(const at::Tensor &deltaRows,
                             const at::Tensor &maxqRows) {
  checkRowScales(deltaRows, maxqRows, "dqt: QuantizedWeight.update");
  at::Tensor maxq = maxqRows.to(q_.device()).contiguous().clone();
  int8_t max = maxq.max().item<int8_t>();
  setStepRowScales(deltaRows.to(q_.device()).contiguous().clone(),
                   std::move(maxq), max);
}

void QuantizedWeight::setStepRowScales(at::Tensor deltaRows,
                                       at::Tensor maxqRows, int8_t maxq) {
  TORCH_CHECK(isRowScaled(), "dqt: QuantizedWeight.setStepRowScales: the "
                             "weight has one delta per tensor");
  deltaRows_ = std::move(deltaRows);
  maxqRows_ = std::move(maxqRows);
  maxq_ = maxq;
}

at::Tensor QuantizedWeight::dequantize() const {
  if (!isRowScaled())
    return unpack().to(at::kFloat) * delta_;
  return (unpack().to(at::kFloat).reshape({rows(), rowLength()}) *
          deltaRows_.view({rows(), 1}))
      .view(shape_);
}

at::Tensor &QuantizedWeight::grad() {
  if (!grad_.defined())
    grad_ = at::zeros(shape_, q_.options().dtype(at::kFloat));
  return grad_;
}

} // namespace dqt
