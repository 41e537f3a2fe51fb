//===- QuantizedWeight.h - integer-only weight storage ----------*- C++ -*-===//

#ifndef DQT_RUNTIME_QUANTIZEDWEIGHT_H
#define DQT_RUNTIME_QUANTIZEDWEIGHT_H

#include "dqt/Compiler/StepConfig.h"

#include <ATen/ATen.h>

namespace dqt {

/// The integer grid of a weight: `bits` in [2, 8], or ternary (1.58 bits).
struct Grid {
  int bits = 8;
  bool ternary = false;

  /// 1.58 (or anything in (1, 2)) means ternary; 2..8 integer widths.
  /// Errors name `who` (the API the user called).
  static Grid fromBits(double bits, const char *who = "dqt");
  int64_t qn() const { return gridBounds(bits, ternary).qn; }
  int64_t qp() const { return gridBounds(bits, ternary).qp; }
  /// The next step's scale (docs/numerics.md): maxq * delta / Qp when the
  /// maximum `maxq` of q is positive, else delta; in f32.
  float nextDelta(float delta, int64_t maxq) const {
    return maxq > 0 ? float(maxq) * delta / float(qp()) : delta;
  }
  std::string str() const;
};

/// How the integers are stored.
enum class Storage {
  /// One int8 per weight, in the weight's shape.
  Int8,
  /// Ternary only: 4 two-bit codes per byte, a 1-D uint8 tensor of
  /// ceil(n/4) bytes (docs/numerics.md, "Packed ternary storage").
  PackedTernary,
};

/// Packs ternary int8 values (any shape, on any device) into ceil(n/4)
/// bytes (uint8) on the same device; throws (c10::Error) naming the first
/// element that is not in {-1, 0, 1}.
at::Tensor packTernary(const at::Tensor &q);
/// Unpacks `numel` values from packed bytes into an int8 tensor of `shape`
/// on the bytes' device. Throws (c10::Error) on an invalid code 0b10 or
/// non-zero unused bits.
at::Tensor unpackTernary(const at::Tensor &bytes, at::IntArrayRef shape);
/// unpackTernary without the checks, for storage the kernels wrote (valid
/// by construction): device ops only, no copy to the host.
at::Tensor decodeTernary(const at::Tensor &bytes, at::IntArrayRef shape);
/// Checks that `bytes` is valid packed storage of `numel` values (uint8,
/// ceil(numel/4) bytes, no code 0b10, unused bits 0); the message names `who`.
/// Reads the bytes on the host (a copy, and a synchronization, from a GPU).
void checkPackedTernary(const at::Tensor &bytes, int64_t numel,
                        const std::string &who);

/// A weight that exists only as integers: int8 storage `q` (any shape), a
/// step `delta` (one per tensor, or with ScaleMode::Row one per output row),
/// and the signed maximum of `q` (per tensor or per row: the next step's
/// scale, produced by every step as a by-product). No float copy is kept;
/// the gradient is a transient f32 buffer the optimizer consumes.
///
/// Per-row scale (docs/numerics.md, "Per-row scale"): for a weight of shape
/// [out, ...] (at least 2-D), row r is elements [r*L, (r+1)*L) of the
/// flattened weight, L = numel / out; each row has its own delta_r and
/// max q_r, initialized and stepped by the per-tensor formulas applied row
/// by row.
///
/// Everything lives on one device, CPU or CUDA: the integers, the scales
/// (delta and max q as tensors, one element per tensor or per row) and the
/// gradient. A step on a GPU leaves the next scales on the GPU; only the
/// accessors that return host numbers synchronize (docs/design.md, "Where
/// the CUDA path synchronizes").
class QuantizedWeight {
public:
  /// The DQT initialization (docs/numerics.md): s = Qp / max(mean|W|, 1e-5),
  /// q = clamp(round_half_even(W*s), Qn, Qp), delta = 1/s; with
  /// ScaleMode::Row the same per output row (W of at least 2 dimensions).
  /// With Storage::PackedTernary (ternary grids only) the integers are
  /// kept packed, 4 per byte. The weight lives on `weight`'s device; the
  /// means are summed on the host in element order, so a weight made on a
  /// GPU has the bits of one made on the CPU.
  ///
  /// With ScaleRule::AbsMax (2..8-bit grids; docs/numerics.md, "Scale
  /// rules") the scale maps max|W| to Qp instead, s = Qp / max(max|W|, 1e-5),
  /// and the weight keeps max|w| (f32 [rows()]) for the next step's delta.
  static QuantizedWeight fromFloat(const at::Tensor &weight, Grid grid,
                                   Storage storage = Storage::Int8,
                                   ScaleMode scale = ScaleMode::Tensor,
                                   ScaleRule rule = ScaleRule::MaxQ);

