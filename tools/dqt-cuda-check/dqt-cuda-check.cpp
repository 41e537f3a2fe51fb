//===- dqt-cuda-check.cpp - GPU results against CPU results made elsewhere ===//
//
// The device check's tool (scripts/device-check.sh). It needs no compiler:
// it runs in a DQT_WITH_COMPILER=OFF build from a kernel bundle.
//
//   dqt-cuda-check expected DIR   on a development machine: for every
//       standard configuration, one step of the CPU kernel on inputs made by
//       a fixed generator (no torch RNG, so every machine makes the same
//       bytes); writes DIR/expected.txt (key, xxh64 of weights, states and
//       row maxima, by-products).
//   dqt-cuda-check verify DIR     on the GPU machine: the same steps on
//       CUDA device 0, compared with DIR/expected.txt; exit 1 on any
//       difference.
//   dqt-cuda-check bench N        the fused step (int8 weights, f32 and bf16
//       states) and a device-to-device copy of the same bytes, N elements,
//       median of 20 after 3 warm-ups; prints GB/s.
//
//===----------------------------------------------------------------------===//

#include "dqt/Runtime/CudaLauncher.h"
#include "dqt/Runtime/KernelCache.h"
#include "dqt/Runtime/QuantizedWeight.h"

#include <ATen/ATen.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

using namespace dqt;

namespace {

/// splitmix64: the inputs' generator, the same on every machine.
struct Generator {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1), 24 bits.
  float uniform() { return float(next() >> 40) * 0x1p-24f; }
};

/// One step's host buffers: inputs from the generator, then outputs.
struct HostStep {
  StepConfig config;
  int64_t n, rowLength;
  std::vector<at::Tensor> buffers; // q, g, s0, s1 [, deltaRows, next, rowMax]
  std::vector<float> hyper;

  HostStep(const StepConfig &c, int64_t rows, int64_t rowLength)
      : config(c), n(rows * rowLength), rowLength(rowLength) {
    Generator gen{std::hash<std::string>()(c.key())};
    at::Tensor q;
    if (c.floatWeights) {
      q = at::empty({n});
      for (int64_t i = 0; i < n; ++i)
        q.data_ptr<float>()[i] = gen.uniform() * 2 - 1;
    } else {
      q = at::empty({n}, at::kChar);
      int64_t span = c.qp() - c.qn() + 1;
      for (int64_t i = 0; i < n; ++i)
        q.data_ptr<int8_t>()[i] = int8_t(c.qn() + int64_t(gen.next() % span));
      if (c.packed)
        q = packTernary(q);
    }
    at::Tensor g = at::empty({n});
    for (int64_t i = 0; i < n; ++i)
      g.data_ptr<float>()[i] = (gen.uniform() - 0.5f) * 0.02f;
    g.data_ptr<float>()[n / 3] = NAN;
    auto state = [&](float scale) {
      at::Tensor s = at::empty({n});
      for (int64_t i = 0; i < n; ++i)
        s.data_ptr<float>()[i] = gen.uniform() * scale;
      return c.stateType == StateType::BF16 ? s.to(at::kBFloat16) : s;
    };
    buffers = {q, g, state(1e-2f), state(1e-4f)};
    if (c.scale == ScaleMode::Row) {
      at::Tensor d = at::empty({rows});
      for (int64_t r = 0; r < rows; ++r)
        d.data_ptr<float>()[r] = 0.01f + gen.uniform() * 0.05f;
      buffers.push_back(d);
      buffers.push_back(d * 1.05f);
      buffers.push_back(at::zeros({rows}, at::kInt));
    }
    hyper = c.optimizer == Optimizer::AdamW
                ? std::vector<float>{0.9f, 0.999f, 0.05f, 1e-6f, 1e-2f}
                : std::vector<float>{0.05f, 0.9f, 1e-2f};
  }

