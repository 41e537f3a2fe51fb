//===- KernelCache.cpp - compiled step kernels, memory and disk -----------===//

#include "dqt/Runtime/KernelCache.h"

#include <c10/util/Exception.h>
#include <xxhash.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace dqt {

namespace {

constexpr char kMagic[] = "DQTKERNEL1\n";

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", (unsigned long long)v);
  return buf;
}

void putU64(std::string &out, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(char((v >> (8 * i)) & 0xff));
}

bool getU64(const std::string &in, size_t &pos, uint64_t &v) {
  if (pos + 8 > in.size())
    return false;
  v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | uint8_t(in[pos + i]);
  pos += 8;
  return true;
}

/// The object code of a disk entry, or nothing when the entry is missing,
/// corrupt (size, checksum) or stale (another key).
std::optional<std::string> readEntry(const std::string &path,
                                     const std::string &key, bool &present) {
  std::ifstream in(path, std::ios::binary);
  present = in.good();
  if (!present)
    return std::nullopt;
  std::string file((std::istreambuf_iterator<char>(in)), {});
  size_t pos = sizeof(kMagic) - 1;
  if (file.compare(0, pos, kMagic) != 0)
    return std::nullopt;
  uint64_t keyLen, objLen, sum;
  if (!getU64(file, pos, keyLen) || keyLen > file.size() - pos ||
      file.compare(pos, keyLen, key) != 0)
    return std::nullopt;
  pos += keyLen;
  if (!getU64(file, pos, objLen) || !getU64(file, pos, sum) ||
      objLen != file.size() - pos)
    return std::nullopt;
  if (XXH64(file.data() + pos, objLen, 0) != sum)
    return std::nullopt;
  return file.substr(pos);
}

/// Writes an entry atomically; a cache that cannot be written only warns.
void writeEntry(const std::string &path, const std::string &key,
                const std::string &object) {
  std::string data(kMagic);
  putU64(data, key.size());
  data += key;
  putU64(data, object.size());
  putU64(data, XXH64(object.data(), object.size(), 0));
  data += object;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(),
                                      ec);
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(data.data(), data.size());
    if (!out.good()) {
      std::remove(tmp.c_str());
      TORCH_WARN("dqt: cannot write the kernel cache entry ", path);
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    TORCH_WARN("dqt: cannot write the kernel cache entry ", path);
  }
}

} // namespace

KernelCache::KernelCache(std::string directory) : dir(std::move(directory)) {}

KernelCache &KernelCache::global() {
  // Never destroyed: JIT-compiled code must outlive every static that might
  // still call it, and LLVM's own statics are torn down at exit in an order
  // a destructor here cannot rely on.
  static KernelCache *cache = [] {
    std::string dir;
    if (const char *env = std::getenv("DQT_CACHE_DIR"))
      dir = std::strcmp(env, "off") == 0 ? "" : env;
    else if (const char *home = std::getenv("HOME"))
      dir = std::string(home) + "/.cache/dqt";
    return new KernelCache(dir);
  }();
  return *cache;
}

std::string KernelCache::key(const std::string &name) const {
  return "cpu|" + name + "|" + compilerVersion().str() + "|" + hostCpuKey();
}

std::string KernelCache::entryPath(const std::string &name) const {
  std::string k = key(name);
  return dir + "/" + name + "-" + hex64(XXH64(k.data(), k.size(), 0)) +
         ".dqtk";
}

std::string KernelCache::entryPath(const StepConfig &config) const {
  return entryPath(config.key());
}

const CpuStepKernel &KernelCache::cpu(const StepConfig &config) {
  return get(
      config.key(),
      [&](bool keepObject) { return compileCpuStep(config, keepObject); },
      loadCpuStep);
}

const CpuStepKernel &KernelCache::cpuUniform() {
  return get("uniform", compileCpuUniform, loadCpuUniform);
}

const CpuStepKernel &KernelCache::get(
    const std::string &name,
    llvm::function_ref<llvm::Expected<CpuStepKernel>(bool)> compile,
    llvm::function_ref<llvm::Expected<CpuStepKernel>(llvm::StringRef)> load) {
  std::string k = key(name);
  // Compiling under the lock: a kernel is compiled exactly once even when
  // threads ask for it together, and compilations are rare.
  std::lock_guard<std::mutex> lock(mutex);
  auto it = kernels.find(k);
  if (it != kernels.end())
    return *it->second;

  std::unique_ptr<CpuStepKernel> kernel;
  std::string path = dir.empty() ? "" : entryPath(name);
  if (!path.empty()) {
    bool present = false;
    if (auto object = readEntry(path, k, present)) {
      auto loaded = load(*object);
      if (loaded) {
        kernel = std::make_unique<CpuStepKernel>(std::move(*loaded));
        ++counters.loaded;
        counters.lastLoadSeconds = kernel->compileSeconds;
      } else {
        llvm::consumeError(loaded.takeError());
        ++counters.rejected;
      }
    } else if (present) {
      ++counters.rejected;
    }
  }
  if (!kernel) {
    auto compiled = compile(/*keepObject=*/!path.empty());
    TORCH_CHECK(bool(compiled), "dqt: compiling the ", name,
                " kernel failed: ", llvm::toString(compiled.takeError()));
    kernel = std::make_unique<CpuStepKernel>(std::move(*compiled));
    ++counters.compiled;
    counters.lastCompileSeconds = kernel->compileSeconds;
    if (!path.empty())
      writeEntry(path, k, kernel->module->object());
  }
  auto &slot = kernels[k];
  slot = std::move(kernel);
  return *slot;
}

KernelCache::Stats KernelCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex);
  return counters;
}

} // namespace dqt
