//===- CudaLauncher.h - step kernels on a GPU -------------------*- C++ -*-===//

#ifndef DQT_RUNTIME_CUDALAUNCHER_H
#define DQT_RUNTIME_CUDALAUNCHER_H

#include "dqt/Runtime/CpuLauncher.h"
#include "dqt/Runtime/CudaDevice.h"

#include <vector>

namespace dqt {

/// Threads per block of the step kernels: 8 warps. The block reduction
/// (upstream's gpu.all_reduce lowering) needs a power-of-two number of
/// warps (docs/design.md, "GPU kernels emulated on the CPU").
constexpr unsigned kCudaBlockThreads = 256;

/// Resident blocks per multiprocessor the grid is sized for: 8 blocks of
/// 256 threads are 2048 threads, an sm_80/sm_90 SM's maximum.
constexpr int kCudaBlocksPerSM = 8;

/// The grid of a step over `numel` elements on a GPU of `multiprocessors`
/// SMs: one group of 8 elements per thread and grid-stride iteration, no
/// more blocks than the work needs nor than fill the GPU once
/// (multiprocessors * kCudaBlocksPerSM); at least 1.
unsigned cudaGridBlocks(int64_t numel, int multiprocessors);

/// Launches `kernel` (a Target::Cuda executable of `config`) over `params`
/// on `stream` of `device`: one launch per parameter, in order, and nothing
/// synchronized. The pointers in `params` are device addresses on `device`,
/// the per-row buffers of ScaleMode::Row included (each rowMaxQ is set to
/// INT32_MIN on the stream before its launch). Parameter p's by-products go
/// to `partials[3p .. 3p+2]` (device memory of 3 * params.size() int64,
/// initialized here on the stream): [max q', changed, non-finite]; float
/// mode [non-finite, 0, 0]. `stream` is the caller's (LibTorch's current
/// stream of the device: torch.cuda.current_stream().cuda_stream, or
/// c10::cuda::getCurrentCUDAStream().stream()); nullptr is the legacy
/// default stream. Throws c10::Error, launching nothing, on bad operands.
void launchCuda(CudaDevice &device, const Executable &kernel,
                const StepConfig &config,
                const std::vector<StepOperands> &params,
                const std::vector<float> &hyper, uint64_t seed, uint64_t step,
                CUstream stream, CUdeviceptr partials);

/// The by-products of `n` parameters from `partials` (as launchCuda wrote
/// them): copied on `stream`, which is then synchronized: the one place a
/// step waits for the GPU, and only when the statistics are asked for.
std::vector<StepStats> readStepStats(CudaDevice &device,
                                     const StepConfig &config,
                                     CUdeviceptr partials, size_t n,
                                     CUstream stream);

/// launchCuda with a temporary by-products buffer, then readStepStats: for
/// tests and tools that want the statistics at once.
std::vector<StepStats> launchCudaAndWait(
    CudaDevice &device, const Executable &kernel, const StepConfig &config,
    const std::vector<StepOperands> &params, const std::vector<float> &hyper,
    uint64_t seed, uint64_t step, CUstream stream);

} // namespace dqt

#endif // DQT_RUNTIME_CUDALAUNCHER_H
