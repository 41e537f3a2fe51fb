//===- cuda-tensors.cpp - the optimizers on LibTorch CUDA tensors ---------===//
//
// On a GPU (skipped elsewhere, saying why): QuantizedWeights made from CUDA
// tensors and stepped by AdamW and SGD on LibTorch's current stream match
// the same weights stepped on the CPU bit for bit (integers, scales, states,
// statistics) over three steps, per tensor, per row and packed; Adafactor's
// device statistics stay within rounding of the host's; a weight moved to
// the GPU and back keeps its values; mixed devices are refused.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "dqt/Runtime/Adafactor.h"
#include "dqt/Runtime/Optimizers.h"
#include "dqt/Runtime/TorchCuda.h"

#include <gtest/gtest.h>

using namespace dqt;
using dqt::test::sameBytes;

namespace {

/// The first CUDA device, or why there is none.
std::optional<at::Device> gpu(std::string &why) {
  try {
    return openDevice("cuda", "cuda-tensors");
  } catch (const c10::Error &e) {
    why = e.what_without_backtrace();
    return std::nullopt;
  }
}

std::vector<QuantizedWeight> weights(at::Device device) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto w = [&](std::vector<int64_t> s) {
    return (at::randn(s, gen) * 0.05).to(device);
  };
  std::vector<QuantizedWeight> ws;
  ws.push_back(QuantizedWeight::fromFloat(w({300, 257}), Grid{8, false}));
  ws.push_back(QuantizedWeight::fromFloat(w({129, 77}), Grid{4, false},
                                          Storage::Int8, ScaleMode::Row));
  ws.push_back(QuantizedWeight::fromFloat(w({61, 33}), Grid{8, true},
                                          Storage::PackedTernary));
  ws.push_back(QuantizedWeight::fromFloat(w({1001}), Grid{3, false}));
  return ws;
}

void setGrads(std::vector<QuantizedWeight> &ws, int t) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(50 + t);
  for (QuantizedWeight &w : ws) {
    at::Tensor g = at::randn(w.sizes(), gen) * 0.1;
    g.view({-1})[t] = NAN;
    w.grad().copy_(g);
  }
}

std::vector<QuantizedWeight *> ptrs(std::vector<QuantizedWeight> &ws) {
  std::vector<QuantizedWeight *> p;
  for (QuantizedWeight &w : ws)
    p.push_back(&w);
  return p;
}

TEST(CudaTensors, AdamWAndSGDMatchTheCpuBitForBit) {
  std::string why;
  auto device = gpu(why);
  if (!device)
    GTEST_SKIP() << "no CUDA device here (" << why
                 << "); the emulated driver runs this path in "
                    "cuda-optimizers-emulated";
  for (bool sgd : {false, true}) {
    std::vector<QuantizedWeight> cpu = weights(at::kCPU),
                                 dev = weights(*device);
    auto make = [&](std::vector<QuantizedWeight> &ws)
        -> std::unique_ptr<optim::StepOptimizer> {
      if (sgd)
        return std::make_unique<optim::SGD>(ptrs(ws));
      optim::AdamWOptions o;
      o.stateType = StateType::BF16;
      return std::make_unique<optim::AdamW>(ptrs(ws), o);
    };
    auto a = make(cpu), b = make(dev);
    for (int t = 1; t <= 3; ++t) {
      setGrads(cpu, t);
      setGrads(dev, t);
      std::vector<StepStats> want = a->step();
      StepStatsList got = b->step();
      for (size_t p = 0; p < cpu.size(); ++p) {
        EXPECT_EQ(got[p].maxQ, want[p].maxQ);
        EXPECT_EQ(got[p].changed, want[p].changed);
        EXPECT_EQ(got[p].nonFinite, want[p].nonFinite);
        EXPECT_TRUE(sameBytes(cpu[p].q(), dev[p].q().cpu())) << p;
        EXPECT_TRUE(sameBytes(cpu[p].deltas(), dev[p].deltas().cpu())) << p;
        EXPECT_TRUE(sameBytes(cpu[p].maxQs(), dev[p].maxQs().cpu())) << p;
        for (size_t k = 0; k < a->numStates(p); ++k)
          EXPECT_TRUE(sameBytes(a->state(p, k), b->state(p, k).cpu()));
      }
    }
  }
}

TEST(CudaTensors, AdafactorMovesAndRefusals) {
  std::string why;
  auto device = gpu(why);
  if (!device)
    GTEST_SKIP() << "no CUDA device here (" << why << ")";
  std::vector<QuantizedWeight> cpu = weights(at::kCPU), dev = weights(*device);
  optim::Adafactor a(ptrs(cpu)), b(ptrs(dev));
  setGrads(cpu, 1);
  setGrads(dev, 1);
  a.step();
  b.step();
  for (size_t p = 0; p < cpu.size(); ++p)
    for (size_t k = 0; k < a.numStates(p); ++k)
      EXPECT_TRUE(at::allclose(a.state(p, k), b.state(p, k).cpu(), 1e-5, 0));

  // There and back: the same values.
  QuantizedWeight w = weights(at::kCPU)[1];
  at::Tensor before = w.dequantize();
  w.moveTo(*device);
  EXPECT_TRUE(w.q().is_cuda() && w.deltas().is_cuda());
  w.moveTo(at::kCPU);
  EXPECT_TRUE(sameBytes(before, w.dequantize()));

  // One optimizer, two devices.
  std::vector<QuantizedWeight> one = weights(at::kCPU);
  one[1].moveTo(*device);
  std::string error =
      test::errorMessage([&] { optim::AdamW bad(ptrs(one)); });
  EXPECT_NE(error.find("share a device"), std::string::npos) << error;
}

} // namespace
