//===- gpu-emulated.cpp - the GPU kernels, emulated, == scalar reference --===//
//
// The very gpu.func that dqt-lower-to-gpu emits (dqt-compile-gpu-emulated:
// the same kernel stages as dqt-compile-gpu, then dqt-emulate-gpu) executed
// on the CPU with GPU semantics (dqt::emulateGpuKernel: a block's threads
// concurrent, block barriers, warp shuffles, workgroup memory, atomics), and
// compared bit for bit with the independent scalar reference: weights,
// states, max(q'), changed, non-finite and each row's max(q'). Every bit
// width, ternary, packed ternary, bf16 states, per-row delta with odd row
// lengths, float mode, AdamW and SGD; sizes that are not multiples of 4, 8,
// the block or the row; grids of several blocks whose grid-stride loop
// wraps many times, blocks of one warp and of several. And the emulator's
// own semantics on hand-written kernels: shuffles as shfl.sync, a barrier
// that not every thread reaches.
//
//===----------------------------------------------------------------------===//

#include "StepHarness.h"

#include "dqt/Compiler/GpuEmulator.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <random>

using namespace dqt;

namespace {

struct Case {
  Optimizer opt;
  int bits; // 0: ternary
  bool packed = false;
  StateType state = StateType::F32;
  /// Per-row delta with rows of this length (0: one delta per tensor).
  int64_t rowLength = 0;
  bool floatWeights = false;
  /// ScaleRule::AbsMax: the kernel also yields max|w2|.
  bool absMax = false;
};

std::string caseName(const Case &c) {
  std::string n = c.opt == Optimizer::AdamW ? "AdamW" : "SGD";
  if (c.floatWeights)
    return n + "Float";
  n += c.bits ? "Bits" + std::to_string(c.bits) : std::string("Ternary");
  if (c.packed)
    n += "Packed";
  if (c.state == StateType::BF16)
    n += "BF16States";
  if (c.rowLength)
    n += "Row" + std::to_string(c.rowLength);
  if (c.absMax)
    n += "AbsMax";
  return n;
}

/// How GoogleTest (and ctest's test list) prints a Case: its name.
void PrintTo(const Case &c, std::ostream *os) { *os << caseName(c); }

StepConfig configOf(const Case &c) {
  StepConfig cfg;
  cfg.optimizer = c.opt;
  cfg.floatWeights = c.floatWeights;
  cfg.ternary = c.bits == 0;
  cfg.bits = cfg.ternary ? 8 : c.bits;
  cfg.packed = c.packed;
  cfg.stateType = c.state;
  cfg.scale = c.rowLength ? ScaleMode::Row : ScaleMode::Tensor;
  cfg.rule = c.absMax ? ScaleRule::AbsMax : ScaleRule::MaxQ;
  return cfg;
}

/// A launch: its grid and the element count.
struct Launch {
  unsigned blocks, threads;
  int64_t n;
  /// Every weight at Qn, pushed further down: every maximum is negative, so
  /// a maximum that starts from 0 instead of the identity shows.
  bool negative = false;
};

/// Float mode's reference: the optimizer's update of f32 weights, written
/// as ref::adamw and ref::sgd write it, without grid or rounding; elements
/// with a non-finite gradient unchanged and counted.
ref::Reductions floatReference(const StepConfig &c, std::vector<float> &w,
                               test::StepBuffers &b, const ref::Scalars &s) {
  ref::Reductions r;
  for (size_t i = 0; i < w.size(); ++i) {
    float g = b.g[i];
    if (!std::isfinite(g)) {
      ++r.nonfinite;
      continue;
    }
    float w1;
    if (c.optimizer == Optimizer::AdamW) {
      float beta1 = s.h[0], beta2 = s.h[1], alpha = s.h[2], eps = s.h[3];
      float m1 = beta1 * b.s0[i] + (1.0f - beta1) * g;
      float v1 = beta2 * b.s1[i] + (1.0f - beta2) * (g * g);
      w1 = w[i] - alpha * (m1 / (std::sqrt(v1) + eps));
      b.s0[i] = m1;
      b.s1[i] = v1;
      w[i] = w1 - s.h[4] * w1;
    } else {
      float b1 = s.h[1] * b.s0[i] + g;
      w1 = w[i] - s.h[0] * b1;
      b.s0[i] = b1;
      w[i] = w1 - s.h[2] * w1;
    }
  }
  return r;
}

/// Runs the emulated kernel once over `b` (and, in float mode, the f32
/// weights `w`) on a grid of `blocks` x `threads`; returns the by-products
/// the way the runtime reads them back.
ref::Reductions launch(const EmulatedGpuKernel &kernel, const StepConfig &c,
                       test::StepBuffers &b, std::vector<float> &w,
                       const ref::Scalars &s, unsigned blocks,
                       unsigned threads) {
  int64_t n = b.g.size();
  bool rows = c.scale == ScaleMode::Row;
  int64_t numRows = rows ? (n + s.rowLength - 1) / s.rowLength : 0;
  std::vector<int32_t> rowMax(numRows, std::numeric_limits<int32_t>::min());
  std::vector<int32_t> rowAbsMax = rowMax;
  std::vector<uint8_t> packed;
  if (c.packed) {
    packed.resize((n + 3) / 4);
    ref::packTernary(b.q.data(), n, packed.data());
  }
  void *weights = c.floatWeights ? (void *)w.data()
                  : c.packed     ? (void *)packed.data()
                                 : (void *)b.q.data();
  KernelArgs args;
  packStepKernelArgs(args, c,
                     stepValues(c, b, s, weights,
                                c.packed ? int64_t(packed.size()) : n,
                                rowMax.data(), rowAbsMax.data()));
  // The GPU kernel combines into the caller's reductions with atomics.
  int64_t partials[kNumReductions] = {std::numeric_limits<int64_t>::min(), 0,
                                      0, std::numeric_limits<int64_t>::min()};
  if (c.floatWeights)
    partials[0] = 0;
  args.addBuffer(partials, c.floatWeights ? 1 : kNumReductions);
  llvm::Error err = emulateGpuKernel(kernel, args, blocks, threads);
  EXPECT_FALSE(bool(err)) << llvm::toString(std::move(err));
  if (c.packed)
    ref::unpackTernary(packed.data(), n, b.q.data());
  ref::Reductions r;
  if (c.floatWeights) {
    r.nonfinite = partials[0];
    return r;
  }
  r.maxq = partials[0];
  r.changed = partials[1];
  r.nonfinite = partials[2];
  r.rowMax = rowMax;
  if (c.rule == ScaleRule::AbsMax) {
    if (rows)
      r.rowAbsMax = rowAbsMax;
    else
      r.absMax = partials[3];
  }
  return r;
}

class GpuEmulated : public ::testing::TestWithParam<Case> {};

TEST_P(GpuEmulated, BitIdenticalToReference) {
  const Case &cs = GetParam();
  StepConfig c = configOf(cs);
  auto kernel = compileGpuEmulatedStep(c);
  ASSERT_TRUE(bool(kernel)) << llvm::toString(kernel.takeError());
  std::cout << "[emulated] " << c.key() << ": compiled in "
            << kernel->compileSeconds * 1e3 << " ms\n";

  // Grids of 3 x 64 threads (a grid-stride of 1536 elements), 2 x 128 and
  // 1 x 32 (one warp: no second reduction stage). Sizes: a wrapping loop
  // with a tail of 3 (n mod 8), a multiple of 4 and not of 8, fewer elements
  // than one group, whole groups but not whole grid strides. Per-row sizes
  // are whole rows (the kernel ABI). Blocks hold a power-of-two number of
  // warps, as the runtime's 256 threads do: upstream's all-reduce lowering
  // is racy otherwise (docs/design.md, "GPU kernels emulated on the CPU").
  std::vector<Launch> launches;
  if (cs.rowLength) {
    int64_t L = cs.rowLength;
    launches = {{3, 64, 301 * L},
                {2, 128, 37 * L},
                {1, 32, 3 * L},
                {3, 64, 301 * L, /*negative=*/true}};
  } else {
    launches = {{3, 64, 24 * 1536 + 11},
                {2, 128, 1536 + 4},
                {3, 64, 5},
                {1, 32, 1000},
                {3, 64, 24 * 1536 + 11, /*negative=*/true}};
  }

  for (const Launch &l : launches) {
    if (l.negative && c.floatWeights)
      continue;
    SCOPED_TRACE(::testing::Message()
                 << l.blocks << " x " << l.threads << " threads, n = " << l.n
                 << (l.negative ? ", every weight negative" : ""));
    test::StepBuffers init =
        test::randomBuffers(l.n, c.floatWeights ? -1 : c.qn(),
                            c.floatWeights ? 1 : c.qp(), uint32_t(l.n));
    if (l.negative)
      for (int64_t i = 0; i < l.n; ++i) {
        init.q[i] = int8_t(c.qn());
        if (std::isfinite(init.g[i]))
          init.g[i] = 1.0f + std::fabs(init.g[i]);
      }
    std::vector<float> winit(l.n);
    std::mt19937 rng(uint32_t(l.n) + 1);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (float &x : winit)
      x = nd(rng);

    ref::Scalars s{};
    s.seed = 0x0123456789abcdefULL ^ uint64_t(l.n);
    s.step = 9;
    s.tid = 4;
    s.delta = 0.02f;
    s.deltaNext =
        c.floatWeights ? 0.0f : ref::nextDelta(s.delta, int8_t(c.qp()), c.qp());
    test::setLargeSteps(s, c.optimizer);
    std::vector<float> delta, deltaNext;
    if (cs.rowLength) {
      // Rows of very different scales, some keeping their delta.
      int64_t rows = l.n / cs.rowLength;
      std::uniform_real_distribution<float> ud(0.0f, 1.0f);
      for (int64_t r = 0; r < rows; ++r) {
        delta.push_back(0.02f * std::pow(10.0f, ud(rng) * 2.0f - 1.0f));
        int8_t maxq = int8_t(r % 5 == 0 ? 0 : c.qp() - int64_t(r % 2));
        deltaNext.push_back(ref::nextDelta(delta.back(), maxq, c.qp()));
      }
      s.rowLength = cs.rowLength;
      s.deltaRows = delta.data();
      s.deltaNextRows = deltaNext.data();
    }

    test::StepBuffers want = init, got = init;
    std::vector<float> wantW = winit, gotW = winit;
    ref::Reductions expected = c.floatWeights
                                   ? floatReference(c, wantW, want, s)
                                   : test::runReference(c, want, s);
    if (l.n > 1000) { // the step must do something to mean anything
      ASSERT_GT(expected.nonfinite, 0);
      if (l.negative)
        ASSERT_LT(expected.maxq, 0);
      else if (!c.floatWeights)
        ASSERT_GT(expected.changed, l.n / 100);
    }
    ref::Reductions r = launch(*kernel, c, got, gotW, s, l.blocks, l.threads);

    if (c.floatWeights)
      ASSERT_EQ(0, std::memcmp(gotW.data(), wantW.data(), l.n * 4))
          << "float weights differ";
    else
      ASSERT_EQ(got.q, want.q) << "integer weights differ";
    if (c.stateType == StateType::BF16) {
      ASSERT_EQ(got.h0, want.h0) << "first state (bf16) differs";
      if (c.optimizer == Optimizer::AdamW)
        ASSERT_EQ(got.h1, want.h1) << "second state (bf16) differs";
    } else {
      ASSERT_EQ(0, std::memcmp(got.s0.data(), want.s0.data(), l.n * 4))
          << "first state differs";
      if (c.optimizer == Optimizer::AdamW)
        ASSERT_EQ(0, std::memcmp(got.s1.data(), want.s1.data(), l.n * 4))
            << "second state differs";
    }
    EXPECT_EQ(r.nonfinite, expected.nonfinite);
    if (c.floatWeights)
      continue;
    EXPECT_EQ(r.maxq, expected.maxq);
    EXPECT_EQ(r.changed, expected.changed);
    if (cs.rowLength)
      EXPECT_EQ(r.rowMax, expected.rowMax);
    if (cs.absMax && cs.rowLength)
      EXPECT_EQ(r.rowAbsMax, expected.rowAbsMax);
    else if (cs.absMax)
      EXPECT_EQ(r.absMax, expected.absMax);
  }
}

std::vector<Case> allCases() {
  using O = Optimizer;
  std::vector<Case> cases;
  for (int bits = 2; bits <= 8; ++bits)
    cases.push_back({O::AdamW, bits});
  cases.push_back({O::AdamW, 0});
  cases.push_back({O::AdamW, 0, /*packed=*/true});
  for (int bits : {8, 3, 0})
    cases.push_back({O::SGD, bits});
  cases.push_back({O::SGD, 0, /*packed=*/true});
  // bf16 states (stochastically rounded from the state streams).
  cases.push_back({O::AdamW, 8, false, StateType::BF16});
  cases.push_back({O::AdamW, 0, true, StateType::BF16});
  cases.push_back({O::SGD, 4, false, StateType::BF16});
  // Per-row delta: odd row lengths (groups straddle rows), a multiple of 4
  // and not of 8, a multiple of 8.
  cases.push_back({O::AdamW, 8, false, StateType::F32, 45});
  cases.push_back({O::AdamW, 4, false, StateType::BF16, 13});
  cases.push_back({O::AdamW, 0, true, StateType::F32, 20});
  cases.push_back({O::SGD, 8, false, StateType::F32, 7});
  cases.push_back({O::SGD, 0, true, StateType::F32, 64});
  // The absmax rule, per tensor and per row.
  cases.push_back({O::AdamW, 8, false, StateType::F32, 0, false, true});
  cases.push_back({O::AdamW, 4, false, StateType::F32, 45, false, true});
  cases.push_back({O::SGD, 3, false, StateType::BF16, 13, false, true});
  // Float mode.
  cases.push_back({O::AdamW, 8, false, StateType::F32, 0, true});
  cases.push_back({O::SGD, 8, false, StateType::F32, 0, true});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Configs, GpuEmulated, ::testing::ValuesIn(allCases()),
                         [](const ::testing::TestParamInfo<Case> &info) {
                           return caseName(info.param);
                         });

/// Hand-written kernels for the emulator's own semantics.
constexpr const char *kKernels = R"mlir(
module attributes {gpu.container_module} {
  gpu.module @kernels {
    // Each thread of lanes [0, width) shuffles the value 10 * g + 7 (g its
    // global index) in the four modes; out[m * total + g] and
    // valid[m * total + g] get mode m's value and valid bit (-1: not called).
    gpu.func @shuffles(%out: memref<?xi32>, %valid: memref<?xi32>,
                       %offset: i32, %width: i32) kernel {
      %tid = gpu.thread_id x
      %bid = gpu.block_id x
      %bdim = gpu.block_dim x
      %gdim = gpu.grid_dim x
      %t0 = arith.muli %bid, %bdim : index
      %g = arith.addi %t0, %tid : index
      %total = arith.muli %bdim, %gdim : index
      %gi = arith.index_cast %g : index to i32
      %c10 = arith.constant 10 : i32
      %c7 = arith.constant 7 : i32
      %v0 = arith.muli %gi, %c10 : i32
      %v = arith.addi %v0, %c7 : i32
      %c32 = arith.constant 32 : index
      %lane = arith.remui %tid, %c32 : index
      %lanei = arith.index_cast %lane : index to i32
      %in = arith.cmpi ult, %lanei, %width : i32
      %c1 = arith.constant 1 : index
      %c2 = arith.constant 2 : index
      %c3 = arith.constant 3 : index
      %i1 = arith.addi %g, %total : index
      %t2 = arith.muli %total, %c2 : index
      %i2 = arith.addi %g, %t2 : index
      %t3 = arith.muli %total, %c3 : index
      %i3 = arith.addi %g, %t3 : index
      scf.if %in {
        %r0, %p0 = gpu.shuffle xor %v, %offset, %width : i32
        %r1, %p1 = gpu.shuffle up %v, %offset, %width : i32
        %r2, %p2 = gpu.shuffle down %v, %offset, %width : i32
        %r3, %p3 = gpu.shuffle idx %v, %offset, %width : i32
        memref.store %r0, %out[%g] : memref<?xi32>
        memref.store %r1, %out[%i1] : memref<?xi32>
        memref.store %r2, %out[%i2] : memref<?xi32>
        memref.store %r3, %out[%i3] : memref<?xi32>
        %q0 = arith.extui %p0 : i1 to i32
        %q1 = arith.extui %p1 : i1 to i32
        %q2 = arith.extui %p2 : i1 to i32
        %q3 = arith.extui %p3 : i1 to i32
        memref.store %q0, %valid[%g] : memref<?xi32>
        memref.store %q1, %valid[%i1] : memref<?xi32>
        memref.store %q2, %valid[%i2] : memref<?xi32>
        memref.store %q3, %valid[%i3] : memref<?xi32>
      }
      gpu.return
    }
    // Only thread 0 reaches the barrier.
    gpu.func @divergent_barrier() kernel {
      %tid = gpu.thread_id x
      %c0 = arith.constant 0 : index
      %first = arith.cmpi eq, %tid, %c0 : index
      scf.if %first {
        gpu.barrier
      }
      gpu.return
    }
  }
}
)mlir";

