//===- GpuEmulator.cpp - GPU step kernels executed on the CPU -------------===//
//
// The runtime of dqt-emulate-gpu's host functions (dqt/Passes/
// GpuEmulationAbi.h): thread and block indices, block barriers, warp
// shuffles and workgroup memory, with one OS thread per GPU thread.
//
// Hand-written because no library does it for MLIR kernels: Triton's
// interpreter and Numba's CUDA simulator (the precedents) emulate their own
// front ends in Python, and upstream MLIR executes gpu.func on the CPU only
// through its SPIR-V/Vulkan or CUDA runners, which need a device. OS threads
// rather than fibers: the kernel is JIT-compiled code whose stack we do not
// own, and real concurrency keeps the atomics honest. C++17 has no
// std::barrier, hence the small mutex and condition-variable rendezvous.
//
//===----------------------------------------------------------------------===//

#include "dqt/Compiler/GpuEmulator.h"

#include "CpuCodegen.h"

#include "dqt/Compiler/KernelArgs.h"
#include "dqt/Passes/GpuEmulationAbi.h"
#include "dqt/Passes/Passes.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/ErrorHandling.h"

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace mlir;

namespace dqt {
namespace {

using emu::kWarpSize;

/// How long a thread waits at a barrier or shuffle before the launch is
/// declared deadlocked. Generous: a waiting thread may wait for others to
/// run a whole grid-stride loop on a loaded machine.
constexpr std::chrono::seconds kDeadlockTimeout(20);

/// A warp's shuffle rendezvous: the participants publish their values, the
/// last to arrive opens the round, every participant reads, and the next
/// round starts only when all have read.
struct Warp {
  std::condition_variable cv;
  uint32_t values[kWarpSize] = {};
  unsigned arrived = 0, width = 0, readers = 0;
  int32_t mode = 0;
  uint64_t round = 0;
};

/// One block's threads, barrier, warps and the launch's failure. One mutex
/// guards it all: a block's synchronization is rare next to its work.
struct Block {
  unsigned id = 0, size = 0, gridSize = 0;
  std::mutex mutex;
  std::condition_variable barrierCv;
  unsigned barrierArrived = 0, exited = 0;
  uint64_t barrierRound = 0;
  std::vector<Warp> warps;
  /// The first error; once set, barriers and shuffles return at once so
  /// that every thread runs to its end.
  std::string error;

  /// Records `why` (the first reason only) and wakes every waiter.
  void fail(const std::string &why) {
    if (error.empty())
      error = "block " + std::to_string(id) + ": " + why;
    barrierCv.notify_all();
    for (Warp &w : warps)
      w.cv.notify_all();
  }
  bool failed() const { return !error.empty(); }

