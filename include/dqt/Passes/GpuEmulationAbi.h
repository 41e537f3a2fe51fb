//===- GpuEmulationAbi.h - what an emulated GPU kernel calls ----*- C++ -*-===//
//
// The contract between dqt-emulate-gpu (passes/EmulateGPU.cpp), which turns a
// gpu.func kernel into a host function, and the emulator runtime
// (lib/GpuEmulator.cpp), which runs that function once per GPU thread: the
// functions the host function calls for what only a GPU has, and the
// workgroup buffer it takes. Plain C++: no MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_PASSES_GPUEMULATIONABI_H
#define DQT_PASSES_GPUEMULATIONABI_H

#include <cstdint>

namespace dqt::emu {

/// `int64_t f(int32_t dim)` (dim 0, 1, 2: x, y, z): the calling thread's
/// gpu.thread_id, gpu.block_id, gpu.block_dim and gpu.grid_dim.
constexpr const char *kThreadIdFn = "__dqt_emu_thread_id";
constexpr const char *kBlockIdFn = "__dqt_emu_block_id";
constexpr const char *kBlockDimFn = "__dqt_emu_block_dim";
constexpr const char *kGridDimFn = "__dqt_emu_grid_dim";

/// `void f()`: gpu.barrier, across the calling thread's block.
constexpr const char *kBarrierFn = "__dqt_emu_barrier";

/// `int64_t f(int32_t value, int32_t offset, int32_t width, int32_t mode)`:
/// gpu.shuffle of a 32-bit value (its bits) among the lanes [0, width) of the
/// calling thread's warp, with the semantics of NVVM's lowering (shfl.sync,
/// member mask `(1 << width) - 1`). The result's low 32 bits are the value
/// read, bit 32 is `valid`.
constexpr const char *kShuffleFn = "__dqt_emu_shuffle";

/// The `mode` argument of kShuffleFn.
enum class ShuffleMode : int32_t { Xor = 0, Up = 1, Down = 2, Idx = 3 };

/// Lanes per warp (NVIDIA's; upstream's all-reduce lowering assumes 32).
constexpr unsigned kWarpSize = 32;

/// An emulated kernel's last argument is its block's workgroup (shared)
/// memory: a `memref<?xi8>` of this many bytes, aligned to kWorkgroupAlign,
/// carved into the gpu.func's workgroup attributions. 48 KiB is CUDA's limit
/// of static shared memory per block: a kernel needing more would not launch
/// on a GPU either.
constexpr int64_t kWorkgroupBytes = 48 * 1024;
constexpr int64_t kWorkgroupAlign = 16;

} // namespace dqt::emu

#endif // DQT_PASSES_GPUEMULATIONABI_H
