//===- CpuJit.cpp - dqt-compile-cpu + MLIR ExecutionEngine ----------------===//
//
// dqt-compile-cpu, then the MLIR ExecutionEngine with a clang-like -O3 LLVM
// pipeline for the host CPU; object code kept for the disk cache and reloaded
// with ORC.
//
//===----------------------------------------------------------------------===//

#include "dqt/Compiler/Compiler.h"

#include "CpuCodegen.h"
#include "RunPipeline.h"
#include "dqt/Compiler/InitAll.h"
#include "dqt/Passes/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "llvm/ExecutionEngine/Orc/ExecutionUtils.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"

#include <chrono>
#include <mutex>

using namespace mlir;

namespace dqt {

std::unique_ptr<MLIRContext> createContext() {
  DialectRegistry registry;
  mlir::dqt::registerAllDialects(registry);
  auto ctx = std::make_unique<MLIRContext>(registry);
  // Step modules are small; worker threads would cost more than they save.
  ctx->disableMultithreading();
  ctx->loadAllAvailableDialects();
  return ctx;
}

llvm::StringRef compilerVersion() {
  // Bump when the generated code may change (passes, numerics, layout).
  return "dqt-compiler-6;numerics-2;mlir-" MLIR_VERSION_STRING_FOR_DQT;
}

JitModule::~JitModule() = default;

llvm::Expected<JitModule::PackedFn>
JitModule::lookup(llvm::StringRef name) const {
  if (loaded) {
    // ExecutionEngine's packed wrapper of @name is `_mlir_<name>`.
    auto addr = loaded->lookup(("_mlir_" + name).str());
    if (!addr)
      return addr.takeError();
    return addr->toPtr<PackedFn>();
  }
  auto fn = engine->lookupPacked(name);
  if (!fn)
    return fn.takeError();
  return *fn;
}

std::string hostCpuKey() {
  std::string key = llvm::sys::getHostCPUName().str();
  llvm::StringMap<bool> features = llvm::sys::getHostCPUFeatures();
  std::vector<std::string> on;
  for (auto &f : features)
    if (f.second)
      on.push_back(f.first().str());
  std::sort(on.begin(), on.end());
  for (auto &f : on)
    key += "+" + f;
  return key;
}

/// The -O3 pipeline as clang runs it. MLIR's makeOptimizingTransformer uses
/// default PipelineTuningOptions, in which the loop and SLP vectorizers only
/// act on loops that force them: the step kernels need both.
static llvm::Error optimizeO3(llvm::Module &m, llvm::TargetMachine *machine) {
  llvm::PipelineTuningOptions tuning;
  tuning.LoopVectorization = true;
  tuning.SLPVectorization = true;
  tuning.LoopInterleaving = true;
  tuning.LoopUnrolling = true;
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(machine, tuning);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager mpm =
      pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3);
  mpm.run(m, mam);
  return llvm::Error::success();
}

void initNativeTarget() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
}

llvm::Expected<std::unique_ptr<ExecutionEngine>>
createEngine(ModuleOp module, std::unique_ptr<llvm::TargetMachine> tm,
             std::string *object,
             llvm::ArrayRef<std::pair<llvm::StringRef, void *>> symbols) {
  ExecutionEngineOptions options;
  options.transformer = [machine = tm.get()](llvm::Module *m) {
    return optimizeO3(*m, machine);
  };
  options.jitCodeGenOptLevel = llvm::CodeGenOptLevel::Aggressive;
  options.enableObjectDump = object != nullptr;
  auto engine = ExecutionEngine::create(module, options, std::move(tm));
  if (!engine)
    return engine.takeError();
  if (!symbols.empty())
    (*engine)->registerSymbols([&](llvm::orc::MangleAndInterner interner) {
      llvm::orc::SymbolMap map;
      for (auto [name, address] : symbols)
        map[interner(name)] = {llvm::orc::ExecutorAddr::fromPtr(address),
                               llvm::JITSymbolFlags::Exported};
      return map;
    });
  if (!object)
    return engine;
  // The object cache is filled when code is materialized; ORC compiles the
  // whole module at the first lookup of any symbol in it.
  for (Operation &op : module.getBody()->getOperations())
    if (auto fn = dyn_cast<LLVM::LLVMFuncOp>(op); fn && !fn.isExternal()) {
      if (auto sym = (*engine)->lookup(fn.getName()); !sym)
        return sym.takeError();
      break;
    }
  // ExecutionEngine can only dump its object cache to a file.
  llvm::SmallString<128> path;
  if (auto ec = llvm::sys::fs::createTemporaryFile("dqt-kernel", "o", path))
    return llvm::errorCodeToError(ec);
  (*engine)->dumpToObjectFile(path);
  auto buffer = llvm::MemoryBuffer::getFile(path);
  llvm::sys::fs::remove(path);
  if (!buffer)
    return llvm::errorCodeToError(buffer.getError());
  *object = (*buffer)->getBuffer().str();
  return engine;
}

