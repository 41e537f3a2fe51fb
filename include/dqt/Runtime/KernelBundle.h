//===- KernelBundle.h - kernels compiled ahead of time ----------*- C++ -*-===//
//
// A kernel bundle is what dqt-aot writes (docs/design.md, "Kernel bundles"):
// CPU kernels for named x86-64 levels and GPU images for named chips, with a
// manifest (BundleAbi.h). The runtime takes kernels from bundles before it
// compiles; a DQT_WITH_COMPILER=OFF build takes them from bundles only.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_KERNELBUNDLE_H
#define DQT_RUNTIME_KERNELBUNDLE_H

#include "dqt/Runtime/BundleAbi.h"

#include <memory>
#include <string>
#include <vector>

namespace dqt {

/// The x86-64 levels dqt-aot compiles for, best first.
inline constexpr const char *kCpuLevels[] = {"x86-64-v4", "x86-64-v3"};

/// The levels of kCpuLevels this CPU runs, best first. $DQT_CPU_LEVEL (one of
/// them) caps the choice, e.g. to run x86-64-v3 code on an x86-64-v4 CPU.
std::vector<std::string> supportedCpuLevels();

/// A loaded bundle. Thread-safe (read-only after loading).
class KernelBundle {
public:
  /// Opens the file form (lib<name>.so). Throws c10::Error naming `path` when
  /// it cannot be loaded, is not a dqt bundle, or was made for another bundle
  /// format, kernel ABI or numerics contract.
  static std::shared_ptr<KernelBundle> open(const std::string &path);
  /// The static form, linked into the program (`dqt_bundle_<name>`); the
  /// same checks.
  static std::shared_ptr<KernelBundle> linked(const dqt_bundle *bundle);
  ~KernelBundle();

  const std::string &name() const { return bundleName; }
  /// The file it was opened from ("" when linked).
  const std::string &path() const { return file; }
  /// The compiler version that made its kernels.
  std::string compiler() const { return b->compiler; }

  /// The CPU kernel of `key` for `level`, or for the best level this CPU
  /// runs (supportedCpuLevels) when `level` is empty; nullptr when absent.
  const dqt_bundle_cpu_kernel *cpu(const std::string &key,
                                   const std::string &level = "") const;
  /// The GPU image of `key` for `chip`: its cubin when there is one and
  /// `cubin` is asked for, else its PTX; nullptr when absent.
  const dqt_bundle_gpu_kernel *
  gpu(const std::string &key, const std::string &chip, bool cubin = true) const;
  /// The keys of its CPU kernels (each once).
  std::vector<std::string> cpuKeys() const;
  const dqt_bundle &raw() const { return *b; }

private:
  KernelBundle(const dqt_bundle *b, void *handle, std::string file);
  const dqt_bundle *b;
  void *handle; // dlopen handle, or nullptr when linked
  std::string file, bundleName;
};

/// Makes a bundle's kernels available to the process-wide cache
/// (KernelCache::global), ahead of its JIT. The process-wide cache also
/// opens every file of $DQT_BUNDLE (':'-separated) when it is created.
void useBundle(const std::string &path);
void useBundle(const dqt_bundle *linked);

} // namespace dqt

#endif // DQT_RUNTIME_KERNELBUNDLE_H
