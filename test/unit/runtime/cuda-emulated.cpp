//===- cuda-emulated.cpp - the CUDA launch path run without a GPU ---------===//
//
// The runtime's CUDA path (CudaDriver, CudaDevice, launchCuda, readStepStats,
// launchCudaAndWait, the cubin disk cache) driven through its real API
// against libdqt-emulated-cuda.so ($DQT_CUDA_DRIVER, EmulatedCudaDriver.cpp),
// which runs the very gpu.func the compiler emits through the GPU emulator.
// Results are compared bit for bit (weights, states, row maxima, by-products)
// with the CPU kernel on host copies: AdamW and SGD, 8, 4, 3 bits, ternary,
// packed ternary, per-row delta with odd row lengths, bf16 states, float
// mode; several parameters per launch, sizes that are not multiples of 4, 8
// or the block, grids of several blocks, a grid-stride loop that wraps. And
// the launcher's contract: no synchronization in launchCuda and one in
// readStepStats, the caller's stream on every stream-ordered operation, the
// context bound on a thread that never saw it, a GPU below compute
// capability 8.0 refused, cubins linked once and then loaded from disk, a
// corrupt cache entry relinked.
//
// ctest runs this binary three times (test/unit/CMakeLists.txt): the main
// tests on a fresh cache directory, then CudaEmulatedSecondProcess in a new
// process on the cache the first left, and CudaEmulatedRefusal with
// DQT_EMULATED_CUDA_CC=7.5 (a device is opened once per process).
//
//===----------------------------------------------------------------------===//

#include "EmulatedCudaTest.h"
#include "TestUtil.h"

#include "dqt/Runtime/CudaLauncher.h"
#include "dqt/Runtime/KernelCache.h"

#include <gtest/gtest.h>

#include <dlfcn.h>
#include <filesystem>
#include <functional>
#include <thread>

using namespace dqt;
namespace fs = std::filesystem;

namespace {

using test::emulated;
using test::emulation;
using test::Emulation;
using test::kNotEmulated;

/// Device memory freed at the end of a test.
class DeviceBuffers {
public:
  explicit DeviceBuffers(const CudaDriver &cu) : cu(cu) {}
  ~DeviceBuffers() {
    for (CUdeviceptr p : owned)
      cu.cuMemFree(p);
  }
  CUdeviceptr alloc(size_t bytes) {
    CUdeviceptr p = 0;
    cu.check(cu.cuMemAlloc(&p, bytes), "cuMemAlloc");
    owned.push_back(p);
    return p;
  }
  CUdeviceptr upload(const at::Tensor &t) {
    CUdeviceptr p = alloc(t.nbytes());
    cu.check(cu.cuMemcpyHtoD(p, t.data_ptr(), t.nbytes()), "cuMemcpyHtoD");
    return p;
  }
  at::Tensor download(CUdeviceptr p, const at::Tensor &like) {
    at::Tensor t = at::empty_like(like);
    cu.check(cu.cuMemcpyDtoH(t.data_ptr(), p, t.nbytes()), "cuMemcpyDtoH");
    return t;
  }

private:
  const CudaDriver &cu;
  std::vector<CUdeviceptr> owned;
};

/// One parameter's host buffers, in StepOperands' order: the weights (int8,
/// packed bytes or f32), grad, state0, state1 (undefined for SGD), and per
/// row delta_rows, delta_next_rows and row_max.
struct HostParam {
  enum { Q, G, S0, S1, DeltaRows, DeltaNextRows, RowMax, NumBuffers };
  int64_t numel = 0, rowLength = 0, tensorId = 0;
  float delta = 0.05f, deltaNext = 0.045f;
  std::vector<at::Tensor> buffers = std::vector<at::Tensor>(NumBuffers);

  HostParam clone() const {
    HostParam c = *this;
    for (at::Tensor &t : c.buffers)
      if (t.defined())
        t = t.clone();
    return c;
  }