llvm::Expected<std::unique_ptr<JitModule>>
jitCpuPipeline(ModuleOp module, const CpuJitPipeline &pipeline,
               const StepConfig *abi, bool keepObject) {
  initNativeTarget();
  if (llvm::Error err = runPipeline(module, pipeline.name, pipeline.build, abi))
    return std::move(err);

  // -O3 for the host CPU (its vector width), through the same target
  // machine that generates the code.
  auto tmBuilder = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!tmBuilder)
    return tmBuilder.takeError();
  tmBuilder->setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  auto tm = tmBuilder->createTargetMachine();
  if (!tm)
    return tm.takeError();
  auto jit = std::unique_ptr<JitModule>(new JitModule());
  auto engine =
      createEngine(module, std::move(*tm),
                   keepObject ? &jit->objectCode : nullptr, pipeline.symbols);
  if (!engine)
    return engine.takeError();
  jit->engine = std::move(*engine);
  return jit;
}

/// dqt-compile-cpu and the JIT, checking the step kernel against `abi`'s
/// kernel ABI when given.
static llvm::Expected<std::unique_ptr<JitModule>>
jitCpu(ModuleOp module, bool keepObject, const StepConfig *abi) {
  return jitCpuPipeline(module,
                        {"dqt-compile-cpu", mlir::dqt::buildCompileCPUPipeline},
                        abi, keepObject);
}

llvm::Expected<std::unique_ptr<JitModule>> jitCpuModule(ModuleOp module,
                                                        bool keepObject) {
  return jitCpu(module, keepObject, /*abi=*/nullptr);
}

llvm::Expected<std::unique_ptr<JitModule>>
loadCpuObject(llvm::StringRef object) {
  initNativeTarget();
  auto lljit = llvm::orc::LLJITBuilder().create();
  if (!lljit)
    return lljit.takeError();
  // The kernels may call libm/libc (memcpy, ...): resolve from the process.
  auto generator =
      llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
          (*lljit)->getDataLayout().getGlobalPrefix());
  if (!generator)
    return generator.takeError();
  (*lljit)->getMainJITDylib().addGenerator(std::move(*generator));
  if (auto err = (*lljit)->addObjectFile(
          llvm::MemoryBuffer::getMemBufferCopy(object, "dqt-kernel.o")))
    return std::move(err);
  auto jit = std::unique_ptr<JitModule>(new JitModule());
  jit->loaded = std::move(*lljit);
  jit->objectCode = object.str();
  return jit;
}

llvm::Expected<CpuStepKernel>
timedKernel(llvm::Expected<std::unique_ptr<JitModule>> jit,
            std::chrono::steady_clock::time_point start, llvm::StringRef name) {
  if (!jit)
    return jit.takeError();
  auto fn = (*jit)->lookup(name);
  if (!fn)
    return fn.takeError();
  CpuStepKernel kernel;
  kernel.module = std::move(*jit);
  kernel.fn = *fn;
  kernel.compileSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return kernel;
}

llvm::Expected<CpuStepKernel> loadCpuStep(llvm::StringRef object) {
  auto start = std::chrono::steady_clock::now();
  return timedKernel(loadCpuObject(object), start, kStepKernelName);
}

llvm::Expected<CpuStepKernel> compileCpuUniform(bool keepObject) {
  auto start = std::chrono::steady_clock::now();
  std::unique_ptr<MLIRContext> ctx = createContext();
  OwningOpRef<ModuleOp> module = buildUniformModule(*ctx);
  return timedKernel(jitCpu(*module, keepObject, /*abi=*/nullptr), start,
                    kUniformKernelName);
}

llvm::Expected<CpuStepKernel> loadCpuUniform(llvm::StringRef object) {
  auto start = std::chrono::steady_clock::now();
  return timedKernel(loadCpuObject(object), start, kUniformKernelName);
}

llvm::Expected<CpuStepKernel> compileCpuStep(const StepConfig &config,
                                             bool keepObject) {
  auto start = std::chrono::steady_clock::now();
  std::unique_ptr<MLIRContext> ctx = createContext();
  OwningOpRef<ModuleOp> module = buildStepModule(*ctx, config);
  return timedKernel(jitCpu(*module, keepObject, &config), start,
                     kStepKernelName);
}

} // namespace dqt
