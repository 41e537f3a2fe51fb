//===- GpuEmulator.h - GPU step kernels executed on the CPU -----*- C++ -*-===//
//
// The very gpu.func that dqt-compile-gpu turns into PTX, executed on the CPU
// with GPU semantics, so the tests check the GPU kernels' own logic (thread
// indexing, the grid-stride loop, tails, block reductions, atomics) on
// machines without a GPU. dqt-compile-gpu-emulated makes the kernel a host
// function (dqt-emulate-gpu); the emulator runs it once per GPU thread.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_COMPILER_GPUEMULATOR_H
#define DQT_COMPILER_GPUEMULATOR_H

#include "dqt/Compiler/Compiler.h"

namespace dqt {

class KernelArgs;

/// A GPU kernel compiled for the emulator (dqt-compile-gpu-emulated): host
/// code with a packed entry point, like a CPU kernel.
using EmulatedGpuKernel = CpuStepKernel;

/// Builds the step of `config`, runs dqt-compile-gpu-emulated on it (the
/// kernel ABI checked after dqt-lower-to-gpu and after dqt-emulate-gpu) and
/// JIT-compiles the result: the emulated form of compileGpuStep's kernel.
llvm::Expected<EmulatedGpuKernel>
compileGpuEmulatedStep(const StepConfig &config);

/// Runs dqt-compile-gpu-emulated on any module holding a gpu.module (or
/// fused steps) and JIT-compiles its kernel `name`.
llvm::Expected<EmulatedGpuKernel>
compileGpuEmulatedModule(mlir::ModuleOp module, llvm::StringRef name);

/// Launches `kernel` on a 1-D grid of `blocks` blocks of `threadsPerBlock`
/// threads, with `args` as a GPU launch passes them (for a step kernel: the
/// kernel ABI's arguments, then the i64 reductions buffer).
///
/// What is emulated: every thread of a block runs at once on its own OS
/// thread; gpu.barrier waits for the whole block; gpu.shuffle exchanges
/// 32-bit values among the lanes of a 32-lane warp with shfl.sync's
/// semantics (xor, up, down, idx; `valid` false for a source lane beyond the
/// width); each block has its own 48 KiB of workgroup memory, uninitialized
/// (filled with a pattern) as on a GPU; atomics are the CPU's atomics; blocks
/// run one after another. What is not: the GPU's weak memory model and its
/// timing (warps do not run in lockstep between shuffles and barriers),
/// memory spaces, occupancy and launch limits beyond 1024 threads per block.
///
/// Errors, each after every thread has finished: a barrier that not every
/// thread of the block reaches, a shuffle whose lanes disagree or that names
/// lanes that do not exist, threads that wait longer than a deadlock
/// timeout. The buffers' contents are then unspecified.
llvm::Error emulateGpuKernel(const EmulatedGpuKernel &kernel, KernelArgs &args,
                             unsigned blocks, unsigned threadsPerBlock);

/// The same with the arguments as cuLaunchKernel takes them: `numArgs`
/// pointers, one per packed argument (a memref's five descriptor fields
/// each, a scalar itself), as KernelArgs::data() holds them.
llvm::Error emulateGpuKernel(const EmulatedGpuKernel &kernel, void **args,
                             size_t numArgs, unsigned blocks,
                             unsigned threadsPerBlock);

} // namespace dqt

#endif // DQT_COMPILER_GPUEMULATOR_H