  /// The operands, each buffer's address from `ptr(index)` (nullptr for a
  /// buffer this parameter lacks).
  template <typename Ptr> StepOperands operands(Ptr ptr) const {
    auto at = [&](int i) {
      return buffers[i].defined() ? ptr(i) : static_cast<void *>(nullptr);
    };
    StepOperands op{};
    op.q = static_cast<int8_t *>(at(Q));
    op.grad = static_cast<float *>(at(G));
    op.state0 = at(S0);
    op.state1 = at(S1);
    op.numel = numel;
    op.tensorId = tensorId;
    op.delta = delta;
    op.deltaNext = deltaNext;
    if (rowLength) {
      op.rowLength = rowLength;
      op.deltaRows = static_cast<const float *>(at(DeltaRows));
      op.deltaNextRows = static_cast<const float *>(at(DeltaNextRows));
      op.rowMaxQ = static_cast<int32_t *>(at(RowMax));
    }
    return op;
  }
};

const char *bufferName(int i) {
  static const char *names[] = {"weights", "grad",       "state0",
                                "state1",  "delta_rows", "delta_next_rows",
                                "row_max"};
  return names[i];
}

/// Random operands of `config` for a parameter of `numel` elements.
HostParam makeParam(const StepConfig &config, int64_t numel, int64_t rowLength,
                    int64_t tensorId) {
  at::Generator gen = at::detail::createCPUGenerator(1000 + tensorId);
  HostParam p;
  p.numel = numel;
  p.rowLength = config.floatWeights ? 0 : rowLength;
  p.tensorId = tensorId;
  auto &b = p.buffers;
  if (config.floatWeights) {
    b[HostParam::Q] = at::randn({numel}, gen);
    p.delta = p.deltaNext = 1.0f;
  } else {
    at::Tensor q =
        at::randint(config.qn(), config.qp() + 1, {numel}, gen, at::kChar);
    if (config.packed) {
      at::Tensor bytes = at::empty({(numel + 3) / 4}, at::kByte);
      // 2-bit two's complement codes, element i at bits 2(i mod 4).
      bytes.zero_();
      const int8_t *v = q.data_ptr<int8_t>();
      uint8_t *out = bytes.data_ptr<uint8_t>();
      for (int64_t i = 0; i < numel; ++i)
        out[i / 4] |= uint8_t((uint8_t(v[i]) & 3u) << (2 * (i % 4)));
      q = bytes;
    }
    b[HostParam::Q] = q;
  }
  at::Tensor g = at::randn({numel}, gen);
  // Non-finite gradients are masked and counted.
  g[numel / 3] = NAN;
  if (numel > 8)
    g[numel - 2] = INFINITY;
  b[HostParam::G] = g;
  at::ScalarType state =
      config.stateType == StateType::BF16 ? at::kBFloat16 : at::kFloat;
  b[HostParam::S0] = (at::randn({numel}, gen) * 0.1).to(state);
  if (config.optimizer == Optimizer::AdamW)
    b[HostParam::S1] = (at::rand({numel}, gen) * 0.01).to(state);
  if (p.rowLength) {
    int64_t rows = numel / p.rowLength;
    b[HostParam::DeltaRows] = at::rand({rows}, gen) * 0.05 + 0.02;
    b[HostParam::DeltaNextRows] = b[HostParam::DeltaRows] * 0.9;
    // The launcher initializes the row maxima (INT32_MIN).
    b[HostParam::RowMax] = at::full({rows}, 12345, at::kInt);
  }
  return p;
}

std::vector<float> hyperOf(const StepConfig &config) {
  if (config.optimizer == Optimizer::AdamW)
    return {0.9f, 0.999f, 0.05f, 1e-6f, 1e-4f};
  return {0.05f, 0.9f, 1e-4f};
}

constexpr uint64_t kSeed = 42, kStep = 3;

class CudaEmulated : public ::testing::Test {
protected:
  void SetUp() override {
    if (!emulated())
      GTEST_SKIP() << kNotEmulated;
    device = &CudaDevice::get(0);
    // For the allocations and copies of the test itself.
    device->bind();
    ASSERT_TRUE(emulation().counters) << "the driver lacks its counters";
  }

  const CudaDriver &cu() const { return device->driver(); }

  struct Outcome {
    std::vector<StepStats> gpu, cpu;
  };

