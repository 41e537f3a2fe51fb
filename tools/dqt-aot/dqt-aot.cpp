//===- dqt-aot.cpp - compile step kernels ahead of time into a bundle -----===//
//
// Writes a kernel bundle (docs/design.md, "Kernel bundles"): for each
// configuration, CPU object code for named x86-64 levels and PTX (and, where
// ptxas is found, cubins) for named GPU chips, with a manifest, as a static
// library and as a shared library the runtime opens. A trainer with a bundle
// needs no MLIR/LLVM at run time (DQT_WITH_COMPILER=OFF).
//
//   dqt-aot --standard --output build/bundle --name dqt_standard
//   dqt-aot --config adamw-b8-gf32-sf32 --config sgd-ternary-gf32-sf32 ...
//
//===----------------------------------------------------------------------===//

#include "BundleWriter.h"

#include "dqt/Compiler/Compiler.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/ThreadPool.h"
#include "llvm/Support/Threading.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <mutex>

using namespace llvm;

namespace {

cl::OptionCategory category("dqt-aot options");
cl::opt<bool> standard("standard",
                       cl::desc("Every configuration the runtime, dqt-train "
                                "and the Python package can ask for, and the "
                                "weight stream's kernel"),
                       cl::cat(category));
cl::list<std::string> configs("config",
                              cl::desc("A configuration key, e.g. "
                                       "adamw-b8-gf32-sf32 (repeatable)"),
                              cl::value_desc("key"), cl::cat(category));
cl::opt<bool> uniform("uniform",
                      cl::desc("Include the weight stream's kernel "
                               "(dqt.random.philox_uniform)"),
                      cl::cat(category));
cl::opt<std::string> output("output", cl::desc("Directory to write"),
                            cl::value_desc("dir"), cl::Required,
                            cl::cat(category));
cl::opt<std::string> name("name",
                          cl::desc("Bundle name ([A-Za-z0-9_]+): "
                                   "lib<name>.so, lib<name>.a"),
                          cl::init("dqt_kernels"), cl::cat(category));
cl::list<std::string> cpus("cpu", cl::desc("x86-64 levels (CPU kernels)"),
                           cl::CommaSeparated, cl::cat(category));
cl::list<std::string> chips("gpu", cl::desc("GPU chips (PTX, cubins)"),
                            cl::CommaSeparated, cl::cat(category));
cl::opt<bool> noCubin("no-cubin",
                      cl::desc("PTX only, even where ptxas is found"),
                      cl::cat(category));
cl::opt<unsigned> jobs("j", cl::desc("Parallel compilations (0: all cores)"),
                       cl::init(0), cl::cat(category));

/// Runs ptxas on `ptx` for `chip`; the cubin, or an error with its output.
Expected<std::string> assemble(StringRef ptxas, StringRef ptx, StringRef chip) {
  SmallString<128> dir;
  if (auto ec = sys::fs::createUniqueDirectory("dqt-aot-ptxas", dir))
    return errorCodeToError(ec);
  std::string in = (dir + "/k.ptx").str(), out = (dir + "/k.cubin").str(),
              log = (dir + "/log").str();
  {
    std::error_code ec;
    raw_fd_ostream os(in, ec);
    if (ec)
      return errorCodeToError(ec);
    os << ptx;
  }
  std::string arch = ("-arch=" + chip).str();
  StringRef args[] = {ptxas, arch, "-o", out, in};
  std::optional<StringRef> redirects[] = {std::nullopt, StringRef(log),
                                          StringRef(log)};
  int rc = sys::ExecuteAndWait(ptxas, args, std::nullopt, redirects);
  auto cubin = MemoryBuffer::getFile(out);
  auto text = MemoryBuffer::getFile(log);
  std::string result = cubin ? (*cubin)->getBuffer().str() : "";
  sys::fs::remove_directories(dir);
  if (rc != 0 || result.empty())
    return createStringError(inconvertibleErrorCode(),
                             "ptxas " + arch + " failed:\n" +
                                 (text ? (*text)->getBuffer().str() : ""));
  return result;
}

/// A C identifier from a key or level ("adamw-b8-gf32-sf32" ->
/// "adamw_b8_gf32_sf32").
std::string ident(StringRef s) {
  std::string out = s.str();
  for (char &c : out)
    if (!isAlnum(c))
      c = '_';
  return out;
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv,
                              "dqt-aot: step kernels compiled ahead of time "
                              "into a kernel bundle\n");
  auto error = [](const Twine &msg) {
    WithColor::error(errs(), "dqt-aot") << msg << "\n";
    return 1;
  };
  if (name.empty() ||
      !all_of(name, [](char c) { return isAlnum(c) || c == '_'; }))
    return error("--name must match [A-Za-z0-9_]+, got '" + name + "'");