  /// Waits on `cv` until `done` (or a failure); a timeout is a failure.
  template <typename Pred>
  void wait(std::unique_lock<std::mutex> &lock, std::condition_variable &cv,
            Pred done, const char *what) {
    if (!cv.wait_for(lock, kDeadlockTimeout,
                     [&] { return failed() || done(); }))
      fail(std::string("deadlock: a thread waited ") +
           std::to_string(kDeadlockTimeout.count()) + " s at " + what);
  }
};

/// The GPU thread the calling OS thread runs.
struct ThreadContext {
  Block *block;
  unsigned tid;
};

thread_local ThreadContext *current = nullptr;

ThreadContext &self() {
  if (!current)
    llvm::report_fatal_error("dqt: an emulated GPU kernel function was "
                             "called outside dqt::emulateGpuKernel");
  return *current;
}

int64_t threadId(int32_t dim) { return dim == 0 ? self().tid : 0; }
int64_t blockId(int32_t dim) { return dim == 0 ? self().block->id : 0; }
int64_t blockDim(int32_t dim) { return dim == 0 ? self().block->size : 1; }
int64_t gridDim(int32_t dim) { return dim == 0 ? self().block->gridSize : 1; }

void barrier() {
  Block &b = *self().block;
  std::unique_lock<std::mutex> lock(b.mutex);
  if (b.failed())
    return;
  uint64_t round = b.barrierRound;
  if (++b.barrierArrived == b.size) {
    b.barrierArrived = 0;
    ++b.barrierRound;
    b.barrierCv.notify_all();
    return;
  }
  // Threads that have returned never arrive (on a GPU: undefined behaviour).
  if (b.barrierArrived + b.exited == b.size)
    return b.fail("gpu.barrier: " + std::to_string(b.exited) +
                  " threads of the block returned without reaching it");
  b.wait(
      lock, b.barrierCv, [&] { return b.barrierRound != round; },
      "gpu.barrier");
}

/// gpu.shuffle as NVVM lowers it: shfl.sync with member mask
/// `(1 << width) - 1` and clamp `width - 1` (up: `32 - width`), no segment
/// mask. The PTX rule: source lane j from the mode; valid iff j is within
/// the clamp; an invalid lane reads its own value.
int64_t shuffle(int32_t value, int32_t offset, int32_t width, int32_t mode) {
  ThreadContext &t = self();
  Block &b = *t.block;
  unsigned lane = t.tid % kWarpSize, warp = t.tid / kWarpSize;
  unsigned warpLanes = std::min(kWarpSize, b.size - warp * kWarpSize);
  Warp &w = b.warps[warp];
  std::unique_lock<std::mutex> lock(b.mutex);
  auto fallback = int64_t(uint32_t(value));
  if (b.failed())
    return fallback;
  if (width < 1 || unsigned(width) > warpLanes || lane >= unsigned(width)) {
    b.fail("gpu.shuffle: lane " + std::to_string(lane) + " of warp " +
           std::to_string(warp) + " (" + std::to_string(warpLanes) +
           " lanes) called it with width " + std::to_string(width) +
           ": its member mask must hold the lane and existing lanes only");
    return fallback;
  }
  // The previous round's values must have been read.
  b.wait(
      lock, w.cv, [&] { return w.readers == 0; }, "gpu.shuffle");
  if (b.failed())
    return fallback;
  if (w.arrived == 0) {
    w.width = width;
    w.mode = mode;
  } else if (w.width != unsigned(width) || w.mode != mode) {
    b.fail("gpu.shuffle: the lanes of warp " + std::to_string(warp) +
           " disagree on the width or the mode");
    return fallback;
  }
  w.values[lane] = uint32_t(value);
  uint64_t round = w.round;
  if (++w.arrived == w.width) {
    w.arrived = 0;
    w.readers = w.width;
    ++w.round;
    w.cv.notify_all();
  } else {
    b.wait(
        lock, w.cv, [&] { return w.round != round; }, "gpu.shuffle");
    if (b.failed())
      return fallback;
  }
  int32_t lanes = int32_t(lane), delta = offset & int32_t(kWarpSize - 1);
  int32_t j = lanes;
  bool valid;
  switch (emu::ShuffleMode(mode)) {
  case emu::ShuffleMode::Xor:
    j = lanes ^ delta;
    valid = j <= width - 1;
    break;
  case emu::ShuffleMode::Down:
    j = lanes + delta;
    valid = j <= width - 1;
    break;
  case emu::ShuffleMode::Idx:
    j = delta;
    valid = j <= width - 1;
    break;
  case emu::ShuffleMode::Up:
    j = lanes - delta;
    valid = j >= int32_t((kWarpSize - unsigned(width)) % kWarpSize);
    break;
  default:
    b.fail("gpu.shuffle: unknown mode " + std::to_string(mode));
    return fallback;
  }
  if (!valid)
    j = lanes;
  uint32_t result = w.values[j];
  if (--w.readers == 0)
    w.cv.notify_all();
  return int64_t(result) | (int64_t(valid) << 32);
}

/// Called by each thread after the kernel returns.
void threadExited(Block &b) {
  std::lock_guard<std::mutex> lock(b.mutex);
  ++b.exited;
  if (b.barrierArrived && b.barrierArrived + b.exited == b.size)
    b.fail("gpu.barrier: " + std::to_string(b.exited) +
           " threads of the block returned without reaching it");
}

/// The runtime functions the emulated kernels call, by name.
llvm::ArrayRef<std::pair<llvm::StringRef, void *>> runtimeSymbols() {
  static const std::pair<llvm::StringRef, void *> symbols[] = {
      {emu::kThreadIdFn, reinterpret_cast<void *>(&threadId)},
      {emu::kBlockIdFn, reinterpret_cast<void *>(&blockId)},
      {emu::kBlockDimFn, reinterpret_cast<void *>(&blockDim)},
      {emu::kGridDimFn, reinterpret_cast<void *>(&gridDim)},
      {emu::kBarrierFn, reinterpret_cast<void *>(&barrier)},
      {emu::kShuffleFn, reinterpret_cast<void *>(&shuffle)},
  };
  return symbols;
}

llvm::Error error(const llvm::Twine &what) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "dqt: " + what);
}

