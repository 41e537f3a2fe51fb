/*===- BundleAbi.h - the layout of a kernel bundle, in C ---------*- C -*-===//
//
// What dqt-aot writes and the runtime reads: a bundle is one `dqt_bundle`
// object listing CPU kernels (packed entry points, one per configuration
// and x86-64 level) and GPU images (PTX text or cubins, one per
// configuration and chip). The file form (lib<name>.so) exports it as
// `dqt_bundle`; the static form (lib<name>.a) as `dqt_bundle_<name>`, which a
// trainer passes to dqt::useBundle. Plain C with 8-byte fields only, so the
// manifest dqt-aot emits as LLVM IR has the same layout on every compiler.
//
//===----------------------------------------------------------------------===*/

#ifndef DQT_RUNTIME_BUNDLEABI_H
#define DQT_RUNTIME_BUNDLEABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The version of this layout. */
#define DQT_BUNDLE_FORMAT 1

/** A CPU kernel: MLIR's packed entry point (one `void **` argument). */
typedef struct dqt_bundle_cpu_kernel {
  const char *key;   /**< "adamw-b8-gf32-sf32", or "uniform" */
  const char *level; /**< "x86-64-v3", "x86-64-v4" */
  void (*fn)(void **);
} dqt_bundle_cpu_kernel;

/** A GPU image of a step kernel (entry "dqt_step"). */
typedef struct dqt_bundle_gpu_kernel {
  const char *key;
  const char *chip;   /**< "sm_80", "sm_90" */
  const char *format; /**< "ptx" (NUL-terminated text) or "cubin" */
  const unsigned char *data;
  uint64_t size; /**< bytes of data (PTX: without the NUL) */
} dqt_bundle_gpu_kernel;

typedef struct dqt_bundle {
  uint64_t format;      /**< DQT_BUNDLE_FORMAT */
  uint64_t kernel_abi;  /**< dqt::kKernelAbiVersion of the kernels */
  const char *numerics; /**< dqt::kNumericsVersion of the kernels */
  const char *compiler; /**< the compiler version that made them */
  const char *name;
  uint64_t num_cpu;
  const dqt_bundle_cpu_kernel *cpu;
  uint64_t num_gpu;
  const dqt_bundle_gpu_kernel *gpu;
} dqt_bundle;

#ifdef __cplusplus
}
#endif

#endif /* DQT_RUNTIME_BUNDLEABI_H */
