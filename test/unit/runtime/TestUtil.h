//===- TestUtil.h - helpers shared by the runtime tests -------------------===//

#ifndef DQT_TEST_UNIT_RUNTIME_TESTUTIL_H
#define DQT_TEST_UNIT_RUNTIME_TESTUTIL_H

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <unistd.h>

namespace dqt::test {

/// A test-name part for bit width `bits` (1.58: ternary).
inline std::string gridName(double bits) {
  return bits < 2 ? std::string("Ternary") : "Bits" + std::to_string(int(bits));
}

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

/// A fresh, empty directory for the running test:
/// <tmp>/<prefix>-<pid>-<test name>.
inline std::filesystem::path freshTestDirectory(const std::string &prefix) {
  namespace fs = std::filesystem;
  fs::path dir =
      fs::temp_directory_path() /
      (prefix + "-" + std::to_string(::getpid()) + "-" +
       ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::remove_all(dir);
  return dir;
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
