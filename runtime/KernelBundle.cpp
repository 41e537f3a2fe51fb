//===- KernelBundle.cpp - kernels compiled ahead of time ------------------===//

#include "dqt/Runtime/KernelBundle.h"

#include "dqt/Compiler/KernelAbi.h"
#include "dqt/Runtime/KernelCache.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>

namespace dqt {

std::vector<std::string> supportedCpuLevels() {
  // GCC and clang know the x86-64 micro-architecture levels by name.
  std::vector<std::string> levels;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4"))
    levels.push_back("x86-64-v4");
  if (__builtin_cpu_supports("x86-64-v3"))
    levels.push_back("x86-64-v3");
#endif
  if (const char *cap = std::getenv("DQT_CPU_LEVEL"); cap && *cap) {
    bool known = false;
    for (const char *l : kCpuLevels)
      known |= std::strcmp(l, cap) == 0;
    TORCH_CHECK(known, "dqt: DQT_CPU_LEVEL=", cap,
                " is not a level kernels are bundled for (x86-64-v4 or "
                "x86-64-v3)");
    while (!levels.empty() && levels.front() != cap)
      levels.erase(levels.begin());
  }
  return levels;
}

KernelBundle::KernelBundle(const dqt_bundle *b, void *handle, std::string file)
    : b(b), handle(handle), file(std::move(file)),
      bundleName(b->name ? b->name : "") {}

// A bundle's code may be referenced by executables as long as the process
// runs, so the library is never closed.
KernelBundle::~KernelBundle() = default;

/// Throws unless `b` is a bundle this runtime can run.
static void checkBundle(const dqt_bundle *b, const std::string &where) {
  TORCH_CHECK(b->format == DQT_BUNDLE_FORMAT, "dqt: ", where,
              " is kernel bundle format ", b->format, "; this runtime reads ",
              DQT_BUNDLE_FORMAT, ". Rebuild it with this build's dqt-aot.");
  TORCH_CHECK(b->kernel_abi == uint64_t(kKernelAbiVersion), "dqt: ", where,
              " holds kernels of kernel ABI ", b->kernel_abi,
              "; this runtime calls ABI ", kKernelAbiVersion,
              ". Rebuild it with this build's dqt-aot.");
  TORCH_CHECK(b->numerics && std::strcmp(b->numerics, kNumericsVersion) == 0,
              "dqt: ", where, " holds kernels of numerics contract v",
              b->numerics ? b->numerics : "?", "; this runtime follows v",
              kNumericsVersion,
              " (docs/numerics.md). Rebuild it with this build's dqt-aot.");
}

std::shared_ptr<KernelBundle> KernelBundle::open(const std::string &path) {
  void *handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  TORCH_CHECK(handle, "dqt: cannot load the kernel bundle ", path, ": ",
              ::dlerror());
  auto *b = static_cast<const dqt_bundle *>(::dlsym(handle, "dqt_bundle"));
  if (!b) {
    ::dlclose(handle);
    TORCH_CHECK(false, "dqt: ", path,
                " is not a kernel bundle (it exports no `dqt_bundle`); "
                "bundles are made by dqt-aot");
  }
  try {
    checkBundle(b, "the kernel bundle " + path);
  } catch (...) {
    ::dlclose(handle);
    throw;
  }
  return std::shared_ptr<KernelBundle>(new KernelBundle(b, handle, path));
}

std::shared_ptr<KernelBundle> KernelBundle::linked(const dqt_bundle *bundle) {
  TORCH_CHECK(bundle, "dqt: useBundle got a null bundle");
  checkBundle(bundle, std::string("the linked kernel bundle ") +
                          (bundle->name ? bundle->name : "?"));
  return std::shared_ptr<KernelBundle>(new KernelBundle(bundle, nullptr, ""));
}

const dqt_bundle_cpu_kernel *KernelBundle::cpu(const std::string &key,
                                               const std::string &level) const {
  std::vector<std::string> levels =
      level.empty() ? supportedCpuLevels() : std::vector<std::string>{level};
  for (const std::string &l : levels)
    for (uint64_t i = 0; i < b->num_cpu; ++i)
      if (key == b->cpu[i].key && l == b->cpu[i].level)
        return &b->cpu[i];
  return nullptr;
}

const dqt_bundle_gpu_kernel *KernelBundle::gpu(const std::string &key,
                                               const std::string &chip,
                                               bool cubin) const {
  const dqt_bundle_gpu_kernel *ptx = nullptr;
  for (uint64_t i = 0; i < b->num_gpu; ++i) {
    const dqt_bundle_gpu_kernel &k = b->gpu[i];
    if (key != k.key || chip != k.chip)
      continue;
    bool isCubin = std::strcmp(k.format, "cubin") == 0;
    if (isCubin && cubin)
      return &k;
    if (!isCubin)
      ptx = &k;
  }
  return ptx;
}

std::vector<std::string> KernelBundle::cpuKeys() const {
  std::vector<std::string> keys;
  for (uint64_t i = 0; i < b->num_cpu; ++i)
    if (std::find(keys.begin(), keys.end(), b->cpu[i].key) == keys.end())
      keys.push_back(b->cpu[i].key);
  return keys;
}

void useBundle(const std::string &path) {
  KernelCache::global().addBundle(KernelBundle::open(path));
}

void useBundle(const dqt_bundle *linked) {
  KernelCache::global().addBundle(KernelBundle::linked(linked));
}

} // namespace dqt
