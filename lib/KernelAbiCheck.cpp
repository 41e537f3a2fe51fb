//===- KernelAbiCheck.cpp - lowered kernels against the ABI ---------------===//
//
// A lowered step kernel's dqt.arg_origins against the kernel ABI, after the
// lowering pass, so a reordered kernel fails to compile instead of being packed
// wrongly.
//
//===----------------------------------------------------------------------===//

#include "KernelAbiCheck.h"

#include "dqt/Compiler/Compiler.h"
#include "dqt/Compiler/KernelAbi.h"
#include "dqt/Dialect/DQT.h"

#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Pass/Pass.h"

using namespace mlir;

namespace dqt {

/// What a `dqt.arg_origins` entry names, for a diagnostic.
static std::string describeOrigin(int64_t origin) {
  if (origin >= 0)
    return "argument #" + std::to_string(origin) + " of @dqt_step";
  return "the buffer of result #" + std::to_string(-1 - origin) +
         " of @dqt_step";
}

llvm::Error checkKernelAbi(Operation *root, const StepConfig &config) {
  auto fail = [&](const std::string &what) -> llvm::Error {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "the " + config.key() +
                                       " kernel breaks the kernel ABI: " +
                                       what);
  };
  FunctionOpInterface kernel;
  root->walk([&](FunctionOpInterface f) {
    if (f.getName() == kStepKernelName)
      kernel = f;
  });
  if (!kernel)
    return fail("there is no kernel @" + std::string(kStepKernelName));
  auto *dialect =
      root->getContext()->getLoadedDialect<mlir::dqt::DQTDialect>();
  DenseI64ArrayAttr origins =
      dialect->getArgOriginsAttrHelper().getAttr(kernel);
  if (!origins)
    return fail("it carries no dqt.arg_origins");
  std::vector<KernelArg> abi = stepKernelArgs(config);
  ArrayRef<int64_t> got = origins.asArrayRef();
  if (got.size() != abi.size())
    return fail("it has " + std::to_string(got.size()) +
                " arguments before the target's own, the ABI " +
                std::to_string(abi.size()));
  ArrayRef<Type> types = kernel.getArgumentTypes();
  int64_t functionArg = 0;
  for (auto [i, a] : llvm::enumerate(abi)) {
    int64_t want = a.isResult() ? -1 - a.result : functionArg++;
    if (got[i] != want)
      return fail("its argument #" + std::to_string(i) + " is " +
                  describeOrigin(got[i]) + ", the ABI's '" + a.name() +
                  "' is " + describeOrigin(want));
    if (isa<MemRefType>(types[i]) != a.isBuffer())
      return fail("its argument #" + std::to_string(i) + " ('" + a.name() +
                  "') is " + (a.isBuffer() ? "not " : "") + "a buffer");
  }
  return llvm::Error::success();
}

void KernelAbiCheck::runAfterPass(Pass *pass, Operation *op) {
  StringRef name = pass->getArgument();
  if (!firstError.empty() ||
      (name != "dqt-lower-to-cpu" && name != "dqt-lower-to-gpu" &&
       name != "dqt-emulate-gpu"))
    return;
  if (llvm::Error err = checkKernelAbi(op, config))
    firstError = name.str() + ": " + llvm::toString(std::move(err));
}

} // namespace dqt
