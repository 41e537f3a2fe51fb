//===- CpuLauncher.cpp - run a step kernel over a parameter group ---------===//

#include "dqt/Runtime/CpuLauncher.h"

#include "dqt/Compiler/KernelArgs.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <limits>

namespace dqt {

namespace {
/// Elements per parallel chunk: large enough to amortize a call, a multiple
/// of 4 so chunks of one parameter start on Philox groups.
constexpr int64_t kGrain = int64_t(1) << 16;

void atomicMax(std::atomic<int64_t> &a, int64_t v) {
  int64_t cur = a.load(std::memory_order_relaxed);
  while (v > cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed))
    ;
}
} // namespace

void packStepArgs(KernelArgs &args, const StepConfig &config,
                  const StepOperands &op, const std::vector<float> &hyper,
                  uint64_t seed, uint64_t step) {
  if (config.floatWeights) {
    // StepConfig.h: AdamW grad, m, v, w; SGD w, grad, buffer; hyper.
    void *w = op.q;
    if (config.optimizer == Optimizer::AdamW) {
      for (void *b : {static_cast<void *>(op.grad), op.state0, op.state1, w})
        args.addBuffer(b, op.numel);
    } else {
      for (void *b : {w, static_cast<void *>(op.grad), op.state0})
        args.addBuffer(b, op.numel);
    }
    for (float h : hyper)
      args.addScalar<float>(h);
    return;
  }
  args.addBuffer(op.q, op.numel);
  args.addBuffer(op.grad, op.numel);
  args.addBuffer(op.state0, op.numel);
  if (config.optimizer == Optimizer::AdamW)
    args.addBuffer(op.state1, op.numel);
  args.addScalar<int64_t>(int64_t(seed));
  args.addScalar<int64_t>(int64_t(step));
  args.addScalar<int64_t>(op.tensorId);
  args.addScalar<float>(op.delta);
  for (float h : hyper)
    args.addScalar<float>(h);
  args.addScalar<float>(op.deltaNext);
}

std::vector<StepStats> launchCpu(const CpuStepKernel &kernel,
                                 const StepConfig &config,
                                 const std::vector<StepOperands> &params,
                                 const std::vector<float> &hyper, uint64_t seed,
                                 uint64_t step) {
  // Packed weights share a byte among 4 elements: chunks are cut in units
  // of 4 elements of each parameter (its last unit may be shorter), so two
  // threads never write the same byte. Unit 1 element otherwise.
  int64_t unit = config.packed ? 4 : 1;
  std::vector<int64_t> offsets(params.size() + 1, 0); // in units
  for (size_t p = 0; p < params.size(); ++p)
    offsets[p + 1] = offsets[p] + (params[p].numel + unit - 1) / unit;
  int64_t total = offsets.back();

  struct Totals {
    std::atomic<int64_t> maxQ{std::numeric_limits<int64_t>::min()};
    std::atomic<int64_t> changed{0}, nonFinite{0};
  };
  std::vector<Totals> totals(params.size());

  at::parallel_for(0, total, kGrain / unit, [&](int64_t begin, int64_t end) {
    // The parameters overlapping [begin, end).
    size_t p = std::upper_bound(offsets.begin(), offsets.end(), begin) -
               offsets.begin() - 1;
    for (; p < params.size() && offsets[p] < end; ++p) {
      const StepOperands &op = params[p];
      int64_t lo = (std::max(begin, offsets[p]) - offsets[p]) * unit;
      int64_t hi = std::min((std::min(end, offsets[p + 1]) - offsets[p]) * unit,
                            op.numel);
      if (lo >= hi)
        continue;
      int64_t partial[kNumReductions];
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
    }
  });

  std::vector<StepStats> stats;
  for (Totals &t : totals)
    stats.push_back(config.floatWeights
                        ? StepStats{-1, -1, t.nonFinite.load()}
                        : StepStats{t.maxQ.load(), t.changed.load(),
                                    t.nonFinite.load()});
  return stats;
}

} // namespace dqt