  /// Steps parameters of `numels` elements (tensor ids 0, 1, ...) with one
  /// launchCuda on `stream` and the same with launchCpu on host copies, and
  /// expects every buffer and every parameter's by-products bit for bit
  /// equal.
  Outcome compareWithCpu(const StepConfig &config,
                         const std::vector<int64_t> &numels,
                         int64_t rowLength = 0, CUstream stream = nullptr) {
    std::vector<HostParam> gpuParams, cpuParams;
    for (size_t p = 0; p < numels.size(); ++p) {
      gpuParams.push_back(makeParam(config, numels[p], rowLength, int64_t(p)));
      cpuParams.push_back(gpuParams.back().clone());
    }
    DeviceBuffers mem(cu());
    std::vector<std::vector<CUdeviceptr>> dev(gpuParams.size());
    std::vector<StepOperands> gpuOps, cpuOps;
    for (size_t p = 0; p < gpuParams.size(); ++p) {
      for (const at::Tensor &t : gpuParams[p].buffers)
        dev[p].push_back(t.defined() ? mem.upload(t) : 0);
      gpuOps.push_back(gpuParams[p].operands(
          [&](int i) { return reinterpret_cast<void *>(dev[p][i]); }));
      cpuOps.push_back(cpuParams[p].operands(
          [&](int i) { return cpuParams[p].buffers[i].data_ptr(); }));
    }
    std::vector<float> hyper = hyperOf(config);
    const Executable &kernel =
        KernelCache::global().cuda(config, device->chip());
    CUdeviceptr partials = mem.alloc(numels.size() * kNumReductions * 8);
    Outcome out;
    launchCuda(*device, kernel, config, gpuOps, hyper, kSeed, kStep, stream,
               partials);
    out.gpu = readStepStats(*device, config, partials, numels.size(), stream);
    out.cpu = launchCpu(KernelCache::global().cpu(config), config, cpuOps,
                        hyper, kSeed, kStep);
    EXPECT_EQ(out.gpu.size(), numels.size());
    for (size_t p = 0; p < numels.size() && p < out.gpu.size(); ++p) {
      SCOPED_TRACE("parameter " + std::to_string(p) + " of " +
                   std::to_string(numels[p]) + " elements");
      EXPECT_EQ(out.gpu[p].maxQ, out.cpu[p].maxQ);
      EXPECT_EQ(out.gpu[p].changed, out.cpu[p].changed);
      EXPECT_EQ(out.gpu[p].nonFinite, out.cpu[p].nonFinite);
      EXPECT_EQ(out.cpu[p].nonFinite, numels[p] > 8 ? 2 : 1);
      if (!config.floatWeights) {
        EXPECT_GT(out.cpu[p].changed, 0) << "a vacuous step";
      }
      for (int i = 0; i < HostParam::NumBuffers; ++i) {
        const at::Tensor &want = cpuParams[p].buffers[i];
        if (!want.defined())
          continue;
        EXPECT_TRUE(test::sameBytes(mem.download(dev[p][i], want), want))
            << bufferName(i) << " differs from the CPU kernel's";
      }
    }
    return out;
  }

