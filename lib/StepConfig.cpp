//===- StepConfig.cpp - step configurations and their keys ----------------===//
//
// Compiler-free (no MLIR/LLVM): the runtime of a DQT_WITH_COMPILER=OFF build
// names, validates and enumerates configurations with it too.
//
//===----------------------------------------------------------------------===//

#include "dqt/Compiler/StepConfig.h"

#include <sstream>
#include <stdexcept>

namespace dqt {

const char *scaleRuleName(ScaleRule rule) {
  return rule == ScaleRule::AbsMax ? "absmax" : "maxq";
}

ScaleRule scaleRuleFromName(const std::string &name) {
  for (ScaleRule rule : {ScaleRule::MaxQ, ScaleRule::AbsMax})
    if (name == scaleRuleName(rule))
      return rule;
  throw std::invalid_argument("dqt: unknown scale rule '" + name +
                              "' (expected 'maxq', the paper's rule, or "
                              "'absmax')");
}

std::string StepConfig::key() const {
  validate();
  std::string k = optimizer == Optimizer::AdamW ? "adamw" : "sgd";
  if (floatWeights)
    return k + "-wf32-gf32-sf32";
  k += ternary ? "-ternary" : "-b" + std::to_string(bits);
  if (packed)
    k += "-p2";
  if (scale == ScaleMode::Row)
    k += "-rows";
  if (rule == ScaleRule::AbsMax)
    k += "-absmax";
  return k + (stateType == StateType::BF16 ? "-gf32-sbf16" : "-gf32-sf32");
}

void StepConfig::validate() const {
  if (floatWeights) {
    if (packed || stateType != StateType::F32 || scale != ScaleMode::Tensor ||
        rule != ScaleRule::MaxQ)
      throw std::invalid_argument("dqt: float-mode weights take no packing, "
                                  "no per-row scale, no scale rule and keep "
                                  "f32 states");
    return;
  }
  if (!ternary && (bits < 2 || bits > 8))
    throw std::invalid_argument("dqt: bit width " + std::to_string(bits) +
                                " is out of range [2, 8] (or ternary)");
  if (packed && !ternary)
    throw std::invalid_argument("dqt: packed weight storage (4 per byte) is "
                                "for ternary weights only, got " +
                                std::to_string(bits) + " bits");
  if (ternary && rule == ScaleRule::AbsMax)
    throw std::invalid_argument(
        "dqt: the absmax scale rule is for 2..8-bit grids; ternary weights "
        "keep the paper's rule (docs/numerics.md, \"Scale rules\")");
}

StepConfig StepConfig::fromKey(const std::string &key) {
  auto bad = [&](const std::string &why) {
    return std::invalid_argument("dqt: '" + key +
                                 "' is not a step configuration key (" + why +
                                 "); keys look like adamw-b8-gf32-sf32");
  };
  std::vector<std::string> parts;
  std::stringstream in(key);
  for (std::string part; std::getline(in, part, '-');)
    parts.push_back(part);
  if (parts.size() < 4)
    throw bad("too few fields");
  StepConfig c;
  if (parts[0] == "adamw")
    c.optimizer = Optimizer::AdamW;
  else if (parts[0] == "sgd")
    c.optimizer = Optimizer::SGD;
  else
    throw bad("unknown optimizer '" + parts[0] + "'");
  size_t i = 1;
  if (parts[i] == "wf32") {
    c.floatWeights = true;
  } else if (parts[i] == "ternary") {
    c.ternary = true;
  } else if (parts[i].size() == 2 && parts[i][0] == 'b' && parts[i][1] >= '2' &&
             parts[i][1] <= '8') {
    c.bits = parts[i][1] - '0';
  } else {
    throw bad("unknown weights '" + parts[i] + "'");
  }
  ++i;
  if (i < parts.size() && parts[i] == "p2")
    c.packed = true, ++i;
  if (i < parts.size() && parts[i] == "rows")
    c.scale = ScaleMode::Row, ++i;
  if (i < parts.size() && parts[i] == "absmax")
    c.rule = ScaleRule::AbsMax, ++i;
  if (parts.size() - i != 2 || parts[i] != "gf32")
    throw bad("expected -gf32-s<f32|bf16> at the end");
  if (parts[i + 1] == "sbf16")
    c.stateType = StateType::BF16;
  else if (parts[i + 1] != "sf32")
    throw bad("unknown state type '" + parts[i + 1] + "'");
  try {
    if (c.key() != key)
      throw bad("not in canonical form: " + c.key());
  } catch (const std::invalid_argument &e) {
    throw bad(e.what());
  }
  return c;
}

std::vector<StepConfig> standardStepConfigs() {
  std::vector<StepConfig> all;
  for (Optimizer opt : {Optimizer::AdamW, Optimizer::SGD}) {
    for (int w = 2; w <= 10; ++w) { // 2..8 bits, 9 ternary, 10 packed ternary
      for (ScaleMode scale : {ScaleMode::Tensor, ScaleMode::Row}) {
        for (StateType states : {StateType::F32, StateType::BF16}) {
          StepConfig c;
          c.optimizer = opt;
          c.bits = w <= 8 ? w : 8;
          c.ternary = w >= 9;
          c.packed = w == 10;
          c.scale = scale;
          c.stateType = states;
          all.push_back(c);
          if (!c.ternary) {
            c.rule = ScaleRule::AbsMax;
            all.push_back(c);
          }
        }
      }
    }
    StepConfig f;
    f.optimizer = opt;
    f.floatWeights = true;
    all.push_back(f);
  }
  return all;
}

} // namespace dqt
