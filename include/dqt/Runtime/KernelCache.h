//===- KernelCache.h - the kernels of every target, by key ------*- C++ -*-===//

#ifndef DQT_RUNTIME_KERNELCACHE_H
#define DQT_RUNTIME_KERNELCACHE_H

#include "dqt/Compiler/StepConfig.h"
#include "dqt/Runtime/Executable.h"
#include "dqt/Runtime/KernelBundle.h"

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace dqt {

class CudaDevice;

/// Whether this build has the compiler (DQT_WITH_COMPILER): without it,
/// kernels come from bundles only.
bool runtimeHasCompiler();

/// The tensor-level IR of `config`'s step as text (func @dqt_step, its
/// arguments the kernel ABI), what the kernels are compiled from; for
/// training graphs that contain the step (dqt.export_training_graph).
/// Throws c10::Error in a build without the compiler.
std::string stepModuleText(const StepConfig &config);

/// The executables of every configuration and target, in memory for the
/// process. A kernel comes from, in order: memory, the bundles added
/// (addBundle), the disk cache, the JIT; the last two exist only in a build
/// with the compiler (runtimeHasCompiler). A disk entry holds object code
/// for one compiler version and host CPU (its key names both) and an xxh64
/// checksum; an entry that is corrupt or stale is recompiled and rewritten,
/// never trusted. Entries are written atomically (temporary file + rename).
/// Thread-safe.
class KernelCache {
public:
  /// `directory` holds the disk entries; empty means memory only.
  explicit KernelCache(std::string directory);

  /// The process-wide cache: its directory is $DQT_CACHE_DIR, else
  /// ~/.cache/dqt (DQT_CACHE_DIR=off keeps kernels in memory only); it
  /// opens the bundles of $DQT_BUNDLE (':'-separated files, searched in
  /// that order) and then, in a build configured with DQT_KERNEL_BUNDLE,
  /// that bundle.
  static KernelCache &global();

  /// Takes kernels from `bundle` before compiling, and before the bundles
  /// added earlier (kernels already taken stay).
  void addBundle(std::shared_ptr<KernelBundle> bundle);

  /// The CPU kernel of `config`. Throws c10::Error when compilation fails
  /// or, without the compiler, when no bundle has it (the message names the
  /// key and the dqt-aot command that makes it).
  const Executable &cpu(const StepConfig &config);
  /// The CPU kernel of the weight stream alone (kUniformKernelKey).
  const Executable &cpuUniform();
  /// The GPU image of `config`'s step for `chip` ("sm_80", "sm_90"): a
  /// bundle's cubin (when `cubin`) or PTX, else PTX from the compiler.
  const Executable &cuda(const StepConfig &config, const std::string &chip,
                         bool cubin = true);
  /// The GPU image of `config`'s step for `device`: its chip, a cubin only
  /// when the device runs that chip's cubins (same major compute
  /// capability), else PTX, which the driver compiles for newer GPUs.
  const Executable &cuda(const StepConfig &config, const CudaDevice &device);

  struct Stats {
    int64_t compiled = 0; ///< cold compilations
    int64_t loaded = 0;   ///< warm loads from disk
    int64_t rejected = 0; ///< corrupt or stale disk entries recompiled
    int64_t bundled = 0;  ///< kernels taken from bundles
    double lastCompileSeconds = 0, lastLoadSeconds = 0;
  };
  Stats stats() const;
  /// Number of compilations this cache has run.
  int64_t compilations() const { return stats().compiled; }

  const std::string &directory() const { return dir; }
  /// The disk entry of `config` (whether or not it exists).
  std::string entryPath(const StepConfig &config) const;

private:
  /// The CPU kernel of `key` (`config` when it is a step, null for the
  /// weight stream).
  const Executable &getCpu(const std::string &key, const StepConfig *config);
  std::string entryPath(const std::string &key) const;

  std::string dir;
  mutable std::mutex mutex;
  std::vector<std::shared_ptr<KernelBundle>> bundles;
  std::unordered_map<std::string, std::unique_ptr<Executable>> kernels;
  Stats counters;
};

} // namespace dqt

#endif // DQT_RUNTIME_KERNELCACHE_H