  CudaDevice *device = nullptr;
};

//===----------------------------------------------------------------------===//
// Bit for bit with the CPU kernel
//===----------------------------------------------------------------------===//

struct Case {
  std::string name;
  StepConfig config;
  /// The parameters of one launch.
  std::vector<int64_t> numels;
  int64_t rowLength = 0;
};

void PrintTo(const Case &c, std::ostream *os) { *os << c.name; }

StepConfig configOf(Optimizer opt, int bits, bool packed = false,
                    StateType state = StateType::F32,
                    ScaleMode scale = ScaleMode::Tensor,
                    bool floatWeights = false) {
  StepConfig c;
  c.optimizer = opt;
  c.ternary = bits == 0;
  c.bits = bits ? bits : 8;
  c.packed = packed;
  c.stateType = state;
  c.scale = scale;
  c.floatWeights = floatWeights;
  return c;
}

// Sizes: one partial group of 8, not multiples of 4 or 8 or of a block's
// 256 x 8 elements, up to grids of ~20 blocks (cudaGridBlocks; the
// emulated GPU's 4 SMs allow 32).
const std::vector<int64_t> kSizes = {5, 2053, 40003};
constexpr Optimizer kAdamW = Optimizer::AdamW, kSGD = Optimizer::SGD;

std::vector<Case> cases() {
  using S = StateType;
  using M = ScaleMode;
  return {
      {"AdamWBits8", configOf(kAdamW, 8), kSizes},
      {"AdamWBits3", configOf(kAdamW, 3), kSizes},
      {"AdamWTernary", configOf(kAdamW, 0), kSizes},
      {"AdamWTernaryPacked", configOf(kAdamW, 0, true), {3, 4001, 30003}},
      {"AdamWBits8BF16States", configOf(kAdamW, 8, false, S::BF16), kSizes},
      // Odd rows: groups of 8 and blocks straddle rows.
      {"AdamWBits8Rows1021",
       configOf(kAdamW, 8, false, S::F32, M::Row),
       {1021, 1021 * 37},
       1021},
      {"AdamWTernaryPackedRows333",
       configOf(kAdamW, 0, true, S::F32, M::Row),
       {333 * 5, 333 * 61},
       333},
      {"AdamWFloat", configOf(kAdamW, 8, false, S::F32, M::Tensor, true),
       kSizes},
      {"SGDBits4", configOf(kSGD, 4), kSizes},
      {"SGDBits8BF16States", configOf(kSGD, 8, false, S::BF16), kSizes},
      {"SGDBits5Rows77",
       configOf(kSGD, 5, false, S::F32, M::Row),
       {77, 77 * 503},
       77},
      {"SGDFloat", configOf(kSGD, 8, false, S::F32, M::Tensor, true), kSizes},
  };
}

class CudaEmulatedStep : public CudaEmulated,
                         public ::testing::WithParamInterface<Case> {};

TEST_P(CudaEmulatedStep, MatchesTheCpuKernelBitForBit) {
  const Case &c = GetParam();
  compareWithCpu(c.config, c.numels, c.rowLength);
}

INSTANTIATE_TEST_SUITE_P(Configs, CudaEmulatedStep,
                         ::testing::ValuesIn(cases()),
                         [](const auto &info) { return info.param.name; });

TEST_F(CudaEmulated, GridStrideLoopWraps) {
  // cudaGridBlocks caps the grid: past its maximum, each thread's grid-stride
  // loop runs more than once. The smallest size that wraps, plus a tail.
  int64_t blocks = cudaGridBlocks(int64_t(1) << 40, device->multiprocessors());
  int64_t grid = blocks * kCudaBlockThreads * 8;
  int64_t n = grid + 8 * 37 + 5;
  ASSERT_EQ(cudaGridBlocks(n, device->multiprocessors()), blocks);
  compareWithCpu(configOf(kAdamW, 8), {n});
  EXPECT_EQ(emulation().now().lastGrid, unsigned(blocks));
}

//===----------------------------------------------------------------------===//
// The launcher's contract
//===----------------------------------------------------------------------===//

TEST_F(CudaEmulated, KernelImageNamesItsConfiguration) {
  EXPECT_EQ(device->major(), 9);
  EXPECT_EQ(device->minor(), 0);
  EXPECT_EQ(device->chip(), "sm_90");
  StepConfig config = configOf(kAdamW, 8);
  const Executable &kernel = KernelCache::global().cuda(config, device->chip());
  EXPECT_EQ(kernel.target, Target::Cuda);
  EXPECT_FALSE(kernel.cubin);
  EXPECT_EQ(kernel.image.rfind("// dqt-kernel: adamw-b8-gf32-sf32\n", 0), 0u)
      << kernel.image.substr(0, 80);
  EXPECT_NE(kernel.image.find(".entry dqt_step"), std::string::npos);
}

TEST_F(CudaEmulated, DriverExportsEveryEntryPoint) {
  EXPECT_EQ(cu().library, std::getenv("DQT_CUDA_DRIVER"));
  void *lib = ::dlopen(cu().library.c_str(), RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(lib, nullptr);
#define DQT_CU_SYMBOL(member, name, params)                                    \
  EXPECT_NE(::dlsym(lib, name), nullptr) << name;                              \
  EXPECT_EQ(::dlsym(lib, name), reinterpret_cast<void *>(cu().member)) << name;
#include "dqt/Runtime/CudaSymbols.def"
  ::dlclose(lib);
}

TEST_F(CudaEmulated, LaunchCudaNeverSynchronizesAndReadStepStatsOnce) {
  StepConfig config =
      configOf(kAdamW, 8, false, StateType::F32, ScaleMode::Row);
  const Emulation &emu = emulation();
  const int64_t rowLength = 99, n = 99 * 41;
  std::vector<HostParam> params = {makeParam(config, n, rowLength, 0),
                                   makeParam(config, 3 * n, rowLength, 1)};
  DeviceBuffers mem(cu());
  std::vector<StepOperands> ops;
  for (HostParam &p : params) {
    std::vector<CUdeviceptr> dev;
    for (const at::Tensor &t : p.buffers)
      dev.push_back(t.defined() ? mem.upload(t) : 0);
    ops.push_back(
        p.operands([dev](int i) { return reinterpret_cast<void *>(dev[i]); }));
  }
  const Executable &kernel = KernelCache::global().cuda(config, device->chip());
  CUdeviceptr partials = mem.alloc(2 * kNumReductions * 8);
  // Any value is a stream to the emulation; this one is the caller's.
  auto stream = reinterpret_cast<CUstream>(uintptr_t(0x5eed));
  emu.reset();
  launchCuda(*device, kernel, config, ops, hyperOf(config), kSeed, kStep,
             stream, partials);
  DqtEmulatedCudaCounters c = emu.now();
  EXPECT_EQ(c.launches, 2);
  EXPECT_EQ(c.syncs, 0);
  // A synchronous copy would wait for the device as a sync does.
  EXPECT_EQ(c.copiesDtoH, 0);
  EXPECT_EQ(c.copiesHtoD, 0);
  EXPECT_EQ(c.asyncCopiesDtoH, 0);
  // On the stream: the by-products zeroed, each parameter's max slot set to
  // INT64_MIN (its high word), each parameter's row maxima.
  EXPECT_EQ(c.memsets, 1 + 2 + 2);
  EXPECT_EQ(c.lastStream, stream);
  EXPECT_EQ(c.streamOpsOnLastStream, c.streamOps)
      << "a stream-ordered operation ran on another stream";
  EXPECT_EQ(c.lastBlock, kCudaBlockThreads);
  EXPECT_EQ(c.lastGrid, cudaGridBlocks(3 * n, device->multiprocessors()));
  EXPECT_EQ(c.withoutContext, 0);

  std::vector<StepStats> stats =
      readStepStats(*device, config, partials, 2, stream);
  c = emu.now();
  EXPECT_EQ(c.syncs, 1);
  EXPECT_EQ(c.asyncCopiesDtoH, 1);
  EXPECT_EQ(c.copiesDtoH, 0);
  EXPECT_EQ(c.lastStream, stream);
  EXPECT_EQ(c.streamOpsOnLastStream, c.streamOps);
  ASSERT_EQ(stats.size(), 2u);
  for (const StepStats &s : stats) {
    EXPECT_GE(s.maxQ, config.qn());
    EXPECT_LE(s.maxQ, config.qp());
    EXPECT_EQ(s.nonFinite, 2);
  }
}

// Disabled until the launcher initializes the by-products without a host
// buffer: cuMemcpyHtoDAsync from pageable memory (launchCuda's `init`
// vector) "might be synchronous with respect to host" (the driver API's
// synchronization rules): the driver may wait for the stream to stage the
// copy, i.e. for the torch work before the step. Stream-ordered memsets
// (cuMemsetD32Async: zero, then the high word of each max slot) need none.
TEST_F(CudaEmulated, LaunchCudaCopiesNothingFromPageableMemory) {
  StepConfig config = configOf(kAdamW, 8);
  HostParam p = makeParam(config, 1000, 0, 0);
  DeviceBuffers mem(cu());
  std::vector<CUdeviceptr> dev;
  for (const at::Tensor &t : p.buffers)
    dev.push_back(t.defined() ? mem.upload(t) : 0);
  CUdeviceptr partials = mem.alloc(kNumReductions * 8);
  emulation().reset();
  launchCuda(
      *device, KernelCache::global().cuda(config, device->chip()), config,
      {p.operands([&](int i) { return reinterpret_cast<void *>(dev[i]); })},
      hyperOf(config), kSeed, kStep, nullptr, partials);
  DqtEmulatedCudaCounters c = emulation().now();
  EXPECT_EQ(c.asyncCopiesHtoD + c.copiesHtoD, 0);
}

TEST_F(CudaEmulated, CallersStreamReachesEveryLaunchOfSeveralParameters) {
  auto stream = reinterpret_cast<CUstream>(uintptr_t(0xab1e));
  emulation().reset();
  compareWithCpu(configOf(kSGD, 8), {100, 3000, 17}, 0, stream);
  DqtEmulatedCudaCounters c = emulation().now();
  EXPECT_EQ(c.launches, 3);
  EXPECT_EQ(c.syncs, 1);
  EXPECT_EQ(c.lastStream, stream);
  EXPECT_EQ(c.streamOpsOnLastStream, c.streamOps);
}

TEST_F(CudaEmulated, LaunchCudaAndWaitFreesWhatItAllocates) {
  StepConfig config = configOf(kAdamW, 4);
  HostParam p = makeParam(config, 777, 0, 0), want = p.clone();
  DeviceBuffers mem(cu());
  std::vector<CUdeviceptr> dev;
  for (const at::Tensor &t : p.buffers)
    dev.push_back(t.defined() ? mem.upload(t) : 0);
  int64_t live = emulation().now().liveAllocations;
  StepStats gpu = launchCudaAndWait(
      *device, KernelCache::global().cuda(config, device->chip()), config,
      {p.operands([&](int i) { return reinterpret_cast<void *>(dev[i]); })},
      hyperOf(config), kSeed, kStep, nullptr)[0];
  EXPECT_EQ(emulation().now().liveAllocations, live);
  StepStats cpu = launchCpu(
      KernelCache::global().cpu(config), config,
      {want.operands([&](int i) { return want.buffers[i].data_ptr(); })},
      hyperOf(config), kSeed, kStep)[0];
  EXPECT_EQ(gpu.maxQ, cpu.maxQ);
  EXPECT_EQ(gpu.changed, cpu.changed);
  EXPECT_EQ(gpu.nonFinite, cpu.nonFinite);
  EXPECT_TRUE(
      test::sameBytes(mem.download(dev[0], want.buffers[0]), want.buffers[0]));
}

TEST_F(CudaEmulated, LaunchFromAFreshThreadBindsTheContext) {
  // The emulation enforces the rule: a thread without the context fails.
  CUresult withoutContext = 0;
  std::thread([&] {
    CUdeviceptr p;
    withoutContext = cu().cuMemAlloc(&p, 64);
  }).join();
  EXPECT_EQ(withoutContext, 201); // CUDA_ERROR_INVALID_CONTEXT

  // Each entry point of the launcher on a thread of its own, none of which
  // has touched the driver: launchCuda, readStepStats, launchCudaAndWait.
  StepConfig config = configOf(kAdamW, 0, true);
  HostParam p = makeParam(config, 5003, 0, 0), want = p.clone();
  DeviceBuffers mem(cu());
  std::vector<CUdeviceptr> dev;
  for (const at::Tensor &t : p.buffers)
    dev.push_back(t.defined() ? mem.upload(t) : 0);
  StepOperands op =
      p.operands([&](int i) { return reinterpret_cast<void *>(dev[i]); });
  const Executable &kernel = KernelCache::global().cuda(config, device->chip());
  CUdeviceptr partials = mem.alloc(kNumReductions * 8);
  int64_t before = emulation().now().withoutContext;
  auto onFreshThread = [](const std::function<void()> &fn) {
    std::string error;
    std::thread([&] { error = test::errorMessage(fn); }).join();
    return error;
  };
  std::vector<StepStats> gpu;
  EXPECT_EQ(onFreshThread([&] {
              launchCuda(*device, kernel, config, {op}, hyperOf(config), kSeed,
                         kStep, nullptr, partials);
            }),
            "no error");
  EXPECT_EQ(onFreshThread([&] {
              gpu = readStepStats(*device, config, partials, 1, nullptr);
            }),
            "no error");
  EXPECT_EQ(emulation().now().withoutContext, before);
  StepStats cpu = launchCpu(
      KernelCache::global().cpu(config), config,
      {want.operands([&](int i) { return want.buffers[i].data_ptr(); })},
      hyperOf(config), kSeed, kStep)[0];
  ASSERT_EQ(gpu.size(), 1u);
  EXPECT_EQ(gpu[0].maxQ, cpu.maxQ);
  EXPECT_EQ(gpu[0].changed, cpu.changed);
  EXPECT_EQ(gpu[0].nonFinite, cpu.nonFinite);
  for (int i : {HostParam::Q, HostParam::S0, HostParam::S1})
    EXPECT_TRUE(
        test::sameBytes(mem.download(dev[i], want.buffers[i]), want.buffers[i]))
        << bufferName(i);

  // A second step, with launchCudaAndWait.
  ASSERT_EQ(onFreshThread([&] {
              gpu =
                  launchCudaAndWait(*device, kernel, config, {op},
                                    hyperOf(config), kSeed, kStep + 1, nullptr);
            }),
            "no error");
  cpu = launchCpu(
      KernelCache::global().cpu(config), config,
      {want.operands([&](int i) { return want.buffers[i].data_ptr(); })},
      hyperOf(config), kSeed, kStep + 1)[0];
  EXPECT_EQ(gpu[0].changed, cpu.changed);
  EXPECT_TRUE(test::sameBytes(
      mem.download(dev[HostParam::Q], want.buffers[HostParam::Q]),
      want.buffers[HostParam::Q]));
  EXPECT_EQ(emulation().now().withoutContext, before);
}

TEST_F(CudaEmulated, HostPointersAreRefusedAsOnAGpu) {
  // A launch whose buffers are host memory: an illegal address on a GPU,
  // refused by the emulation (and nothing launched).
  StepConfig config = configOf(kAdamW, 8);
  HostParam p = makeParam(config, 100, 0, 0);
  DeviceBuffers mem(cu());
  CUdeviceptr partials = mem.alloc(kNumReductions * 8);
  emulation().reset();
  std::string msg = test::errorMessage([&] {
    launchCuda(*device, KernelCache::global().cuda(config, device->chip()),
               config,
               {p.operands([&](int i) { return p.buffers[i].data_ptr(); })},
               hyperOf(config), kSeed, kStep, nullptr, partials);
  });
  EXPECT_NE(msg.find("cuLaunchKernel"), std::string::npos) << msg;
  EXPECT_NE(msg.find("illegal memory access"), std::string::npos) << msg;
  EXPECT_EQ(emulation().now().launches, 0);
}

//===----------------------------------------------------------------------===//
// The cubin disk cache
//===----------------------------------------------------------------------===//

/// The disk entries of `config`'s cubins for `chip` in the cache directory.
std::vector<fs::path> cubinEntries(const StepConfig &config,
                                   const std::string &chip) {
  std::vector<fs::path> out;
  std::string prefix = config.key() + "-" + chip + "-";
  const std::string &dir = KernelCache::global().directory();
  if (dir.empty() || !fs::exists(dir))
    return out;
  for (const auto &e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && e.path().extension() == ".cubin")
      out.push_back(e.path());
  }
  return out;
}

/// What the first process links and the second loads (CudaEmulatedSecond
/// Process): one configuration to load, one whose entry it corrupts.
const StepConfig kLoadedConfig = configOf(kAdamW, 6);
const StepConfig kCorruptedConfig = configOf(kSGD, 3);

TEST_F(CudaEmulated, FirstUseWritesACubinCacheEntry) {
  ASSERT_NE(KernelCache::global().directory(), "");
  for (const StepConfig &config : {kLoadedConfig, kCorruptedConfig}) {
    SCOPED_TRACE(config.key());
    int64_t linked = device->linked(), loaded = device->loadedFromDisk();
    int64_t links = emulation().now().links;
    const Executable &kernel =
        KernelCache::global().cuda(config, device->chip());
    CUfunction fn = device->function(kernel, KernelCache::global().directory());
    EXPECT_NE(fn, nullptr);
    // Linked (the directory was empty: ctest's fixture) or, when this
    // binary is run again by hand, loaded.
    EXPECT_EQ(device->linked() - linked + device->loadedFromDisk() - loaded, 1);
    EXPECT_EQ(emulation().now().links - links, device->linked() - linked);
    EXPECT_EQ(cubinEntries(config, device->chip()).size(), 1u);
    // Memoized: the same function, nothing linked or loaded again.
    EXPECT_EQ(device->function(kernel, KernelCache::global().directory()), fn);
    EXPECT_EQ(device->linked() - linked + device->loadedFromDisk() - loaded, 1);
  }
  // The entries the second process uses hold the emulation's cubin.
  for (const fs::path &p : cubinEntries(kLoadedConfig, device->chip()))
    EXPECT_NE(test::readFile(p).find("DQTEMUCUBIN\n" + kLoadedConfig.key()),
              std::string::npos);
}

/// Runs only in ctest's second process (cuda-emulated-second-process), on the
/// cache directory the first process filled.
TEST_F(CudaEmulated, SecondProcessLoadsCubinsAndRelinksACorruptOne) {
  if (!std::getenv("DQT_EMULATED_SECOND_PROCESS"))
    GTEST_SKIP() << "runs in ctest's cuda-emulated-second-process only";
  ASSERT_EQ(device->linked() + device->loadedFromDisk(), 0)
      << "must be the first use in this process";
  // Loaded, not linked, and it runs.
  auto entries = cubinEntries(kLoadedConfig, device->chip());
  ASSERT_EQ(entries.size(), 1u) << "the first process left no entry";
  emulation().reset();
  compareWithCpu(kLoadedConfig, {4099});
  EXPECT_EQ(device->loadedFromDisk(), 1);
  EXPECT_EQ(device->linked(), 0);
  DqtEmulatedCudaCounters c = emulation().now();
  EXPECT_EQ(c.links, 0);
  EXPECT_EQ(c.cubinLoads, 1);
  EXPECT_EQ(c.ptxLoads, 0);

  // A corrupt entry (one byte of the cubin flipped) is relinked and
  // rewritten, never handed to the driver.
  entries = cubinEntries(kCorruptedConfig, device->chip());
  ASSERT_EQ(entries.size(), 1u);
  std::string bytes = test::readFile(entries[0]);
  std::string corrupt = bytes;
  corrupt[corrupt.size() - 3] ^= 0x20;
  test::writeFile(entries[0], corrupt);
  compareWithCpu(kCorruptedConfig, {4099});
  EXPECT_EQ(device->linked(), 1);
  EXPECT_EQ(device->loadedFromDisk(), 1);
  EXPECT_EQ(emulation().now().links, 1);
  EXPECT_EQ(test::readFile(entries[0]), bytes) << "the entry was not rewritten";
}

//===----------------------------------------------------------------------===//
// Refusals
//===----------------------------------------------------------------------===//

/// Runs only with DQT_EMULATED_CUDA_CC below 8.0 (ctest's cuda-emulated-cc75).
TEST(CudaEmulatedRefusal, ComputeCapabilityBelow80) {
  const char *cc = std::getenv("DQT_EMULATED_CUDA_CC");
  if (!emulated() || !cc || std::atof(cc) >= 8)
    GTEST_SKIP() << "runs in ctest's cuda-emulated-cc75 only";
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string msg = test::errorMessage([] { CudaDevice::get(0); });
    EXPECT_NE(msg.find("CUDA device 0 has compute capability " +
                       std::string(cc) +
                       "; dqt's GPU kernels need 8.0 or "
                       "newer"),
              std::string::npos)
        << msg;
  }
}

} // namespace
