//===- Bindings.cpp - the dqt Python extension (dqt._C) -------------------===//
//
// Thin pybind11 bindings over the runtime; the Python modules in dqt/ give
// them their public names and signatures.
//
//===----------------------------------------------------------------------===//

#include "dqt/Runtime/Adafactor.h"
#include "dqt/Runtime/Checkpoint.h"
#include "dqt/Runtime/Functional.h"
#include "dqt/Runtime/KernelBundle.h"
#include "dqt/Compiler/KernelAbi.h"
#include "dqt/Runtime/KernelCache.h"
#include "dqt/Runtime/OptimizerFile.h"
#include "dqt/Runtime/Optimizers.h"
#include "dqt/Runtime/QuantLinear.h"

#include <torch/extension.h>

#include <cmath>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace py = pybind11;
using namespace dqt;

namespace {
/// What adamw_step_ returns (attributes of the Python object).
struct PyStepResult {
  float delta;
  int64_t maxQ, changed, nonFinite;
};

/// The grid of `bits`, or ValueError naming `who` (Python callers expect a
/// ValueError for a bad argument value, not the RuntimeError of c10::Error).
Grid gridOf(double bits, const char *who) {
  bool ternary = bits > 1.0 && bits < 2.0;
  if (!ternary && !(bits == std::floor(bits) && bits >= 2 && bits <= 8)) {
    std::ostringstream os;
    os << who << ": bits must be 1.58 (ternary) or an integer in [2, 8], got "
       << bits;
    throw py::value_error(os.str());
  }
  return Grid::fromBits(bits, who);
}

/// The storage asked for by the Python keyword `packed` (a bool): packed
/// ternary (4 codes per byte) or int8. TypeError/ValueError naming `who`,
/// before anything is built, for a non-bool or a grid that is not ternary.
Storage storageOf(const py::object &packed, const Grid &grid, double bits,
                  const char *who) {
  if (!py::isinstance<py::bool_>(packed))
    throw py::type_error(
        std::string(who) + ": packed must be a bool, got " +
        std::string(py::str(py::type::of(packed).attr("__name__"))));
  if (!packed.cast<bool>())
    return Storage::Int8;
  if (!grid.ternary) {
    std::ostringstream os;
    os << who << ": packed=True stores ternary weights 4 per byte; it needs "
       << "bits=1.58, got bits=" << bits;
    throw py::value_error(os.str());
  }
  return Storage::PackedTernary;
}

/// The scale mode asked for by the Python keyword `scale`: "tensor" (one
/// delta per tensor) or "row" (one per output row). TypeError/ValueError
/// naming `who` for anything else.
ScaleMode scaleOf(const py::object &scale, const char *who) {
  if (!py::isinstance<py::str>(scale))
    throw py::type_error(
        std::string(who) + ": scale must be a str ('tensor' or 'row'), got " +
        std::string(py::str(py::type::of(scale).attr("__name__"))));
  std::string s = scale.cast<std::string>();
  if (s == "tensor")
    return ScaleMode::Tensor;
  if (s == "row")
    return ScaleMode::Row;
  throw py::value_error(std::string(who) +
                        ": scale must be 'tensor' or 'row', got '" + s + "'");
}

/// The scale rule asked for by the Python keyword `scale_rule`: "maxq" (the
/// paper's) or "absmax" (2..8-bit grids). TypeError/ValueError naming `who`.
ScaleRule ruleOf(const py::object &rule, const Grid &grid, const char *who) {
  if (!py::isinstance<py::str>(rule))
    throw py::type_error(
        std::string(who) +
        ": scale_rule must be a str ('maxq' or 'absmax'), got " +
        std::string(py::str(py::type::of(rule).attr("__name__"))));
  std::string s = rule.cast<std::string>();
  ScaleRule r;
  try {
    r = scaleRuleFromName(s);
  } catch (const std::invalid_argument &) {
    throw py::value_error(std::string(who) +
                          ": scale_rule must be 'maxq' or 'absmax', got '" +
                          s + "'");
  }
  if (r == ScaleRule::AbsMax && grid.ternary)
    throw py::value_error(std::string(who) +
                          ": scale_rule='absmax' is for bits 2..8; ternary "
                          "weights keep the paper's rule ('maxq')");
  return r;
}

/// The Python name of a scale mode ("tensor" or "row").
const char *scaleName(ScaleMode scale) {
  return scale == ScaleMode::Row ? "row" : "tensor";
}

/// ValueError naming `who` unless a weight of `sizes` can have `scale`
/// (per row: at least 2 dimensions [out, ...]).
void checkScaleShape(ScaleMode scale, at::IntArrayRef sizes, const char *who) {
  if (scale == ScaleMode::Tensor || sizes.size() >= 2)
    return;
  std::ostringstream os;
  os << who << ": scale='row' gives each output row its own delta and needs "
     << "a weight of at least 2 dimensions [out, ...], got shape " << sizes
     << " (use scale='tensor')";
  throw py::value_error(os.str());
}

/// ValueError naming `who` unless `w` has scale mode `want`; the message
/// points at `instead` (what to use for w's mode).
void requireScale(const QuantizedWeight &w, ScaleMode want, const char *who,
                  const char *instead) {
  if (w.scale() == want)
    return;
  std::ostringstream os;
  os << who << ": the weight has "
     << (w.isRowScaled() ? "one delta per row (scale='row')"
                         : "one delta per tensor (scale='tensor')")
     << "; use " << instead;
  throw py::value_error(os.str());
}

/// The integers `q` a checkpoint gives weight `w` (int8 in w's shape, or for
/// a ternary weight packed uint8 bytes), validated against w's grid: the
/// int8 values and an empty `error`, or an undefined tensor and the message
/// in `error`.
at::Tensor checkedValues(const QuantizedWeight &w, const at::Tensor &q,
                         const char *who, std::string &error) {
  Grid g = w.grid();
  std::ostringstream os;
  at::Tensor values;
  // Either storage (the dtype says which), so a packed checkpoint loads
  // into an int8 ternary weight and back.
  if (q.scalar_type() == at::kByte && g.ternary) {
    try {
      checkPackedTernary(q, w.numel(), who);
      values = unpackTernary(q, w.sizes());
    } catch (const c10::Error &e) {
      os << e.what_without_backtrace();
    }
  } else if (q.scalar_type() != at::kChar || q.sizes() != w.sizes()) {
    os << who << ": q must be int8 of shape " << w.sizes();
    if (g.ternary)
      os << " or packed ternary uint8[" << (w.numel() + 3) / 4 << "]";
    os << ", got " << q.scalar_type() << q.sizes();
  } else if (q.numel() && (q.min().item<int64_t>() < g.qn() ||
                           q.max().item<int64_t>() > g.qp())) {
    os << who << ": q has values outside the " << g.str() << " grid [" << g.qn()
       << ", " << g.qp() << "]";
  } else {
    values = q;
  }
  error = os.str();
  return values;
}

/// Writes validated integers into `w`'s storage (`q` as given: packed bytes
/// are copied as they are).
void storeValues(QuantizedWeight &w, const at::Tensor &q,
                 const at::Tensor &values) {
  if (w.isPacked())
    w.q().copy_(q.scalar_type() == at::kByte ? q : packTernary(values));
  else
    w.q().copy_(values);
}

/// `bits` as Python shows it: 1.58 for ternary, else the integer width.
py::object bitsOf(const Grid &g) {
  if (g.ternary)
    return py::float_(1.58);
  return py::int_(g.bits);
}

/// Per-tensor statistics as (max_q, changed, nonfinite) tuples.
py::list statsList(const std::vector<StepStats> &stats) {
  py::list out;
  for (const StepStats &s : stats)
    out.append(py::make_tuple(s.maxQ, s.changed, s.nonFinite));
  return out;
}

using WeightPtr = std::shared_ptr<QuantizedWeight>;

/// Raw pointers for the C++ optimizer; the Python object keeps the shared
/// pointers alive (py::keep_alive on the constructors).
std::vector<QuantizedWeight *> rawPointers(const std::vector<WeightPtr> &ws) {
  std::vector<QuantizedWeight *> out;
  for (const WeightPtr &w : ws)
    out.push_back(w.get());
  return out;
}
} // namespace

