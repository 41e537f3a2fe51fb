//===- dqt-bench.cpp - the fused DQT step against the memory roofline -----===//
//
// Times, in one process and on buffers of the same size, the fused DQT AdamW
// step through the runtime's optimizer (int8 weights with f32 and with bf16
// states; packed ternary weights; one delta per output row), a STREAM-style
// triad and copy and an in-place a = b + 3a (the roofline; in place has no
// write-allocate traffic, like an optimizer step), the same step written op
// by op with LibTorch
// tensor ops (the eager reference), and PyTorch's AdamW on f32 weights (the
// fused kernel at::_fused_adamw_ and the _foreach_ kernels of
// AdamW(foreach=True)). Each is warmed up, then timed in interleaved rounds;
// medians are reported. Effective GB/s counts the bytes each must move at least
// once (DQT step: 22 per parameter with f32 states, 14 with bf16, 20.5 packed
// ternary; with one delta per row of 1024 as with f32 states; triad 12;
// in place 12; copy 8; f32 AdamW 28).
//
//===----------------------------------------------------------------------===//

#include "dqt/Runtime/CpuLauncher.h"
#include "dqt/Runtime/KernelBundle.h"
#include "dqt/Runtime/KernelCache.h"
#include "dqt/Runtime/Optimizers.h"
#include "dqt/Runtime/QuantLinear.h"
#include "dqt/Runtime/TorchCuda.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <malloc.h>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace dqt;

