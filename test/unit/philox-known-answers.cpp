//===- philox-known-answers.cpp - generated Philox == Random123 -----------===//
//
// dqt.philox, expanded by dqt-expand-rng and JIT-compiled by the CPU
// pipeline, against the known-answer vectors of Random123 (kat_vectors,
// philox4x32 with 10 rounds), and against the test reference on random
// inputs. Then known answers of the v2 stream (docs/numerics.md): the
// uniforms u_i and the state bits of the reference, whose constants
// test/python/test_functional.py checks against its pure-Python Philox.
//
//===----------------------------------------------------------------------===//

#include "StepReference.h"

#include "dqt/Compiler/Compiler.h"
#include "dqt/Compiler/KernelArgs.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace dqt;

namespace {

constexpr const char *kPhiloxModule = R"mlir(
func.func @philox(%in: memref<?xi32>, %out: memref<?xi32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c3 = arith.constant 3 : index
  %c4 = arith.constant 4 : index
  %c5 = arith.constant 5 : index
  %x0 = memref.load %in[%c0] : memref<?xi32>
  %x1 = memref.load %in[%c1] : memref<?xi32>
  %x2 = memref.load %in[%c2] : memref<?xi32>
  %x3 = memref.load %in[%c3] : memref<?xi32>
  %k0 = memref.load %in[%c4] : memref<?xi32>
  %k1 = memref.load %in[%c5] : memref<?xi32>
  %r:4 = dqt.philox key(%k0, %k1) counter(%x0, %x1, %x2, %x3)
  memref.store %r#0, %out[%c0] : memref<?xi32>
  memref.store %r#1, %out[%c1] : memref<?xi32>
  memref.store %r#2, %out[%c2] : memref<?xi32>
  memref.store %r#3, %out[%c3] : memref<?xi32>
  return
}
)mlir";

class PhiloxKnownAnswers : public ::testing::Test {
protected:
  void SetUp() override {
    ctx = createContext();
    auto module =
        mlir::parseSourceString<mlir::ModuleOp>(kPhiloxModule, ctx.get());
    ASSERT_TRUE(module);
    auto jit = jitCpuModule(*module);
    ASSERT_TRUE(bool(jit)) << llvm::toString(jit.takeError());
    this->jit = std::move(*jit);
    auto f = this->jit->lookup("philox");
    ASSERT_TRUE(bool(f)) << llvm::toString(f.takeError());
    fn = *f;
  }

  std::array<uint32_t, 4> run(std::array<uint32_t, 4> ctr,
                              std::array<uint32_t, 2> key) {
    uint32_t in[6] = {ctr[0], ctr[1], ctr[2], ctr[3], key[0], key[1]};
    uint32_t out[4] = {0, 0, 0, 0};
    KernelArgs args;
    args.addBuffer(in, 6);
    args.addBuffer(out, 4);
    fn(args.data());
    return {out[0], out[1], out[2], out[3]};
  }

  std::unique_ptr<mlir::MLIRContext> ctx;
  std::unique_ptr<JitModule> jit;
  JitModule::PackedFn fn = nullptr;
};

struct Kat {
  std::array<uint32_t, 4> ctr;
  std::array<uint32_t, 2> key;
  std::array<uint32_t, 4> expected;
};

