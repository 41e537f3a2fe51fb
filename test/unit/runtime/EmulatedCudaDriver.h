//===- EmulatedCudaDriver.h - what the emulated driver tells tests -*- C++
//-*-===//
//
// The extra entry points of libdqt-emulated-cuda.so (EmulatedCudaDriver.cpp)
// beside the CUDA driver API: counters of what the runtime asked the driver
// to do. The tests find them with dlsym in the library that $DQT_CUDA_DRIVER
// names (the one the runtime loaded). Plain C layout.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_TEST_UNIT_RUNTIME_EMULATEDCUDADRIVER_H
#define DQT_TEST_UNIT_RUNTIME_EMULATEDCUDADRIVER_H

#include <cstdint>

extern "C" {

/// Counts since the library was loaded or the last reset.
struct DqtEmulatedCudaCounters {
  int64_t launches;
  /// cuStreamSynchronize calls.
  int64_t syncs;
  /// Synchronous copies (each one waits for the device, like a sync).
  int64_t copiesHtoD, copiesDtoH;
  /// Stream-ordered copies and memsets.
  int64_t asyncCopiesHtoD, asyncCopiesDtoH, asyncCopiesDtoD, memsets;
  /// Stream-ordered operations (launches, asynchronous copies, memsets,
  /// synchronizations) and how many of them named `lastStream`.
  int64_t streamOps, streamOpsOnLastStream;
  /// cuLinkComplete calls that produced an image.
  int64_t links;
  /// cuModuleLoadData calls that succeeded, with PTX / with a cubin.
  int64_t ptxLoads, cubinLoads;
  /// Emulated kernels compiled (once per configuration and process).
  int64_t compiles;
  int64_t allocs, frees;
  /// Allocations alive now (not reset).
  int64_t liveAllocations;
  /// Entry points that needed a context and found none on their thread.
  int64_t withoutContext;
  /// The stream of the last stream-ordered operation.
  void *lastStream;
  /// The last launch's grid and block (x).
  unsigned lastGrid, lastBlock;
};

/// Fills `out` (sizeof checked against `size`); returns 0, or 1 on a size
/// mismatch (a test built against another layout).
int dqt_emulated_cuda_counters(DqtEmulatedCudaCounters *out, unsigned size);
/// Zeroes the counters (all but liveAllocations).
void dqt_emulated_cuda_reset(void);
/// The detail of the last error the driver returned ("" when none), for
/// messages.
const char *dqt_emulated_cuda_last_error(void);
}

#endif // DQT_TEST_UNIT_RUNTIME_EMULATEDCUDADRIVER_H
