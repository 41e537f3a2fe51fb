//===- Checkpoint.h - safetensors files, written atomically -----*- C++ -*-===//

#ifndef DQT_RUNTIME_CHECKPOINT_H
#define DQT_RUNTIME_CHECKPOINT_H

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dqt::checkpoint {

/// Named tensors and string metadata of one file.
struct Contents {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  std::map<std::string, std::string> metadata;

  /// The tensor called `name`, or throws c10::Error naming it.
  const at::Tensor &get(const std::string &name) const;
};

/// Writes `contents` in the safetensors format (8-byte little-endian header
/// length, JSON header, raw little-endian data; I8/U8/F32/BF16/I64 dtypes)
/// with an xxh64 checksum of each tensor's bytes in `__metadata__`
/// ("dqt.xxh64.<name>"). The file is written to a temporary beside `path`,
/// flushed, then renamed over it: `path` always holds either the old or the
/// new complete file.
void save(const std::string &path, const Contents &contents);

/// Reads and validates a file written by `save` (or any safetensors file
/// with those dtypes): header bounds, JSON, dtypes, shapes against sizes,
/// offsets, and checksums when present. Throws c10::Error with the reason;
/// never modifies the file.
Contents load(const std::string &path);

} // namespace dqt::checkpoint

#endif // DQT_RUNTIME_CHECKPOINT_H
