//===- CudaLauncher.cpp - step kernels on a GPU ---------------------------===//

#include "dqt/Runtime/CudaLauncher.h"

#include "dqt/Compiler/KernelArgs.h"
#include "dqt/Runtime/KernelCache.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <limits>

namespace dqt {

unsigned cudaGridBlocks(int64_t numel, int multiprocessors) {
  int64_t groups = (numel + 7) / 8;
  int64_t blocks = (groups + kCudaBlockThreads - 1) / kCudaBlockThreads;
  int64_t full = int64_t(std::max(multiprocessors, 1)) * kCudaBlocksPerSM;
  return unsigned(std::clamp<int64_t>(blocks, 1, full));
}

void launchCuda(CudaDevice &device, const Executable &kernel,
                const StepConfig &config,
                const std::vector<StepOperands> &params,
                const std::vector<float> &hyper, uint64_t seed, uint64_t step,
                CUstream stream, CUdeviceptr partials) {
  for (size_t p = 0; p < params.size(); ++p)
    checkStepOperands(config, params[p], p);
  const CudaDriver &cu = device.driver();
  CUfunction fn = device.function(kernel, KernelCache::global().directory());
  device.bind();
  // [max q', changed, non-finite, max|w2|] per parameter; float mode's one
  // reduction, the non-finite count, is slot 0. Memsets on the stream: a copy
  // from pageable host memory may wait for the device, and torch's streams need
  // not synchronize with the legacy default stream. All zero, then the
  // high word of each max slot 0x80000000 (INT64_MIN, little-endian).
  if (!params.empty())
    cu.check(cu.cuMemsetD32Async(partials, 0,
                                 params.size() * kNumReductions * 2, stream),
             "cuMemsetD32Async");
  if (!config.floatWeights)
    for (size_t p = 0; p < params.size(); ++p)
      for (int slot : {0, 3}) // max(q') and (absmax per tensor) max|w2|
        if (slot == 0 || (config.rule == ScaleRule::AbsMax &&
                          config.scale == ScaleMode::Tensor))
          cu.check(
              cu.cuMemsetD32Async(
                  partials + (p * kNumReductions + slot) * sizeof(int64_t) + 4,
                  0x80000000u, 1, stream),
              "cuMemsetD32Async");
  for (size_t p = 0; p < params.size(); ++p) {
    const StepOperands &op = params[p];
    if (config.scale == ScaleMode::Row) // max-combined into atomically
      for (int32_t *buf : {op.rowMaxQ, op.rowAbsMax})
        if (buf)
          cu.check(
              cu.cuMemsetD32Async(reinterpret_cast<CUdeviceptr>(buf),
                                  unsigned(std::numeric_limits<int32_t>::min()),
                                  size_t(op.numel / op.rowLength), stream),
              "cuMemsetD32Async");
    KernelArgs args;
    packStepArgs(args, config, op, hyper, seed, step);
    args.addBuffer(reinterpret_cast<void *>(partials + p * kNumReductions *
                                                           sizeof(int64_t)),
                   kNumReductions);
    cu.check(cu.cuLaunchKernel(
                 fn, cudaGridBlocks(op.numel, device.multiprocessors()), 1, 1,
                 kCudaBlockThreads, 1, 1, 0, stream, args.data(), nullptr),
             "cuLaunchKernel");
  }
}

std::vector<StepStats> readStepStats(CudaDevice &device,
                                     const StepConfig &config,
                                     CUdeviceptr partials, size_t n,
                                     CUstream stream) {
  const CudaDriver &cu = device.driver();
  device.bind();
  std::vector<int64_t> out(n * kNumReductions);
  if (n)
    cu.check(cu.cuMemcpyDtoHAsync(out.data(), partials,
                                  out.size() * sizeof(int64_t), stream),
             "cuMemcpyDtoHAsync");
  cu.check(cu.cuStreamSynchronize(stream), "cuStreamSynchronize");
  std::vector<StepStats> stats;
  for (size_t p = 0; p < n; ++p) {
    const int64_t *r = &out[p * kNumReductions];
    stats.push_back(config.floatWeights ? StepStats{-1, -1, r[0]}
                                        : StepStats{r[0], r[1], r[2], r[3]});
  }
  return stats;
}

std::vector<StepStats> launchCudaAndWait(
    CudaDevice &device, const Executable &kernel, const StepConfig &config,
    const std::vector<StepOperands> &params, const std::vector<float> &hyper,
    uint64_t seed, uint64_t step, CUstream stream) {
  const CudaDriver &cu = device.driver();
  device.bind();
  CUdeviceptr partials = 0;
  size_t bytes =
      std::max<size_t>(params.size(), 1) * kNumReductions * sizeof(int64_t);
  cu.check(cu.cuMemAlloc(&partials, bytes), "cuMemAlloc");
  std::vector<StepStats> stats;
  try {
    launchCuda(device, kernel, config, params, hyper, seed, step, stream,
               partials);
    stats = readStepStats(device, config, partials, params.size(), stream);
  } catch (...) {
    cu.cuStreamSynchronize(stream);
    cu.cuMemFree(partials);
    throw;
  }
  cu.cuMemFree(partials);
  return stats;
}

} // namespace dqt