namespace {

struct Result {
  std::string impl;
  int64_t n;
  double seconds;
  double bytesPerParam;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// One implementation under test: its name, the bytes per parameter it must
/// move, how many timed runs it gets, and one step.
struct Case {
  std::string impl;
  double bytesPerParam;
  int reps;
  std::function<void()> run;
};

/// Times the cases in interleaved rounds (one run of each per round, after
/// a warm-up run of each) and returns each one's median. On a shared VM the
/// memory bandwidth drifts by tens of percent within a minute; interleaving
/// exposes every case to the same drift, so their ratios are stable where
/// back-to-back blocks of runs were not.
std::vector<Result> timeInterleaved(int64_t n, std::vector<Case> &cases) {
  for (Case &c : cases)
    c.run(); // warm-up: first touch, kernel compilation
  std::vector<std::vector<double>> t(cases.size());
  int rounds = 0;
  for (const Case &c : cases)
    rounds = std::max(rounds, c.reps);
  for (int r = 0; r < rounds; ++r)
    for (size_t i = 0; i < cases.size(); ++i) {
      if (r >= cases[i].reps)
        continue;
      auto t0 = std::chrono::steady_clock::now();
      cases[i].run();
      t[i].push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count());
    }
  std::vector<Result> out;
  for (size_t i = 0; i < cases.size(); ++i)
    out.push_back(
        {cases[i].impl, n, median(t[i]), cases[i].bytesPerParam});
  return out;
}

/// The DQT AdamW step with LibTorch ops, one op at a time (what a user
/// without the fused kernel would run; the uniforms come from at::rand).
void eagerStep(at::Tensor &q, const at::Tensor &g, at::Tensor &m, at::Tensor &v,
               float delta, float deltaNext, float alpha) {
  at::Tensor finite = g.isfinite();
  at::Tensor m1 = m * 0.9f + g * 0.1f;
  at::Tensor v1 = v * 0.999f + (g * g) * 0.001f;
  at::Tensor w = q.to(at::kFloat) * delta;
  at::Tensor w1 = w - (m1 / (v1.sqrt() + 1e-6f)) * alpha;
  at::Tensor w2 = w1 - w1 * 5e-6f;
  at::Tensor x = w2 * (1.0f / deltaNext);
  at::Tensor fl = x.floor();
  at::Tensor r = fl + (at::rand_like(x) < (x - fl)).to(at::kFloat);
  at::Tensor q1 = r.clamp(-128, 127).to(at::kChar);
  q.copy_(at::where(finite, q1, q));
  m.copy_(at::where(finite, m1, m));
  v.copy_(at::where(finite, v1, v));
  (void)q.max().item<int8_t>();
  (void)(q1 != q).sum().item<int64_t>();
}

/// torch.optim.AdamW(foreach=True)'s step on one f32 tensor, with the
/// ATen _foreach_ kernels it calls (torch/optim/adamw.py, _multi_tensor_adam
/// with decoupled decay, capturable=False).
void foreachAdamW(std::vector<at::Tensor> &p, std::vector<at::Tensor> &g,
                  std::vector<at::Tensor> &m, std::vector<at::Tensor> &v,
                  int64_t step) {
  const double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-6, wd = 0.01;
  at::_foreach_mul_(p, 1 - lr * wd);
  at::_foreach_lerp_(m, g, 1 - beta1);
  at::_foreach_mul_(v, beta2);
  at::_foreach_addcmul_(v, g, g, 1 - beta2);
  double bc1 = 1 - std::pow(beta1, double(step));
  double bc2 = 1 - std::pow(beta2, double(step));
  std::vector<at::Tensor> den = at::_foreach_sqrt(v);
  at::_foreach_div_(den, std::sqrt(bc2));
  at::_foreach_add_(den, eps);
  at::_foreach_addcdiv_(p, m, den, -lr / bc1);
}

/// Row length of the per-row delta case.
constexpr int64_t kRowLength = 1024;

/// A weight of `shape` (randn * 0.02 in `f32`'s dtype and device) and its
/// AdamW with states of `states`, with a gradient set: one benchmark case.
struct DqtStep {
  QuantizedWeight w;
  std::unique_ptr<optim::AdamW> adam;
};
std::shared_ptr<DqtStep> makeDqtStep(std::vector<int64_t> shape,
                                     at::TensorOptions f32, Grid grid,
                                     Storage storage, StateType states,
                                     ScaleMode scale) {
  auto d = std::make_shared<DqtStep>(
      DqtStep{QuantizedWeight::fromFloat(at::randn(shape, f32) * 0.02, grid,
                                         storage, scale),
              nullptr});
  optim::AdamWOptions o;
  o.stateType = states;
  d->adam = std::make_unique<optim::AdamW>(
      std::vector<QuantizedWeight *>{&d->w}, o);
  d->w.grad().copy_(at::randn(shape, f32) * 1e-3);
  return d;
}

std::vector<Result> runSize(int64_t n, int reps) {
  auto f32 = at::TensorOptions().dtype(at::kFloat);
  std::vector<Case> cases;
  // ATen's own vectorized, multi-threaded kernels: a = b + 3c (its add with
  // alpha is one fused pass) and a = b.
  at::Tensor a = at::zeros({n}, f32), b = at::ones({n}, f32),
             c = at::full({n}, 2.0f, f32);
  cases.push_back({"triad", 12, reps, [&] { at::add_out(a, b, c, 3.0); }});
  cases.push_back({"copy", 8, reps, [&] { a.copy_(b); }});
  // In place, a = b + 3a: read a and b, write a back. Like every optimizer
  // step it has no write-allocate traffic, which the triad's output has.
  at::Tensor ip = at::zeros({n}, f32);
  cases.push_back({"inplace", 12, reps, [&] { at::add_out(ip, b, ip, 3.0); }});

  // The fused DQT steps through the runtime (one launch, all threads): int8
  // weights with f32 and with bf16 states, packed ternary weights.
  auto makeDqt = [&](Grid grid, Storage storage, StateType states,
                     ScaleMode scale = ScaleMode::Tensor) {
    // Per-row: rows of 1024 (a linear layer's input width) where n allows.
    std::vector<int64_t> shape = {n};
    if (scale == ScaleMode::Row)
      shape = {n / kRowLength, kRowLength};
    return makeDqtStep(shape, f32, grid, storage, states, scale);
  };
  auto i8 = makeDqt(Grid{8, false}, Storage::Int8, StateType::F32);
  auto bf16 = makeDqt(Grid{8, false}, Storage::Int8, StateType::BF16);
  auto packed =
      makeDqt(Grid::fromBits(1.58), Storage::PackedTernary, StateType::F32);
  // Bytes: read g (4), m, v and q, write m, v and q.
  cases.push_back({"dqt_adamw_i8_f32", 22, reps, [&] { i8->adam->step(); }});
  cases.push_back(
      {"dqt_adamw_i8_bf16", 14, reps, [&] { bf16->adam->step(); }});
  cases.push_back({"dqt_adamw_ternary_packed_f32", 20.5, reps,
                   [&] { packed->adam->step(); }});
  // One delta per output row (ScaleMode::Row): the same bytes per parameter
  // plus 9 per row of 1024.
  std::shared_ptr<DqtStep> rows;
  if (n % kRowLength == 0) {
    rows =
        makeDqt(Grid{8, false}, Storage::Int8, StateType::F32, ScaleMode::Row);
    cases.push_back(
        {"dqt_adamw_i8_rows_f32", 22, reps, [&] { rows->adam->step(); }});
  }

  // The same math op by op (slow: at most 3 timed runs).
  at::Tensor q = (at::randn({n}, f32) * 30).clamp(-128, 127).to(at::kChar);
  at::Tensor eg = at::randn({n}, f32) * 1e-3, em = at::zeros({n}, f32),
             ev = at::zeros({n}, f32);
  cases.push_back({"eager_reference", 22, std::min(reps, 3),
                   [&] { eagerStep(q, eg, em, ev, 0.01f, 0.01f, 1e-3f); }});

  // PyTorch's AdamW on f32 weights: the fused kernel and the foreach one.
  at::Tensor p = at::randn({n}, f32), g = at::randn({n}, f32) * 1e-3,
             m = at::zeros({n}, f32), v = at::zeros({n}, f32),
             step = at::zeros({}, f32);
  cases.push_back({"torch_fused_adamw_f32", 28, reps, [&] {
                     at::_fused_adamw_({p}, {g}, {m}, {v}, {}, {step}, 1e-3,
                                       0.9, 0.999, 0.01, 1e-6, false, false);
                   }});
  std::vector<at::Tensor> fp{at::randn({n}, f32)}, fg{g}, fm{at::zeros({n}, f32)},
      fv{at::zeros({n}, f32)};
  int64_t foreachStep = 0;
  cases.push_back({"torch_foreach_adamw_f32", 28, reps,
                   [&] { foreachAdamW(fp, fg, fm, fv, ++foreachStep); }});
  return timeInterleaved(n, cases);
}

const Result &find(const std::vector<Result> &rs, const std::string &impl,
                   int64_t n);

/// The GPU cases (--device cuda): the fused DQT steps through the runtime's
/// optimizer on CUDA tensors (int8 with f32 and bf16 states, packed ternary,
/// per row; every weight [n/1024, 1024], as a layer's), torch's fused AdamW
/// on f32 weights (at::_fused_adamw_) and a device-to-device copy (the
/// roofline: 8 bytes a parameter). Each timed run launches `k` steps and
/// then waits for the device (so launch latency is not the measure at small
/// N); the reported time is per step.
std::vector<Result> runCudaSize(int64_t n, int reps, at::Device device) {
  TORCH_CHECK(n % kRowLength == 0, "dqt-bench: --device cuda sizes must be "
                                   "multiples of 1024 parameters");
  auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
  const c10::impl::DeviceGuardImplInterface *gpu =
      c10::impl::getDeviceGuardImpl(at::kCUDA);
  int k = int(std::max<int64_t>(1, (int64_t(16) << 20) / n));
  auto timed = [&](std::function<void()> step) {
    return [step, k, gpu, device] {
      for (int i = 0; i < k; ++i)
        step();
      gpu->synchronizeDevice(device.index());
    };
  };
  std::vector<Case> cases;
  at::Tensor a = at::zeros({n}, f32), b = at::ones({n}, f32);
  cases.push_back({"cuda_copy", 8, reps, timed([&] { a.copy_(b); })});

  std::vector<int64_t> shape = {n / kRowLength, kRowLength};
  auto makeDqt = [&](Grid grid, Storage storage, StateType states,
                     ScaleMode scale) {
    return makeDqtStep(shape, f32, grid, storage, states, scale);
  };
  auto i8 = makeDqt(Grid{8, false}, Storage::Int8, StateType::F32,
                    ScaleMode::Tensor);
  auto bf16 = makeDqt(Grid{8, false}, Storage::Int8, StateType::BF16,
                      ScaleMode::Tensor);
  auto packed = makeDqt(Grid::fromBits(1.58), Storage::PackedTernary,
                        StateType::F32, ScaleMode::Tensor);
  auto rows =
      makeDqt(Grid{8, false}, Storage::Int8, StateType::F32, ScaleMode::Row);
  // step() does not wait: the statistics stay on the device unread.
  cases.push_back({"cuda_dqt_adamw_i8_f32", 22, reps,
                   timed([&] { i8->adam->step(); })});
  cases.push_back({"cuda_dqt_adamw_i8_bf16", 14, reps,
                   timed([&] { bf16->adam->step(); })});
  cases.push_back({"cuda_dqt_adamw_ternary_packed_f32", 20.5, reps,
                   timed([&] { packed->adam->step(); })});
  cases.push_back({"cuda_dqt_adamw_i8_rows_f32", 22, reps,
                   timed([&] { rows->adam->step(); })});

  at::Tensor p = at::randn({n}, f32), g = at::randn({n}, f32) * 1e-3,
             m = at::zeros({n}, f32), v = at::zeros({n}, f32),
             step = at::zeros({}, f32);
  cases.push_back({"cuda_torch_fused_adamw_f32", 28, reps, timed([&] {
                     at::_fused_adamw_({p}, {g}, {m}, {v}, {}, {step}, 1e-3,
                                       0.9, 0.999, 0.01, 1e-6, false, false);
                   })});
  std::vector<Result> results = timeInterleaved(n, cases);
  for (Result &r : results)
    r.seconds /= k;
  return results;
}

/// --device cuda: the GPU table and the targets' ratios at N = 64Mi (or the
/// largest size run).
int runCuda(const std::string &spec, std::vector<int64_t> sizes, int reps,
            bool quick) {
  at::Device device = openDevice(spec, "dqt-bench");
  TORCH_CHECK(device.is_cuda(), "dqt-bench: --device takes cuda or cuda:N");
  if (sizes.empty())
    sizes = quick ? std::vector<int64_t>{64 << 20}
                  : std::vector<int64_t>{1 << 20, 16 << 20, 64 << 20,
                                         256 << 20};
  std::vector<Result> all;
  for (int64_t n : sizes) {
    auto rs = runCudaSize(n, reps, device);
    all.insert(all.end(), rs.begin(), rs.end());
  }
  std::printf("dqt-bench --device %s: median of %d\n", spec.c_str(), reps);
  std::printf("%-36s %10s %12s %10s\n", "impl", "N", "time (ms)", "GB/s");
  for (const Result &r : all)
    std::printf("%-36s %10lld %12.4f %10.1f\n", r.impl.c_str(), (long long)r.n,
                r.seconds * 1e3, r.bytesPerParam * r.n / r.seconds / 1e9);
  int64_t nr = std::find(sizes.begin(), sizes.end(), int64_t(64) << 20) !=
                       sizes.end()
                   ? int64_t(64) << 20
                   : sizes.back();
  auto gbs = [&](const char *impl) {
    const Result &r = find(all, impl, nr);
    return r.bytesPerParam * r.n / r.seconds / 1e9;
  };
  double torchFused = find(all, "cuda_torch_fused_adamw_f32", nr).seconds;
  std::printf(
      "at N = %lld: fused/copy bandwidth %.2f (target >= 0.85), vs torch "
      "fused AdamW %.2fx (target >= 1.2), bf16 states %.2fx (target >= "
      "1.8)\n",
      (long long)nr, gbs("cuda_dqt_adamw_i8_f32") / gbs("cuda_copy"),
      torchFused / find(all, "cuda_dqt_adamw_i8_f32", nr).seconds,
      torchFused / find(all, "cuda_dqt_adamw_i8_bf16", nr).seconds);
  return 0;
}

/// Resident set size of this process, from /proc/self/statm.
int64_t residentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

/// Peak resident set size of this process so far (getrusage).
int64_t peakResidentBytes() {
  struct rusage u;
  ::getrusage(RUSAGE_SELF, &u);
  return int64_t(u.ru_maxrss) * 1024;
}

/// Runs `fn` in a child process and returns what it reports: its live and
/// peak resident growth over its own start, and the runtime's accounting.
struct MemoryReport {
  double accounted, live, peak;
};

MemoryReport inChild(const std::function<double()> &fn) {
  int pipefd[2];
  if (::pipe(pipefd) != 0)
    std::exit(1);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    int64_t base = residentBytes();
    double accounted = fn();
    MemoryReport r{accounted, double(residentBytes() - base),
                   double(peakResidentBytes() - base)};
    if (::write(pipefd[1], &r, sizeof(r)) != sizeof(r))
      ::_exit(1);
    ::_exit(0);
  }
  ::close(pipefd[1]);
  MemoryReport r{};
  if (::read(pipefd[0], &r, sizeof(r)) != sizeof(r))
    std::fprintf(stderr, "dqt-bench: the memory child failed\n");
  ::close(pipefd[0]);
  ::waitpid(pid, nullptr, 0);
  return r;
}

