//===- cuda-launch.cpp - the GPU kernel through the dlopen'ed driver ------===//
//
// Needs a CUDA device: where there is none, the launch test is skipped and
// says why (the driver's own reason); the loader's refusal is checked. The
// same path runs without a GPU through the emulated driver
// (cuda-emulated.cpp, label gpu-emulated).
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "dqt/Runtime/CudaLauncher.h"
#include "dqt/Runtime/KernelCache.h"

#include <gtest/gtest.h>

using namespace dqt;

namespace {

TEST(CudaDriverTest, LoadsOrSaysWhyNot) {
  std::string why;
  const CudaDriver *cu = CudaDriver::get(&why);
  if (cu) {
    EXPECT_TRUE(why.empty()) << why;
    return;
  }
  EXPECT_FALSE(why.empty());
  std::cout << "[cuda] driver unavailable: " << why << "\n";
  // Opening a device without a driver is a clear error, not a crash.
  std::string msg = test::errorMessage([] { CudaDevice::get(0); });
  EXPECT_NE(msg.find("no CUDA driver can be used: " + why), std::string::npos)
      << msg;
}

/// A configuration the GPU launch is checked with.
struct LaunchCase {
  std::string name;
  StepConfig config;
};

LaunchCase launchCase(std::string name, int bits, ScaleMode scale,
                      bool floatWeights) {
  StepConfig c;
  c.bits = bits;
  c.scale = scale;
  c.floatWeights = floatWeights;
  return {std::move(name), c};
}

void PrintTo(const LaunchCase &c, std::ostream *os) { *os << c.name; }

class CudaLaunch : public ::testing::TestWithParam<LaunchCase> {};

TEST_P(CudaLaunch, MatchesTheCpuKernelBitForBit) {
  std::string why;
  const CudaDriver *cu = CudaDriver::get(&why);
  if (!cu)
    GTEST_SKIP() << "no CUDA device here (" << why
                 << "): the GPU kernel is generated and assembled by other "
                    "tests, not launched";
  const StepConfig &config = GetParam().config;
  CudaDevice &device = CudaDevice::get(0);
  device.bind(); // for the allocations and copies below
  const Executable &kernel = KernelCache::global().cuda(config, device);
  // Rows of an odd length: groups of 8 straddle rows.
  const int64_t rowLength = 1021, rows = 1027, n = rows * rowLength;
  bool perRow = config.scale == ScaleMode::Row;
  at::Generator gen = at::detail::createCPUGenerator(3);
  at::Tensor q = config.floatWeights ? at::randn({n}, gen)
                                     : at::randint(-8, 8, {n}, gen, at::kChar);
  at::Tensor g = at::randn({n}, gen), m = at::zeros({n}), v = at::zeros({n});
  g[17] = NAN;
  std::vector<float> hyper = {0.9f, 0.999f, 0.05f, 1e-6f, 1e-5f};
  // StepConfig.h's buffers: q (or the f32 weights), g, m, v; per row also
  // delta_rows, delta_next_rows and row_max.
  std::vector<at::Tensor> host = {q, g, m, v};
  if (perRow) {
    host.push_back(at::rand({rows}, gen) * 0.1f + 0.05f);
    host.push_back(host.back() * 0.9f);
    host.push_back(at::zeros({rows}, at::kInt));
  }
  std::vector<CUdeviceptr> dev(host.size());
  for (size_t i = 0; i < host.size(); ++i) {
    cu->check(cu->cuMemAlloc(&dev[i], host[i].nbytes()), "cuMemAlloc");
    cu->check(cu->cuMemcpyHtoD(dev[i], host[i].data_ptr(), host[i].nbytes()),
              "cuMemcpyHtoD");
  }
  auto operands = [&](auto ptr) {
    StepOperands op{};
    op.q = (int8_t *)ptr(0);
    op.grad = (float *)ptr(1);
    op.state0 = ptr(2);
    op.state1 = ptr(3);
    op.numel = n;
    op.delta = op.deltaNext = 0.1f;
    if (perRow) {
      op.rowLength = rowLength;
      op.deltaRows = (const float *)ptr(4);
      op.deltaNextRows = (const float *)ptr(5);
      op.rowMaxQ = (int32_t *)ptr(6);
    }
    return op;
  };
  StepStats gpu = launchCudaAndWait(
      device, kernel, config, {operands([&](int i) { return (void *)dev[i]; })},
      hyper, 7, 1, /*stream=*/nullptr)[0];
  // The CPU kernel on the host copies.
  StepStats cpu = launchCpu(
      KernelCache::global().cpu(config), config,
      {operands([&](int i) { return host[i].data_ptr(); })}, hyper, 7, 1)[0];
  EXPECT_EQ(gpu.maxQ, cpu.maxQ);
  EXPECT_EQ(gpu.changed, cpu.changed);
  EXPECT_EQ(gpu.nonFinite, cpu.nonFinite);
  EXPECT_EQ(cpu.nonFinite, 1);
  for (size_t i = 0; i < host.size(); ++i) {
    at::Tensor back = at::empty_like(host[i]);
    cu->check(cu->cuMemcpyDtoH(back.data_ptr(), dev[i], back.nbytes()),
              "cuMemcpyDtoH");
    EXPECT_TRUE(test::sameBytes(back, host[i])) << "buffer " << i;
    cu->cuMemFree(dev[i]);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Configs, CudaLaunch,
    ::testing::Values(launchCase("Bits4", 4, ScaleMode::Tensor, false),
                      launchCase("Bits8PerRow", 8, ScaleMode::Row, false),
                      launchCase("FloatMode", 8, ScaleMode::Tensor, true)),
    [](const auto &info) { return info.param.name; });

} // namespace
