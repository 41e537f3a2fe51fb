//===- TestUtil.h - helpers shared by the runtime tests -------------------===//

#ifndef DQT_TEST_UNIT_RUNTIME_TESTUTIL_H
#define DQT_TEST_UNIT_RUNTIME_TESTUTIL_H

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

namespace dqt::test {

inline std::string readFile(const std::filesystem::path &p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void writeFile(const std::filesystem::path &p,
                      const std::string &bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

/// Bit equality of two tensors (at::equal says NaN != NaN).
inline bool sameBytes(const at::Tensor &a, const at::Tensor &b) {
  return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() &&
         std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0;
}

/// The message of the c10::Error `fn` throws, or "no error".
inline std::string errorMessage(const std::function<void()> &fn) {
  try {
    fn();
  } catch (const c10::Error &e) {
    return e.what_without_backtrace();
  }
  return "no error";
}

} // namespace dqt::test

#endif // DQT_TEST_UNIT_RUNTIME_TESTUTIL_H
