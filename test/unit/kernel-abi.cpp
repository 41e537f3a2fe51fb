//===- kernel-abi.cpp - kernels take the arguments the ABI declares -------===//
//
// The kernel ABI (dqt/Compiler/KernelAbi.h) is one description: the step
// function is built from it, the launchers pack from it, and each lowered
// kernel's `dqt.arg_origins` must match it. These tests lower every kind of
// configuration with both lowerings and compare, and show that a kernel whose
// arguments drift from the ABI is refused with the argument named.
//
//===----------------------------------------------------------------------===//

#include "dqt/Compiler/Compiler.h"
#include "dqt/Compiler/KernelAbi.h"
#include "dqt/Dialect/DQT.h"
#include "dqt/Passes/Passes.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

using namespace dqt;

namespace {

struct Case {
  const char *name;
  StepConfig config;
};

std::vector<Case> cases() {
  auto make = [](Optimizer opt, int bits, bool ternary, bool packed,
                 StateType state, ScaleMode scale, bool floatWeights) {
    StepConfig c;
    c.optimizer = opt;
    c.bits = bits;
    c.ternary = ternary;
    c.packed = packed;
    c.stateType = state;
    c.scale = scale;
    c.floatWeights = floatWeights;
    return c;
  };
  auto A = Optimizer::AdamW, S = Optimizer::SGD;
  auto F = StateType::F32, B = StateType::BF16;
  auto T = ScaleMode::Tensor, R = ScaleMode::Row;
  return {
      {"AdamW8", make(A, 8, false, false, F, T, false)},
      {"SGD4", make(S, 4, false, false, F, T, false)},
      {"AdamWTernaryPackedBF16", make(A, 2, true, true, B, T, false)},
      {"AdamW8Rows", make(A, 8, false, false, F, R, false)},
      {"SGDTernaryPackedRows", make(S, 2, true, true, F, R, false)},
      {"AdamWFloat", make(A, 8, false, false, F, T, true)},
      {"SGDFloat", make(S, 8, false, false, F, T, true)},
  };
}

class KernelAbi : public ::testing::TestWithParam<std::tuple<Case, bool>> {
protected:
  /// The step module of the case, fused and lowered for the CPU or the GPU.
  mlir::OwningOpRef<mlir::ModuleOp> lowered() {
    auto [c, gpu] = GetParam();
    module = buildStepModule(*ctx, c.config);
    mlir::PassManager pm(ctx.get());
    pm.addPass(mlir::dqt::createDQTFuseStep());
    pm.addPass(gpu ? mlir::dqt::createDQTLowerToGPU()
                   : mlir::dqt::createDQTLowerToCPU());
    EXPECT_TRUE(mlir::succeeded(pm.run(*module)));
    return std::move(module);
  }
  /// The step kernel of `m`.
  mlir::FunctionOpInterface kernelOf(mlir::ModuleOp m) {
    mlir::FunctionOpInterface kernel;
    m->walk([&](mlir::FunctionOpInterface f) {
      if (f.getName() == kStepKernelName)
        kernel = f;
    });
    return kernel;
  }

  std::unique_ptr<mlir::MLIRContext> ctx = createContext();
  mlir::OwningOpRef<mlir::ModuleOp> module;
};

TEST_P(KernelAbi, LoweredKernelTakesTheDeclaredArguments) {
  const StepConfig &config = std::get<0>(GetParam()).config;
  mlir::OwningOpRef<mlir::ModuleOp> m = lowered();
  mlir::FunctionOpInterface kernel = kernelOf(*m);
  ASSERT_TRUE(kernel);
  std::vector<KernelArg> abi = stepKernelArgs(config);
  auto origins = kernel->getAttrOfType<mlir::DenseI64ArrayAttr>(
      "dqt.arg_origins");
  ASSERT_TRUE(origins);
  ASSERT_EQ(origins.size(), int64_t(abi.size()));
  // The function's arguments in order, then the result buffers.
  int64_t arg = 0;
  for (auto [i, a] : llvm::enumerate(abi)) {
    SCOPED_TRACE(a.name());
    EXPECT_EQ(origins[i], a.isResult() ? -1 - a.result : arg++);
    EXPECT_EQ(mlir::isa<mlir::MemRefType>(kernel.getArgumentTypes()[i]),
              a.isBuffer());
  }
  // Then the target's own: CPU begin, end and the reductions; GPU the
  // reductions.
  EXPECT_EQ(kernel.getArgumentTypes().size(),
            abi.size() + (std::get<1>(GetParam()) ? 1 : 3));
  EXPECT_FALSE(bool(checkKernelAbi(*m, config)));
}

TEST_P(KernelAbi, ReorderedKernelIsRefusedNamingTheArgument) {
  const StepConfig &config = std::get<0>(GetParam()).config;
  mlir::OwningOpRef<mlir::ModuleOp> m = lowered();
  mlir::FunctionOpInterface kernel = kernelOf(*m);
  ASSERT_TRUE(kernel);
  // The lowering swaps the gradient and the weights.
  auto origins = kernel->getAttrOfType<mlir::DenseI64ArrayAttr>(
      "dqt.arg_origins");
  std::vector<int64_t> swapped(origins.asArrayRef());
  std::swap(swapped[0], swapped[1]);
  kernel->setAttr("dqt.arg_origins",
                  mlir::DenseI64ArrayAttr::get(ctx.get(), swapped));
  llvm::Error err = checkKernelAbi(*m, config);
  ASSERT_TRUE(bool(err));
  std::string msg = llvm::toString(std::move(err));
  EXPECT_NE(msg.find("argument #0 is argument #1 of @dqt_step, the ABI's "
                     "'weights' is argument #0 of @dqt_step"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find(config.key()), std::string::npos) << msg;
}

TEST_P(KernelAbi, KernelWithoutOriginsIsRefused) {
  const StepConfig &config = std::get<0>(GetParam()).config;
  mlir::OwningOpRef<mlir::ModuleOp> m = lowered();
  kernelOf(*m)->removeAttr("dqt.arg_origins");
  llvm::Error err = checkKernelAbi(*m, config);
  ASSERT_TRUE(bool(err));
  EXPECT_NE(llvm::toString(std::move(err)).find("no dqt.arg_origins"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Configs, KernelAbi,
    ::testing::Combine(::testing::ValuesIn(cases()), ::testing::Bool()),
    [](const auto &info) {
      return std::string(std::get<0>(info.param).name) +
             (std::get<1>(info.param) ? "Gpu" : "Cpu");
    });

/// The description itself: what the launchers pack, in order.
TEST(KernelAbiDescription, AdamWPerTensorAndSGDPerRow) {
  auto names = [](const StepConfig &c) {
    std::string s;
    for (const KernelArg &a : stepKernelArgs(c))
      s += (s.empty() ? "" : " ") + a.name();
    return s;
  };
  StepConfig adam;
  EXPECT_EQ(names(adam), "weights grad state0 state1 seed step tensor_id "
                         "delta hyper[0] hyper[1] hyper[2] hyper[3] hyper[4] "
                         "delta_next");
  StepConfig sgd;
  sgd.optimizer = Optimizer::SGD;
  sgd.scale = ScaleMode::Row;
  EXPECT_EQ(names(sgd), "weights grad state0 delta_rows delta_next_rows seed "
                        "step tensor_id row_length hyper[0] hyper[1] "
                        "hyper[2] row_max");
  StepConfig flt = adam;
  flt.floatWeights = true;
  EXPECT_EQ(names(flt), "weights grad state0 state1 hyper[0] hyper[1] "
                        "hyper[2] hyper[3] hyper[4]");
}

} // namespace