/// Persistent training state per parameter of a stack of `layers` square
/// linear layers, each in a fresh child process: DQT 8-bit with f32 states
/// (one delta per tensor, and per output row) and packed ternary with bf16
/// states, all with the step inside the backward pass (no gradient
/// survives), against float AdamW (weights, gradients, two moments). The
/// runtime's accounting, confirmed by the live and peak growth of the
/// resident set after one training step. Large tensors are
/// mmap'ed (M_MMAP_THRESHOLD) so that freed memory leaves the resident set; the
/// peak includes the transient float copy each layer is initialized from.
int runMemory(int64_t dim, int layers) {
  ::mallopt(M_MMAP_THRESHOLD, 1 << 16);
  // Compile the kernel before forking: that memory is per process, not per
  // parameter. (Nothing here may start OpenMP's thread pool before the
  // fork: the child would wait on threads it does not have.)
  StepConfig config;
  KernelCache::global().cpu(config);
  config.scale = ScaleMode::Row;
  KernelCache::global().cpu(config);
  StepConfig packed;
  packed.ternary = true;
  packed.packed = true;
  packed.stateType = StateType::BF16;
  KernelCache::global().cpu(packed);
  int64_t params = dim * dim * layers;
  std::printf("memory: %d layers of %lld x %lld = %lld parameters, one "
              "training step\n",
              layers, (long long)dim, (long long)dim, (long long)params);
  std::printf("%-36s %12s %12s %12s\n", "B/param", "accounted", "RSS live",
              "RSS peak");
  auto print = [&](const char *name, MemoryReport r) {
    std::printf("%-36s %12.3f %12.3f %12.3f\n", name, r.accounted / params,
                r.live / params, r.peak / params);
  };
  auto dqtRow = [&](Grid grid, Storage storage, StateType states,
                    ScaleMode scale = ScaleMode::Tensor) {
    return inChild([&] {
      at::Generator gen = at::detail::createCPUGenerator(0);
      auto *model = new std::vector<std::unique_ptr<nn::QuantLinear>>();
      std::vector<QuantizedWeight *> ws;
      for (int l = 0; l < layers; ++l) {
        model->push_back(std::make_unique<nn::QuantLinear>(dim, dim, grid, gen,
                                                           storage, scale));
        ws.push_back(&model->back()->weight());
      }
      optim::AdamWOptions options;
      options.stateType = states;
      auto *adam = new optim::AdamW(ws, options);
      for (auto &layer : *model)
        layer->stepInBackward = adam;
      at::Tensor h = at::randn({8, dim}, gen);
      for (auto &layer : *model)
        h = layer->forward(h);
      torch::autograd::backward({h.pow(2).mean()});
      adam->step();
      double accounted = double(adam->stateBytes());
      for (QuantizedWeight *w : ws)
        accounted += double(w->persistentBytes()) +
                     (w->hasGrad() ? 4.0 * double(w->numel()) : 0.0);
      return accounted; // the model stays alive until the child exits
    });
  };
  print("dqt 8-bit, f32 states, step in bwd",
        dqtRow(Grid{8, false}, Storage::Int8, StateType::F32));
  print("dqt 8-bit per-row delta, f32, bwd",
        dqtRow(Grid{8, false}, Storage::Int8, StateType::F32, ScaleMode::Row));
  print("dqt packed ternary, bf16 states, bwd",
        dqtRow(Grid{8, true}, Storage::PackedTernary, StateType::BF16));
  print("float AdamW (w, grad, m, v)", inChild([&] {
          at::Generator gen = at::detail::createCPUGenerator(0);
          auto *state = new std::vector<at::Tensor>[5];
          for (int l = 0; l < layers; ++l) {
            state[0].push_back(at::randn({dim, dim}, gen));
            state[1].push_back(at::randn({dim, dim}, gen));
            state[2].push_back(at::zeros({dim, dim}));
            state[3].push_back(at::zeros({dim, dim}));
            state[4].push_back(at::zeros({}));
          }
          at::_fused_adamw_(state[0], state[1], state[2], state[3], {},
                            state[4], 1e-3, 0.9, 0.999, 0.01, 1e-6, false,
                            false);
          return 16.0 * double(params);
        }));
  return 0;
}