// Random123 1.14, examples/kat_vectors: "philox4x32 10 ctr key expected".
const Kat kKats[] = {
    {{0x00000000, 0x00000000, 0x00000000, 0x00000000},
     {0x00000000, 0x00000000},
     {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

TEST_F(PhiloxKnownAnswers, GeneratedCodeMatchesRandom123) {
  for (const Kat &k : kKats) {
    auto got = run(k.ctr, k.key);
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(got[i], k.expected[i])
          << "word " << i << " of ctr " << std::hex << k.ctr[0];
  }
}

TEST_F(PhiloxKnownAnswers, ReferenceMatchesRandom123) {
  for (const Kat &k : kKats)
    EXPECT_EQ(ref::philox4x32(k.ctr, k.key), k.expected);
}

TEST_F(PhiloxKnownAnswers, GeneratedCodeMatchesReferenceOnRandomInputs) {
  std::mt19937 rng(2024);
  for (int t = 0; t < 2000; ++t) {
    std::array<uint32_t, 4> ctr = {uint32_t(rng()), uint32_t(rng()),
                                   uint32_t(rng()), uint32_t(rng())};
    std::array<uint32_t, 2> key = {uint32_t(rng()), uint32_t(rng())};
    ASSERT_EQ(run(ctr, key), ref::philox4x32(ctr, key)) << "trial " << t;
  }
}

// Known answers of the numerics v2 stream, from the reference. Element i
// takes block j = i div 8, word (i mod 8) div 2, its low 16 bits for even i
// and its high 16 bits for odd i (h_i); u_i = (2 h_i + 1) * 2^-17.
//
// Seed 0, step 0, tensor 0, elements 0..7: the block is Random123's
// known answer above (counter 0, key 0), words 0x6627E8D5, 0xE169C58D,
// 0xBC57AC4C, 0x9B00DBD8, so by hand
//   h_0 = 0xE8D5 = 59605  -> 2h+1 = 119211     h_1 = 0x6627 = 26151 -> 52303
//   h_2 = 0xC58D = 50573  -> 101147            h_3 = 0xE169 = 57705 -> 115411
//   h_4 = 0xAC4C = 44108  -> 88217             h_5 = 0xBC57 = 48215 -> 96431
//   h_6 = 0xDBD8 = 56280  -> 112561            h_7 = 0x9B00 = 39680 -> 79361
// (u_0 = 119211 * 2^-17 = 0.9095077514648438, ...).
//
// The state streams of the same block index: counter word 1 = 0x80000000
// (state stream 0) gives the words 0xA2B20CCF 0x51408772 0x94FCF7EF
// 0xB688835A, 0xC0000000 (state stream 1) 0x79ED1213 0xDCB7B3F1 0xD8F95DF7
// 0xBF2E2948; stateBits(i) = h_i(stream 0) | h_i(stream 1) << 16, e.g.
// element 0: 0x0CCF | 0x1213 << 16 = 0x12130CCF, element 1: 0xA2B2 |
// 0x79ED << 16 = 0x79EDA2B2.
//
// Seed 0x0123456789ABCDEF, step 7, tensor 3, elements 8..15 (block j = 1,
// counter (1, 0 | stream, 7, 3), key (0x89ABCDEF, 0x01234567)): weight
// stream words 0x17512D21 0xE3DE0126 0x323D073E 0xDF3B7D4D, so h_8 =
// 0x2D21, h_9 = 0x1751, h_10 = 0x0126, h_11 = 0xE3DE, ...
struct UniformKat {
  uint64_t seed, step, tid, first;
  uint32_t twoHPlusOne[8]; // 2 h_i + 1 for elements first..first+7
  uint32_t stateBits[8];
};

const UniformKat kUniformKats[] = {
    {0, 0, 0, 0,
     {119211, 52303, 101147, 115411, 88217, 96431, 112561, 79361},
     {0x12130ccf, 0x79eda2b2, 0xb3f18772, 0xdcb75140, 0x5df7f7ef, 0xd8f994fc,
      0x2948835a, 0xbf2eb688}},
    {0x0123456789abcdefULL, 7, 3, 8,
     {23107, 11939, 589, 116669, 3709, 25723, 64155, 114295},
     {0x7fa524c5, 0x3e1d064f, 0x30d21529, 0xbd7233a0, 0x6626b9c7, 0x008084b2,
      0x94fe9d69, 0x1599ce65}},
};

TEST(PhiloxV2KnownAnswers, UniformsOfTheReference) {
  for (const UniformKat &k : kUniformKats)
    for (int e = 0; e < 8; ++e) {
      float u = ref::uniform(k.seed, k.step, k.tid, k.first + e);
      // (2h+1) * 2^-17 is exact in f32 (17 significant bits at most).
      EXPECT_EQ(u, std::ldexp(float(k.twoHPlusOne[e]), -17))
          << "element " << k.first + e << " of seed " << k.seed;
      EXPECT_EQ(u, (float(k.twoHPlusOne[e] / 2) + 0.5f) / 65536.0f)
          << "the midpoint (h + 0.5) * 2^-16, element " << k.first + e;
    }
}

TEST(PhiloxV2KnownAnswers, StateBitsOfTheReference) {
  for (const UniformKat &k : kUniformKats)
    for (int e = 0; e < 8; ++e)
      EXPECT_EQ(ref::stateBits(k.seed, k.step, k.tid, k.first + e),
                k.stateBits[e])
          << "element " << k.first + e << " of seed " << k.seed;
}

TEST(PhiloxV2KnownAnswers, HalvesComeFromTheRandom123Block) {
  // The first case's h_i straight from Random123's words: the low half of
  // word i div 2 for even i, the high half for odd i.
  const uint32_t words[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
  for (uint64_t i = 0; i < 8; ++i) {
    uint32_t h = i % 2 ? words[i / 2] >> 16 : words[i / 2] & 0xffffu;
    EXPECT_EQ(ref::randomHalf(0, 0, 0, i, ref::kWeightStream), h) << i;
    EXPECT_EQ(kUniformKats[0].twoHPlusOne[i], 2 * h + 1) << i;
  }
  // Elements 8..15 start the next block (j = 1), not the next word.
  auto next = ref::philox4x32({1, 0, 0, 0}, {0, 0});
  EXPECT_EQ(ref::randomHalf(0, 0, 0, 8, ref::kWeightStream), next[0] & 0xffffu);
  EXPECT_EQ(ref::randomHalf(0, 0, 0, 15, ref::kWeightStream), next[3] >> 16);
}

TEST(PhiloxV2KnownAnswers, StreamsAreDisjointCounters) {
  // The largest element index, 2^63 - 1: j = 2^60 - 1, j hi32 = 2^28 - 1,
  // so bits 30 and 31 of counter word 1 are free for the state streams.
  uint64_t last = (uint64_t(1) << 63) - 1, j = last / 8;
  EXPECT_EQ(uint32_t(j >> 32) & ref::kStateStream1, 0u);
  EXPECT_NE(ref::kStateStream0, ref::kStateStream1);
  EXPECT_EQ(ref::kStateStream0 & ~ref::kStateStream1, 0u);
  // Each stream is Philox at its own counter word 1.
  for (uint32_t stream :
       {ref::kWeightStream, ref::kStateStream0, ref::kStateStream1}) {
    auto w = ref::philox4x32({uint32_t(j), uint32_t(j >> 32) | stream, 9, 4},
                             {5, 6});
    EXPECT_EQ(ref::randomHalf(0x0000000600000005ULL, 9, 4, last, stream),
              w[3] >> 16);
  }
}

} // namespace
