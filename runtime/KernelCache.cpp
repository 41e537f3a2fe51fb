//===- KernelCache.cpp - the kernels of every target, by key --------------===//

#include "dqt/Runtime/KernelCache.h"

#include "CacheEntry.h"
#include "dqt/Runtime/CudaDevice.h"

#if DQT_WITH_COMPILER
#include "JitKernels.h"
#endif

#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <sstream>

namespace dqt {

bool runtimeHasCompiler() { return DQT_WITH_COMPILER; }

std::string stepModuleText(const StepConfig &config) {
#if DQT_WITH_COMPILER
  return jit::stepModuleText(config);
#else
  TORCH_CHECK(false, "dqt: the IR of the ", config.key(),
              " step needs the compiler, and this build has none "
              "(DQT_WITH_COMPILER=OFF)");
#endif
}

KernelCache::KernelCache(std::string directory) : dir(std::move(directory)) {}

KernelCache &KernelCache::global() {
  // Never destroyed: generated code must outlive every static that might
  // still call it, and LLVM's own statics are torn down at exit in an order
  // a destructor here cannot rely on.
  static KernelCache *cache = [] {
    std::string dir;
    if (const char *env = std::getenv("DQT_CACHE_DIR"))
      dir = std::strcmp(env, "off") == 0 ? "" : env;
    else if (const char *home = std::getenv("HOME"))
      dir = std::string(home) + "/.cache/dqt";
    auto *c = new KernelCache(dir);
    // Searched in this order, after any bundle added later.
#ifdef DQT_DEFAULT_BUNDLE
    c->addBundle(KernelBundle::open(DQT_DEFAULT_BUNDLE));
#endif
    if (const char *env = std::getenv("DQT_BUNDLE")) {
      std::stringstream paths(env);
      std::vector<std::string> files;
      for (std::string path; std::getline(paths, path, ':');)
        if (!path.empty())
          files.push_back(path);
      for (auto it = files.rbegin(); it != files.rend(); ++it)
        c->addBundle(KernelBundle::open(*it));
    }
    return c;
  }();
  return *cache;
}

void KernelCache::addBundle(std::shared_ptr<KernelBundle> bundle) {
  std::lock_guard<std::mutex> lock(mutex);
  bundles.insert(bundles.begin(), std::move(bundle));
}

#if DQT_WITH_COMPILER
/// The key a disk entry of CPU kernel `key` holds: its object code is valid
/// for one compiler version and host CPU only.
static std::string diskKey(const std::string &key) {
  return "cpu|" + key + "|" + jit::hostKey();
}
#endif

std::string KernelCache::entryPath(const std::string &key) const {
#if DQT_WITH_COMPILER
  return cache::entryPath(dir, key, diskKey(key));
#else
  (void)key;
  return "";
#endif
}

std::string KernelCache::entryPath(const StepConfig &config) const {
  return entryPath(config.key());
}

const Executable &KernelCache::cpu(const StepConfig &config) {
  return getCpu(config.key(), &config);
}

const Executable &KernelCache::cpuUniform() {
  return getCpu(kUniformKernelKey, nullptr);
}

#if !DQT_WITH_COMPILER
/// The error for a kernel no bundle has, in a build without the compiler.
[[noreturn]] static void
missingKernel(const std::string &key, const std::string &where,
              const std::vector<std::shared_ptr<KernelBundle>> &bundles) {
  std::string names;
  for (auto &b : bundles)
    names += (names.empty() ? "" : ", ") + b->name() +
             (b->path().empty() ? "" : " (" + b->path() + ")");
  std::string option =
      key == kUniformKernelKey ? "--uniform" : "--config " + key;
  TORCH_CHECK(false, "dqt: no kernel for configuration '", key, "' (", where,
              "): this build has no compiler (DQT_WITH_COMPILER=OFF) and ",
              bundles.empty() ? std::string("no kernel bundle is loaded")
                              : "the loaded bundles (" + names + ") lack it",
              ". Make one with `dqt-aot ", option,
              " --output DIR --name NAME` (or `dqt-aot --standard ...` for "
              "every configuration) and load DIR/libNAME.so with "
              "DQT_BUNDLE or dqt::useBundle.");
}
#endif

const Executable &KernelCache::getCpu(const std::string &key,
                                      const StepConfig *config) {
  // Compiling under the lock: a kernel is compiled exactly once even when
  // threads ask for it together, and compilations are rare.
  std::lock_guard<std::mutex> lock(mutex);
  std::string memKey = "cpu|" + key;
  auto it = kernels.find(memKey);
  if (it != kernels.end())
    return *it->second;

  std::unique_ptr<Executable> exe;
  for (auto &bundle : bundles) {
    if (const dqt_bundle_cpu_kernel *k = bundle->cpu(key)) {
      exe = std::make_unique<Executable>();
      exe->key = key;
      exe->fn = k->fn;
      exe->origin = (bundle->path().empty() ? "linked bundle " : "bundle ") +
                    bundle->name() + " (" + k->level + ")";
      exe->owner = bundle;
      ++counters.bundled;
      break;
    }
  }
#if DQT_WITH_COMPILER
  std::string entryKey = dir.empty() ? "" : diskKey(key);
  std::string path = dir.empty() ? "" : cache::entryPath(dir, key, entryKey);
  if (!exe && !path.empty()) {
    bool present = false;
    if (auto object = cache::readEntry(path, entryKey, present)) {
      if (auto loaded = jit::loadCpu(key, config, *object)) {
        exe = std::make_unique<Executable>(std::move(*loaded));
        ++counters.loaded;
        counters.lastLoadSeconds = exe->seconds;
      } else {
        ++counters.rejected;
      }
    } else if (present) {
      ++counters.rejected;
    }
  }
  if (!exe) {
    std::string object;
    exe = std::make_unique<Executable>(
        jit::compileCpu(key, config, path.empty() ? nullptr : &object));
    ++counters.compiled;
    counters.lastCompileSeconds = exe->seconds;
    if (!path.empty())
      cache::writeEntry(path, entryKey, object);
  }
#else
  (void)config;
  if (!exe) {
    std::vector<std::string> levels = supportedCpuLevels();
    missingKernel(key, levels.empty() ? "no x86-64-v3 CPU" : levels.front(),
                  bundles);
  }
#endif
  auto &slot = kernels[memKey];
  slot = std::move(exe);
  return *slot;
}

const Executable &KernelCache::cuda(const StepConfig &config,
                                    const CudaDevice &device) {
  return cuda(config, device.chip(), device.runsCubinsOf(device.chip()));
}

const Executable &KernelCache::cuda(const StepConfig &config,
                                    const std::string &chip, bool cubin) {
  std::string key = config.key();
  std::lock_guard<std::mutex> lock(mutex);
  std::string memKey =
      std::string(cubin ? "cuda|" : "cuda-ptx|") + chip + "|" + key;
  auto it = kernels.find(memKey);
  if (it != kernels.end())
    return *it->second;
  std::unique_ptr<Executable> exe;
  for (auto &bundle : bundles) {
    if (const dqt_bundle_gpu_kernel *k = bundle->gpu(key, chip, cubin)) {
      exe = std::make_unique<Executable>();
      exe->target = Target::Cuda;
      exe->key = key;
      exe->chip = chip;
      exe->cubin = std::strcmp(k->format, "cubin") == 0;
      exe->image.assign(reinterpret_cast<const char *>(k->data), k->size);
      exe->origin = "bundle " + bundle->name() + " (" + k->format + ")";
      ++counters.bundled;
      break;
    }
  }
  if (!exe) {
#if DQT_WITH_COMPILER
    exe = std::make_unique<Executable>(jit::compileCuda(config, chip));
    ++counters.compiled;
#else
    missingKernel(key, chip, bundles);
#endif
  }
  auto &slot = kernels[memKey];
  slot = std::move(exe);
  return *slot;
}

KernelCache::Stats KernelCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex);
  return counters;
}

} // namespace dqt