  /// Operands over `ptr(i)`, buffer i's address on the host or the device.
  template <typename Ptr> StepOperands operands(Ptr ptr) const {
    StepOperands op{};
    op.q = static_cast<int8_t *>(ptr(0));
    op.grad = static_cast<float *>(ptr(1));
    op.state0 = ptr(2);
    op.state1 = ptr(3);
    op.numel = n;
    op.tensorId = 5;
    op.delta = 0.02f;
    op.deltaNext = 0.021f;
    if (config.scale == ScaleMode::Row) {
      op.rowLength = rowLength;
      op.deltaRows = static_cast<const float *>(ptr(4));
      op.deltaNextRows = static_cast<const float *>(ptr(5));
      op.rowMaxQ = static_cast<int32_t *>(ptr(6));
    }
    return op;
  }

  /// "key xxh64 maxQ changed nonFinite": what the step wrote.
  std::string digest(const StepStats &s) const {
    XXH64_state_t *h = XXH64_createState();
    XXH64_reset(h, 0);
    for (size_t i : {0, 2, 3, 6})
      if (i < buffers.size())
        XXH64_update(h, buffers[i].data_ptr(), buffers[i].nbytes());
    std::ostringstream out;
    out << config.key() << " " << std::hex << XXH64_digest(h) << std::dec << " "
        << s.maxQ << " " << s.changed << " " << s.nonFinite;
    XXH64_freeState(h);
    return out.str();
  }
};

/// Rows of an odd length, several blocks of 256 threads and a wrapping
/// grid-stride loop would need far more; 37 x 1021 covers tails and rows
/// straddled by groups of 8 (packed: rows of 1024, whole bytes).
HostStep makeStep(const StepConfig &c) {
  return c.packed ? HostStep(c, 37, 1024) : HostStep(c, 37, 1021);
}

int expected(const std::string &dir) {
  std::ofstream out(dir + "/expected.txt");
  for (const StepConfig &c : standardStepConfigs()) {
    HostStep s = makeStep(c);
    StepStats stats =
        launchCpu(KernelCache::global().cpu(c), c,
                  {s.operands([&](int i) { return s.buffers[i].data_ptr(); })},
                  s.hyper, 42, 3)[0];
    out << s.digest(stats) << "\n";
  }
  std::printf("dqt-cuda-check: wrote %s/expected.txt (%zu configurations)\n",
              dir.c_str(), standardStepConfigs().size());
  return out.good() ? 0 : 1;
}

int verify(const std::string &dir) {
  std::map<std::string, std::string> want;
  std::ifstream in(dir + "/expected.txt");
  for (std::string line; std::getline(in, line);)
    want[line.substr(0, line.find(' '))] = line;
  if (want.empty()) {
    std::fprintf(stderr, "dqt-cuda-check: no %s/expected.txt\n", dir.c_str());
    return 1;
  }
  CudaDevice &device = CudaDevice::get(0);
  const CudaDriver &cu = device.driver();
  std::printf("device 0: compute capability %d.%d, kernels for %s\n",
              device.major(), device.minor(), device.chip().c_str());
  int bad = 0;
  for (const StepConfig &c : standardStepConfigs()) {
    HostStep s = makeStep(c);
    device.bind();
    std::vector<CUdeviceptr> dev(s.buffers.size());
    for (size_t i = 0; i < dev.size(); ++i) {
      cu.check(cu.cuMemAlloc(&dev[i], s.buffers[i].nbytes()), "cuMemAlloc");
      cu.check(cu.cuMemcpyHtoD(dev[i], s.buffers[i].data_ptr(),
                               s.buffers[i].nbytes()),
               "cuMemcpyHtoD");
    }
    const Executable &kernel = KernelCache::global().cuda(c, device);
    StepStats stats = launchCudaAndWait(
        device, kernel, c,
        {s.operands([&](int i) { return reinterpret_cast<void *>(dev[i]); })},
        s.hyper, 42, 3, nullptr)[0];
    device.bind();
    for (size_t i = 0; i < dev.size(); ++i) {
      cu.check(cu.cuMemcpyDtoH(s.buffers[i].data_ptr(), dev[i],
                               s.buffers[i].nbytes()),
               "cuMemcpyDtoH");
      cu.cuMemFree(dev[i]);
    }
    std::string got = s.digest(stats);
    bool same = want[c.key()] == got;
    bad += !same;
    std::printf("%-28s %s (%s)%s%s\n", c.key().c_str(),
                same ? "same" : "DIFFERENT", kernel.origin.c_str(),
                same ? "" : "\n  cpu: ",
                same ? "" : (want[c.key()] + "\n  gpu: " + got).c_str());
  }
  std::printf("dqt-cuda-check: %d of %zu configurations differ from the CPU\n",
              bad, standardStepConfigs().size());
  return bad ? 1 : 0;
}

