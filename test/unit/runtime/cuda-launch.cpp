//===- cuda-launch.cpp - the GPU kernel through the dlopen'ed driver ------===//
//
// Needs a CUDA device: where there is none, the launch test is skipped and
// says why (the driver's own reason); the loader's refusal is checked. The
// launcher's default stream (LibTorch's current stream, found with dlsym in
// an already loaded libc10_cuda.so) is checked with and without that library.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "dqt/Runtime/CudaDriver.h"
#include "dqt/Runtime/KernelCache.h"

#include <gtest/gtest.h>

#include <dlfcn.h>
#include <filesystem>
#include <link.h>

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

bool c10CudaLoaded() {
  void *h = ::dlopen("libc10_cuda.so", RTLD_NOW | RTLD_NOLOAD);
  if (h)
    ::dlclose(h);
  return h != nullptr;
}

// This binary links torch_cpu and c10 only: nothing loads libc10_cuda.so
// unless a test does (the next one).
TEST(TorchStreams, DefaultStreamWithoutC10Cuda) {
  if (c10CudaLoaded())
    GTEST_SKIP() << "libc10_cuda.so was loaded by an earlier test";
  std::string why;
  EXPECT_FALSE(cuda::torchStreamsAvailable(&why));
  EXPECT_EQ(why, "libc10_cuda.so is not loaded in this process");
  EXPECT_EQ(cuda::currentTorchStream(0), nullptr);
  // The lookup never loads the library itself.
  EXPECT_FALSE(c10CudaLoaded());
}

TEST(TorchStreams, ResolvedOnceLibTorchsCudaLibraryIsLoaded) {
  // The wheel's libc10_cuda.so sits next to the libc10.so we link.
  void *c10 = ::dlopen("libc10.so", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(c10, nullptr);
  link_map *map = nullptr;
  ASSERT_EQ(::dlinfo(c10, RTLD_DI_LINKMAP, &map), 0);
  std::filesystem::path path =
      std::filesystem::path(map->l_name).parent_path() / "libc10_cuda.so";
  ::dlclose(c10);
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << "a CPU-only LibTorch: no " << path;
  if (!::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    const char *err = ::dlerror();
    GTEST_SKIP() << "cannot load " << path << ": " << (err ? err : "?");
  }
  std::string why;
  EXPECT_TRUE(cuda::torchStreamsAvailable(&why)) << why;
  EXPECT_TRUE(why.empty()) << why;

  if (!CudaDriver::get(&why)) {
    // Here getCurrentCUDAStream (and even CUDAStream::stream()) would throw
    // ("CUDA driver version is insufficient"): neither is called.
    std::cout << "[cuda] no device (" << why
              << "): the default stream, torch not asked\n";
    EXPECT_EQ(cuda::currentTorchStream(0), nullptr);
    return;
  }
  // No stream was set in this process: torch's current stream of device 0
  // is its default stream, the null stream.
  EXPECT_EQ(cuda::currentTorchStream(0), nullptr);
}

} // namespace
