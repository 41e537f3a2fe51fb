//===- cuda-optimizers-emulated.cpp - the optimizers' CUDA path, no GPU ---===//
//
// AdamW and SGD step their weights through the CUDA path (StepTarget,
// stepConfigOn, WeightStep's per-row form, launchCuda, the next scales by
// device operations, StepStatsList) and must match the CPU path bit for bit:
// integers, scales, states, float parameters and statistics, over several
// steps, per tensor and per row, int8 and packed ternary, f32 and bf16
// states, with non-finite gradients, and inside the backward pass
// (stepParameter). The GPU is libdqt-emulated-cuda.so with pageable host
// access ($DQT_EMULATED_CUDA_PAGEABLE=1), so the tensors are CPU tensors that
// $DQT_HOST_TENSORS_ON_GPU sends through the CUDA path; the test switches
// that variable to run the CPU reference in the same process. Also checked:
// step() neither synchronizes nor copies to the host, reading the
// statistics synchronizes once per launch, and a GPU without pageable
// access is refused with nothing changed (a second ctest entry).
//
//===----------------------------------------------------------------------===//

#include "EmulatedCudaTest.h"
#include "TestUtil.h"

#include "dqt/Runtime/Optimizers.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <memory>

using namespace dqt;
using dqt::test::sameBytes;

namespace {

using test::emulated;
using test::kNotEmulated;

DqtEmulatedCudaCounters counters() { return test::emulation().now(); }

/// Runs `fn` with CPU tensors stepped on GPU 0 (the emulated one).
template <typename Fn> auto onGpu(Fn fn) {
  ::setenv("DQT_HOST_TENSORS_ON_GPU", "0", 1);
  struct Unset {
    ~Unset() { ::unsetenv("DQT_HOST_TENSORS_ON_GPU"); }
  } unset;
  return fn();
}

/// One model: weights of every kind the optimizers group, and float
/// parameters.
struct Model {
  std::vector<QuantizedWeight> weights;
  std::vector<at::Tensor> floats;

  explicit Model(bool packedTernary) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(7);
    auto w = [&](std::vector<int64_t> shape) {
      return at::randn(shape, gen) * 0.05;
    };
    weights.push_back(QuantizedWeight::fromFloat(w({37, 45}), Grid{8, false}));
    weights.push_back(QuantizedWeight::fromFloat(w({16, 33}), Grid{8, false}));
    weights.push_back(QuantizedWeight::fromFloat(w({13, 21}), Grid{4, false},
                                                 Storage::Int8,
                                                 ScaleMode::Row));
    weights.push_back(QuantizedWeight::fromFloat(w({1001}), Grid{3, false}));
    weights.push_back(QuantizedWeight::fromFloat(
        w({11, 29}), Grid{8, true},
        packedTernary ? Storage::PackedTernary : Storage::Int8));
    weights.push_back(QuantizedWeight::fromFloat(
        w({9, 13}), Grid{8, true},
        packedTernary ? Storage::PackedTernary : Storage::Int8,
        ScaleMode::Row));
    // The absmax rule (docs/numerics.md, "Scale rules"): on a GPU max|w2|
    // comes back per row, and a per-tensor weight takes the rows' maximum.
    weights.push_back(QuantizedWeight::fromFloat(w({12, 17}), Grid{4, false},
                                                 Storage::Int8,
                                                 ScaleMode::Tensor,
                                                 ScaleRule::AbsMax));
    weights.push_back(QuantizedWeight::fromFloat(w({10, 19}), Grid{8, false},
                                                 Storage::Int8, ScaleMode::Row,
                                                 ScaleRule::AbsMax));
    floats.push_back(w({45}).contiguous());
    floats.push_back(w({7, 3}).contiguous());
  }

  std::vector<QuantizedWeight *> pointers() {
    std::vector<QuantizedWeight *> p;
    for (QuantizedWeight &w : weights)
      p.push_back(&w);
    return p;
  }

  /// Step `t`'s gradients (some non-finite), the same in every model.
  void setGradients(int t) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(100 + t);
    for (QuantizedWeight &w : weights) {
      at::Tensor g = at::randn(w.sizes(), gen) * 0.1;
      g.view({-1})[t % g.numel()] = t % 2 ? NAN : INFINITY;
      w.grad().copy_(g);
    }
    for (at::Tensor &f : floats)
      f.mutable_grad() = at::randn(f.sizes(), gen) * 0.1;
  }
};

void expectSameModels(const Model &a, const Model &b) {
  for (size_t p = 0; p < a.weights.size(); ++p) {
    SCOPED_TRACE("weight " + std::to_string(p));
    EXPECT_TRUE(sameBytes(a.weights[p].q(), b.weights[p].q()));
    EXPECT_TRUE(sameBytes(a.weights[p].deltas(), b.weights[p].deltas()));
    EXPECT_TRUE(sameBytes(a.weights[p].maxQs(), b.weights[p].maxQs()));
    if (a.weights[p].rule() == ScaleRule::AbsMax)
      EXPECT_TRUE(
          sameBytes(a.weights[p].absMaxes(), b.weights[p].absMaxes()));
  }
  for (size_t i = 0; i < a.floats.size(); ++i)
    EXPECT_TRUE(sameBytes(a.floats[i], b.floats[i])) << "float " << i;
}

