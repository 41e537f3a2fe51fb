//===- Functional.cpp - one-tensor entry points of the runtime ------------===//

#include "dqt/Runtime/Functional.h"

#include "dqt/Compiler/KernelArgs.h"

#include "dqt/Runtime/KernelCache.h"
#include "dqt/Runtime/QuantizedWeight.h"
#include "dqt/Runtime/WeightStep.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <cmath>

namespace dqt::functional {

at::Tensor philoxUniform(uint64_t seed, uint64_t step, uint64_t tensorId,
                         int64_t numel) {
  TORCH_CHECK(numel >= 0, "dqt.random.philox_uniform: numel must be >= 0, got ",
              numel);
  at::Tensor u = at::empty({numel}, at::kFloat);
  if (numel == 0)
    return u;
  // The generated weight stream (KernelCache::cpuUniform), in chunks: its
  // values depend only on (seed, step, tensor id, element).
  const Executable &kernel = KernelCache::global().cpuUniform();
  float *out = u.data_ptr<float>();
  at::parallel_for(0, numel, int64_t(1) << 16, [&](int64_t lo, int64_t hi) {
    KernelArgs args;
    args.addBuffer(out, numel); // `like`: only its length is read
    args.addScalar<int64_t>(int64_t(seed));
    args.addScalar<int64_t>(int64_t(step));
    args.addScalar<int64_t>(int64_t(tensorId));
    args.addBuffer(out, numel);
    args.addScalar<int64_t>(lo);
    args.addScalar<int64_t>(hi);
    int64_t noReductions = 0;
    args.addBuffer(&noReductions, 0);
    kernel.fn(args.data());
  });
  return u;
}

StepResult adamwStep(at::Tensor &q, double delta, int64_t maxQ,
                     const at::Tensor &grad, at::Tensor &expAvg,
                     at::Tensor &expAvgSq, const AdamWStepArgs &a) {
  const char *fn = "dqt.functional.adamw_step_";
  Grid grid = Grid::fromBits(a.bits, fn);
  TORCH_CHECK(q.dim() == 1 && q.scalar_type() == at::kChar, fn,
              ": q must be a 1-D int8 tensor, got ", q.scalar_type(),
              q.sizes());
  int64_t n = q.numel();
  TORCH_CHECK(n > 0, fn, ": q is empty");
  // States are float32, or both bfloat16 (then written with stochastic
  // rounding).
  at::ScalarType stateDtype = expAvg.scalar_type() == at::kBFloat16
                                  ? at::kBFloat16
                                  : at::kFloat;
  auto checkF32 = [&](const at::Tensor &t, const char *name,
                      at::ScalarType dtype = at::kFloat) {
    TORCH_CHECK(t.scalar_type() == dtype, fn, ": ", name, " must be ",
                dtype == at::kFloat ? "float32" : "bfloat16 like exp_avg",
                ", got ", t.scalar_type());
    TORCH_CHECK(t.sizes() == q.sizes(), fn, ": ", name, " has shape ",
                t.sizes(), ", q has ", q.sizes());
    TORCH_CHECK(t.device() == q.device(), fn, ": ", name, " is on ", t.device(),
                ", q on ", q.device());
    TORCH_CHECK(t.is_contiguous(), fn, ": ", name, " must be contiguous");
  };
  checkF32(grad, "grad");
  checkF32(expAvg, "exp_avg", stateDtype);
  checkF32(expAvgSq, "exp_avg_sq", stateDtype);
  TORCH_CHECK(q.is_contiguous(), fn, ": q must be contiguous");
  TORCH_CHECK(expAvg.data_ptr() != expAvgSq.data_ptr() &&
                  expAvg.data_ptr() != grad.data_ptr() &&
                  expAvgSq.data_ptr() != grad.data_ptr(),
              fn, ": grad, exp_avg and exp_avg_sq must be distinct buffers");
  TORCH_CHECK(a.step >= 1, fn, ": step must be >= 1, got ", a.step);
  TORCH_CHECK(std::isfinite(a.lr) && a.lr >= 0, fn,
              ": lr must be finite and >= 0, got ", a.lr);
  TORCH_CHECK(a.beta1 >= 0 && a.beta1 < 1, fn,
              ": beta1 must be in [0, 1), got ", a.beta1);
  TORCH_CHECK(a.beta2 >= 0 && a.beta2 < 1, fn,
              ": beta2 must be in [0, 1), got ", a.beta2);
  TORCH_CHECK(a.eps > 0, fn, ": eps must be > 0, got ", a.eps);
  TORCH_CHECK(a.weightDecay >= 0, fn, ": weight_decay must be >= 0, got ",
              a.weightDecay);
  TORCH_CHECK(std::isfinite(delta) && delta > 0, fn,
              ": delta must be finite and > 0, got ", delta);
  TORCH_CHECK(maxQ >= grid.qn() && maxQ <= grid.qp(), fn, ": max_q ", maxQ,
              " is outside the ", grid.str(), " grid [", grid.qn(), ", ",
              grid.qp(), "]");
  TORCH_CHECK(a.tensorId >= 0, fn, ": tensor_id must be >= 0");

  StepConfig config;
  config.bits = grid.bits;
  config.ternary = grid.ternary;
  config.stateType =
      stateDtype == at::kBFloat16 ? StateType::BF16 : StateType::F32;
  StepTarget target = StepTarget::of(q.device(), fn);
  config = stepConfigOn(target, config);
  const Executable &kernel = target.kernel(config);
  float d = float(delta);
  float next = grid.nextDelta(d, maxQ);
  double t = double(a.step);
  double alpha =
      a.lr * std::sqrt(1 - std::pow(a.beta2, t)) / (1 - std::pow(a.beta1, t));
  std::vector<float> hyper = {float(a.beta1), float(a.beta2), float(alpha),
                              float(a.eps), float(a.lr * a.weightDecay)};
  StepOperands op{q.data_ptr<int8_t>(),
                  grad.data_ptr<float>(),
                  expAvg.data_ptr(),
                  expAvgSq.data_ptr(),
                  n,
                  a.tensorId,
                  d,
                  next};
  // On a GPU: delta and delta' as one row in device memory.
  at::Tensor rows;
  if (config.scale == ScaleMode::Row) {
    rows = at::tensor({d, next}, at::kFloat).to(q.device());
    at::Tensor rowMax = at::empty({1}, q.options().dtype(at::kInt));
    op.rowLength = n;
    op.deltaRows = rows.data_ptr<float>();
    op.deltaNextRows = rows.data_ptr<float>() + 1;
    op.rowMaxQ = rowMax.data_ptr<int32_t>();
    StepStatsList stats = launchStep(target, kernel, config, {op}, hyper,
                                     a.seed, uint64_t(a.step), q.device());
    return {next, stats[0]};
  }
  std::vector<StepStats> stats =
      launchCpu(kernel, config, {op}, hyper, a.seed, uint64_t(a.step));
  return {next, stats[0]};
}

} // namespace dqt::functional
