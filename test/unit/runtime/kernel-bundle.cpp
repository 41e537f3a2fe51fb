//===- kernel-bundle.cpp - kernels from bundles (dqt-aot) -----------------===//
//
// With the compiler: every kernel of the standard bundle computes exactly the
// bytes its JIT-compiled twin computes, at every x86-64 level this CPU runs.
// In either build: bundles of another ABI or numerics contract, and files
// that are no bundle, are refused with an error naming them; without the
// compiler, a kernel no bundle has gets an error naming its key and the
// dqt-aot command that makes it.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "dqt/Compiler/KernelAbi.h"
#include "dqt/Compiler/KernelArgs.h"
#include "dqt/Runtime/CpuLauncher.h"
#include "dqt/Runtime/KernelCache.h"
#include "dqt/Runtime/QuantizedWeight.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

using namespace dqt;
using test::errorMessage;

namespace {

/// The standard bundle of the build tree (DQT_TEST_BUNDLE, set by CMake),
/// opened once.
std::shared_ptr<KernelBundle> standardBundle() {
  static std::shared_ptr<KernelBundle> b = [] {
    return *DQT_TEST_BUNDLE ? KernelBundle::open(DQT_TEST_BUNDLE) : nullptr;
  }();
  return b;
}

/// Buffers of one step of `c` over `rows` rows of `rowLength` elements.
struct StepCase {
  at::Tensor q, g, s0, s1, deltaRows, deltaNextRows, rowMax, rowAbsMax;
  StepOperands op{};
  std::vector<float> hyper;

  StepCase(const StepConfig &c, int64_t rows, int64_t rowLength) {
    int64_t n = rows * rowLength;
    at::Generator gen = at::detail::createCPUGenerator(11);
    if (c.floatWeights) {
      q = at::randn({n}, gen);
    } else {
      q = at::randint(c.qn(), c.qp() + 1, {n}, gen, at::kChar);
      if (c.packed)
        q = packTernary(q);
    }
    g = at::randn({n}, gen) * 0.3;
    g[5] = NAN;
    g[n - 2] = INFINITY;
    auto state = [&](float scale) {
      at::Tensor s = at::randn({n}, gen).abs() * scale;
      return c.stateType == StateType::BF16 ? s.to(at::kBFloat16) : s;
    };
    s0 = state(1e-2f);
    s1 = state(1e-4f);
    op.q = static_cast<int8_t *>(q.data_ptr());
    op.grad = g.data_ptr<float>();
    op.state0 = s0.data_ptr();
    op.state1 = s1.data_ptr();
    op.numel = n;
    op.tensorId = 3;
    op.delta = 0.02f;
    op.deltaNext = 0.021f;
    if (c.scale == ScaleMode::Row) {
      deltaRows = at::rand({rows}, gen) * 0.05 + 0.01;
      deltaNextRows = deltaRows * 1.05;
      rowMax = at::empty({rows}, at::kInt);
      op.rowLength = rowLength;
      op.deltaRows = deltaRows.data_ptr<float>();
      op.deltaNextRows = deltaNextRows.data_ptr<float>();
      op.rowMaxQ = rowMax.data_ptr<int32_t>();
      if (c.rule == ScaleRule::AbsMax) {
        rowAbsMax = at::empty({rows}, at::kInt);
        op.rowAbsMax = rowAbsMax.data_ptr<int32_t>();
      }
    }
    hyper = c.optimizer == Optimizer::AdamW
                ? std::vector<float>{0.9f, 0.999f, 0.05f, 1e-6f, 1e-2f}
                : std::vector<float>{0.05f, 0.9f, 1e-2f};
  }

