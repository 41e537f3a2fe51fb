//===- cuda-launch.cpp - the GPU kernel through the dlopen'ed driver ------===//
//
// Needs a CUDA device: where there is none, the launch test is skipped and
// says why (the driver's own reason); the loader's refusal is checked.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "dqt/Runtime/CudaDriver.h"
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
  // Launching without a driver is a clear error, not a crash.
  StepConfig c;
  EXPECT_NE(test::errorMessage([&] {
              launchCuda("", c, {}, {}, 0, 1);
            }).find("the CUDA launcher is unavailable: " + why),
            std::string::npos);
}

TEST(CudaLaunch, MatchesTheCpuKernelBitForBit) {
  std::string why;
  const CudaDriver *cu = CudaDriver::get(&why);
  if (!cu)
    GTEST_SKIP() << "no CUDA device here (" << why
                 << "): the GPU kernel is generated and assembled by other "
                    "tests, not launched";
  StepConfig config;
  config.bits = 4;
  auto ptx = compileGpuStep(config, "sm_80");
  ASSERT_TRUE(bool(ptx)) << llvm::toString(ptx.takeError());
  int64_t n = (1 << 20) + 3;
  at::Generator gen = at::detail::createCPUGenerator(3);
  at::Tensor q = at::randint(-8, 8, {n}, gen, at::kChar);
  at::Tensor g = at::randn({n}, gen), m = at::zeros({n}), v = at::zeros({n});
  g[17] = NAN;
  std::vector<float> hyper = {0.9f, 0.999f, 0.05f, 1e-6f, 1e-5f};
  // Device copies.
  std::vector<at::Tensor> host = {q, g, m, v};
  std::vector<CUdeviceptr> dev(4);
  for (int i = 0; i < 4; ++i) {
    cu->check(cu->cuMemAlloc(&dev[i], host[i].nbytes()), "cuMemAlloc");
    cu->check(cu->cuMemcpyHtoD(dev[i], host[i].data_ptr(), host[i].nbytes()),
              "cuMemcpyHtoD");
  }
  auto ptr = [&](int i) { return reinterpret_cast<void *>(dev[i]); };
  StepOperands gpuOp{(int8_t *)ptr(0),
                     (float *)ptr(1),
                     (float *)ptr(2),
                     (float *)ptr(3),
                     n,
                     0,
                     0.1f,
                     0.1f};
  StepStats gpu = launchCuda(*ptx, config, {gpuOp}, hyper, 7, 1)[0];
  // The CPU kernel on the host copies.
  StepOperands cpuOp{q.data_ptr<int8_t>(),
                     g.data_ptr<float>(),
                     m.data_ptr<float>(),
                     v.data_ptr<float>(),
                     n,
                     0,
                     0.1f,
                     0.1f};
  StepStats cpu = launchCpu(KernelCache::global().cpu(config), config, {cpuOp},
                            hyper, 7, 1)[0];
  EXPECT_EQ(gpu.maxQ, cpu.maxQ);
  EXPECT_EQ(gpu.changed, cpu.changed);
  EXPECT_EQ(gpu.nonFinite, cpu.nonFinite);
  for (int i = 0; i < 4; ++i) {
    at::Tensor back = at::empty_like(host[i]);
    cu->check(cu->cuMemcpyDtoH(back.data_ptr(), dev[i], back.nbytes()),
              "cuMemcpyDtoH");
    EXPECT_TRUE(test::sameBytes(back, host[i])) << "buffer " << i;
    cu->cuMemFree(dev[i]);
  }
}

} // namespace