  std::vector<dqt::StepConfig> steps;
  if (standard)
    steps = dqt::standardStepConfigs();
  for (const std::string &key : configs) {
    try {
      steps.push_back(dqt::StepConfig::fromKey(key));
    } catch (const std::invalid_argument &e) {
      return error(e.what());
    }
  }
  bool withUniform = standard || uniform;
  if (steps.empty() && !withUniform)
    return error("nothing to compile: give --standard, --config KEY or "
                 "--uniform");
  std::vector<std::string> levels(cpus.begin(), cpus.end());
  if (levels.empty())
    levels = {"x86-64-v3", "x86-64-v4"};
  std::vector<std::string> gpus(chips.begin(), chips.end());
  if (gpus.empty())
    gpus = {"sm_80", "sm_90"};
  std::string ptxas;
  if (!noCubin) {
    if (auto found = sys::findProgramByName("ptxas", {"/usr/local/cuda/bin"}))
      ptxas = *found;
    else
      outs() << "dqt-aot: ptxas not found: PTX only, no cubins\n";
  }

  dqt::aot::Bundle bundle;
  bundle.name = name;
  bundle.compiler = dqt::compilerVersion().str();
  std::vector<const dqt::StepConfig *> cpuJobs;
  for (const dqt::StepConfig &c : steps)
    cpuJobs.push_back(&c);
  if (withUniform)
    cpuJobs.push_back(nullptr);
  for (const dqt::StepConfig *c : cpuJobs)
    for (const std::string &level : levels) {
      std::string key = c ? c->key() : dqt::kUniformKernelKey;
      bundle.cpu.push_back(
          {key, level, "dqt_" + ident(key) + "_" + ident(level), ""});
    }
  for (const dqt::StepConfig &c : steps)
    for (const std::string &chip : gpus) {
      bundle.gpu.push_back({c.key(), chip, "ptx", ""});
      if (!ptxas.empty())
        bundle.gpu.push_back({c.key(), chip, "cubin", ""});
    }

  auto start = std::chrono::steady_clock::now();
  std::mutex errorsMutex;
  std::string errors;
  auto record = [&](Error err) {
    std::lock_guard<std::mutex> lock(errorsMutex);
    errors += toString(std::move(err)) + "\n";
  };
  {
    DefaultThreadPool pool(hardware_concurrency(jobs));
    for (size_t i = 0; i < bundle.cpu.size(); ++i)
      pool.async([&, i] {
        dqt::aot::CpuKernel &k = bundle.cpu[i];
        const dqt::StepConfig *c = cpuJobs[i / levels.size()];
        auto object = dqt::compileCpuObject(c, k.level, k.symbol);
        if (!object)
          return record(object.takeError());
        k.object = std::move(*object);
      });
    // PTX per configuration and chip, then its cubin from that PTX.
    for (size_t i = 0; i < bundle.gpu.size(); ++i) {
      if (bundle.gpu[i].format != "ptx")
        continue;
      pool.async([&, i] {
        dqt::aot::GpuKernel &k = bundle.gpu[i];
        auto ptx = dqt::compileGpuStep(dqt::StepConfig::fromKey(k.key), k.chip);
        if (!ptx)
          return record(ptx.takeError());
        k.data = std::move(*ptx);
        if (ptxas.empty())
          return;
        auto cubin = assemble(ptxas, k.data, k.chip);
        if (!cubin)
          return record(cubin.takeError());
        bundle.gpu[i + 1].data = std::move(*cubin);
      });
    }
    pool.wait();
  }
  if (!errors.empty())
    return error("compilation failed:\n" + errors);
  if (Error err = dqt::aot::writeBundle(bundle, output))
    return error(toString(std::move(err)));
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  uint64_t size = 0;
  sys::fs::file_size(output + "/lib" + name + ".so", size);
  outs() << formatv("dqt-aot: {0} configurations, {1} CPU kernels ({2}), "
                    "{3} GPU images ({4}) in {5:f1} s: {6}/lib{7}.so "
                    "({8:f1} MiB), lib{7}.a\n",
                    steps.size() + withUniform, bundle.cpu.size(),
                    join(levels, ", "), bundle.gpu.size(), join(gpus, ", "),
                    seconds, output, name, size / 1048576.0);
  return 0;
}