  /// q * delta as f32, in the weight's shape (per row: q * delta_r, each
  /// row by its own step).
  at::Tensor dequantize() const;

  /// The integer storage: int8 in the weight's shape, or with packed
  /// storage the uint8 bytes (as packed(); use unpack() for the values).
  const at::Tensor &q() const { return q_; }
  at::Tensor &q() { return q_; }
  Storage storage() const { return storage_; }
  bool isPacked() const { return storage_ == Storage::PackedTernary; }
  /// The packed bytes (packed storage only).
  const at::Tensor &packed() const;
  /// The integers as int8 in the weight's shape (a copy when packed).
  at::Tensor unpack() const;
  /// The weight's shape (q's shape unless packed).
  at::IntArrayRef sizes() const { return shape_; }
  Grid grid() const { return grid_; }
  int64_t numel() const { return numel_; }

  /// One delta per tensor or per output row.
  ScaleMode scale() const { return scale_; }
  bool isRowScaled() const { return scale_ == ScaleMode::Row; }
  /// How the next step's delta is chosen.
  ScaleRule rule() const { return rule_; }
  /// ScaleRule::AbsMax: max|w2| of the last step (or of the initial float
  /// weights), f32 [rows()] on device(); undefined under the paper's rule.
  const at::Tensor &absMaxes() const { return absMaxes_; }
  /// Number of rows with their own delta: sizes()[0] per row, 1 per tensor.
  int64_t rows() const { return isRowScaled() ? shape_[0] : 1; }
  /// Elements per row (numel / rows()).
  int64_t rowLength() const { return numel_ / rows(); }
  /// Where the integers, the scales and the gradient live.
  at::Device device() const { return q_.device(); }

  /// The scales, in either mode, on device(): delta f32 [rows()] and the
  /// maximum of each row's q, int8 [rows()] (per tensor: one row). The live
  /// tensors: never write them, use update(). A step replaces them.
  const at::Tensor &deltas() const { return deltas_; }
  const at::Tensor &maxQs() const { return maxqs_; }
  /// Each row's next step by the weight's rule: the paper's
  /// Grid::nextDelta(delta_r, max q_r) (an f32 multiply, then an f32 divide
  /// by a tensor of Qp: the bits of the host formula, docs/numerics.md), or
  /// under ScaleRule::AbsMax a_r / Qp where 0 < a_r < inf (else delta_r);
  /// computed on device() by device operations, a new f32 [rows()] tensor.
  /// No host synchronization.
  at::Tensor nextDeltas() const;

  /// The per-tensor delta (ScaleMode::Tensor only; throws otherwise). Read
  /// from device(): a synchronization on a GPU.
  float delta() const;
  /// The maximum of q over the whole tensor (either scale mode); read from
  /// device(): a synchronization on a GPU.
  int8_t maxQ() const;
  /// The scale of the next step (by the rule, as nextDeltas();
  /// ScaleMode::Tensor only; on the host, so a synchronization on a GPU).
  float nextDelta() const;

  /// Per-row scale only (throw otherwise): deltas() and maxQs() under the
  /// names of the per-row API.
  const at::Tensor &deltaRows() const;
  const at::Tensor &maxQRows() const;
  /// nextDeltas() (per-row scale only).
  at::Tensor nextDeltaRows() const;