void expectSameStates(const optim::StepOptimizer &a,
                      const optim::StepOptimizer &b) {
  for (size_t p = 0; p < a.numParams(); ++p)
    for (size_t k = 0; k < a.numStates(p); ++k)
      EXPECT_TRUE(sameBytes(a.state(p, k), b.state(p, k)))
          << "state " << k << " of parameter " << p;
}

void expectSameStats(const std::vector<StepStats> &a,
                     const std::vector<StepStats> &b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t p = 0; p < a.size(); ++p) {
    EXPECT_EQ(a[p].maxQ, b[p].maxQ) << p;
    EXPECT_EQ(a[p].changed, b[p].changed) << p;
    EXPECT_EQ(a[p].nonFinite, b[p].nonFinite) << p;
  }
}

struct Case {
  const char *name;
  bool sgd;
  StateType states;
  bool packed;
};

class CudaOptimizers : public ::testing::TestWithParam<Case> {
protected:
  std::unique_ptr<optim::StepOptimizer> make(Model &m) const {
    Case c = GetParam();
    std::unique_ptr<optim::StepOptimizer> o;
    if (c.sgd) {
      optim::SGDOptions s;
      s.lr = 0.05;
      s.weightDecay = 0.01;
      s.stateType = c.states;
      o = std::make_unique<optim::SGD>(m.pointers(), s);
    } else {
      optim::AdamWOptions a;
      a.lr = 0.01;
      a.stateType = c.states;
      o = std::make_unique<optim::AdamW>(m.pointers(), a);
    }
    o->addFloatParameters(m.floats);
    return o;
  }
};

TEST_P(CudaOptimizers, MatchTheCpuPathBitForBit) {
  if (!emulated())
    GTEST_SKIP() << kNotEmulated;
  Model cpu(GetParam().packed), gpu(GetParam().packed);
  auto refOpt = make(cpu);
  auto gpuOpt = onGpu([&] { return make(gpu); });
  for (int t = 1; t <= 3; ++t) {
    SCOPED_TRACE("step " + std::to_string(t));
    cpu.setGradients(t);
    gpu.setGradients(t);
    std::vector<StepStats> want = refOpt->step();
    // Step 2 runs two weights inside the backward pass (stepParameter),
    // each its own launch, the rest in step().
    if (t == 2) {
      onGpu([&] {
        gpuOpt->stepParameter(gpu.weights[2]);
        gpuOpt->stepParameter(gpu.weights[4]);
        return 0;
      });
      EXPECT_FALSE(gpu.weights[2].hasGrad());
      gpu.weights[2].grad().copy_(cpu.weights[2].grad());
    }
    DqtEmulatedCudaCounters before = counters();
    StepStatsList got = onGpu([&] { return gpuOpt->step(); });
    DqtEmulatedCudaCounters after = counters();
    // Nothing waited for the GPU or came back from it.
    EXPECT_EQ(after.syncs, before.syncs);
    EXPECT_EQ(after.copiesDtoH, before.copiesDtoH);
    EXPECT_EQ(after.asyncCopiesDtoH, before.asyncCopiesDtoH);
    EXPECT_GT(after.launches, before.launches);
    EXPECT_TRUE(got.pending());
    expectSameStats(want, got.get());
    // One synchronization per launchCuda whose statistics were read. On a
    // GPU every weight runs the per-row kernel, so the groups are: 8 bits
    // (weights 0, 1), 4 bits (2), 3 bits (3), ternary (4, 5), 4 bits absmax
    // (6), 8 bits absmax (7) and the float parameters; at step 2 weights 2
    // and 4 had launches of their own.
    DqtEmulatedCudaCounters read = counters();
    EXPECT_EQ(read.syncs - after.syncs, t == 2 ? 6 + 2 : 7);
    EXPECT_FALSE(got.pending());
    expectSameModels(cpu, gpu);
    expectSameStates(*refOpt, *gpuOpt);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, CudaOptimizers,
    ::testing::Values(Case{"AdamW", false, StateType::F32, false},
                      Case{"AdamWBf16Packed", false, StateType::BF16, true},
                      Case{"SGD", true, StateType::F32, true}),
    [](const auto &info) { return std::string(info.param.name); });

/// A GPU that cannot reach pageable memory gets no CPU tensors, and the
/// refused step changes nothing (ctest runs it without
/// $DQT_EMULATED_CUDA_PAGEABLE).
TEST(CudaOptimizersRefusal, HostTensorsNeedPageableAccess) {
  if (!emulated())
    GTEST_SKIP() << kNotEmulated;
  Model m(false);
  auto o = std::make_unique<optim::AdamW>(m.pointers());
  m.setGradients(1);
  at::Tensor q = m.weights[0].q().clone();
  std::string error =
      test::errorMessage([&] { onGpu([&] { return o->step(); }); });
  EXPECT_NE(error.find("cannot access pageable host memory"),
            std::string::npos)
      << error;
  EXPECT_TRUE(sameBytes(q, m.weights[0].q()));
  EXPECT_EQ(o->stepCount(), 0);
}

} // namespace
