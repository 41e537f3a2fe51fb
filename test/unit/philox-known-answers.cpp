//===- philox-known-answers.cpp - generated Philox == Random123 -----------===//
//
// dqt.philox, expanded by dqt-expand-rng and JIT-compiled by the CPU
// pipeline, against the known-answer vectors of Random123 (kat_vectors,
// philox4x32 with 10 rounds), and against the test reference on random
// inputs.
//
//===----------------------------------------------------------------------===//

#include "StepReference.h"

#include "dqt/Compiler/Compiler.h"
#include "dqt/Compiler/KernelArgs.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

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

} // namespace
