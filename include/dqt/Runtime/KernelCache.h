//===- KernelCache.h - compiled step kernels, memory and disk ---*- C++ -*-===//

#ifndef DQT_RUNTIME_KERNELCACHE_H
#define DQT_RUNTIME_KERNELCACHE_H

#include "dqt/Compiler/Compiler.h"

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace dqt {

/// Step kernels by configuration: in memory for the process, and as object
/// code on disk across processes. The key is the full configuration, the
/// compiler version and the host CPU (object code is specific to both). A
/// disk entry holds its key and an xxh64 checksum of the code; an entry that
/// is corrupt or stale is recompiled and rewritten, never trusted. Entries
/// are written atomically (temporary file + rename). Thread-safe.
class KernelCache {
public:
  /// `directory` holds the disk entries; empty means memory only.
  explicit KernelCache(std::string directory);

  /// The process-wide cache: $DQT_CACHE_DIR, else ~/.cache/dqt;
  /// DQT_CACHE_DIR=off keeps kernels in memory only.
  static KernelCache &global();

  /// The CPU kernel of `config`: from memory, else from disk, else compiled
  /// (and stored). Throws c10::Error when compilation fails.
  const CpuStepKernel &cpu(const StepConfig &config);
  /// The CPU kernel of the weight stream alone (buildUniformModule), cached
  /// like the step kernels.
  const CpuStepKernel &cpuUniform();

  struct Stats {
    int64_t compiled = 0; ///< cold compilations
    int64_t loaded = 0;   ///< warm loads from disk
    int64_t rejected = 0; ///< corrupt or stale disk entries recompiled
    double lastCompileSeconds = 0, lastLoadSeconds = 0;
  };
  Stats stats() const;
  /// Number of compilations this cache has run.
  int64_t compilations() const { return stats().compiled; }

  const std::string &directory() const { return dir; }
  /// The disk entry of `config` (whether or not it exists).
  std::string entryPath(const StepConfig &config) const;

private:
  /// The full key of kernel `name` (a configuration key, or "uniform").
  std::string key(const std::string &name) const;
  std::string entryPath(const std::string &name) const;
  /// The kernel `name`: from memory, else from disk (`load`), else
  /// `compile`d (keeping its object code when there is a disk cache).
  const CpuStepKernel &
  get(const std::string &name,
      llvm::function_ref<llvm::Expected<CpuStepKernel>(bool)> compile,
      llvm::function_ref<llvm::Expected<CpuStepKernel>(llvm::StringRef)>
          load);

  std::string dir;
  mutable std::mutex mutex;
  std::unordered_map<std::string, std::unique_ptr<CpuStepKernel>> kernels;
  Stats counters;
};

} // namespace dqt

#endif // DQT_RUNTIME_KERNELCACHE_H