const Result &find(const std::vector<Result> &rs, const std::string &impl,
                   int64_t n) {
  for (const Result &r : rs)
    if (r.impl == impl && r.n == n)
      return r;
  std::fprintf(stderr, "dqt-bench: no result for %s\n", impl.c_str());
  std::exit(1);
}

} // namespace

/// One AdamW step of a 1Mi-parameter int8 weight, as the first thing a
/// process does: `time dqt-bench --first-step` is the time from process
/// start to the first finished step (with a cold or warm disk cache, or a
/// bundle from DQT_BUNDLE).
static int runFirstStep() {
  QuantizedWeight w =
      QuantizedWeight::fromFloat(at::randn({1 << 20}) * 0.02, Grid{8, false});
  optim::AdamW adam({&w});
  w.grad().copy_(at::randn({1 << 20}) * 1e-3);
  adam.step();
  std::printf("first step done; kernel from: %s\n",
              KernelCache::global().cpu(StepConfig{}).origin.c_str());
  return 0;
}

/// The same step by a bundled kernel and by the JIT's host-tuned kernel,
/// launched directly on the same buffers (interleaved rounds).
static std::vector<Result> runBundleVsJit(const std::string &path, int64_t n,
                                          int reps) {
  std::shared_ptr<KernelBundle> bundle = KernelBundle::open(path);
  StepConfig config;
  const dqt_bundle_cpu_kernel *k = bundle->cpu(config.key());
  if (!k) {
    std::fprintf(stderr, "dqt-bench: %s has no %s kernel\n", path.c_str(),
                 config.key().c_str());
    std::exit(1);
  }
  Executable bundled;
  bundled.fn = k->fn;
  const Executable &jit = KernelCache::global().cpu(config);
  at::Tensor q = at::randint(-100, 100, {n}, at::kChar);
  at::Tensor g = at::randn({n}) * 1e-3, m = at::zeros({n}), v = at::zeros({n});
  StepOperands op{q.data_ptr<int8_t>(),
                  g.data_ptr<float>(),
                  m.data_ptr<float>(),
                  v.data_ptr<float>(),
                  n,
                  0,
                  0.01f,
                  0.01f};
  std::vector<float> hyper = {0.9f, 0.999f, 1e-3f, 1e-8f, 0.0f};
  uint64_t t = 0;
  std::string bundledName = std::string("bundle_") + k->level;
  std::vector<Case> cases;
  cases.push_back({"jit_host_adamw_i8_f32", 22, reps,
                   [&] { launchCpu(jit, config, {op}, hyper, 1, ++t); }});
  cases.push_back({bundledName + "_adamw_i8_f32", 22, reps,
                   [&] { launchCpu(bundled, config, {op}, hyper, 1, ++t); }});
  return timeInterleaved(n, cases);
}

