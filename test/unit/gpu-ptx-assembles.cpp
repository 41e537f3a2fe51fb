//===- gpu-ptx-assembles.cpp - every configuration compiles to PTX --------===//
//
// dqt-compile-gpu on each step configuration gives one kernel entry with
// IEEE sqrt/div and no approximate or fused f32 math; ptxas (from the CUDA
// toolkit, no GPU needed) assembles it for sm_80 and sm_90 without spills.
// Launching needs a device: that is the runtime's test, skipped here.
//
//===----------------------------------------------------------------------===//

#include "dqt/Compiler/Compiler.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <regex>

using namespace dqt;

namespace {

int count(const std::string &s, const std::string &needle) {
  int n = 0;
  for (size_t p = s.find(needle); p != std::string::npos;
       p = s.find(needle, p + 1))
    ++n;
  return n;
}

std::string paramName(
    const ::testing::TestParamInfo<std::tuple<Optimizer, int, std::string>>
        &info) {
  Optimizer opt = std::get<0>(info.param);
  int bits = std::get<1>(info.param);
  return std::string(opt == Optimizer::AdamW ? "AdamW" : "SGD") +
         (bits ? "Bits" + std::to_string(bits) : std::string("Ternary")) + "_" +
         std::get<2>(info.param);
}

class GpuPtx
    : public ::testing::TestWithParam<std::tuple<Optimizer, int, std::string>> {
protected:
  StepConfig config(StateType state) const {
    auto [opt, bits, chip] = GetParam();
    StepConfig c;
    c.optimizer = opt;
    c.ternary = bits == 0;
    c.bits = bits ? bits : 8;
    c.stateType = state;
    return c;
  }
  void check(const StepConfig &c, const std::string &chip) {
    checkPtx(c, chip);
  }

public:
  static void checkPtx(const StepConfig &c, const std::string &chip);
};

/// The same configurations with bf16 states.
class GpuPtxBF16States : public GpuPtx {};
/// The same configurations with one delta per output row.
class GpuPtxPerRow : public GpuPtx {};

TEST_P(GpuPtxPerRow, OneKernelIEEEMathAndAssemblesWithoutSpills) {
  StepConfig c = config(StateType::F32);
  c.scale = ScaleMode::Row;
  check(c, std::get<2>(GetParam()));
}

/// Float mode (non-quantized parameters): no grid, no rounding.
TEST(GpuPtxFloatMode, OneKernelIEEEMathAndAssemblesWithoutSpills) {
  for (Optimizer opt : {Optimizer::AdamW, Optimizer::SGD}) {
    StepConfig c;
    c.optimizer = opt;
    c.floatWeights = true;
    SCOPED_TRACE(c.key());
    GpuPtx::checkPtx(c, "sm_90");
  }
}

TEST_P(GpuPtx, OneKernelIEEEMathAndAssemblesWithoutSpills) {
  check(config(StateType::F32), std::get<2>(GetParam()));
}

TEST_P(GpuPtxBF16States, OneKernelIEEEMathAndAssemblesWithoutSpills) {
  check(config(StateType::BF16), std::get<2>(GetParam()));
}

void GpuPtx::checkPtx(const StepConfig &c, const std::string &chip) {
  Optimizer opt = c.optimizer;
  auto ptx = compileGpuStep(c, chip);
  ASSERT_TRUE(bool(ptx)) << llvm::toString(ptx.takeError());
  EXPECT_EQ(count(*ptx, ".entry"), 1);
  EXPECT_EQ(count(*ptx, ".entry dqt_step("), 1);
  EXPECT_NE(ptx->find(".target " + chip), std::string::npos);
  EXPECT_EQ(count(*ptx, "sqrt.approx"), 0);
  EXPECT_EQ(count(*ptx, "div.approx"), 0);
  EXPECT_EQ(count(*ptx, "div.full"), 0);
  EXPECT_EQ(count(*ptx, "fma.rn.f32"), 0);
  EXPECT_EQ(count(*ptx, ".ftz"), 0);
  EXPECT_EQ(count(*ptx, "rcp.approx"), 0);
  if (opt == Optimizer::AdamW) {
    EXPECT_GT(count(*ptx, "sqrt.rn.f32"), 0);
    EXPECT_GT(count(*ptx, "div.rn.f32"), 0); // m / (sqrt(v) + eps)
  }
  // 1/delta' of the rounding: an IEEE division or reciprocal (rcp.rn).
  if (!c.floatWeights)
    EXPECT_GT(count(*ptx, "rcp.rn.f32") + count(*ptx, "div.rn.f32"), 0);
  // Per row: each row's max(q') by a 32-bit atomic max.
  EXPECT_EQ(count(*ptx, "atom.global.max.s32") > 0, c.scale == ScaleMode::Row);
  EXPECT_GT(count(*ptx, "ld.global.v4"), 0) << "no 128-bit loads";
  // A thread's group of 8 elements: 8 bf16 states are one 128-bit access
  // (st.global.v4.b32), 8 f32 two.
  if (c.stateType == StateType::BF16)
    EXPECT_GT(count(*ptx, "st.global.v4.b32"), 0) << "no 128-bit bf16 stores";

  auto ptxas = llvm::sys::findProgramByName("ptxas", {"/usr/local/cuda/bin"});
  if (!ptxas)
    GTEST_SKIP() << "ptxas not found (CUDA toolkit absent): PTX generated "
                    "and checked, not assembled";
  llvm::SmallString<128> in, out, log;
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("dqt", "ptx", in));
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("dqt", "cubin", out));
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("dqt", "log", log));
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(in, ec);
    ASSERT_FALSE(ec);
    os << *ptx;
  }
  std::string arch = "-arch=" + chip;
  llvm::StringRef args[] = {*ptxas, arch, "-v", in, "-o", out};
  std::optional<llvm::StringRef> redirects[] = {std::nullopt, log.str(),
                                                log.str()};
  int rc = llvm::sys::ExecuteAndWait(*ptxas, args, std::nullopt, redirects);
  auto text = llvm::MemoryBuffer::getFile(log);
  ASSERT_TRUE(bool(text));
  std::string report = (*text)->getBuffer().str();
  llvm::sys::fs::remove(in);
  llvm::sys::fs::remove(out);
  llvm::sys::fs::remove(log);
  ASSERT_EQ(rc, 0) << report;
  EXPECT_NE(report.find("0 bytes spill stores, 0 bytes spill loads"),
            std::string::npos)
      << report;
  std::smatch m;
  if (std::regex_search(report, m, std::regex("Used ([0-9]+) registers")))
    RecordProperty("registers", m[1].str());
  std::cout << "[ptxas " << chip << " " << c.key() << "] "
            << (std::regex_search(report, m, std::regex("Used [^\\n]*"))
                    ? m[0].str()
                    : report)
            << "\n";
}

INSTANTIATE_TEST_SUITE_P(
    Configs, GpuPtx,
    ::testing::Combine(::testing::Values(Optimizer::AdamW, Optimizer::SGD),
                       ::testing::Values(0, 2, 3, 4, 8),
                       ::testing::Values(std::string("sm_80"),
                                         std::string("sm_90"))),
    paramName);

INSTANTIATE_TEST_SUITE_P(
    Configs, GpuPtxPerRow,
    ::testing::Combine(::testing::Values(Optimizer::AdamW, Optimizer::SGD),
                       ::testing::Values(0, 4, 8),
                       ::testing::Values(std::string("sm_90"))),
    paramName);

INSTANTIATE_TEST_SUITE_P(
    Configs, GpuPtxBF16States,
    ::testing::Combine(::testing::Values(Optimizer::AdamW, Optimizer::SGD),
                       ::testing::Values(0, 4, 8),
                       ::testing::Values(std::string("sm_80"),
                                         std::string("sm_90"))),
    paramName);

} // namespace
