//===- kernel-cache.cpp - memory and disk kernel cache --------------------===//

#include "TestUtil.h"

#include "dqt/Runtime/KernelCache.h"

#include "dqt/Runtime/CpuLauncher.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

using namespace dqt;
namespace fs = std::filesystem;

namespace {

using test::readFile;
using test::writeFile;

/// Runs one AdamW step with `kernel` on fixed data; returns q, m, v bytes.
std::string runStep(const Executable &kernel, const StepConfig &config) {
  int64_t n = 10007;
  at::Generator gen = at::detail::createCPUGenerator(1);
  at::Tensor q = at::randint(-100, 100, {n}, gen, at::kChar);
  at::Tensor g = at::randn({n}, gen), m = at::zeros({n}), v = at::zeros({n});
  StepOperands op{q.data_ptr<int8_t>(),
                  g.data_ptr<float>(),
                  m.data_ptr<float>(),
                  v.data_ptr<float>(),
                  n,
                  0,
                  0.02f,
                  0.02f};
  launchCpu(kernel, config, {op}, {0.9f, 0.999f, 0.05f, 1e-6f, 1e-5f}, 42, 1);
  return std::string((char *)q.data_ptr(), n) +
         std::string((char *)m.data_ptr(), 4 * n) +
         std::string((char *)v.data_ptr(), 4 * n);
}

class KernelCacheTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir = test::freshTestDirectory("dqt-kcache");
    config.bits = 4;
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path dir;
  StepConfig config;
};

TEST_F(KernelCacheTest, ColdCompileThenWarmLoadFromDisk) {
  KernelCache cold(dir.string());
  std::string want = runStep(cold.cpu(config), config);
  EXPECT_EQ(cold.stats().compiled, 1);
  EXPECT_TRUE(fs::exists(cold.entryPath(config)));
  EXPECT_EQ(&cold.cpu(config), &cold.cpu(config)); // memory hit

  KernelCache warm(dir.string()); // as in a new process
  std::string got = runStep(warm.cpu(config), config);
  KernelCache::Stats s = warm.stats();
  EXPECT_EQ(s.loaded, 1);
  EXPECT_EQ(s.compiled, 0);
  EXPECT_EQ(got, want) << "the loaded kernel computes something else";
  std::cout << "[kernel cache] " << config.key() << ": cold compile "
            << cold.stats().lastCompileSeconds * 1e3 << " ms, warm load "
            << s.lastLoadSeconds * 1e3 << " ms\n";
  // No temporary is left behind.
  for (auto &e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().extension(), ".dqtk") << e.path();
}

TEST_F(KernelCacheTest, CorruptOrStaleEntriesAreRecompiledNotTrusted) {
  std::string path;
  {
    KernelCache c(dir.string());
    c.cpu(config);
    path = c.entryPath(config);
  }
  std::string good = readFile(path);
  std::string want = runStep(KernelCache(dir.string()).cpu(config), config);

  std::string flipped = good;
  flipped[good.size() - 100] ^= 0x10; // inside the object code
  std::string stale = good;
  size_t at = stale.find("dqt-compiler-");
  ASSERT_NE(at, std::string::npos);
  stale[at + 13] ^= 0x01; // another compiler version
  std::vector<std::pair<std::string, std::string>> cases = {
      {"flipped", flipped},
      {"stale", stale},
      {"truncated", good.substr(0, good.size() / 2)},
      {"garbage", "not a kernel"},
      {"empty", ""}};
  for (auto &[name, bytes] : cases) {
    writeFile(path, bytes);
    KernelCache c(dir.string());
    std::string got = runStep(c.cpu(config), config);
    EXPECT_EQ(c.stats().rejected, 1) << name;
    EXPECT_EQ(c.stats().compiled, 1) << name;
    EXPECT_EQ(got, want) << name;
    // Rewritten with a valid entry, which the next process loads.
    KernelCache next(dir.string());
    next.cpu(config);
    EXPECT_EQ(next.stats().loaded, 1) << name;
  }
}

TEST(KernelCacheEntries, NameTheStateType) {
  StepConfig c;
  c.stateType = StateType::BF16;
  EXPECT_NE(KernelCache::global().entryPath(c).find("adamw-b8-gf32-sbf16"),
            std::string::npos);
  c.stateType = StateType::F32;
  EXPECT_NE(KernelCache::global().entryPath(c).find("adamw-b8-gf32-sf32"),
            std::string::npos);
}

TEST_F(KernelCacheTest, MemoryOnlyWithoutDirectory) {
  KernelCache c("");
  c.cpu(config);
  EXPECT_EQ(c.stats().compiled, 1);
  EXPECT_FALSE(fs::exists(dir));
}

TEST_F(KernelCacheTest, ConcurrentRequestsCompileOnce) {
  KernelCache c(dir.string());
  std::vector<const Executable *> got(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] { got[i] = &c.cpu(config); });
  for (auto &t : threads)
    t.join();
  EXPECT_EQ(c.stats().compiled, 1);
  for (auto *k : got)
    EXPECT_EQ(k, got[0]);
}

} // namespace