PYBIND11_MODULE(_C, m) {
  // The numerics contract (docs/numerics.md) that dqt.optim state_dicts
  // record and check, as the optimizer files do.
  m.attr("NUMERICS_VERSION") = optim::kNumericsVersion;
  m.doc() = "dqt: Direct Quantized Training kernels (C++ extension)";
  py::class_<PyStepResult>(m, "StepResult")
      .def_readonly("delta", &PyStepResult::delta,
                    "the new delta (step of the grid)")
      .def_readonly("max_q", &PyStepResult::maxQ, "max of the new q")
      .def_readonly("changed", &PyStepResult::changed,
                    "number of elements whose integer changed")
      .def_readonly("nonfinite", &PyStepResult::nonFinite,
                    "number of non-finite gradient elements (left untouched)")
      .def("__repr__", [](const PyStepResult &r) {
        std::ostringstream os;
        os << "StepResult(delta=" << r.delta << ", max_q=" << r.maxQ
           << ", changed=" << r.changed << ", nonfinite=" << r.nonFinite << ")";
        return os.str();
      });

  py::class_<StepStatsList>(
      m, "StepStatsList",
      "A step's per-parameter statistics; those of GPU parameters stay in "
      "device memory until get() (one synchronization per launch).")
      .def_property_readonly("pending", &StepStatsList::pending)
      .def("__len__", &StepStatsList::size)
      .def(
          "get",
          [](const StepStatsList &s) {
            std::vector<StepStats> stats;
            {
              py::gil_scoped_release release;
              stats = s.get();
            }
            return statsList(stats);
          },
          "[(max_q, changed, nonfinite)] per parameter, read once.");

  m.def("philox_uniform", &functional::philoxUniform, py::arg("seed"),
        py::arg("step"), py::arg("tensor_id"), py::arg("numel"));

  m.def(
      "adamw_step_",
      [](at::Tensor q, double delta, int64_t maxQ, at::Tensor grad,
         at::Tensor expAvg, at::Tensor expAvgSq, int64_t step, double lr,
         double beta1, double beta2, double eps, double weightDecay,
         double bits, uint64_t seed, int64_t tensorId) {
        functional::AdamWStepArgs a{step,        lr,   beta1, beta2,   eps,
                                    weightDecay, bits, seed,  tensorId};
        functional::StepResult r;
        {
          py::gil_scoped_release release;
          r = functional::adamwStep(q, delta, maxQ, grad, expAvg, expAvgSq, a);
        }
        return PyStepResult{r.delta, r.stats.maxQ, r.stats.changed,
                            r.stats.nonFinite};
      },
      py::arg("q"), py::arg("delta"), py::arg("max_q"), py::arg("grad"),
      py::arg("exp_avg"), py::arg("exp_avg_sq"), py::kw_only(), py::arg("step"),
      py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
      py::arg("weight_decay"), py::arg("bits"), py::arg("seed"),
      py::arg("tensor_id"));

  py::class_<QuantizedWeight, WeightPtr>(m, "QuantizedWeight",
                                         py::dynamic_attr(), R"doc(
A weight stored only as n-bit integers: int8 `q` on the grid of `bits`
(1.58 = ternary {-1, 0, 1}, else [-2^(b-1), 2^(b-1) - 1]) and an f32 step:
one `delta` per tensor (scale="tensor"), or with scale="row" one per output
row (`delta_rows`, row r = elements [r*L, (r+1)*L) of the flattened weight,
L = numel / shape[0]); its value is q * delta. No float copy is kept.
Ternary weights may be stored packed, 4 two-bit codes per byte
(from_float(..., packed=True)).
`grad` is a transient float32 buffer of the weight's shape (None until a
backward pass or an assignment creates it) that the DQT optimizers consume.)doc")
      .def_static(
          "from_float",
          [](const at::Tensor &tensor, double bits, const py::object &packed,
             const py::object &scale, const py::object &scaleRule) {
            const char *who = "dqt.QuantizedWeight.from_float";
            Grid grid = gridOf(bits, who);
            Storage storage = storageOf(packed, grid, bits, who);
            ScaleMode mode = scaleOf(scale, who);
            ScaleRule rule = ruleOf(scaleRule, grid, who);
            checkScaleShape(mode, tensor.sizes(), who);
            return std::make_shared<QuantizedWeight>(
                QuantizedWeight::fromFloat(tensor, grid, storage, mode, rule));
          },
          py::arg("tensor"), py::arg("bits"), py::kw_only(),
          py::arg("packed") = false, py::arg("scale") = "tensor",
          py::arg("scale_rule") = "maxq",
          "The DQT initialization (docs/numerics.md): s = Qp / "
          "max(mean|W|, 1e-5), q = clamp(round_half_even(W*s), Qn, Qp), "
          "delta = 1/s. scale='row' (a weight of at least 2 dimensions) "
          "applies it to each output row: s_r, q and delta_r per row. "
          "packed=True (ternary only) keeps the integers 4 per "
          "byte (2-bit codes, docs/numerics.md); the values and every "
          "optimizer step are bit-identical to int8 storage. "
          "scale_rule='absmax' (bits 2..8, docs/numerics.md \"Scale "
          "rules\") maps max|W| to Qp instead, s = Qp / max(max|W|, "
          "1e-5), and each step takes the next delta from max|w| before "
          "clamping, so the grid can grow.")
      .def_property_readonly(
          "q", [](QuantizedWeight &w) { return w.unpack(); },
          "the integers as int8 in the weight's shape: the live storage "
          "(in-place changes are seen) unless packed, where it is a copy "
          "(writes to it do not reach the weight)")
      .def_property_readonly(
          "packed", &QuantizedWeight::isPacked,
          "whether the integers are stored packed, 4 ternary codes per byte")
      .def_property_readonly(
          "packed_bytes",
          [](QuantizedWeight &w) {
            if (!w.isPacked())
              throw py::value_error("dqt.QuantizedWeight.packed_bytes: the "
                                    "weight is stored as int8, not packed");
            return w.q();
          },
          "the live packed storage (packed weights only): uint8[ceil(n/4)], "
          "element i in bits 2*(i%4).. of byte i//4, codes 0b00 = 0, "
          "0b01 = 1, 0b11 = -1")
      .def_property_readonly(
          "scale",
          [](const QuantizedWeight &w) { return scaleName(w.scale()); },
          "'tensor' (one delta) or 'row' (one delta per output row)")
      .def_property_readonly(
          "scale_rule",
          [](const QuantizedWeight &w) { return scaleRuleName(w.rule()); },
          "'maxq' (the paper's rule: delta' = max(q)*delta/Qp) or 'absmax' "
          "(delta' = max|w|/Qp, max|w| taken before clamping)")
      .def_property_readonly(
          "abs_max",
          [](const QuantizedWeight &w) -> py::object {
            if (w.rule() != ScaleRule::AbsMax)
              return py::none();
            return py::cast(w.absMaxes().clone());
          },
          "scale_rule='absmax': max|w| of the last step before clamping "
          "(or of the initial float weight), float32[rows] (a copy; the "
          "next delta is abs_max / Qp where it is > 0); None otherwise")
      .def(
          "_set_abs_max",
          [](QuantizedWeight &w, const at::Tensor &absMax) {
            const char *who = "dqt.QuantizedWeight.load";
            std::ostringstream os;
            if (w.rule() != ScaleRule::AbsMax)
              os << who << ": the weight follows the paper's scale rule "
                 << "(scale_rule='maxq') and keeps no abs_max";
            else if (absMax.scalar_type() != at::kFloat || absMax.dim() != 1 ||
                     absMax.size(0) != w.rows())
              os << who << ": abs_max must be float32[" << w.rows()
                 << "], got " << absMax.scalar_type() << absMax.sizes();
            else if ((absMax.isnan() | absMax.lt(0)).any().item<bool>())
              os << who << ": abs_max must be >= 0 and not NaN";
            if (!os.str().empty())
              throw py::value_error(os.str());
            w.setStepAbsMaxes(absMax.to(w.device()).contiguous().clone());
          },
          py::arg("abs_max"),
          "Replaces abs_max of a scale_rule='absmax' weight (validated "
          "first: on error nothing changes).")
      .def_property_readonly("rows", &QuantizedWeight::rows,
                             "number of deltas: shape[0] with scale='row', "
                             "else 1")
      .def_property_readonly(
          "delta",
          [](const QuantizedWeight &w) {
            requireScale(w, ScaleMode::Tensor, "dqt.QuantizedWeight.delta",
                         "delta_rows");
            return w.delta();
          },
          "the f32 grid step (scale='tensor' only; ValueError otherwise)")
      .def_property_readonly(
          "device", [](const QuantizedWeight &w) { return w.device(); },
          "where the integers, the scales and the gradient live")
      .def(
          "_move_to",
          [](QuantizedWeight &w, at::Device device) {
            TORCH_CHECK(device.is_cpu() || device.is_cuda(),
                        "dqt.QuantizedWeight: cannot move to ", device,
                        " (CPU and CUDA are supported)");
            w.moveTo(device);
          },
          py::arg("device"),
          "Moves the integers, scales and gradient to `device`, in place "
          "(the layer's .to() / .cuda() call it).")
      .def_property_readonly(
          "max_q", [](const QuantizedWeight &w) { return int(w.maxQ()); },
          "max of q over the whole weight (with scale='tensor' and "
          "scale_rule='maxq' the next step's scale)")
      .def_property_readonly(
          "delta_rows",
          [](const QuantizedWeight &w) {
            requireScale(w, ScaleMode::Row, "dqt.QuantizedWeight.delta_rows",
                         "delta");
            return w.deltaRows().clone();
          },
          "each row's f32 grid step, float32[rows] (scale='row' only; a "
          "copy)")
      .def_property_readonly(
          "max_q_rows",
          [](const QuantizedWeight &w) {
            requireScale(w, ScaleMode::Row, "dqt.QuantizedWeight.max_q_rows",
                         "max_q");
            return w.maxQRows().clone();
          },
          "each row's max of q, int8[rows] (the next step's scale of the "
          "row; scale='row' only; a copy)")
      .def_property_readonly(
          "bits", [](const QuantizedWeight &w) { return bitsOf(w.grid()); },
          "1.58 (ternary) or 2..8")
      .def_property_readonly(
          "qn", [](const QuantizedWeight &w) { return w.grid().qn(); })
      .def_property_readonly(
          "qp", [](const QuantizedWeight &w) { return w.grid().qp(); })
      .def_property_readonly("shape",
                             [](const QuantizedWeight &w) {
                               return py::tuple(py::cast(w.sizes().vec()));
                             })
      .def("numel", &QuantizedWeight::numel)
      .def(
          "dequantize", [](const QuantizedWeight &w) { return w.dequantize(); },
          "q * delta as a new float32 tensor (scale='row': each row times "
          "its own delta)")
      .def_property(
          "grad",
          [](QuantizedWeight &w) -> py::object {
            if (!w.hasGrad())
              return py::none();
            return py::cast(w.grad());
          },
          [](QuantizedWeight &w, std::optional<at::Tensor> g) {
            if (!g) {
              w.clearGrad();
              return;
            }
            if (g->scalar_type() != at::kFloat || g->sizes() != w.sizes() ||
                g->device() != w.device() || !g->is_contiguous()) {
              std::ostringstream os;
              os << "dqt.QuantizedWeight.grad: must be a contiguous float32 "
                    "tensor of shape "
                 << w.sizes() << " on " << w.device() << ", got "
                 << g->scalar_type() << g->sizes() << " on " << g->device();
              throw py::value_error(os.str());
            }
            w.grad() = *g;
          },
          "the gradient buffer (float32, q's shape) or None; assign None "
          "to free it")
      .def_property_readonly(
          "persistent_bytes", &QuantizedWeight::persistentBytes,
          "bytes kept between steps: the integers (1 byte each, or "
          "ceil(n/4) bytes packed) and delta (4; scale='row': 5 a row, "
          "delta and max q; scale_rule='absmax': 4 more a row, abs_max)")
      .def_property_readonly(
          "grad_bytes",
          [](QuantizedWeight &w) {
            return w.hasGrad() ? w.grad().numel() * 4 : int64_t(0);
          },
          "bytes of the transient gradient buffer (0 when freed)")
      .def(
          "_set_state",
          [](QuantizedWeight &w, const at::Tensor &q, double delta,
             int64_t maxQ) {
            const char *who = "dqt.QuantizedWeight.load";
            requireScale(w, ScaleMode::Tensor, who,
                         "a delta and a max q per row");
            Grid g = w.grid();
            std::string error;
            at::Tensor values = checkedValues(w, q, who, error);
            std::ostringstream os;
            os << error;
            if (error.empty() && (!std::isfinite(delta) || !(delta > 0) ||
                                  float(delta) != delta))
              os << who << ": delta must be a finite f32 > 0, got " << delta;
            else if (error.empty() && (maxQ < g.qn() || maxQ > g.qp()))
              os << who << ": max_q " << maxQ << " is outside the " << g.str()
                 << " grid";
            if (!os.str().empty())
              throw py::value_error(os.str());
            storeValues(w, q, values);
            w.update(float(delta), int8_t(maxQ));
          },
          py::arg("q"), py::arg("delta"), py::arg("max_q"),
          "Replaces q (int8 values, or packed uint8 bytes for a ternary "
          "weight), delta and max_q of a scale='tensor' weight (validated "
          "first: on error nothing changes).")
      .def(
          "_set_state_rows",
          [](QuantizedWeight &w, const at::Tensor &q,
             const at::Tensor &deltaRows, const at::Tensor &maxQRows) {
            const char *who = "dqt.QuantizedWeight.load";
            requireScale(w, ScaleMode::Row, who, "one delta and one max q");
            std::string error;
            at::Tensor values = checkedValues(w, q, who, error);
            if (error.empty()) {
              try {
                w.checkRowScales(deltaRows, maxQRows, who);
              } catch (const c10::Error &e) {
                error = e.what_without_backtrace();
              }
            }
            if (!error.empty())
              throw py::value_error(error);
            storeValues(w, q, values);
            w.update(deltaRows, maxQRows);
          },
          py::arg("q"), py::arg("delta_rows"), py::arg("max_q_rows"),
          "Replaces q (as _set_state), each row's delta (float32[rows], "
          "finite, > 0) and max q (int8[rows], on the grid) of a "
          "scale='row' weight (validated first: on error nothing "
          "changes).")
      .def("__repr__", [](const QuantizedWeight &w) {
        std::ostringstream os;
        os << "QuantizedWeight(shape=" << w.sizes() << ", bits="
           << (w.grid().ternary ? "1.58" : std::to_string(w.grid().bits))
           << (w.isPacked() ? ", packed=True" : "");
        if (w.isRowScaled())
          os << ", scale='row', rows=" << w.rows();
        else
          os << ", delta=" << w.delta();
        if (w.rule() == ScaleRule::AbsMax)
          os << ", scale_rule='absmax'";
        os << ", max_q=" << int(w.maxQ()) << ")";
        return os.str();
      });

  m.def(
      "quant_linear",
      [](const at::Tensor &x, const WeightPtr &weight, const at::Tensor &param,
         bool ternaryInference) {
        return nn::quantLinear(x, *weight, param, ternaryInference);
      },
      py::arg("x"), py::arg("weight"), py::arg("param"),
      py::arg("ternary_inference") = false,
      "y = actquant8(x) @ (q*delta)^T (the C++ dqt::nn::QuantLinear's forward, "
      "no bias) over `weight`, straight-through in backward, where dL/dW "
      "becomes the gradient of `param` (the dqt.QuantizedTensor standing for "
      "the weight; none when it does not require grad).");

  m.def(
      "kernel_cache_stats",
      [] {
        KernelCache::Stats s = KernelCache::global().stats();
        py::dict d;
        d["compiled"] = s.compiled;
        d["loaded"] = s.loaded;
        d["rejected"] = s.rejected;
        d["bundled"] = s.bundled;
        return d;
      },
      "Counters of the process-wide kernel cache: compiled (cold), loaded "
      "(from disk), rejected (corrupt or stale disk entries), bundled (taken "
      "from kernel bundles).");
  m.def(
      "load_bundle", [](const std::string &path) { useBundle(path); },
      py::arg("path"),
      "Opens a kernel bundle (lib<name>.so from dqt-aot): its kernels are "
      "used before any other. Raises RuntimeError naming the file when it is "
      "no bundle or was made for another kernel ABI or numerics contract.");
  m.attr("WITH_COMPILER") = runtimeHasCompiler();
  m.def(
      "step_function",
      [](const std::string &key) {
        StepConfig config = StepConfig::fromKey(key);
        std::vector<std::string> args;
        for (const KernelArg &a : stepKernelArgs(config))
          if (!a.isResult())
            args.push_back(a.name());
        return py::make_tuple(stepModuleText(config), args);
      },
      py::arg("key"),
      "The tensor-level IR of the step of configuration `key` (func "
      "@dqt_step) and the names of its arguments (the kernel ABI). Needs the "
      "compiler (WITH_COMPILER).");

  m.def(
      "load_checkpoint",
      [](const std::string &path) {
        checkpoint::Contents c;
        try {
          c = checkpoint::load(path);
        } catch (const c10::Error &e) {
          throw py::value_error(e.what_without_backtrace());
        }
        py::dict tensors, metadata;
        for (const auto &[name, t] : c.tensors)
          tensors[py::str(name)] = t;
        for (const auto &[key, value] : c.metadata)
          metadata[py::str(key)] = value;
        return py::make_tuple(tensors, metadata);
      },
      py::arg("path"),
      "Reads and validates a file in the runtime's checkpoint format "
      "(safetensors with an xxh64 checksum per tensor): (tensors, metadata) "
      "dicts. Raises ValueError with the reason (truncated, bad header, "
      "checksum mismatch, ...).");
  m.def("activation_quant8", &nn::activationQuant8, py::arg("x"));
  m.def("ternarize", &nn::ternarize, py::arg("w"));

  using optim::StepOptimizer;
  py::class_<StepOptimizer, std::shared_ptr<StepOptimizer>>(
      m, "StepOptimizer",
      "The C++ DQT optimizer over integer weights (one kernel launch per "
      "grid configuration): what AdamW, SGD and Adafactor share; dqt.optim "
      "builds torch-style optimizers on them.")
      .def(
          "step",
          [](StepOptimizer &o) {
            py::gil_scoped_release release;
            return o.step();
          },
          "One step; returns its StepStatsList (read with get()).")
      .def_property_readonly("step_count", &StepOptimizer::stepCount)
      .def_property_readonly("seed", &StepOptimizer::seed)
      .def_property_readonly("lr", &StepOptimizer::lr)
      .def_property_readonly("num_params", &StepOptimizer::numParams)
      .def_property_readonly("state_bytes", &StepOptimizer::stateBytes)
      .def_property_readonly("tensor_ids", &StepOptimizer::tensorIds)
      .def("set_tensor_ids", &StepOptimizer::setTensorIds, py::arg("ids"))
      .def(
          "step_config_key",
          [](const StepOptimizer &o, size_t p) { return o.stepConfig(p).key(); },
          py::arg("p"),
          "The kernel configuration key of parameter p on the CPU.")
      .def(
          "float_config_key",
          [](const StepOptimizer &o) { return o.floatConfig().key(); },
          "The kernel configuration key of the float parameters.")
      .def("kernel_hyper_parameters", &StepOptimizer::kernelHyperParameters,
           py::arg("t"),
           "The f32 hyper-parameters the kernels get at step t, in kernel "
           "order.")
      .def(
          "state",
          [](const StepOptimizer &o, size_t p, size_t k) {
            if (p >= o.numParams() || k >= o.numStates(p))
              throw py::index_error("dqt: no such parameter or state");
            return o.state(p, k);
          },
          py::arg("p"), py::arg("k"), "live state tensor k of parameter p")
      .def("restore", &StepOptimizer::restore, py::arg("step"), py::arg("seed"),
           py::arg("states"))
      .def("add_float_parameters", &StepOptimizer::addFloatParameters,
           py::arg("params"),
           "Adds float32 parameters stepped by the same kernel in float mode "
           "(the same math and non-finite masking, no grid), before the "
           "first step; their gradient is autograd's .grad (one without is "
           "skipped).")
      .def_property_readonly("num_float_params",
                             &StepOptimizer::numFloatParams)
      .def(
          "float_state",
          [](const StepOptimizer &o, size_t i, size_t k) {
            if (i >= o.numFloatParams() || k >= o.numFloatStates(i))
              throw py::index_error("dqt: no such float parameter or state");
            return o.floatState(i, k);
          },
          py::arg("i"), py::arg("k"), "live state tensor k of float parameter i")
      .def("restore_float", &StepOptimizer::restoreFloat, py::arg("states"),
           "Sets every float parameter's states (validated first).")
      .def(
          "step_parameter",
          [](StepOptimizer &o, const WeightPtr &weight) {
            py::gil_scoped_release release;
            o.stepParameter(*weight);
          },
          py::arg("weight"),
          "Steps one weight now (inside the backward pass), with the step "
          "count of the step in progress, and frees its gradient buffer; "
          "step() then steps the others and ends the step.")
      .def("save", &StepOptimizer::save, py::arg("path"))
      .def("load", &StepOptimizer::load, py::arg("path"));

  using optim::QuantizedOptimizer;
  py::class_<QuantizedOptimizer, StepOptimizer,
             std::shared_ptr<QuantizedOptimizer>>(
      m, "QuantizedOptimizer",
      "AdamW and SGD: every state shaped like its weight.")
      .def_property_readonly(
          "num_states",
          py::overload_cast<>(&QuantizedOptimizer::numStates, py::const_));

  py::class_<optim::AdamW, QuantizedOptimizer, std::shared_ptr<optim::AdamW>>(
      m, "AdamW")
      .def(py::init([](const std::vector<WeightPtr> &params, double lr,
                       double beta1, double beta2, double eps,
                       double weightDecay, uint64_t seed, bool bf16States) {
             optim::AdamWOptions o;
             o.lr = lr;
             o.beta1 = beta1;
             o.beta2 = beta2;
             o.eps = eps;
             o.weightDecay = weightDecay;
             o.seed = seed;
             o.stateType = bf16States ? StateType::BF16 : StateType::F32;
             return std::make_shared<optim::AdamW>(rawPointers(params), o);
           }),
           py::keep_alive<1, 2>(), py::arg("params"), py::kw_only(),
           py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
           py::arg("weight_decay"), py::arg("seed"),
           py::arg("bf16_states") = false)
      .def(
          "set_options",
          [](optim::AdamW &o, double lr, double beta1, double beta2, double eps,
             double weightDecay) {
            // Start from the current options: fields not set here (the
            // seed, the state type) keep their values.
            optim::AdamWOptions opts = o.options();
            opts.lr = lr;
            opts.beta1 = beta1;
            opts.beta2 = beta2;
            opts.eps = eps;
            opts.weightDecay = weightDecay;
            o.setOptions(opts);
          },
          py::kw_only(), py::arg("lr"), py::arg("beta1"), py::arg("beta2"),
          py::arg("eps"), py::arg("weight_decay"));

  py::class_<optim::SGD, QuantizedOptimizer, std::shared_ptr<optim::SGD>>(m,
                                                                          "SGD")
      .def(py::init([](const std::vector<WeightPtr> &params, double lr,
                       double momentum, double weightDecay, uint64_t seed,
                       bool bf16States) {
             optim::SGDOptions o;
             o.lr = lr;
             o.momentum = momentum;
             o.weightDecay = weightDecay;
             o.seed = seed;
             o.stateType = bf16States ? StateType::BF16 : StateType::F32;
             return std::make_shared<optim::SGD>(rawPointers(params), o);
           }),
           py::keep_alive<1, 2>(), py::arg("params"), py::kw_only(),
           py::arg("lr"), py::arg("momentum"), py::arg("weight_decay"),
           py::arg("seed"), py::arg("bf16_states") = false)
      .def(
          "set_options",
          [](optim::SGD &o, double lr, double momentum, double weightDecay) {
            optim::SGDOptions opts = o.options();
            opts.lr = lr;
            opts.momentum = momentum;
            opts.weightDecay = weightDecay;
            o.setOptions(opts);
          },
          py::kw_only(), py::arg("lr"), py::arg("momentum"),
          py::arg("weight_decay"));

  py::class_<optim::Adafactor, StepOptimizer,
             std::shared_ptr<optim::Adafactor>>(
      m, "Adafactor",
      "The C++ DQT Adafactor (HuggingFace's with a fixed lr, "
      "docs/numerics.md); dqt.optim.Adafactor builds the torch-style "
      "optimizer on it. States of a parameter: factored, row and column; "
      "else the second moment; then the first moment when beta1 > 0.")
      .def(py::init([](const std::vector<WeightPtr> &params, double lr,
                       double beta1, double decayRate, double eps1,
                       double clipThreshold, double weightDecay, uint64_t seed,
                       bool bf16States) {
             optim::AdafactorOptions o;
             o.stateType = bf16States ? StateType::BF16 : StateType::F32;
             o.lr = lr;
             o.beta1 = beta1;
             o.decayRate = decayRate;
             o.eps1 = eps1;
             o.clipThreshold = clipThreshold;
             o.weightDecay = weightDecay;
             o.seed = seed;
             return std::make_shared<optim::Adafactor>(rawPointers(params), o);
           }),
           py::keep_alive<1, 2>(), py::arg("params"), py::kw_only(),
           py::arg("lr"), py::arg("beta1"), py::arg("decay_rate"),
           py::arg("eps1"), py::arg("clip_threshold"), py::arg("weight_decay"),
           py::arg("seed"), py::arg("bf16_states") = false)
      .def(
          "set_options",
          [](optim::Adafactor &o, double lr, double beta1, double decayRate,
             double eps1, double clipThreshold, double weightDecay) {
            optim::AdafactorOptions opts = o.options();
            opts.lr = lr;
            opts.beta1 = beta1;
            opts.decayRate = decayRate;
            opts.eps1 = eps1;
            opts.clipThreshold = clipThreshold;
            opts.weightDecay = weightDecay;
            o.setOptions(opts);
          },
          py::kw_only(), py::arg("lr"), py::arg("beta1"), py::arg("decay_rate"),
          py::arg("eps1"), py::arg("clip_threshold"), py::arg("weight_decay"))
      .def_property_readonly(
          "beta1",
          [](const optim::Adafactor &o) { return o.options().beta1; },
          "the first-moment coefficient (its state exists when > 0)")
      .def(
          "factored",
          [](const optim::Adafactor &o, size_t p) {
            if (p >= o.numParams())
              throw py::index_error("dqt: no such parameter");
            return o.factored(p);
          },
          py::arg("p"),
          "whether parameter p keeps a factored (row, column) "
          "second moment")
      .def(
          "num_states",
          [](const optim::Adafactor &o, size_t p) {
            if (p >= o.numParams())
              throw py::index_error("dqt: no such parameter");
            return o.numStates(p);
          },
          py::arg("p"));
}
