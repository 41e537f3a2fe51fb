//===- KernelCache.cpp - compiled step kernels, per process ---------------===//

#include "dqt/Runtime/KernelCache.h"

#include <c10/util/Exception.h>

namespace dqt {

KernelCache &KernelCache::global() {
  // Never destroyed: JIT-compiled code must outlive every static that might
  // still call it, and LLVM's own statics are torn down at exit in an order
  // a destructor here cannot rely on.
  static KernelCache *cache = new KernelCache();
  return *cache;
}

const CpuStepKernel &KernelCache::cpu(const StepConfig &config) {
  std::string key = "cpu:" + config.key() + ":" + compilerVersion().str();
  // Compiling under the lock: a configuration is compiled exactly once even
  // when threads ask for it together, and compilations are rare.
  std::lock_guard<std::mutex> lock(mutex);
  auto it = kernels.find(key);
  if (it != kernels.end())
    return *it->second;
  auto kernel = compileCpuStep(config);
  TORCH_CHECK(bool(kernel), "dqt: compiling the ", config.key(),
              " step kernel failed: ", llvm::toString(kernel.takeError()));
  ++compiled;
  auto &slot = kernels[key];
  slot = std::make_unique<CpuStepKernel>(std::move(*kernel));
  return *slot;
}

int64_t KernelCache::compilations() const {
  std::lock_guard<std::mutex> lock(mutex);
  return compiled;
}

} // namespace dqt