int bench(int64_t n) {
  CudaDevice &device = CudaDevice::get(0);
  const CudaDriver &cu = device.driver();
  device.bind();
  auto alloc = [&](size_t bytes) {
    CUdeviceptr p;
    cu.check(cu.cuMemAlloc(&p, bytes), "cuMemAlloc");
    cu.check(cu.cuMemsetD32Async(p, 0, bytes / 4, nullptr), "cuMemsetD32Async");
    return p;
  };
  auto median = [](std::vector<double> t) {
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  auto time = [&](auto &&run) {
    std::vector<double> t;
    for (int r = 0; r < 23; ++r) {
      cu.check(cu.cuStreamSynchronize(nullptr), "cuStreamSynchronize");
      auto start = std::chrono::steady_clock::now();
      run();
      cu.check(cu.cuStreamSynchronize(nullptr), "cuStreamSynchronize");
      if (r >= 3)
        t.push_back(std::chrono::duration<double>(
                        std::chrono::steady_clock::now() - start)
                        .count());
    }
    return median(t);
  };
  std::printf("%-24s %12s %12s %10s\n", "case", "N", "time (ms)", "GB/s");
  for (StateType states : {StateType::F32, StateType::BF16}) {
    StepConfig c;
    c.stateType = states;
    size_t sb = states == StateType::F32 ? 4 : 2;
    CUdeviceptr q = alloc(n), g = alloc(4 * n), m = alloc(sb * n),
                v = alloc(sb * n), partials = alloc(3 * sizeof(int64_t));
    StepOperands op{};
    op.q = reinterpret_cast<int8_t *>(q);
    op.grad = reinterpret_cast<float *>(g);
    op.state0 = reinterpret_cast<void *>(m);
    op.state1 = reinterpret_cast<void *>(v);
    op.numel = n;
    op.delta = op.deltaNext = 0.01f;
    const Executable &k = KernelCache::global().cuda(c, device);
    uint64_t t = 0;
    double s = time([&] {
      launchCuda(device, k, c, {op}, {0.9f, 0.999f, 1e-3f, 1e-8f, 0.0f}, 1, ++t,
                 nullptr, partials);
    });
    // Bytes: read g, q, m, v; write q, m, v.
    double bytes = double(n) * (4 + 2 + 4 * sb);
    std::printf("%-24s %12lld %12.3f %10.1f\n",
                states == StateType::F32 ? "dqt_adamw_i8_f32"
                                         : "dqt_adamw_i8_bf16",
                (long long)n, s * 1e3, bytes / s / 1e9);
    for (CUdeviceptr p : {q, g, m, v, partials})
      cu.cuMemFree(p);
  }
  size_t bytes = size_t(n) * 11; // half the f32-state step's traffic
  CUdeviceptr a = alloc(bytes), b = alloc(bytes);
  double s = time([&] {
    cu.check(cu.cuMemcpyDtoDAsync(b, a, bytes, nullptr), "cuMemcpyDtoDAsync");
  });
  std::printf("%-24s %12lld %12.3f %10.1f\n", "copy_d2d_22B_per_param",
              (long long)n, s * 1e3, 2.0 * bytes / s / 1e9);
  cu.cuMemFree(a);
  cu.cuMemFree(b);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  std::string mode = argc > 2 ? argv[1] : "";
  try {
    if (mode == "expected")
      return expected(argv[2]);
    if (mode == "verify")
      return verify(argv[2]);
    if (mode == "bench")
      return bench(std::stoll(argv[2]));
  } catch (const c10::Error &e) {
    std::fprintf(stderr, "dqt-cuda-check: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "dqt-cuda-check: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: dqt-cuda-check expected DIR | verify DIR | "
                       "bench N\n");
  return 2;
}
