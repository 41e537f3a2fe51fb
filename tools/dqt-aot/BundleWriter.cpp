//===- BundleWriter.cpp - a kernel bundle's files -------------------------===//
//
// The manifest is emitted as an LLVM module (constants only) and compiled by
// the same LLVM that compiled the kernels; the static library is written with
// LLVM's archive writer; only the shared library needs an outside tool, the
// system linker (through `cc`), which LLVM does not ship as a library here.
//
//===----------------------------------------------------------------------===//

#include "BundleWriter.h"

#include "dqt/Compiler/KernelAbi.h"
#include "dqt/Runtime/BundleAbi.h"

#include "llvm/IR/Constants.h"
#include "llvm/IR/DerivedTypes.h"
#include "llvm/IR/GlobalVariable.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Object/ArchiveWriter.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"

using namespace llvm;

namespace dqt::aot {

namespace {

Error fail(const Twine &msg) {
  return createStringError(inconvertibleErrorCode(), msg);
}

/// The manifest as an LLVM module: the dqt_bundle object `symbol` and the
/// tables and images it points to, all with 8-byte fields (BundleAbi.h).
std::unique_ptr<Module> manifestModule(LLVMContext &ctx, const Bundle &b,
                                       StringRef symbol) {
  auto m = std::make_unique<Module>("dqt-bundle-manifest", ctx);
  Type *ptr = PointerType::getUnqual(ctx);
  Type *i64 = Type::getInt64Ty(ctx);
  auto str = [&](StringRef s) -> Constant * {
    Constant *data = ConstantDataArray::getString(ctx, s);
    auto *g = new GlobalVariable(*m, data->getType(), true,
                                 GlobalValue::PrivateLinkage, data, ".str");
    g->setUnnamedAddr(GlobalValue::UnnamedAddr::Global);
    return g;
  };
  auto table = [&](StructType *type, ArrayRef<Constant *> rows,
                   StringRef name) -> Constant * {
    auto *arrayType = ArrayType::get(type, rows.size());
    return new GlobalVariable(*m, arrayType, true, GlobalValue::PrivateLinkage,
                              ConstantArray::get(arrayType, rows), name);
  };

  auto *cpuType = StructType::create(ctx, {ptr, ptr, ptr}, "cpu_kernel");
  std::vector<Constant *> cpuRows;
  for (const CpuKernel &k : b.cpu) {
    Function *fn =
        Function::Create(FunctionType::get(Type::getVoidTy(ctx), {ptr}, false),
                         GlobalValue::ExternalLinkage, "_mlir_" + k.symbol, *m);
    cpuRows.push_back(
        ConstantStruct::get(cpuType, {str(k.key), str(k.level), fn}));
  }
  auto *gpuType =
      StructType::create(ctx, {ptr, ptr, ptr, ptr, i64}, "gpu_kernel");
  std::vector<Constant *> gpuRows;
  for (const GpuKernel &k : b.gpu) {
    // PTX keeps its NUL so the driver can read it as a string.
    Constant *data = ConstantDataArray::getString(
        ctx, k.data, /*AddNull=*/k.format == "ptx");
    auto *image = new GlobalVariable(
        *m, data->getType(), true, GlobalValue::PrivateLinkage, data, ".image");
    image->setAlignment(Align(16));
    gpuRows.push_back(ConstantStruct::get(
        gpuType, {str(k.key), str(k.chip), str(k.format), image,
                  ConstantInt::get(i64, k.data.size())}));
  }
  auto *bundleType = StructType::create(
      ctx, {i64, i64, ptr, ptr, ptr, i64, ptr, i64, ptr}, "dqt_bundle");
  Constant *fields[] = {ConstantInt::get(i64, DQT_BUNDLE_FORMAT),
                        ConstantInt::get(i64, kKernelAbiVersion),
                        str(kNumericsVersion),
                        str(b.compiler),
                        str(b.name),
                        ConstantInt::get(i64, cpuRows.size()),
                        table(cpuType, cpuRows, "dqt_bundle_cpu"),
                        ConstantInt::get(i64, gpuRows.size()),
                        table(gpuType, gpuRows, "dqt_bundle_gpu")};
  new GlobalVariable(*m, bundleType, true, GlobalValue::ExternalLinkage,
                     ConstantStruct::get(bundleType, fields), symbol);
  return m;
}

/// Object code of `m` for the host's triple (PIC, any x86-64 CPU).
Expected<std::string> compileManifest(Module &m) {
  Triple triple(sys::getProcessTriple());
  std::string error;
  const Target *target = TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return fail(error);
  std::unique_ptr<TargetMachine> tm(target->createTargetMachine(
      triple, "x86-64", "", TargetOptions(), Reloc::PIC_));
  m.setTargetTriple(triple);
  m.setDataLayout(tm->createDataLayout());
  SmallString<0> object;
  raw_svector_ostream os(object);
  legacy::PassManager pm;
  if (tm->addPassesToEmitFile(pm, os, nullptr, CodeGenFileType::ObjectFile))
    return fail("the target cannot emit object code");
  pm.run(m);
  return std::string(object.str());
}

Error writeFile(const std::string &path, StringRef data) {
  std::error_code ec;
  raw_fd_ostream out(path, ec, sys::fs::OF_None);
  if (ec)
    return fail("cannot write " + path + ": " + ec.message());
  out << data;
  return Error::success();
}

json::Value manifestJson(const Bundle &b) {
  json::Array cpu, gpu;
  for (const CpuKernel &k : b.cpu)
    cpu.push_back(json::Object{
        {"key", k.key}, {"level", k.level}, {"symbol", "_mlir_" + k.symbol}});
  for (const GpuKernel &k : b.gpu)
    gpu.push_back(json::Object{{"key", k.key},
                               {"chip", k.chip},
                               {"format", k.format},
                               {"entry", "dqt_step"},
                               {"bytes", int64_t(k.data.size())}});
  return json::Object{{"name", b.name},
                      {"format", DQT_BUNDLE_FORMAT},
                      {"kernel_abi", kKernelAbiVersion},
                      {"numerics", kNumericsVersion},
                      {"compiler", b.compiler},
                      {"symbol", "dqt_bundle_" + b.name},
                      {"cpu", std::move(cpu)},
                      {"gpu", std::move(gpu)}};
}

} // namespace

Error writeBundle(const Bundle &b, const std::string &dir) {
  if (auto ec = sys::fs::create_directories(dir))
    return fail("cannot create " + dir + ": " + ec.message());
  std::string symbol = "dqt_bundle_" + b.name;
  LLVMContext ctx;
  std::unique_ptr<Module> manifest = manifestModule(ctx, b, symbol);
  Expected<std::string> manifestObject = compileManifest(*manifest);
  if (!manifestObject)
    return manifestObject.takeError();

  // The objects, in a scratch directory for the linker.
  SmallString<128> scratch;
  if (auto ec = sys::fs::createUniqueDirectory("dqt-aot", scratch))
    return fail("cannot create a scratch directory: " + ec.message());
  std::vector<std::string> objects;
  auto addObject = [&](const std::string &name,
                       const std::string &code) -> Error {
    objects.push_back((scratch + "/" + name).str());
    return writeFile(objects.back(), code);
  };
  for (const CpuKernel &k : b.cpu)
    if (Error err = addObject(k.symbol + ".o", k.object))
      return err;
  if (Error err = addObject("manifest.o", *manifestObject))
    return err;

  // The static form.
  std::vector<NewArchiveMember> members;
  for (const std::string &o : objects) {
    auto member = NewArchiveMember::getFile(o, /*Deterministic=*/true);
    if (!member)
      return member.takeError();
    members.push_back(std::move(*member));
  }
  std::string archive = dir + "/lib" + b.name + ".a";
  if (Error err =
          writeArchive(archive, members, SymtabWritingMode::NormalSymtab,
                       object::Archive::K_GNU, /*Deterministic=*/true,
                       /*Thin=*/false))
    return err;

  // The file form: linked by the system's compiler driver, exporting the
  // manifest under the fixed name the runtime looks up.
  auto cc = sys::findProgramByName("cc");
  if (!cc)
    return fail("dqt-aot needs the system C compiler driver `cc` to link "
                "lib" +
                b.name + ".so: " + cc.getError().message());
  std::string library = dir + "/lib" + b.name + ".so";
  std::string log = (scratch + "/link.log").str();
  std::vector<std::string> argv = {*cc,
                                   "-shared",
                                   "-o",
                                   library,
                                   "-Wl,--defsym=dqt_bundle=" + symbol,
                                   "-Wl,-z,noexecstack",
                                   "-Wl,-z,defs"};
  argv.insert(argv.end(), objects.begin(), objects.end());
  argv.push_back("-lm");
  std::vector<StringRef> args(argv.begin(), argv.end());
  std::optional<StringRef> redirects[] = {std::nullopt, StringRef(log),
                                          StringRef(log)};
  std::string execError;
  int rc =
      sys::ExecuteAndWait(*cc, args, std::nullopt, redirects, 0, 0, &execError);
  if (rc != 0) {
    auto text = MemoryBuffer::getFile(log);
    return fail("linking " + library + " failed (" + execError + "):\n" +
                (text ? (*text)->getBuffer().str() : std::string()));
  }
  sys::fs::remove_directories(scratch);

  std::string header = "// The kernel bundle " + b.name +
                       " (dqt-aot), static form: link\n"
                       "// lib" +
                       b.name + ".a and pass &" + symbol +
                       " to dqt::useBundle.\n"
                       "#pragma once\n#include \"dqt/Runtime/BundleAbi.h\"\n"
                       "#ifdef __cplusplus\nextern \"C\" {\n#endif\n"
                       "extern const dqt_bundle " +
                       symbol +
                       ";\n"
                       "#ifdef __cplusplus\n}\n#endif\n";
  if (Error err = writeFile(dir + "/" + b.name + ".h", header))
    return err;
  std::string json;
  raw_string_ostream os(json);
  os << formatv("{0:2}", manifestJson(b)) << "\n";
  return writeFile(dir + "/" + b.name + ".json", json);
}

} // namespace dqt::aot
