//===- CacheEntry.h - one checksummed, atomically written file --*- C++ -*-===//
//
// Internal to runtime/: the disk caches' file format (CPU object code,
// cubins): `DQTKERNEL1\n`, the key's length and bytes, the data's length,
// its xxh64 and the data. An entry is trusted only when its key is the one
// asked for and its checksum holds; entries are written to a temporary file
// and renamed, so a reader never sees half an entry.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_CACHEENTRY_H
#define DQT_RUNTIME_CACHEENTRY_H

#include <optional>
#include <string>

namespace dqt::cache {

/// `dir/<name>-<xxh64 of key in hex><extension>`.
std::string entryPath(const std::string &dir, const std::string &name,
                      const std::string &key,
                      const std::string &extension = ".dqtk");

/// The data of the entry at `path`, or nothing when it is missing
/// (`present` false), corrupt (size, checksum) or stale (another key).
std::optional<std::string> readEntry(const std::string &path,
                                     const std::string &key, bool &present);

/// Writes an entry atomically; a cache that cannot be written only warns.
void writeEntry(const std::string &path, const std::string &key,
                const std::string &data);

} // namespace dqt::cache

#endif // DQT_RUNTIME_CACHEENTRY_H
