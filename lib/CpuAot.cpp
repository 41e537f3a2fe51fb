//===- CpuAot.cpp - CPU kernels compiled ahead of time --------------------===//
//
// The JIT's pipeline and -O3 code generation (CpuCodegen.h) for a named
// x86-64 level instead of the host CPU, as position-independent object code
// that links into a kernel bundle (tools/dqt-aot).
//
//===----------------------------------------------------------------------===//

#include "dqt/Compiler/Compiler.h"

#include "CpuCodegen.h"
#include "RunPipeline.h"
#include "dqt/Passes/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

using namespace mlir;

namespace dqt {

llvm::Expected<std::string> compileCpuObject(const StepConfig *config,
                                             llvm::StringRef cpu,
                                             llvm::StringRef symbol) {
  initNativeTarget();
  std::unique_ptr<MLIRContext> ctx = createContext();
  OwningOpRef<ModuleOp> module =
      config ? buildStepModule(*ctx, *config) : buildUniformModule(*ctx);
  if (llvm::Error err = runPipeline(*module, "dqt-compile-cpu",
                                    mlir::dqt::buildCompileCPUPipeline, config))
    return std::move(err);

  // One library holds many kernels: each gets its own name (ExecutionEngine
  // names the packed wrapper after it).
  StringRef entry = config ? kStepKernelName : kUniformKernelName;
  auto fn = module->lookupSymbol<LLVM::LLVMFuncOp>(entry);
  if (!fn)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "dqt-compile-cpu left no @" + entry);
  StringAttr name = StringAttr::get(ctx.get(), symbol);
  if (failed(SymbolTable::replaceAllSymbolUses(fn, name, *module)))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "cannot rename @" + entry);
  fn.setSymName(symbol);

  // The host's triple (x86-64 Linux) at the named level, PIC for a shared
  // library.
  llvm::Triple triple(llvm::sys::getProcessTriple());
  std::string error;
  const llvm::Target *target =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), error);
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      triple, cpu, /*Features=*/"", llvm::TargetOptions(), llvm::Reloc::PIC_,
      llvm::CodeModel::Small, llvm::CodeGenOptLevel::Aggressive));
  if (!tm)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "no target machine for CPU '" + cpu + "'");
  std::string object;
  auto engine = createEngine(*module, std::move(tm), &object);
  if (!engine)
    return engine.takeError();
  return object;
}

} // namespace dqt