  /// The kernel configuration that steps this weight (grid, storage and
  /// scale mode) with optimizer `kind` and states of type `states`.
  StepConfig stepConfig(Optimizer kind, StateType states) const {
    StepConfig c;
    c.optimizer = kind;
    c.bits = grid_.bits;
    c.ternary = grid_.ternary;
    c.packed = isPacked();
    c.stateType = states;
    c.scale = scale_;
    c.rule = rule_;
    return c;
  }

  /// Sets delta and max q after a step or a load (ScaleMode::Tensor only;
  /// written on device(), stream-ordered). Under ScaleRule::AbsMax the next
  /// delta comes from absMaxes() (set by setStepAbsMaxes), not from these.
  void update(float delta, int8_t maxq);
  /// Sets each row's delta (f32 [rows()], finite, > 0) and max q (int8
  /// [rows()], in the grid) after a checkpoint load (ScaleMode::Row only);
  /// the tensors are copied to device(). Throws c10::Error, changing
  /// nothing, on a mismatch (the check reads them on the host).
  void update(const at::Tensor &deltaRows, const at::Tensor &maxqRows);
  /// After a step (the optimizer's business), in either mode: takes the
  /// step's delta' (f32 [rows()]) and max q' (int8 [rows()]), both
  /// contiguous on device(), as they are. Unlike update(), nothing is
  /// validated, copied or synchronized: the kernel produced them, in the
  /// grid by construction.
  void setStepScales(at::Tensor deltas, at::Tensor maxqs);
  /// After a step under ScaleRule::AbsMax: the step's max|w2| (f32
  /// [rows()] on device(), -0.0 or 0 where a row had none), taken as it is.
  void setStepAbsMaxes(at::Tensor absMaxes);
  /// Throws c10::Error naming `who` unless update(deltaRows, maxqRows) would
  /// accept the tensors.
  void checkRowScales(const at::Tensor &deltaRows, const at::Tensor &maxqRows,
                      const std::string &who) const;

  /// Moves the integers, the scales and the gradient to `device` (CPU or
  /// CUDA), in place: whoever points at the weight keeps pointing at it.
  /// The values are unchanged. An optimizer's states do not move with it:
  /// build the optimizer after moving its weights (it refuses states on
  /// another device).
  void moveTo(at::Device device);

  /// The gradient buffer (f32, q's shape), created on first use.
  at::Tensor &grad();
  bool hasGrad() const { return grad_.defined(); }
  /// Frees the gradient buffer.
  void clearGrad() { grad_ = at::Tensor(); }

  /// Bytes of persistent state: the integers (ceil(n/4) when packed) and
  /// the scales (delta and max q: 4 + 1 bytes per tensor, or per row; under
  /// ScaleRule::AbsMax 4 more, max|w|), not the gradient.
  int64_t persistentBytes() const {
    return q_.numel() + rows() * int64_t(sizeof(float) + sizeof(int8_t)) +
           (absMaxes_.defined() ? rows() * int64_t(sizeof(float)) : 0);
  }

private:
  QuantizedWeight(at::Tensor q, Grid grid, Storage storage, ScaleMode scale,
                  std::vector<int64_t> shape, at::Tensor deltas,
                  ScaleRule rule = ScaleRule::MaxQ,
                  at::Tensor absMaxes = at::Tensor());
  at::Tensor q_;
  Storage storage_ = Storage::Int8;
  ScaleMode scale_ = ScaleMode::Tensor;
  std::vector<int64_t> shape_;
  int64_t numel_ = 0;
  /// delta_r (f32) and max q_r (int8), [rows()], on q's device.
  at::Tensor deltas_, maxqs_;
  ScaleRule rule_ = ScaleRule::MaxQ;
  /// max|w2| (f32) [rows()], ScaleRule::AbsMax only.
  at::Tensor absMaxes_;
  Grid grid_;
  at::Tensor grad_;
};

} // namespace dqt

#endif // DQT_RUNTIME_QUANTIZEDWEIGHT_H