  /// Everything the step wrote, and its by-products.
  std::string bytes(const StepStats &s) const {
    std::string out;
    for (const at::Tensor &t : {q, s0, s1, rowMax, rowAbsMax})
      if (t.defined())
        out.append(static_cast<const char *>(t.data_ptr()), t.nbytes());
    for (int64_t v : {s.maxQ, s.changed, s.nonFinite, s.absMax})
      out.append(reinterpret_cast<const char *>(&v), sizeof(v));
    return out;
  }
};

/// The bytes one step of `c` by `kernel` writes.
std::string stepBytes(const Executable &kernel, const StepConfig &c) {
  // Odd rows of an odd length: groups straddle rows; packed rows are
  // multiples of 4.
  StepCase k(c, 7, c.packed ? 1024 : 1021);
  std::vector<StepStats> stats =
      launchCpu(kernel, c, {k.op}, k.hyper, /*seed=*/42, /*step=*/5);
  return k.bytes(stats.at(0));
}

/// An executable of a bundle's CPU kernel.
Executable fromBundle(const dqt_bundle_cpu_kernel &k) {
  Executable exe;
  exe.key = k.key;
  exe.fn = k.fn;
  return exe;
}

#if DQT_WITH_COMPILER

TEST(KernelBundle, EveryStandardKernelMatchesTheJitBitForBit) {
  std::shared_ptr<KernelBundle> bundle = standardBundle();
  ASSERT_TRUE(bundle) << "the build names no kernel bundle";
  std::vector<std::string> levels = supportedCpuLevels();
  ASSERT_FALSE(levels.empty()) << "this CPU runs no bundled level";
  std::vector<StepConfig> configs = standardStepConfigs();
  EXPECT_EQ(bundle->cpuKeys().size(), configs.size() + 1); // + uniform
  for (const StepConfig &c : configs) {
    std::string want = stepBytes(KernelCache::global().cpu(c), c);
    for (const std::string &level : levels) {
      const dqt_bundle_cpu_kernel *k = bundle->cpu(c.key(), level);
      ASSERT_TRUE(k) << c.key() << " " << level;
      EXPECT_TRUE(stepBytes(fromBundle(*k), c) == want)
          << c.key() << " at " << level << " differs from the JIT kernel";
    }
    for (const char *chip : {"sm_80", "sm_90"}) {
      const dqt_bundle_gpu_kernel *ptx = bundle->gpu(c.key(), chip, false);
      ASSERT_TRUE(ptx) << c.key() << " " << chip;
      EXPECT_STREQ(ptx->format, "ptx");
      EXPECT_NE(
          std::string(reinterpret_cast<const char *>(ptx->data), ptx->size)
              .find(".entry dqt_step"),
          std::string::npos);
    }
  }
}

TEST(KernelBundle, PtxIsTheCompilersAndCubinsAreElf) {
  std::shared_ptr<KernelBundle> bundle = standardBundle();
  ASSERT_TRUE(bundle);
  StepConfig c;
  c.ternary = c.packed = true;
  c.scale = ScaleMode::Row;
  for (const char *chip : {"sm_80", "sm_90"}) {
    const dqt_bundle_gpu_kernel *ptx = bundle->gpu(c.key(), chip, false);
    ASSERT_TRUE(ptx);
    KernelCache fresh("");
    EXPECT_EQ(std::string(reinterpret_cast<const char *>(ptx->data), ptx->size),
              fresh.cuda(c, chip).image)
        << chip;
    if (const dqt_bundle_gpu_kernel *cubin = bundle->gpu(c.key(), chip)) {
      if (std::strcmp(cubin->format, "cubin") == 0) {
        ASSERT_GE(cubin->size, 4u);
        EXPECT_EQ(std::memcmp(cubin->data,
                              "\x7f"
                              "ELF",
                              4),
                  0)
            << chip;
      }
    }
  }
}

TEST(KernelBundle, CubinsOnlyWhereTheDeviceRunsThem) {
  std::shared_ptr<KernelBundle> bundle = standardBundle();
  ASSERT_TRUE(bundle);
  StepConfig c;
  const dqt_bundle_gpu_kernel *k = bundle->gpu(c.key(), "sm_90");
  ASSERT_TRUE(k);
  if (std::strcmp(k->format, "cubin") != 0)
    GTEST_SKIP() << "the bundle holds no cubins (no ptxas where it was made)";
  KernelCache cache("");
  cache.addBundle(bundle);
  // A 9.x device takes the cubin; a newer one (PTX compiled by its driver)
  // must not get it: an sm_90 cubin does not load on 10.x.
  EXPECT_TRUE(cache.cuda(c, "sm_90").cubin);
  const Executable &ptx = cache.cuda(c, "sm_90", /*cubin=*/false);
  EXPECT_FALSE(ptx.cubin);
  EXPECT_EQ(ptx.image.rfind("// dqt-kernel: adamw-b8-gf32-sf32\n", 0), 0u);
  EXPECT_EQ(cache.stats().compiled, 0);
}

TEST(KernelBundle, WeightStreamMatchesTheJit) {
  std::shared_ptr<KernelBundle> bundle = standardBundle();
  ASSERT_TRUE(bundle);
  const dqt_bundle_cpu_kernel *k = bundle->cpu(kUniformKernelKey);
  ASSERT_TRUE(k);
  // The uniform kernel's arguments (Compiler.h, buildUniformModule).
  auto run = [](Executable::PackedFn fn) {
    int64_t n = 1003;
    std::vector<float> like(n), out(n, -1.0f);
    std::vector<int64_t> red(kNumReductions);
    KernelArgs args;
    args.addBuffer(like.data(), n);
    args.addScalar<uint64_t>(7);
    args.addScalar<uint64_t>(9);
    args.addScalar<int64_t>(2);
    args.addBuffer(out.data(), n);
    args.addScalar<int64_t>(0);
    args.addScalar<int64_t>(n);
    args.addBuffer(red.data(), 0);
    fn(args.data());
    return out;
  };
  EXPECT_EQ(run(k->fn), run(KernelCache("").cpuUniform().fn));
}

TEST(KernelBundle, CacheTakesBundledKernelsFirst) {
  std::shared_ptr<KernelBundle> bundle = standardBundle();
  ASSERT_TRUE(bundle);
  KernelCache c("");
  c.addBundle(bundle);
  StepConfig config;
  config.bits = 3;
  EXPECT_EQ(c.cpu(config).origin.rfind("bundle dqt_standard (x86-64-v", 0), 0u)
      << c.cpu(config).origin;
  EXPECT_EQ(c.stats().bundled, 1);
  EXPECT_EQ(c.stats().compiled, 0);
}

#else

TEST(KernelBundle, WithoutCompilerAMissingKernelNamesItsKeyAndTheFix) {
  KernelCache empty(""); // no bundle
  StepConfig c;
  c.bits = 5;
  std::string msg = errorMessage([&] { empty.cpu(c); });
  EXPECT_NE(msg.find("'adamw-b5-gf32-sf32'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("DQT_WITH_COMPILER=OFF"), std::string::npos) << msg;
  EXPECT_NE(msg.find("dqt-aot --config adamw-b5-gf32-sf32"), std::string::npos)
      << msg;
  msg = errorMessage([&] { empty.cuda(c, "sm_90"); });
  EXPECT_NE(msg.find("sm_90"), std::string::npos) << msg;
}

TEST(KernelBundle, WithoutCompilerTheStandardBundleServesEveryConfiguration) {
  std::shared_ptr<KernelBundle> bundle = standardBundle();
  ASSERT_TRUE(bundle) << "the build names no kernel bundle";
  KernelCache c("");
  c.addBundle(bundle);
  for (const StepConfig &config : standardStepConfigs()) {
    const Executable &k = c.cpu(config);
    EXPECT_EQ(k.origin.rfind("bundle dqt_standard", 0), 0u) << k.origin;
    // Runs, and moves weights.
    StepCase step(config, 3, 1024);
    at::Tensor before = step.q.clone();
    launchCpu(k, config, {step.op}, step.hyper, 1, 1);
    EXPECT_FALSE(test::sameBytes(before, step.q)) << config.key();
  }
  EXPECT_EQ(c.stats().compiled, 0);
}

#endif

TEST(KernelBundle, RefusesAnotherAbiOrNumericsContract) {
  dqt_bundle b{};
  b.format = DQT_BUNDLE_FORMAT;
  b.kernel_abi = kKernelAbiVersion;
  b.numerics = kNumericsVersion;
  b.compiler = "test";
  b.name = "fake";
  EXPECT_TRUE(KernelBundle::linked(&b));
  b.kernel_abi = kKernelAbiVersion + 1;
  std::string msg = errorMessage([&] { KernelBundle::linked(&b); });
  EXPECT_NE(msg.find("kernel ABI"), std::string::npos) << msg;
  EXPECT_NE(msg.find("fake"), std::string::npos) << msg;
  b.kernel_abi = kKernelAbiVersion;
  b.numerics = "1";
  msg = errorMessage([&] { KernelBundle::linked(&b); });
  EXPECT_NE(msg.find("numerics contract v1"), std::string::npos) << msg;
  b.numerics = kNumericsVersion;
  b.format = DQT_BUNDLE_FORMAT + 1;
  msg = errorMessage([&] { KernelBundle::linked(&b); });
  EXPECT_NE(msg.find("bundle format"), std::string::npos) << msg;
}

TEST(KernelBundle, RefusesFilesThatAreNoBundle) {
  std::string msg =
      errorMessage([] { KernelBundle::open("/nonexistent/libdqt_x.so"); });
  EXPECT_NE(msg.find("/nonexistent/libdqt_x.so"), std::string::npos) << msg;
  msg = errorMessage([] { KernelBundle::open("libm.so.6"); });
  EXPECT_NE(msg.find("is not a kernel bundle"), std::string::npos) << msg;
}

TEST(KernelBundle, CpuLevelCanBeCapped) {
  std::vector<std::string> all = supportedCpuLevels();
  if (all.empty() || all.front() != "x86-64-v4")
    GTEST_SKIP() << "this CPU does not run x86-64-v4, nothing to cap";
  ::setenv("DQT_CPU_LEVEL", "x86-64-v3", 1);
  std::vector<std::string> capped = supportedCpuLevels();
  ::setenv("DQT_CPU_LEVEL", "x86-64-v5", 1);
  std::string msg = errorMessage([] { supportedCpuLevels(); });
  ::unsetenv("DQT_CPU_LEVEL");
  EXPECT_EQ(capped, std::vector<std::string>{"x86-64-v3"});
  EXPECT_NE(msg.find("DQT_CPU_LEVEL=x86-64-v5"), std::string::npos) << msg;
}

} // namespace
