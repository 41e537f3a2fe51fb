//===- JitKernels.cpp - the runtime's door to the compiler ----------------===//

#include "JitKernels.h"

#include "dqt/Compiler/Compiler.h"

#include <c10/util/Exception.h>

namespace dqt::jit {

std::string hostKey() { return compilerVersion().str() + "|" + hostCpuKey(); }

/// The executable of a compiled or loaded kernel, owning its module.
static Executable executable(const std::string &key, CpuStepKernel kernel,
                             const char *origin) {
  Executable exe;
  exe.target = Target::Cpu;
  exe.key = key;
  exe.fn = kernel.fn;
  exe.origin = origin;
  exe.seconds = kernel.compileSeconds;
  exe.owner = std::shared_ptr<const JitModule>(std::move(kernel.module));
  return exe;
}

Executable compileCpu(const std::string &key, const StepConfig *config,
                      std::string *object) {
  bool keep = object != nullptr;
  auto compiled =
      config ? compileCpuStep(*config, keep) : compileCpuUniform(keep);
  TORCH_CHECK(bool(compiled), "dqt: compiling the ", key,
              " kernel failed: ", llvm::toString(compiled.takeError()));
  if (object)
    *object = compiled->module->object();
  return executable(key, std::move(*compiled), "jit");
}

std::optional<Executable> loadCpu(const std::string &key,
                                  const StepConfig *config,
                                  const std::string &object) {
  auto loaded = config ? loadCpuStep(object) : loadCpuUniform(object);
  if (!loaded) {
    llvm::consumeError(loaded.takeError());
    return std::nullopt;
  }
  return executable(key, std::move(*loaded), "disk cache");
}

std::string stepModuleText(const StepConfig &config) {
  std::unique_ptr<mlir::MLIRContext> ctx = createContext();
  mlir::OwningOpRef<mlir::ModuleOp> module = buildStepModule(*ctx, config);
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os);
  return text;
}

Executable compileCuda(const StepConfig &config, const std::string &chip) {
  auto ptx = compileGpuStep(config, chip);
  TORCH_CHECK(bool(ptx), "dqt: compiling the ", config.key(), " kernel for ",
              chip, " failed: ", llvm::toString(ptx.takeError()));
  Executable exe;
  exe.target = Target::Cuda;
  exe.key = config.key();
  exe.image = std::move(*ptx);
  exe.chip = chip;
  exe.origin = "jit";
  return exe;
}

} // namespace dqt::jit