int main(int argc, char **argv) {
  bool quick = false, json = false, memory = false, firstStep = false;
  std::string bundlePath;
  std::string deviceSpec = "cpu";
  int reps = 0;
  std::vector<int64_t> sizes;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick")
      quick = true;
    else if (arg == "--json")
      json = true;
    else if (arg == "--memory")
      memory = true;
    else if (arg == "--first-step")
      firstStep = true;
    else if (arg.rfind("--device=", 0) == 0)
      deviceSpec = arg.substr(9);
    else if (arg.rfind("--bundle=", 0) == 0)
      bundlePath = arg.substr(9);
    else if (arg.rfind("--reps=", 0) == 0)
      reps = std::stoi(arg.substr(7));
    else if (arg.rfind("--sizes=", 0) == 0) {
      std::string list = arg.substr(8);
      for (size_t p = 0; p <= list.size();) {
        size_t q = list.find(',', p);
        sizes.push_back(int64_t(std::stod(list.substr(p, q - p)) * (1 << 20)));
        p = q == std::string::npos ? list.size() + 1 : q + 1;
      }
    } else {
      std::fprintf(stderr,
                   "usage: dqt-bench [--quick] [--json] [--reps=R] "
                   "[--sizes=1,4,16,64] (sizes in Mi parameters)\n"
                   "       dqt-bench --bundle=lib<name>.so [--sizes=...]: "
                   "bundled against JIT kernels\n"
                   "       dqt-bench --first-step | --memory\n"
                   "       dqt-bench --device=cuda[:N] [--quick] "
                   "[--sizes=...]: the GPU step against torch's fused "
                   "AdamW and a copy\n");
      return 2;
    }
  }
  if (deviceSpec != "cpu") {
    try {
      return runCuda(deviceSpec, sizes, reps ? reps : (quick ? 7 : 9), quick);
    } catch (const c10::Error &e) {
      std::fprintf(stderr, "error: %s\n", e.what_without_backtrace());
      return 1;
    }
  }
  if (memory)
    return runMemory(1024, 20);
  if (firstStep)
    return runFirstStep();
  if (sizes.empty())
    sizes = quick ? std::vector<int64_t>{16 << 20}
                  : std::vector<int64_t>{1 << 20, 4 << 20, 16 << 20, 64 << 20};
  if (!reps)
    reps = quick ? 7 : 9;
  if (!bundlePath.empty()) {
    std::printf("%-32s %10s %12s %10s\n", "impl", "N", "time (ms)", "GB/s");
    for (int64_t n : sizes)
      for (const Result &r : runBundleVsJit(bundlePath, n, reps))
        std::printf("%-32s %10lld %12.3f %10.2f\n", r.impl.c_str(),
                    (long long)r.n, r.seconds * 1e3,
                    r.bytesPerParam * r.n / r.seconds / 1e9);
    return 0;
  }

  // JIT: cold compile into an empty disk cache, then a warm load from it
  // (as a new process would), before anything else runs.
  StepConfig config;
  std::string cacheDir = (std::filesystem::temp_directory_path() /
                          ("dqt-bench-cache-" + std::to_string(::getpid())))
                             .string();
  double coldCompile, warmLoad;
  {
    KernelCache cold(cacheDir);
    cold.cpu(config);
    coldCompile = cold.stats().lastCompileSeconds;
    KernelCache warm(cacheDir);
    warm.cpu(config);
    warmLoad = warm.stats().lastLoadSeconds;
  }
  std::filesystem::remove_all(cacheDir);

  std::vector<Result> all;
  for (int64_t n : sizes) {
    auto rs = runSize(n, reps);
    all.insert(all.end(), rs.begin(), rs.end());
  }
  int64_t nr =
      std::find(sizes.begin(), sizes.end(), int64_t(16 << 20)) != sizes.end()
          ? (16 << 20)
          : sizes.back();
  const Result &fused = find(all, "dqt_adamw_i8_f32", nr);
  const Result &triad = find(all, "triad", nr);
  double fusedGBs = fused.bytesPerParam * nr / fused.seconds / 1e9;
  double triadGBs = triad.bytesPerParam * nr / triad.seconds / 1e9;
  double overTriad = fusedGBs / triadGBs;
  double vsEager = find(all, "eager_reference", nr).seconds / fused.seconds;
  double torchFused = find(all, "torch_fused_adamw_f32", nr).seconds;
  double vsTorch = torchFused / fused.seconds;
  // bf16 states (14 bytes a parameter) against torch's f32 states (28).
  double vsTorchBF16 = torchFused / find(all, "dqt_adamw_i8_bf16", nr).seconds;
  const Result &inplace = find(all, "inplace", nr);
  double overInplace =
      fusedGBs / (inplace.bytesPerParam * nr / inplace.seconds / 1e9);

  if (json) {
    std::printf("{\"threads\": %d, \"reps\": %d, \"results\": [",
                at::get_num_threads(), reps);
    for (size_t i = 0; i < all.size(); ++i) {
      const Result &r = all[i];
      std::printf("%s{\"impl\": \"%s\", \"n\": %lld, \"median_s\": %.6g, "
                  "\"params_per_s\": %.6g, \"gb_per_s\": %.4g}",
                  i ? ", " : "", r.impl.c_str(), (long long)r.n, r.seconds,
                  r.n / r.seconds, r.bytesPerParam * r.n / r.seconds / 1e9);
    }
    std::printf("], \"ratios\": {\"n\": %lld, \"fused_over_triad\": %.4g, "
                "\"fused_over_inplace\": %.4g, "
                "\"speedup_vs_eager_reference\": %.4g, "
                "\"speedup_vs_torch_fused_adamw\": %.4g, "
                "\"speedup_vs_torch_fused_adamw_bf16_states\": %.4g}, "
                "\"jit\": {\"cold_compile_s\": %.4g, \"warm_load_s\": %.4g}}\n",
                (long long)nr, overTriad, overInplace, vsEager, vsTorch,
                vsTorchBF16, coldCompile, warmLoad);
    return 0;
  }
  std::printf("dqt-bench: %d threads, median of %d; JIT: cold compile %.0f "
              "ms, warm load from the disk cache %.1f ms\n",
              at::get_num_threads(), reps, coldCompile * 1e3, warmLoad * 1e3);
  std::printf("%-24s %10s %12s %14s %10s\n", "impl", "N", "time (ms)",
              "params/s", "GB/s");
  for (const Result &r : all)
    std::printf("%-24s %10lld %12.3f %14.4g %10.2f\n", r.impl.c_str(),
                (long long)r.n, r.seconds * 1e3, r.n / r.seconds,
                r.bytesPerParam * r.n / r.seconds / 1e9);
  std::printf("at N = %lld: fused/triad %.2f, fused/inplace %.2f, speedup "
              "vs eager %.1fx, vs torch fused AdamW %.2fx (bf16 states "
              "%.2fx)\n",
              (long long)nr, overTriad, overInplace, vsEager, vsTorch,
              vsTorchBF16);
  return 0;
}
