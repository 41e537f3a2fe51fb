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

// Packing and unpacking are device operations (ATen), so that a GPU
// weight's forward pass never copies its bytes to the host.

/// The shifts of the four 2-bit codes of a byte, as a [1, 4] tensor.
static at::Tensor codeShifts(const at::Tensor &like) {
  return at::arange(0, 8, 2, like.options().dtype(at::kByte)).view({1, 4});
}

at::Tensor packTernary(const at::Tensor &q) {
  at::Tensor v = q.to(at::kChar).contiguous().view({-1});
  int64_t n = v.numel();
  at::Tensor bad = (v < -1) | (v > 1);
  if (bad.any().item<bool>()) {
    int64_t i = bad.nonzero()[0][0].item<int64_t>();
    TORCH_CHECK(false, "dqt: packTernary: element ", i, " is ",
                int(v[i].item<int8_t>()), ", not ternary");
  }
  // Two's complement low bits: 0 -> 0b00, 1 -> 0b01, -1 -> 0b11.
  at::Tensor codes = at::zeros({(n + 3) / 4 * 4}, v.options().dtype(at::kByte));
  codes.narrow(0, 0, n).copy_(v.bitwise_and(3));
  // The four codes of a byte have disjoint bits: their sum is their OR.
  return codes.view({-1, 4})
      .bitwise_left_shift(codeShifts(codes))
      .sum({1}, /*keepdim=*/false, at::kByte);
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

at::Tensor decodeTernary(const at::Tensor &bytes, at::IntArrayRef shape) {
  int64_t n = c10::multiply_integers(shape);
  at::Tensor codes = bytes.contiguous()
                         .view({-1, 1})
                         .bitwise_right_shift(codeShifts(bytes))
                         .bitwise_and(3)
                         .view({-1})
                         .narrow(0, 0, n)
                         .to(at::kChar);
  // 0b11 is -1: subtract 4 from the codes >= 2.
  return (codes - codes.ge(2).to(at::kChar) * 4).view(shape);
}

at::Tensor unpackTernary(const at::Tensor &bytes, at::IntArrayRef shape) {
  checkPackedTernary(bytes, c10::multiply_integers(shape),
                     "dqt: unpackTernary");
  return decodeTernary(bytes, shape);
}

namespace {
/// s_r = Qp / max(mean|W_r|, 1e-5) in f32 for each of the `rows` rows of
/// the flattened f32 `w` (per tensor: one row), mean|W_r| summed in double
/// in element order: ATen's parallel reductions depend on the thread count,
/// and the scales must not.
std::vector<float> absmeanScales(const at::Tensor &w, int64_t rows,
                                 int64_t qp) {
  // (absmaxScales below is the absmax rule's counterpart.)
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

/// The absmax rule's initialization (docs/numerics.md, "Scale rules"): each
/// row's max|W_r| as f32 (a maximum, exact in any order) into `absMax`, and
/// s_r = Qp / max(max|W_r|, 1e-5) in f32.
std::vector<float> absmaxScales(const at::Tensor &w, int64_t rows, int64_t qp,
                                std::vector<float> &absMax) {
  at::Tensor m = w.view({rows, -1}).abs().amax(1).cpu().contiguous();
  absMax.assign(m.data_ptr<float>(), m.data_ptr<float>() + rows);
  std::vector<float> scales(rows);
  for (int64_t r = 0; r < rows; ++r)
    scales[r] = float(double(qp) / std::max(double(absMax[r]), 1e-5));
  return scales;
}
} // namespace

QuantizedWeight::QuantizedWeight(at::Tensor q, Grid grid, Storage storage,
                                 ScaleMode scale, std::vector<int64_t> shape,
                                 at::Tensor deltas, ScaleRule rule,
                                 at::Tensor absMaxes)
    : q_(std::move(q)), storage_(storage), scale_(scale),
      shape_(std::move(shape)), rule_(rule), grid_(grid) {
  numel_ = c10::multiply_integers(shape_);
  deltas_ = deltas.to(q_.device()).contiguous();
  if (rule_ == ScaleRule::AbsMax)
    absMaxes_ = absMaxes.to(q_.device()).contiguous();
  maxqs_ = unpack().reshape({rows(), rowLength()}).amax(1).contiguous();
}

const at::Tensor &QuantizedWeight::packed() const {
  TORCH_CHECK(isPacked(), "dqt: QuantizedWeight.packed: the weight is stored "
                          "as int8, not packed");
  return q_;
}

at::Tensor QuantizedWeight::unpack() const {
  return isPacked() ? decodeTernary(q_, shape_) : q_;
}

QuantizedWeight QuantizedWeight::fromFloat(const at::Tensor &weight, Grid grid,
                                           Storage storage, ScaleMode scale,
                                           ScaleRule rule) {
  TORCH_CHECK(rule == ScaleRule::MaxQ || !grid.ternary,
              "dqt: QuantizedWeight.fromFloat: the absmax scale rule is for "
              "2..8-bit grids; ternary weights keep the paper's rule");
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
  std::vector<float> absMax;
  std::vector<float> s = rule == ScaleRule::AbsMax
                             ? absmaxScales(w, rows, grid.qp(), absMax)
                             : absmeanScales(w, rows, grid.qp());
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
  at::Tensor absMaxes;
  if (rule == ScaleRule::AbsMax)
    absMaxes = at::tensor(absMax, at::kFloat);
  return QuantizedWeight(q, grid, storage, scale, std::move(shape), deltas,
                         rule, absMaxes);
}

float QuantizedWeight::delta() const {
  TORCH_CHECK(!isRowScaled(), "dqt: QuantizedWeight.delta: the weight has one "
                              "delta per row (use deltaRows())");
  return deltas_.item<float>();
}

int8_t QuantizedWeight::maxQ() const {
  return isRowScaled() ? maxqs_.max().item<int8_t>() : maxqs_.item<int8_t>();
}

float QuantizedWeight::nextDelta() const {
  TORCH_CHECK(!isRowScaled(), "dqt: QuantizedWeight.nextDelta: the weight "
                              "has one delta per row (use nextDeltaRows())");
  if (rule_ == ScaleRule::AbsMax)
    return nextDeltas().item<float>();
  return grid_.nextDelta(delta(), maxQ());
}

const at::Tensor &QuantizedWeight::deltaRows() const {
  TORCH_CHECK(isRowScaled(), "dqt: QuantizedWeight.deltaRows: the weight has "
                             "one delta per tensor (use delta())");
  return deltas_;
}

const at::Tensor &QuantizedWeight::maxQRows() const {
  TORCH_CHECK(isRowScaled(), "dqt: QuantizedWeight.maxQRows: the weight has "
                             "one delta per tensor (use maxQ())");
  return maxqs_;
}

at::Tensor QuantizedWeight::nextDeltas() const {
  // Grid::nextDelta element-wise, as separate correctly rounded f32
  // operations (no contraction): f32(maxq) * delta, then a division by a
  // tensor of Qp (ATen turns a division by a host scalar into a
  // multiplication by its reciprocal on a GPU, which rounds differently).
  at::Tensor qp = at::full_like(deltas_, float(grid_.qp()));
  if (rule_ == ScaleRule::AbsMax) // a / Qp where 0 < a < inf (f32 divide)
    return at::where(absMaxes_.gt(0) & absMaxes_.isfinite(),
                     absMaxes_.div(qp), deltas_);
  at::Tensor scaled = maxqs_.to(at::kFloat).mul(deltas_).div(qp);
  return at::where(maxqs_.gt(0), scaled, deltas_);
}

at::Tensor QuantizedWeight::nextDeltaRows() const {
  deltaRows(); // the per-row check
  return nextDeltas();
}

void QuantizedWeight::update(float delta, int8_t maxq) {
  TORCH_CHECK(!isRowScaled(), "dqt: QuantizedWeight.update: the weight has "
                              "one delta per row: pass deltaRows and maxqRows");
  deltas_.fill_(delta);
  maxqs_.fill_(maxq);
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
  setStepScales(deltaRows.to(device()).contiguous().clone(),
                maxqRows.to(device()).contiguous().clone());
}

void QuantizedWeight::setStepScales(at::Tensor deltas, at::Tensor maxqs) {
  deltas_ = std::move(deltas);
  maxqs_ = std::move(maxqs);
}

void QuantizedWeight::setStepAbsMaxes(at::Tensor absMaxes) {
  TORCH_CHECK(rule_ == ScaleRule::AbsMax,
              "dqt: QuantizedWeight.setStepAbsMaxes: the weight follows the "
              "paper's scale rule and keeps no max|w|");
  absMaxes_ = std::move(absMaxes);
}

void QuantizedWeight::moveTo(at::Device device) {
  if (absMaxes_.defined())
    absMaxes_ = absMaxes_.to(device);
  q_ = q_.to(device);
  deltas_ = deltas_.to(device);
  maxqs_ = maxqs_.to(device);
  if (grad_.defined())
    grad_ = grad_.to(device);
}

at::Tensor QuantizedWeight::dequantize() const {
  return (unpack().to(at::kFloat).reshape({rows(), rowLength()}) *
          deltas_.view({rows(), 1}))
      .view(shape_);
}

at::Tensor &QuantizedWeight::grad() {
  if (!grad_.defined())
    grad_ = at::zeros(shape_, q_.options().dtype(at::kFloat));
  return grad_;
}

} // namespace dqt
