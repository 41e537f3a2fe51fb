//===- OptimizerFile.cpp - an optimizer's checkpoint file -----------------===//

#include "dqt/Runtime/OptimizerFile.h"

#include "dqt/Runtime/Checkpoint.h"

#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <cstdio>

namespace dqt::optim {

namespace {
std::string paramKey(size_t p, const std::string &what) {
  return "param." + std::to_string(p) + "." + what;
}
std::string floatKey(size_t i, const std::string &what) {
  return "float." + std::to_string(i) + "." + what;
}
} // namespace

void saveOptimizerFile(const std::string &path, const char *name,
                       const OptimizerFileHeader &header,
                       const std::vector<QuantizedWeight *> &params,
                       const std::vector<std::vector<at::Tensor>> &states,
                       const FloatEntries &floats) {
  checkpoint::Contents c;
  c.metadata["dqt.optimizer"] = name;
  c.metadata["dqt.numerics"] = kNumericsVersion;
  c.metadata["dqt.step"] = std::to_string(header.step);
  c.metadata["dqt.seed"] = std::to_string(header.seed);
  char lr[32];
  std::snprintf(lr, sizeof(lr), "%a", header.lr); // exact
  c.metadata["dqt.lr"] = lr;
  for (size_t p = 0; p < params.size(); ++p) {
    const QuantizedWeight &w = *params[p];
    c.metadata[paramKey(p, "grid")] = w.grid().str();
    if (w.isPacked()) {
      // Packed bytes (U8) carry no shape: the metadata does.
      c.metadata[paramKey(p, "storage")] = "packed-ternary";
      c.metadata[paramKey(p, "shape")] = c10::str(w.sizes());
    }
    c.tensors.emplace_back(paramKey(p, "q"), w.q());
    if (w.isRowScaled()) {
      // One delta and max q per row: F32 [rows], I8 [rows].
      c.metadata[paramKey(p, "scale")] = "row";
      c.tensors.emplace_back(paramKey(p, "delta"), w.deltaRows());
      c.tensors.emplace_back(paramKey(p, "max_q"), w.maxQRows());
    } else {
      c.tensors.emplace_back(paramKey(p, "delta"),
                             at::full({1}, w.delta(), at::kFloat));
      c.tensors.emplace_back(paramKey(p, "max_q"),
                             at::full({1}, int64_t(w.maxQ()), at::kChar));
    }
    if (w.rule() == ScaleRule::AbsMax) {
      // The absmax rule's next delta comes from the last step's max|w2|.
      c.metadata[paramKey(p, "rule")] = "absmax";
      c.tensors.emplace_back(paramKey(p, "abs_max"), w.absMaxes());
    }
    for (size_t k = 0; k < states[p].size(); ++k)
      c.tensors.emplace_back(paramKey(p, "state." + std::to_string(k)),
                             states[p][k]);
  }
  for (size_t i = 0; i < floats.values.size(); ++i) {
    c.tensors.emplace_back(floatKey(i, "value"), floats.values[i]);
    for (size_t k = 0; k < floats.states[i].size(); ++k)
      c.tensors.emplace_back(floatKey(i, "state." + std::to_string(k)),
                             floats.states[i][k]);
  }
  checkpoint::save(path, c);
}

OptimizerFileHeader loadOptimizerFile(const std::string &path,
                                      const char *name,
                                      const std::vector<QuantizedWeight *> &params,
                                      std::vector<std::vector<at::Tensor>> &states,
                                      FloatEntries *floats) {
  checkpoint::Contents c = checkpoint::load(path);
  auto meta = [&](const std::string &key) -> const std::string & {
    auto it = c.metadata.find(key);
    TORCH_CHECK(it != c.metadata.end(), name, ".load: ", path,
                " has no metadata '", key, "'");
    return it->second;
  };
  // An optimizer file (any writer), then its numerics contract: a file of
  // another contract is refused whatever else it holds (docs/numerics.md,
  // "Numerics version").
  const std::string &writer = meta("dqt.optimizer");
  auto numerics = c.metadata.find("dqt.numerics");
  TORCH_CHECK(numerics != c.metadata.end(), name, ".load: ", path,
              " was written under numerics contract v1 (4 uniforms per "
              "Philox block, 24-bit); this build follows numerics contract v",
              kNumericsVersion,
              " (8 uniforms per block, 16-bit), and a run cannot continue "
              "bit-exactly across contracts: restart the run, or resume it "
              "with the build that wrote the file");
  TORCH_CHECK(numerics->second == kNumericsVersion, name, ".load: ", path,
              " was written under numerics contract v", numerics->second,
              "; this build follows numerics contract v", kNumericsVersion,
              ", and a run cannot continue bit-exactly across contracts");
  TORCH_CHECK(writer == name, name, ".load: ", path, " was written by ",
              writer);
  size_t expectedTensors = 0;
  // Validate everything against the live parameters first.
  for (size_t p = 0; p < params.size(); ++p) {
    const QuantizedWeight &w = *params[p];
    TORCH_CHECK(meta(paramKey(p, "grid")) == w.grid().str(), name,
                ".load: parameter ", p, " is ", w.grid().str(), " here and ",
                meta(paramKey(p, "grid")), " in ", path);
    auto expect = [&](const std::string &key, at::IntArrayRef shape,
                      at::ScalarType dtype) {
      const at::Tensor &t = c.get(key);
      TORCH_CHECK(t.sizes() == shape && t.scalar_type() == dtype, name,
                  ".load: ", path, ": '", key, "' is ", t.scalar_type(),
                  t.sizes(), ", expected ", dtype, shape);
      ++expectedTensors;
    };
    auto storage = c.metadata.find(paramKey(p, "storage"));
    std::string stored =
        storage == c.metadata.end() ? "int8" : storage->second;
    std::string here = w.isPacked() ? "packed-ternary" : "int8";
    TORCH_CHECK(stored == here, name, ".load: parameter ", p,
                " is stored as ", here, " here and as ", stored, " in ", path);
    if (w.isPacked()) {
      TORCH_CHECK(meta(paramKey(p, "shape")) == c10::str(w.sizes()), name,
                  ".load: parameter ", p, " has shape ", w.sizes(),
                  " here and ", meta(paramKey(p, "shape")), " in ", path);
      expect(paramKey(p, "q"), w.q().sizes(), at::kByte);
      checkPackedTernary(c.get(paramKey(p, "q")), w.numel(),
                         std::string(name) + ".load: " + path +
                             ": parameter " + std::to_string(p));
    } else {
      expect(paramKey(p, "q"), w.q().sizes(), at::kChar);
    }
    // Files without the entry are per-tensor (older files too).
    auto scale = c.metadata.find(paramKey(p, "scale"));
    std::string storedScale =
        scale == c.metadata.end() ? "tensor" : scale->second;
    std::string hereScale = w.isRowScaled() ? "row" : "tensor";
    TORCH_CHECK(storedScale == hereScale, name, ".load: parameter ", p,
                " has one delta per ", hereScale, " here and one per ",
                storedScale, " in ", path);
    expect(paramKey(p, "delta"), {w.rows()}, at::kFloat);
    expect(paramKey(p, "max_q"), {w.rows()}, at::kChar);
    // Files without the entry follow the paper's rule (older files too).
    auto rule = c.metadata.find(paramKey(p, "rule"));
    std::string storedRule = rule == c.metadata.end() ? "maxq" : rule->second;
    std::string hereRule = scaleRuleName(w.rule());
    TORCH_CHECK(storedRule == hereRule, name, ".load: parameter ", p,
                " follows the ", hereRule, " scale rule here and the ",
                storedRule, " rule in ", path);
    if (w.rule() == ScaleRule::AbsMax) {
      expect(paramKey(p, "abs_max"), {w.rows()}, at::kFloat);
      // max|w2| >= 0 (-0.0 where a row had none; +inf is kept: the rule
      // then keeps delta); NaN cannot come from a kernel.
      const at::Tensor &a = c.get(paramKey(p, "abs_max"));
      TORCH_CHECK(!(a.isnan() | a.lt(0)).any().item<bool>(), name, ".load: ",
                  path, ": parameter ", p,
                  " has a negative or NaN max|w| in 'abs_max'");
    }
    for (size_t k = 0; k < states[p].size(); ++k)
      expect(paramKey(p, "state." + std::to_string(k)), states[p][k].sizes(),
             states[p][k].scalar_type());
    if (w.isRowScaled()) {
      w.checkRowScales(c.get(paramKey(p, "delta")), c.get(paramKey(p, "max_q")),
                       std::string(name) + ".load: " + path + ": parameter " +
                           std::to_string(p));
    } else {
      float delta = c.get(paramKey(p, "delta")).item<float>();
      TORCH_CHECK(std::isfinite(delta) && delta > 0, name, ".load: ", path,
                  ": parameter ", p, " has delta ", delta);
    }
  }
  if (floats) {
    auto expectLike = [&](const std::string &key, const at::Tensor &live) {
      const at::Tensor &t = c.get(key);
      TORCH_CHECK(t.sizes() == live.sizes() &&
                      t.scalar_type() == live.scalar_type(),
                  name, ".load: ", path, ": '", key, "' is ", t.scalar_type(),
                  t.sizes(), ", expected ", live.scalar_type(), live.sizes());
      ++expectedTensors;
    };
    for (size_t i = 0; i < floats->values.size(); ++i) {
      expectLike(floatKey(i, "value"), floats->values[i]);
      for (size_t k = 0; k < floats->states[i].size(); ++k)
        expectLike(floatKey(i, "state." + std::to_string(k)),
                   floats->states[i][k]);
    }
  }
  // A file with another number of states per parameter (another optimizer
  // setting) or of parameters is refused here.
  TORCH_CHECK(c.tensors.size() == expectedTensors, name, ".load: ", path,
              " holds ", c.tensors.size(), " tensors, expected ",
              expectedTensors, " (a different model or optimizer setting?)");
  OptimizerFileHeader h;
  h.step = std::stoll(meta("dqt.step"));
  h.seed = std::stoull(meta("dqt.seed"));
  h.lr = std::strtod(meta("dqt.lr").c_str(), nullptr);
  TORCH_CHECK(h.step >= 0, name, ".load: ", path, ": negative step");
  TORCH_CHECK(std::isfinite(h.lr) && h.lr >= 0, name, ".load: ", path,
              ": lr must be finite and >= 0, got ", h.lr);

  // Commit.
  for (size_t p = 0; p < params.size(); ++p) {
    QuantizedWeight &w = *params[p];
    w.q().copy_(c.get(paramKey(p, "q")));
    if (w.isRowScaled())
      w.update(c.get(paramKey(p, "delta")), c.get(paramKey(p, "max_q")));
    else
      w.update(c.get(paramKey(p, "delta")).item<float>(),
               c.get(paramKey(p, "max_q")).item<int8_t>());
    if (w.rule() == ScaleRule::AbsMax)
      w.setStepAbsMaxes(c.get(paramKey(p, "abs_max")).to(w.device()));
    for (size_t k = 0; k < states[p].size(); ++k)
      states[p][k].copy_(c.get(paramKey(p, "state." + std::to_string(k))));
  }
  if (floats) {
    // The values are leaves the optimizer owns (as torch.optim's in-place
    // updates): written without recording for autograd.
    at::NoGradGuard noGrad;
    for (size_t i = 0; i < floats->values.size(); ++i) {
      floats->values[i].copy_(c.get(floatKey(i, "value")));
      for (size_t k = 0; k < floats->states[i].size(); ++k)
        floats->states[i][k].copy_(
            c.get(floatKey(i, "state." + std::to_string(k))));
    }
  }
  return h;
}

} // namespace dqt::optim
