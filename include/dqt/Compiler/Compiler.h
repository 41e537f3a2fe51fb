//===- Compiler.h - step configuration -> CPU code or PTX -------*- C++ -*-===//
//
// The compiler library used by the tools and the runtime. It builds the same
// IR a trainer would emit for one parameter's step, runs the dqt-compile-cpu
// or dqt-compile-gpu pipeline (the builders dqt-opt registers) and JITs the
// CPU result with the MLIR ExecutionEngine at -O3 for the host CPU.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_COMPILER_COMPILER_H
#define DQT_COMPILER_COMPILER_H

#include "dqt/Compiler/StepConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <string>

namespace llvm::orc {
class LLJIT;
} // namespace llvm::orc

namespace mlir {
class ExecutionEngine;
class MLIRContext;
class OpPassManager;
} // namespace mlir

namespace dqt {

/// Name of the kernel of the weight stream alone (buildUniformModule).
constexpr const char *kUniformKernelName = "dqt_uniform";

/// A context with everything dqt registers (dialects, translations).
std::unique_ptr<mlir::MLIRContext> createContext();

/// The tensor-level IR of one step (func @dqt_step), before any pass.
mlir::OwningOpRef<mlir::ModuleOp> buildStepModule(mlir::MLIRContext &ctx,
                                                  const StepConfig &config);

/// How jitCpuPipeline lowers a module to the LLVM dialect: a named pipeline
/// and the host functions the generated code may call (the GPU emulator's
/// runtime), besides those of the process.
struct CpuJitPipeline {
  llvm::StringRef name;
  llvm::function_ref<void(mlir::OpPassManager &)> build;
  llvm::ArrayRef<std::pair<llvm::StringRef, void *>> symbols = {};
};

/// A JIT-compiled module; functions are called through MLIR's packed
/// interface (one `void **` holding a pointer to each argument).
class JitModule {
public:
  using PackedFn = void (*)(void **);
  ~JitModule();
  /// The packed entry point of `name`, or an error.
  llvm::Expected<PackedFn> lookup(llvm::StringRef name) const;

  /// The object code (ELF) behind this module, if it was kept.
  const std::string &object() const { return objectCode; }

private:
  friend llvm::Expected<std::unique_ptr<JitModule>>
  jitCpuPipeline(mlir::ModuleOp module, const CpuJitPipeline &pipeline,
                 const StepConfig *abi, bool keepObject);
  friend llvm::Expected<std::unique_ptr<JitModule>>
  loadCpuObject(llvm::StringRef object);
  // Either the ExecutionEngine that compiled it or, for object code loaded
  // from the disk cache, a bare ORC LLJIT.
  std::unique_ptr<mlir::ExecutionEngine> engine;
  std::unique_ptr<llvm::orc::LLJIT> loaded;
  std::string objectCode;
};

/// Runs dqt-compile-cpu on `module` (any module: fused steps or plain code
/// with dqt.philox) and JITs it at -O3 for the host CPU. With `keepObject`,
/// the object code is kept (JitModule::object) for a disk cache.
llvm::Expected<std::unique_ptr<JitModule>>
jitCpuModule(mlir::ModuleOp module, bool keepObject = false);

/// Runs `pipeline` on `module` and JITs the result as jitCpuModule does.
/// With `abi`, the step kernel must follow that configuration's kernel ABI
/// after each lowering pass (checkKernelAbi).
llvm::Expected<std::unique_ptr<JitModule>>
jitCpuPipeline(mlir::ModuleOp module, const CpuJitPipeline &pipeline,
               const StepConfig *abi = nullptr, bool keepObject = false);

/// Loads object code kept by jitCpuModule (same compiler, same host CPU).
llvm::Expected<std::unique_ptr<JitModule>>
loadCpuObject(llvm::StringRef object);

/// The host CPU name and features: object code is only valid for them.
std::string hostCpuKey();

/// A compiled CPU step kernel (see StepConfig.h for its argument layout).
struct CpuStepKernel {
  std::unique_ptr<JitModule> module;
  JitModule::PackedFn fn = nullptr;
  /// Seconds spent building, lowering and JIT-compiling.
  double compileSeconds = 0;
};

/// The IR of the weight stream alone: func @dqt_uniform(%like:
/// tensor<?xf32>, %seed, %step, %tensor_id: i64) returning the uniforms of
/// %like's elements (dqt.uniform). Its CPU kernel takes `like` (only its
/// length is read), seed, step, tensor_id, the result buffer, begin, end and
/// an (empty) reductions buffer.
mlir::OwningOpRef<mlir::ModuleOp> buildUniformModule(mlir::MLIRContext &ctx);

/// Builds, lowers and JIT-compiles the CPU kernel of the weight stream.
llvm::Expected<CpuStepKernel> compileCpuUniform(bool keepObject = false);

/// The weight stream's kernel from object code kept by compileCpuUniform.
llvm::Expected<CpuStepKernel> loadCpuUniform(llvm::StringRef object);

/// Builds, lowers and JIT-compiles the CPU step kernel of `config`.
llvm::Expected<CpuStepKernel> compileCpuStep(const StepConfig &config,
                                             bool keepObject = false);

/// The step kernel from object code kept by compileCpuStep.
llvm::Expected<CpuStepKernel> loadCpuStep(llvm::StringRef object);

/// Object code (ELF, position-independent) of a CPU kernel compiled ahead of
/// time for the x86-64 level `cpu` ("x86-64-v3", "x86-64-v4"): `config`'s
/// step (checked against its kernel ABI), or the weight stream when `config`
/// is null. The kernel is named `symbol` and its packed entry point
/// `_mlir_<symbol>`, so that many kernels link into one library.
llvm::Expected<std::string> compileCpuObject(const StepConfig *config,
                                             llvm::StringRef cpu,
                                             llvm::StringRef symbol);

/// Runs dqt-compile-gpu on the step of `config` and returns the PTX text of
/// its single kernel entry `dqt_step` for `chip` (sm_80, sm_90), its first
/// line the comment `// dqt-kernel: <config key>`.
llvm::Expected<std::string> compileGpuStep(const StepConfig &config,
                                           llvm::StringRef chip);

/// Checks the step kernel in `root` (after dqt-lower-to-cpu or
/// dqt-lower-to-gpu) against the kernel ABI of `config`
/// (dqt/Compiler/KernelAbi.h): its `dqt.arg_origins` must list exactly the
/// ABI's arguments, in order. The error names the first that differs.
/// compileCpuStep and compileGpuStep run it on every kernel they make.
llvm::Error checkKernelAbi(mlir::Operation *root, const StepConfig &config);

/// The compiler version folded into cache keys: changes whenever generated
/// code may change.
llvm::StringRef compilerVersion();

} // namespace dqt

#endif // DQT_COMPILER_COMPILER_H
