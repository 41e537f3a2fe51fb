//===- CacheEntry.cpp - one checksummed, atomically written file ----------===//

#include "CacheEntry.h"

#include <c10/util/Exception.h>
#include <xxhash.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace dqt::cache {

static constexpr char kMagic[] = "DQTKERNEL1\n";

static std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", (unsigned long long)v);
  return buf;
}

static void putU64(std::string &out, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(char((v >> (8 * i)) & 0xff));
}

static bool getU64(const std::string &in, size_t &pos, uint64_t &v) {
  if (pos + 8 > in.size())
    return false;
  v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | uint8_t(in[pos + i]);
  pos += 8;
  return true;
}

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

std::string entryPath(const std::string &dir, const std::string &name,
                      const std::string &key, const std::string &extension) {
  return dir + "/" + name + "-" + hex64(XXH64(key.data(), key.size(), 0)) +
         extension;
}

} // namespace dqt::cache
