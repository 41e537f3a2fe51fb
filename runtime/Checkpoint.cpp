//===- Checkpoint.cpp - safetensors files, written atomically -------------===//
//
// The safetensors layout is simple enough that a library would only add a
// dependency (the reference implementation is Rust/Python); JSON goes through
// nlohmann::json and checksums through xxHash.
//
//===----------------------------------------------------------------------===//

#include "dqt/Runtime/Checkpoint.h"

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>
#include <xxhash.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace dqt::checkpoint {

namespace {

constexpr uint64_t kMaxHeader = uint64_t(100) << 20;

const std::pair<at::ScalarType, const char *> kDtypes[] = {
    {at::kChar, "I8"},  {at::kByte, "U8"},       {at::kFloat, "F32"},
    {at::kLong, "I64"}, {at::kBFloat16, "BF16"}, {at::kInt, "I32"},
    {at::kHalf, "F16"}, {at::kFloat8_e4m3fn, "F8_E4M3"},
    {at::kFloat8_e5m2, "F8_E5M2"}};

const char *dtypeName(at::ScalarType t) {
  for (auto &[type, name] : kDtypes)
    if (type == t)
      return name;
  TORCH_CHECK(false, "dqt.checkpoint: unsupported dtype ", t);
}

std::optional<at::ScalarType> dtypeFromName(const std::string &n) {
  for (auto &[type, name] : kDtypes)
    if (n == name)
      return type;
  return std::nullopt;
}

std::string hexDigest(const void *data, size_t bytes) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                (unsigned long long)XXH64(data, bytes, 0));
  return buf;
}

std::string checksumKey(const std::string &name) { return "dqt.xxh64." + name; }

} // namespace

const at::Tensor &Contents::get(const std::string &name) const {
  for (auto &[n, t] : tensors)
    if (n == name)
      return t;
  TORCH_CHECK(false, "dqt.checkpoint: no tensor named '", name, "'");
}

void save(const std::string &path, const Contents &contents) {
  nlohmann::ordered_json header;
  nlohmann::ordered_json meta = nlohmann::ordered_json::object();
  for (auto &[k, v] : contents.metadata)
    meta[k] = v;
  std::vector<at::Tensor> data;
  uint64_t offset = 0;
  for (auto &[name, tensor] : contents.tensors) {
    TORCH_CHECK(
        !name.empty() && name != "__metadata__" && !header.contains(name),
        "dqt.checkpoint.save: bad or duplicate tensor name '", name, "'");
    at::Tensor t = tensor.detach().cpu().contiguous();
    uint64_t bytes = t.nbytes();
    header[name] = {{"dtype", dtypeName(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    meta[checksumKey(name)] = hexDigest(t.data_ptr(), bytes);
    offset += bytes;
    data.push_back(t);
  }
  header["__metadata__"] = meta;
  std::string json = header.dump();
  // Pad the header with spaces to 8 bytes, as the format recommends.
  json.append((8 - json.size() % 8) % 8, ' ');

  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    TORCH_CHECK(out.good(), "dqt.checkpoint.save: cannot write ", tmp);
    uint64_t n = json.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i)
      len[i] = (n >> (8 * i)) & 0xff; // little-endian
    out.write(reinterpret_cast<const char *>(len), 8);
    out.write(json.data(), json.size());
    for (const at::Tensor &t : data)
      out.write(static_cast<const char *>(t.data_ptr()), t.nbytes());
    out.flush();
    TORCH_CHECK(out.good(), "dqt.checkpoint.save: writing ", tmp, " failed");
  }
  // Make the data durable before it replaces the old file.
  if (FILE *f = std::fopen(tmp.c_str(), "rb")) {
    ::fsync(::fileno(f));
    std::fclose(f);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    TORCH_CHECK(false, "dqt.checkpoint.save: cannot rename ", tmp, " to ",
                path);
  }
}

Contents load(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  TORCH_CHECK(in.good(), "dqt.checkpoint.load: cannot open ", path);
  std::stringstream buf;
  buf << in.rdbuf();
  std::string file = buf.str();
  auto fail = [&](const std::string &why) {
    TORCH_CHECK(false, "dqt.checkpoint.load: ", path, ": ", why);
  };
  if (file.size() < 8)
    fail("truncated: " + std::to_string(file.size()) + " bytes");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | uint8_t(file[i]);
  if (n > kMaxHeader || 8 + n > file.size())
    fail("header length " + std::to_string(n) + " exceeds the file (" +
         std::to_string(file.size()) + " bytes)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file.begin() + 8, file.begin() + 8 + n);
  } catch (const nlohmann::json::exception &e) {
    fail(std::string("bad JSON header: ") + e.what());
  }
  if (!header.is_object())
    fail("header is not a JSON object");
  uint64_t dataSize = file.size() - 8 - n;
  const char *base = file.data() + 8 + n;

  Contents c;
  if (header.contains("__metadata__")) {
    const auto &meta = header["__metadata__"];
    if (!meta.is_object())
      fail("__metadata__ is not an object");
    for (auto it = meta.begin(); it != meta.end(); ++it) {
      if (!it.value().is_string())
        fail("metadata '" + it.key() + "' is not a string");
      c.metadata[it.key()] = it.value().get<std::string>();
    }
  }
  // Tensors in data order, checking that they tile the data exactly.
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> spans;
  try {
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__")
        continue;
      const auto &e = it.value();
      auto dtype = dtypeFromName(e.at("dtype").get<std::string>());
      if (!dtype)
        fail("tensor '" + it.key() + "' has unsupported dtype " +
             e.at("dtype").dump());
      std::vector<int64_t> shape = e.at("shape").get<std::vector<int64_t>>();
      auto offs = e.at("data_offsets").get<std::vector<uint64_t>>();
      if (offs.size() != 2 || offs[0] > offs[1] || offs[1] > dataSize)
        fail("tensor '" + it.key() + "' has data offsets outside the file");
      uint64_t numel = 1;
      for (int64_t d : shape) {
        if (d < 0)
          fail("tensor '" + it.key() + "' has a negative dimension");
        numel *= uint64_t(d);
      }
      uint64_t bytes = numel * at::elementSize(*dtype);
      if (bytes != offs[1] - offs[0])
        fail("tensor '" + it.key() + "' has " +
             std::to_string(offs[1] - offs[0]) + " bytes for its shape's " +
             std::to_string(bytes));
      at::Tensor t = at::empty(shape, at::TensorOptions().dtype(*dtype));
      std::memcpy(t.data_ptr(), base + offs[0], bytes);
      auto sum = c.metadata.find(checksumKey(it.key()));
      if (sum != c.metadata.end() &&
          sum->second != hexDigest(t.data_ptr(), bytes))
        fail("checksum mismatch in tensor '" + it.key() + "'");
      spans.emplace_back(offs[0], offs[1], it.key());
      c.tensors.emplace_back(it.key(), t);
    }
  } catch (const nlohmann::json::exception &e) {
    fail(std::string("bad tensor entry: ") + e.what());
  }
  std::sort(spans.begin(), spans.end());
  uint64_t end = 0;
  for (auto &[lo, hi, name] : spans) {
    if (lo != end)
      fail("tensor '" + name + "' does not start where the previous ends");
    end = hi;
  }
  if (end != dataSize)
    fail(std::to_string(dataSize - end) + " trailing bytes after the data");
  return c;
}

} // namespace dqt::checkpoint
