//===- KernelAbiCheck.h - lowered kernels against the ABI -------*- C++ -*-===//
//
// Internal to lib/: after dqt-lower-to-cpu, dqt-lower-to-gpu or
// dqt-emulate-gpu (the emulated GPU kernel keeps the ABI too), the step
// kernel's `dqt.arg_origins` must be exactly stepKernelArgs(config). A
// lowering that reorders arguments then fails at compile time, naming the
// argument, instead of handing the runtime a kernel it packs wrongly.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_LIB_KERNELABICHECK_H
#define DQT_LIB_KERNELABICHECK_H

#include "dqt/Compiler/StepConfig.h"

#include "mlir/Pass/PassInstrumentation.h"

#include <string>

namespace dqt {

/// Runs the check after each kernel lowering pass; `error()` holds the
/// first mismatch, empty if none.
class KernelAbiCheck : public mlir::PassInstrumentation {
public:
  explicit KernelAbiCheck(const StepConfig &config) : config(config) {}
  void runAfterPass(mlir::Pass *pass, mlir::Operation *op) override;
  const std::string &error() const { return firstError; }

private:
  StepConfig config;
  std::string firstError;
};

} // namespace dqt

#endif // DQT_LIB_KERNELABICHECK_H