/// The hand-written kernel `name` of kKernels, for the emulator.
EmulatedGpuKernel compileKernel(llvm::StringRef name) {
  std::unique_ptr<mlir::MLIRContext> ctx = createContext();
  auto module = mlir::parseSourceString<mlir::ModuleOp>(kKernels, ctx.get());
  EXPECT_TRUE(bool(module));
  auto kernel = compileGpuEmulatedModule(*module, name);
  EXPECT_TRUE(bool(kernel)) << llvm::toString(kernel.takeError());
  return kernel ? std::move(*kernel) : EmulatedGpuKernel();
}

/// gpu.shuffle as NVVM lowers it, written from the PTX ISA's shfl.sync
/// (member mask: lanes [0, width); clamp c = width - 1, for up 32 - width):
/// source lane j = lane ^ b, lane - b, lane + b or b; valid iff j <= c (up:
/// j >= c); an invalid lane reads its own value.
std::pair<int32_t, int32_t> shflSync(int mode, int lane, int offset, int width,
                                     int warpBase) {
  int b = offset & 31, j = 0, c = mode == 1 ? 32 - width : width - 1;
  bool valid = false;
  switch (mode) {
  case 0:
    j = lane ^ b;
    valid = j <= c;
    break;
  case 1:
    j = lane - b;
    valid = j >= (c & 31);
    break;
  case 2:
    j = lane + b;
    valid = j <= c;
    break;
  case 3:
    j = b;
    valid = j <= c;
    break;
  }
  int src = warpBase + (valid ? j : lane);
  return {10 * src + 7, valid};
}

