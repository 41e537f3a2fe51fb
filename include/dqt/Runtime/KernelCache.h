//===- KernelCache.h - compiled step kernels, per process -------*- C++ -*-===//

#ifndef DQT_RUNTIME_KERNELCACHE_H
#define DQT_RUNTIME_KERNELCACHE_H

#include "dqt/Compiler/Compiler.h"

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace dqt {

/// Step kernels by configuration, compiled on first use. Thread-safe; a
/// kernel stays valid for the life of the process. The key is the
/// configuration's key plus the compiler version. (In memory only so far; the
/// disk cache under $DQT_CACHE_DIR is not built yet.)
class KernelCache {
public:
  static KernelCache &global();

  /// The CPU kernel of `config`, compiling it if needed; throws c10::Error
  /// when compilation fails.
  const CpuStepKernel &cpu(const StepConfig &config);

  /// Number of compilations this cache has run.
  int64_t compilations() const;

private:
  mutable std::mutex mutex;
  std::unordered_map<std::string, std::unique_ptr<CpuStepKernel>> kernels;
  int64_t compiled = 0;
};

} // namespace dqt

#endif // DQT_RUNTIME_KERNELCACHE_H
