//===- OptimizerChecks.cpp - input checks every DQT optimizer makes -------===//

#include "dqt/Runtime/OptimizerChecks.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace dqt::optim {

void checkLr(const char *name, double lr) {
  TORCH_CHECK(std::isfinite(lr) && lr >= 0, name,
              ": lr must be finite and >= 0, got ", lr);
}

void checkBeta(const char *name, const char *which, double beta) {
  TORCH_CHECK(beta >= 0 && beta < 1, name, ": ", which,
              " must be in [0, 1), got ", beta);
}

void checkParameters(const char *name,
                     const std::vector<QuantizedWeight *> &params) {
  for (size_t p = 0; p < params.size(); ++p) {
    TORCH_CHECK(params[p] != nullptr, name, ": parameter ", p, " is null");
    const at::Tensor &q = params[p]->q();
    TORCH_CHECK(q.device().is_cpu() || q.device().is_cuda(), name,
                ": parameter ", p, " is on ", q.device(),
                "; CPU and CUDA are supported");
    TORCH_CHECK(q.device() == params[0]->q().device(), name, ": parameter ",
                p, " is on ", q.device(), ", parameter 0 on ",
                params[0]->q().device(),
                "; one optimizer's parameters share a device");
    TORCH_CHECK(q.is_contiguous() && q.numel() > 0, name, ": parameter ", p,
                " must be a non-empty contiguous tensor");
  }
}

void checkTensorIds(const char *name, const std::vector<int64_t> &ids,
                    size_t numParams) {
  TORCH_CHECK(ids.size() == numParams, name, ": got ", ids.size(),
              " tensor ids for ", numParams, " parameters");
  std::vector<int64_t> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    // The kernel's Philox counter holds the low 32 bits of the id.
    TORCH_CHECK(sorted[i] >= 0 && sorted[i] <= int64_t(UINT32_MAX), name,
                ": tensor id ", sorted[i], " is outside [0, 2^32)");
    TORCH_CHECK(i == 0 || sorted[i] != sorted[i - 1], name, ": tensor id ",
                sorted[i], " appears twice");
  }
}

void checkGradient(const char *name, QuantizedWeight &w, size_t p) {
  TORCH_CHECK(w.hasGrad(), name, ": parameter ", p, " has no gradient");
  const at::Tensor &g = w.grad();
  TORCH_CHECK(g.scalar_type() == at::kFloat, name, ": grad of parameter ", p,
              " must be float32, got ", g.scalar_type());
  TORCH_CHECK(g.device() == w.q().device(), name, ": grad of parameter ", p,
              " is on ", g.device(), ", the weight on ", w.q().device());
  TORCH_CHECK(g.sizes() == w.sizes(), name, ": grad of parameter ", p,
              " has shape ", g.sizes(), ", expected ", w.sizes());
  TORCH_CHECK(g.is_contiguous(), name, ": grad of parameter ", p,
              " must be contiguous");
}

size_t checkStepParameter(const char *name,
                          const std::vector<QuantizedWeight *> &params,
                          const std::vector<bool> &stepped,
                          QuantizedWeight &weight) {
  auto it = std::find(params.begin(), params.end(), &weight);
  TORCH_CHECK(it != params.end(), name,
              ": stepParameter: the weight is not one of its parameters");
  size_t p = it - params.begin();
  TORCH_CHECK(!stepped[p], name, ": parameter ", p,
              " was already stepped in this step (used twice in one "
              "forward? then step after backward instead)");
  checkGradient(name, weight, p);
  return p;
}

std::vector<size_t> checkUnstepped(const char *name,
                                   const std::vector<QuantizedWeight *> &params,
                                   const std::vector<bool> &stepped) {
  std::vector<size_t> remaining;
  for (size_t p = 0; p < params.size(); ++p) {
    if (stepped[p] || !params[p]->hasGrad())
      continue;
    checkGradient(name, *params[p], p);
    remaining.push_back(p);
  }
  return remaining;
}

void checkStatesLike(const char *name,
                     const std::vector<std::vector<at::Tensor>> &states,
                     const std::vector<std::vector<at::Tensor>> &live) {
  TORCH_CHECK(states.size() == live.size(), name, ".restore: got states",
              " of ", states.size(), " parameters, expected ", live.size());
  for (size_t p = 0; p < live.size(); ++p) {
    TORCH_CHECK(states[p].size() == live[p].size(), name,
                ".restore: parameter ", p, " has ", states[p].size(),
                " state tensors, expected ", live[p].size());
    for (size_t k = 0; k < states[p].size(); ++k) {
      const at::Tensor &t = states[p][k];
      const at::Tensor &l = live[p][k];
      TORCH_CHECK(t.defined() && t.scalar_type() == l.scalar_type() &&
                      t.sizes() == l.sizes(),
                  name, ".restore: state ", k, " of parameter ", p, " must be ",
                  l.scalar_type(), " of shape ", l.sizes(),
                  t.defined() ? "" : ", got none");
    }
  }
}

void checkFloatParameters(const char *name, int64_t step,
                          const std::vector<bool> &stepped,
                          const std::vector<at::Tensor> &existing,
                          const std::vector<at::Tensor> &params,
                          at::Device device) {
  TORCH_CHECK(step == 0 && std::find(stepped.begin(), stepped.end(), true) ==
                               stepped.end(),
              name, ": addFloatParameters: only before the first step");
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor &p = params[i];
    TORCH_CHECK(p.defined() && p.scalar_type() == at::kFloat &&
                    p.device() == device && p.is_contiguous() && p.numel() > 0,
                name, ": float parameter ", i,
                " must be a non-empty, contiguous float32 tensor on ", device,
                " (the quantized weights' device), got ",
                p.defined()
                    ? c10::str(p.scalar_type(), p.sizes(), " on ", p.device())
                    : std::string("an undefined tensor"));
    auto same = [&](const at::Tensor &o) { return o.is_same(p); };
    TORCH_CHECK(std::none_of(existing.begin(), existing.end(), same) &&
                    std::none_of(params.begin(), params.begin() + i, same),
                name, ": float parameter ", i, " is given twice");
  }
}

std::vector<size_t> checkFloatGradients(const char *name,
                                        const std::vector<at::Tensor> &params) {
  std::vector<size_t> withGrad;
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor &p = params[i], &g = p.grad();
    if (!g.defined())
      continue;
    withGrad.push_back(i);
    TORCH_CHECK(g.scalar_type() == at::kFloat && g.sizes() == p.sizes() &&
                    g.is_contiguous() && g.device() == p.device(),
                name, ": grad of float parameter ", i, " is ", g.scalar_type(),
                g.sizes(), ", expected a contiguous ", at::kFloat, p.sizes(),
                " on ", p.device());
  }
  return withGrad;
}

} // namespace dqt::optim
