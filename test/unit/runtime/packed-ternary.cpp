//===- packed-ternary.cpp - packed ternary weights in the runtime ---------===//
//
// QuantizedWeight with Storage::PackedTernary: ceil(n/4) bytes + delta;
// AdamW and SGD (f32 and bf16 states) on packed weights give exactly the
// int8 ternary weights' results (unpacked), over several multi-threaded
// steps of parameters whose sizes are not multiples of 4; QuantLinear runs
// on packed weights; checkpoints store the bytes as U8 and resume bit-exactly
// (2N steps == N + save + load + N); int8/packed mismatches and corrupt
// codes are refused with a clear message and change nothing.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "dqt/Runtime/Optimizers.h"
#include "dqt/Runtime/QuantLinear.h"

#include <gtest/gtest.h>

#include <memory>

using namespace dqt;
using namespace dqt::optim;
namespace fs = std::filesystem;

namespace {

using test::sameBytes;

/// Parameters of sizes that are not multiples of 4, one of them large
/// enough to be split across threads.
std::vector<at::Tensor> floats() {
  at::manual_seed(11);
  return {at::randn({3 * 65536 + 7}), at::randn({37, 19}), at::randn({5})};
}

std::vector<std::unique_ptr<QuantizedWeight>> weights(Storage storage) {
  std::vector<std::unique_ptr<QuantizedWeight>> ws;
  for (const at::Tensor &w : floats())
    ws.push_back(std::make_unique<QuantizedWeight>(
        QuantizedWeight::fromFloat(w, Grid{8, true}, storage)));
  return ws;
}

std::vector<QuantizedWeight *> ptrs(
    std::vector<std::unique_ptr<QuantizedWeight>> &ws) {
  std::vector<QuantizedWeight *> p;
  for (auto &w : ws)
    p.push_back(w.get());
  return p;
}

/// The gradients of step t: large, with NaN and inf elements.
void setGrads(std::vector<std::unique_ptr<QuantizedWeight>> &ws, int t) {
  at::manual_seed(100 + t);
  for (auto &w : ws) {
    at::Tensor g = at::randn(w->sizes()) * 0.5;
    g.view({-1})[1] = NAN;
    g.view({-1})[w->numel() - 1] = (t & 1) ? INFINITY : -INFINITY;
    w->grad().copy_(g);
  }
}

std::unique_ptr<QuantizedOptimizer>
makeOptimizer(bool adam, StateType st,
              std::vector<std::unique_ptr<QuantizedWeight>> &ws) {
  if (adam) {
    AdamWOptions o;
    o.lr = 0.05;
    o.stateType = st;
    return std::make_unique<optim::AdamW>(ptrs(ws), o);
  }
  SGDOptions o;
  o.lr = 0.05;
  o.stateType = st;
  return std::make_unique<optim::SGD>(ptrs(ws), o);
}

void expectSameWeights(std::vector<std::unique_ptr<QuantizedWeight>> &a,
                       std::vector<std::unique_ptr<QuantizedWeight>> &b) {
  for (size_t p = 0; p < a.size(); ++p) {
    ASSERT_TRUE(sameBytes(a[p]->unpack(), b[p]->unpack())) << "weight " << p;
    ASSERT_EQ(a[p]->delta(), b[p]->delta());
    ASSERT_EQ(a[p]->maxQ(), b[p]->maxQ());
  }
}

TEST(PackedTernaryWeight, StorageAndAccessors) {
  at::Tensor w = at::randn({7, 5});
  auto plain = QuantizedWeight::fromFloat(w, Grid{8, true});
  auto packed =
      QuantizedWeight::fromFloat(w, Grid{8, true}, Storage::PackedTernary);
  EXPECT_TRUE(packed.isPacked());
  EXPECT_EQ(packed.packed().scalar_type(), at::kByte);
  EXPECT_EQ(packed.packed().numel(), 9); // ceil(35 / 4)
  EXPECT_EQ(packed.persistentBytes(), 9 + 5);
  EXPECT_EQ(packed.sizes(), w.sizes());
  EXPECT_EQ(packed.numel(), 35);
  EXPECT_TRUE(sameBytes(packed.unpack(), plain.q()));
  EXPECT_TRUE(sameBytes(packed.dequantize(), plain.dequantize()));
  EXPECT_EQ(packed.maxQ(), plain.maxQ());
  EXPECT_EQ(packed.grad().sizes(), w.sizes());
  EXPECT_NE(test::errorMessage([&] { plain.packed(); })
                .find("stored as int8"),
            std::string::npos);
  EXPECT_NE(test::errorMessage([&] {
              QuantizedWeight::fromFloat(w, Grid{4, false},
                                         Storage::PackedTernary);
            }).find("ternary weights only"),
            std::string::npos);
  // The codes: 0b10 and non-zero unused bits are refused.
  at::Tensor bad = packed.packed().clone();
  bad[0] = uint8_t(0x02);
  EXPECT_NE(test::errorMessage([&] { unpackTernary(bad, {7, 5}); })
                .find("invalid code 0b10"),
            std::string::npos);
  bad = packed.packed().clone();
  bad[8] = uint8_t(bad[8].item<uint8_t>() | 0xc0); // bits of element 35 (of 35)
  EXPECT_NE(test::errorMessage([&] { unpackTernary(bad, {7, 5}); })
                .find("unused bits"),
            std::string::npos);
}

TEST(PackedTernaryWeight, QuantLinearMatchesInt8) {
  at::manual_seed(3);
  at::Tensor w = at::randn({6, 10});
  nn::QuantLinear a(w, Grid{8, true});
  nn::QuantLinear b(w, Grid{8, true}, Storage::PackedTernary);
  EXPECT_EQ(b.inFeatures(), 10);
  EXPECT_EQ(b.outFeatures(), 6);
  at::Tensor x = at::randn({4, 10});
  EXPECT_TRUE(sameBytes(a.forward(x), b.forward(x)));
}

struct Case {
  bool adam;
  StateType state;
};

class PackedTernaryOptim : public ::testing::TestWithParam<Case> {};

TEST_P(PackedTernaryOptim, MatchesInt8Weights) {
  auto plain = weights(Storage::Int8);
  auto packed = weights(Storage::PackedTernary);
  auto oa = makeOptimizer(GetParam().adam, GetParam().state, plain);
  auto ob = makeOptimizer(GetParam().adam, GetParam().state, packed);
  int64_t changed = 0;
  for (int t = 0; t < 4; ++t) {
    setGrads(plain, t);
    setGrads(packed, t);
    auto sa = oa->step();
    auto sb = ob->step();
    for (size_t p = 0; p < sa.size(); ++p) {
      EXPECT_EQ(sa[p].maxQ, sb[p].maxQ);
      EXPECT_EQ(sa[p].changed, sb[p].changed);
      EXPECT_EQ(sa[p].nonFinite, sb[p].nonFinite);
      changed += sb[p].changed;
    }
    expectSameWeights(plain, packed);
    for (size_t p = 0; p < plain.size(); ++p)
      for (size_t k = 0; k < oa->numStates(); ++k)
        ASSERT_TRUE(sameBytes(oa->state(p, k), ob->state(p, k)));
  }
  EXPECT_GT(changed, 1000);
  for (auto &w : packed) // still valid storage (unused bits 0)
    checkPackedTernary(w->packed(), w->numel(), "test");
}

TEST_P(PackedTernaryOptim, CheckpointResumesBitExactly) {
  fs::path dir = test::freshTestDirectory("dqt-packed");
  fs::create_directories(dir);
  auto straight = weights(Storage::PackedTernary);
  auto os = makeOptimizer(GetParam().adam, GetParam().state, straight);
  for (int t = 0; t < 4; ++t) {
    setGrads(straight, t);
    os->step();
  }

  auto first = weights(Storage::PackedTernary);
  auto of = makeOptimizer(GetParam().adam, GetParam().state, first);
  for (int t = 0; t < 2; ++t) {
    setGrads(first, t);
    of->step();
  }
  std::string path = (dir / "ckpt.dqt").string();
  of->save(path);

  auto resumed = weights(Storage::PackedTernary);
  auto orr = makeOptimizer(GetParam().adam, GetParam().state, resumed);
  orr->load(path);
  for (int t = 2; t < 4; ++t) {
    setGrads(resumed, t);
    orr->step();
  }
  expectSameWeights(straight, resumed);
  for (size_t p = 0; p < straight.size(); ++p) {
    ASSERT_TRUE(sameBytes(straight[p]->packed(), resumed[p]->packed()));
    for (size_t k = 0; k < os->numStates(); ++k)
      ASSERT_TRUE(sameBytes(os->state(p, k), orr->state(p, k)));
  }

  // Storage mismatch: an int8 checkpoint into packed weights and back.
  auto plain = weights(Storage::Int8);
  auto op = makeOptimizer(GetParam().adam, GetParam().state, plain);
  std::string plainPath = (dir / "int8.dqt").string();
  op->save(plainPath);
  at::Tensor before = resumed[0]->packed().clone();
  EXPECT_NE(test::errorMessage([&] { orr->load(plainPath); })
                .find("stored as packed-ternary here and as int8"),
            std::string::npos);
  EXPECT_NE(test::errorMessage([&] { op->load(path); })
                .find("stored as int8 here and as packed-ternary"),
            std::string::npos);
  EXPECT_TRUE(sameBytes(before, resumed[0]->packed())) << "load changed it";

  // A corrupt code (0b10) is refused, nothing changes.
  at::Tensor good = first[2]->q().clone();
  first[2]->q()[0] = uint8_t(0x02);
  std::string corrupt = (dir / "corrupt.dqt").string();
  of->save(corrupt);
  first[2]->q().copy_(good);
  EXPECT_NE(test::errorMessage([&] { orr->load(corrupt); })
                .find("invalid code 0b10"),
            std::string::npos);
  EXPECT_TRUE(sameBytes(before, resumed[0]->packed())) << "load changed it";
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Configs, PackedTernaryOptim,
    ::testing::Values(Case{true, StateType::F32}, Case{true, StateType::BF16},
                      Case{false, StateType::F32},
                      Case{false, StateType::BF16}),
    [](const ::testing::TestParamInfo<Case> &i) {
      return std::string(i.param.adam ? "AdamW" : "SGD") +
             (i.param.state == StateType::BF16 ? "BF16States" : "F32States");
    });

} // namespace