llvm::Expected<EmulatedGpuKernel>
jitEmulated(ModuleOp module, llvm::StringRef name, const StepConfig *abi,
            std::chrono::steady_clock::time_point start) {
  return timedKernel(jitCpuPipeline(module,
                                    {"dqt-compile-gpu-emulated",
                                     mlir::dqt::buildCompileGPUEmulatedPipeline,
                                     runtimeSymbols()},
                                    abi),
                     start, name);
}

} // namespace

llvm::Expected<EmulatedGpuKernel>
compileGpuEmulatedStep(const StepConfig &config) {
  auto start = std::chrono::steady_clock::now();
  std::unique_ptr<MLIRContext> ctx = createContext();
  OwningOpRef<ModuleOp> module = buildStepModule(*ctx, config);
  return jitEmulated(*module, kStepKernelName, &config, start);
}

llvm::Expected<EmulatedGpuKernel>
compileGpuEmulatedModule(ModuleOp module, llvm::StringRef name) {
  return jitEmulated(module, name, /*abi=*/nullptr,
                     std::chrono::steady_clock::now());
}

llvm::Error emulateGpuKernel(const EmulatedGpuKernel &kernel, KernelArgs &args,
                             unsigned blocks, unsigned threadsPerBlock) {
  return emulateGpuKernel(kernel, args.data(), args.size(), blocks,
                          threadsPerBlock);
}

llvm::Error emulateGpuKernel(const EmulatedGpuKernel &kernel, void **args,
                             size_t numArgs, unsigned blocks,
                             unsigned threadsPerBlock) {
  if (!kernel.fn)
    return error("no emulated kernel to launch");
  if (blocks < 1 || threadsPerBlock < 1 || threadsPerBlock > 1024)
    return error("cannot launch " + llvm::Twine(blocks) + " blocks of " +
                 llvm::Twine(threadsPerBlock) +
                 " threads (1 to 1024 threads per block)");
  // The workgroup buffer, aligned as the pass assumes; garbage at the start
  // of every block, as uninitialized shared memory holds.
  std::vector<unsigned char> storage(emu::kWorkgroupBytes +
                                     emu::kWorkgroupAlign);
  void *workgroup = storage.data();
  size_t space = storage.size();
  std::align(emu::kWorkgroupAlign, emu::kWorkgroupBytes, workgroup, space);
  MemRef1D buffer{workgroup, workgroup, 0, emu::kWorkgroupBytes, 1};
  std::vector<void *> packed(args, args + numArgs);
  packed.insert(packed.end(), {&buffer.allocated, &buffer.aligned,
                               &buffer.offset, &buffer.size, &buffer.stride});

  for (unsigned id = 0; id < blocks; ++id) {
    std::memset(workgroup, 0xA5, emu::kWorkgroupBytes);
    Block block;
    block.id = id;
    block.size = threadsPerBlock;
    block.gridSize = blocks;
    block.warps =
        std::vector<Warp>((threadsPerBlock + kWarpSize - 1) / kWarpSize);
    std::vector<std::thread> threads;
    threads.reserve(threadsPerBlock);
    try {
      for (unsigned tid = 0; tid < threadsPerBlock; ++tid)
        threads.emplace_back([&block, &packed, fn = kernel.fn, tid] {
          ThreadContext context{&block, tid};
          current = &context;
          fn(packed.data());
          current = nullptr;
          threadExited(block);
        });
    } catch (const std::system_error &e) {
      {
        std::lock_guard<std::mutex> lock(block.mutex);
        block.fail(std::string("cannot start a thread: ") + e.what());
      }
      for (std::thread &t : threads)
        t.join();
      return error(block.error);
    }
    for (std::thread &t : threads)
      t.join();
    if (block.failed())
      return error("emulated GPU kernel: " + block.error);
  }
  return llvm::Error::success();
}

} // namespace dqt
