//===- CpuLauncher.cpp - run a step kernel over a parameter group ---------===//

#include "dqt/Runtime/CpuLauncher.h"

#include "dqt/Compiler/KernelAbi.h"
#include "dqt/Compiler/KernelArgs.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <numeric>

namespace dqt {

namespace {
/// Elements per parallel chunk: large enough to amortize a call.
constexpr int64_t kGrain = int64_t(1) << 16;

void atomicMax(std::atomic<int64_t> &a, int64_t v) {
  int64_t cur = a.load(std::memory_order_relaxed);
  while (v > cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed))
    ;
}

bool rowScaled(const StepConfig &config) {
  return config.scale == ScaleMode::Row && !config.floatWeights;
}

/// The elements of `op` that concurrent chunks must not split: packed
/// weights share a byte among 4 elements; per-row kernels read-max-write
/// each row's max non-atomically, so a chunk covers whole rows (and, packed,
/// whole bytes: lcm(L, 4)).
int64_t chunkUnit(const StepConfig &config, const StepOperands &op) {
  int64_t unit = config.packed ? 4 : 1;
  if (rowScaled(config))
    unit = std::lcm(unit, op.rowLength);
  return unit;
}
} // namespace

void checkStepOperands(const StepConfig &config, const StepOperands &op,
                       size_t p) {
  if (!rowScaled(config))
    return;
  TORCH_CHECK(op.rowLength > 0 && op.numel % op.rowLength == 0,
              "dqt: step operands of parameter ", p, ": rowLength ",
              op.rowLength, " does not divide its ", op.numel, " elements");
  TORCH_CHECK(op.deltaRows && op.deltaNextRows && op.rowMaxQ,
              "dqt: step operands of parameter ", p,
              ": a per-row step needs deltaRows, deltaNextRows and rowMaxQ");
  TORCH_CHECK(config.rule != ScaleRule::AbsMax || op.rowAbsMax,
              "dqt: step operands of parameter ", p,
              ": a per-row absmax step needs rowAbsMax");
}

void packStepArgs(KernelArgs &args, const StepConfig &config,
                  const StepOperands &op, const std::vector<float> &hyper,
                  uint64_t seed, uint64_t step) {
  TORCH_CHECK(int(hyper.size()) == numHyperParameters(config), "dqt: the ",
              config.key(), " kernel takes ", numHyperParameters(config),
              " hyper-parameters, got ", hyper.size());
  StepKernelValues v;
  v.weights = op.q;
  v.grad = op.grad;
  v.state0 = op.state0;
  v.state1 = op.state1;
  v.deltaRows = op.deltaRows;
  v.deltaNextRows = op.deltaNextRows;
  v.rowMax = op.rowMaxQ;
  v.rowAbsMax = op.rowAbsMax;
  // The weights buffer's elements: packed ternary holds 4 per byte.
  v.numel = op.numel;
  v.weightsSize = config.packed ? (op.numel + 3) / 4 : op.numel;
  v.numRows = rowScaled(config) ? op.numel / op.rowLength : 0;
  v.seed = seed;
  v.step = step;
  v.tensorId = op.tensorId;
  v.rowLength = op.rowLength;
  v.delta = op.delta;
  v.deltaNext = op.deltaNext;
  v.hyper = hyper.data();
  packStepKernelArgs(args, config, v);
}

std::vector<StepStats> launchCpu(const Executable &kernel,
                                 const StepConfig &config,
                                 const std::vector<StepOperands> &params,
                                 const std::vector<float> &hyper, uint64_t seed,
                                 uint64_t step) {
  bool rows = rowScaled(config);
  // The parameters' elements concatenated; each parameter is cut only at
  // multiples of its unit (chunkUnit) from its start. Chunk boundaries from
  // at::parallel_for are moved down to such a point (a function of the
  // boundary alone, so neighbouring chunks still tile the range).
  std::vector<int64_t> offsets(params.size() + 1, 0), units(params.size());
  for (size_t p = 0; p < params.size(); ++p) {
    checkStepOperands(config, params[p], p); // before anything runs
    units[p] = chunkUnit(config, params[p]);
    offsets[p + 1] = offsets[p] + params[p].numel;
  }
  int64_t total = offsets.back();
  auto align = [&](int64_t b) {
    if (b >= total)
      return total;
    size_t p = std::upper_bound(offsets.begin(), offsets.end(), b) -
               offsets.begin() - 1;
    return offsets[p] + (b - offsets[p]) / units[p] * units[p];
  };

  struct Totals {
    std::atomic<int64_t> maxQ{std::numeric_limits<int64_t>::min()};
    std::atomic<int64_t> changed{0}, nonFinite{0};
    std::atomic<int64_t> absMax{std::numeric_limits<int64_t>::min()};
  };
  std::vector<Totals> totals(params.size());

  at::parallel_for(0, total, kGrain, [&](int64_t chunkBegin, int64_t chunkEnd) {
    int64_t begin = align(chunkBegin), end = align(chunkEnd);
    if (begin >= end)
      return;
    // The parameters overlapping [begin, end).
    size_t p = std::upper_bound(offsets.begin(), offsets.end(), begin) -
               offsets.begin() - 1;
    for (; p < params.size() && offsets[p] < end; ++p) {
      const StepOperands &op = params[p];
      int64_t lo = std::max(begin, offsets[p]) - offsets[p];
      int64_t hi = std::min(end, offsets[p + 1]) - offsets[p];
      if (lo >= hi)
        continue;
      if (rows) { // this chunk's rows, whole: lo and hi are multiples of L
        for (int32_t *buf : {op.rowMaxQ, op.rowAbsMax})
          if (buf)
            std::fill(buf + lo / op.rowLength, buf + hi / op.rowLength,
                      std::numeric_limits<int32_t>::min());
      }
      int64_t partial[kNumReductions] = {0, 0, 0,
                                         std::numeric_limits<int64_t>::min()};
      KernelArgs args;
      packStepArgs(args, config, op, hyper, seed, step);
      args.addScalar<int64_t>(lo);
      args.addScalar<int64_t>(hi);
      args.addBuffer(partial, kNumReductions);
      kernel.fn(args.data());
      if (config.floatWeights) { // one reduction: the non-finite count
        totals[p].nonFinite.fetch_add(partial[0], std::memory_order_relaxed);
        continue;
      }
      atomicMax(totals[p].maxQ, partial[0]);
      totals[p].changed.fetch_add(partial[1], std::memory_order_relaxed);
      totals[p].nonFinite.fetch_add(partial[2], std::memory_order_relaxed);
      atomicMax(totals[p].absMax, partial[3]);
    }
  });

  std::vector<StepStats> stats;
  for (Totals &t : totals)
    stats.push_back(config.floatWeights
                        ? StepStats{-1, -1, t.nonFinite.load()}
                        : StepStats{t.maxQ.load(), t.changed.load(),
                                    t.nonFinite.load(), t.absMax.load()});
  return stats;
}

} // namespace dqt