TEST(GpuEmulator, ShufflesFollowShflSync) {
  EmulatedGpuKernel kernel = compileKernel("shuffles");
  ASSERT_TRUE(kernel.fn);
  const unsigned blocks = 2, threads = 64, total = blocks * threads;
  // (offset, width): full warps, and lanes [0, 8) only.
  for (auto [offset, width] : std::vector<std::pair<int, int>>{
           {1, 32}, {5, 32}, {16, 32}, {31, 32}, {4, 8}, {3, 8}, {9, 8}}) {
    SCOPED_TRACE(::testing::Message()
                 << "offset " << offset << ", width " << width);
    std::vector<int32_t> out(4 * total, -1), valid(4 * total, -1);
    KernelArgs args;
    args.addBuffer(out.data(), out.size());
    args.addBuffer(valid.data(), valid.size());
    args.addScalar<int32_t>(offset);
    args.addScalar<int32_t>(width);
    llvm::Error err = emulateGpuKernel(kernel, args, blocks, threads);
    ASSERT_FALSE(bool(err)) << llvm::toString(std::move(err));
    for (unsigned g = 0; g < total; ++g) {
      int lane = g % 32, warpBase = g - lane;
      for (int mode = 0; mode < 4; ++mode) {
        if (lane >= width) {
          EXPECT_EQ(out[mode * total + g], -1) << "thread " << g;
          continue;
        }
        if (mode == 1 && width != 32)
          continue; // up's clamp 32 - width: not a range worth pinning
        auto [value, ok] = shflSync(mode, lane, offset, width, warpBase);
        EXPECT_EQ(out[mode * total + g], value)
            << "thread " << g << ", mode " << mode;
        EXPECT_EQ(valid[mode * total + g], ok)
            << "thread " << g << ", mode " << mode;
      }
    }
  }
}

TEST(GpuEmulator, ABarrierNotEveryThreadReachesIsAnError) {
  EmulatedGpuKernel kernel = compileKernel("divergent_barrier");
  ASSERT_TRUE(kernel.fn);
  KernelArgs args;
  llvm::Error err = emulateGpuKernel(kernel, args, 1, 64);
  ASSERT_TRUE(bool(err));
  std::string message = llvm::toString(std::move(err));
  EXPECT_NE(message.find("gpu.barrier: 63 threads of the block returned "
                         "without reaching it"),
            std::string::npos)
      << message;
}

} // namespace
