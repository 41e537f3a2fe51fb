//===- dqt-step-demo.cpp - compile a training-graph step and run it once --===//
//
// The first part of the main job (scripts/demo.sh): takes a step graph such as
// examples/adamw_step.mlir (parameters laid out as that file documents: per
// parameter q, g, m, v, delta, maxq, tensor id; then beta1, beta2, alpha,
// eps, decay, seed, step), compiles it with dqt-compile-gpu (PTX written
// next to --out) and dqt-compile-cpu (JIT), runs the CPU kernel once on
// random data and prints what it did.
//
//===----------------------------------------------------------------------===//

#include "dqt/Compiler/Compiler.h"
#include "dqt/Compiler/KernelArgs.h"
#include "dqt/Passes/Passes.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cmath>
#include <random>

using namespace mlir;
namespace cl = llvm::cl;

static cl::opt<std::string> inputFile(cl::Positional,
                                      cl::desc("<step graph .mlir>"),
                                      cl::init("examples/adamw_step.mlir"));
static cl::opt<std::string> outDir("out", cl::desc("Directory for the PTX"),
                                   cl::init("build/demo"));
static cl::opt<int64_t> elements("elements",
                                 cl::desc("Elements of the first parameter "
                                          "(the others get 1/4 and 1/16)"),
                                 cl::init(1 << 22));
static cl::opt<std::string> chip("chip", cl::desc("GPU target"),
                                 cl::init("sm_90"));

namespace {

/// One parameter's host data, per the example's argument layout.
struct Param {
  std::vector<int8_t> q;
  std::vector<float> g, m, v;
  float delta;
  int8_t maxq;
  int64_t tid;
};

constexpr int kPerParam = 7, kShared = 7;

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
      .count();
}

int fail(const llvm::Twine &msg) {
  llvm::errs() << "dqt-step-demo: " << msg << "\n";
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(argc, argv,
                              "compile a DQT step and run it once\n");
  std::unique_ptr<MLIRContext> ctx = ::dqt::createContext();

  // GPU: the whole pipeline down to PTX.
  auto t0 = std::chrono::steady_clock::now();
  OwningOpRef<ModuleOp> gpuModule =
      parseSourceFile<ModuleOp>(inputFile, ctx.get());
  if (!gpuModule)
    return fail("cannot parse " + inputFile);
  {
    PassManager pm(ctx.get());
    mlir::dqt::CompileGPUOptions options;
    options.chip = chip.getValue();
    mlir::dqt::buildCompileGPUPipeline(pm, options);
    if (failed(pm.run(*gpuModule)))
      return fail("dqt-compile-gpu failed");
  }
  std::string ptx;
  gpuModule->walk([&](gpu::BinaryOp bin) {
    for (Attribute a : bin.getObjects())
      ptx += cast<gpu::ObjectAttr>(a).getObject().getValue().str();
  });
  double gpuSeconds = seconds(t0);
  llvm::sys::fs::create_directories(outDir);
  std::string ptxPath = outDir + "/" + llvm::sys::path::stem(inputFile).str() +
                        "." + chip + ".ptx";
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(ptxPath, ec);
    if (ec)
      return fail("cannot write " + ptxPath + ": " + ec.message());
    os << ptx;
  }
  size_t entries = 0;
  for (size_t p = ptx.find(".entry"); p != std::string::npos;
       p = ptx.find(".entry", p + 1))
    ++entries;
  llvm::outs() << "GPU  " << chip << ": " << entries << " kernel entry, "
               << ptx.size() << " bytes of PTX in " << ptxPath << " ("
               << llvm::format("%.0f", gpuSeconds * 1e3) << " ms)\n";

  // CPU: fuse and lower first to learn the kernel's argument order, then JIT
  // (the rest of dqt-compile-cpu; its first two passes find nothing left).
  t0 = std::chrono::steady_clock::now();
  OwningOpRef<ModuleOp> module =
      parseSourceFile<ModuleOp>(inputFile, ctx.get());
  auto funcs = module->getOps<func::FuncOp>();
  if (funcs.empty())
    return fail("no function in " + inputFile);
  func::FuncOp func = *funcs.begin();
  std::string name = func.getSymName().str();
  SmallVector<Type> argTypes(func.getArgumentTypes());
  int numParams = (int(argTypes.size()) - kShared) / kPerParam;
  if (numParams < 1 || int(argTypes.size()) != numParams * kPerParam + kShared)
    return fail("@" + name + " does not follow the example's argument layout");
  {
    PassManager pm(ctx.get());
    pm.addPass(mlir::dqt::createDQTFuseStep());
    pm.addPass(mlir::dqt::createDQTLowerToCPU());
    if (failed(pm.run(*module)))
      return fail("fusion failed");
  }
  func = module->lookupSymbol<func::FuncOp>(name);
  auto origins = func->getAttrOfType<DenseI64ArrayAttr>("dqt.arg_origins");
  if (!origins)
    return fail("the lowered kernel has no dqt.arg_origins");
  auto jit = ::dqt::jitCpuModule(*module);
  if (!jit)
    return fail(llvm::toString(jit.takeError()));
  auto fn = (*jit)->lookup(name);
  if (!fn)
    return fail(llvm::toString(fn.takeError()));
  llvm::outs() << "CPU  JIT -O3 for the host: " << name << " compiled in "
               << llvm::format("%.0f", seconds(t0) * 1e3) << " ms\n";

  // Random parameters; AdamW step 1 with the paper's defaults.
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<Param> params(numParams);
  int64_t total = 0;
  for (int p = 0; p < numParams; ++p) {
    int64_t n = std::max<int64_t>(1, elements >> (2 * p));
    Param &pr = params[p];
    pr.q.resize(n);
    pr.g.resize(n);
    pr.m.assign(n, 0.0f);
    pr.v.assign(n, 0.0f);
    for (int64_t i = 0; i < n; ++i) {
      pr.q[i] =
          int8_t(std::clamp(std::lround(normal(rng) * 40.0f), -128L, 127L));
      pr.g[i] = normal(rng) * 1e-3f;
    }
    pr.delta = 0.02f;
    pr.maxq = *std::max_element(pr.q.begin(), pr.q.end());
    pr.tid = p;
    total += n;
  }
  const double lr = 5e-4, beta1 = 0.9, beta2 = 0.999, wd = 0.01;
  const int64_t step = 1, seed = 42;
  float alpha = float(lr * std::sqrt(1 - std::pow(beta2, step)) /
                      (1 - std::pow(beta1, step)));
  std::vector<int8_t> before;
  for (Param &p : params)
    before.insert(before.end(), p.q.begin(), p.q.end());

  ::dqt::KernelArgs args;
  for (int64_t o : origins.asArrayRef()) {
    if (o < 0)
      return fail("untied outputs are not supported by this demo");
    int p = o / kPerParam, k = o % kPerParam;
    if (p < numParams) {
      Param &pr = params[p];
      int64_t n = pr.q.size();
      switch (k) {
      case 0:
        args.addBuffer(pr.q.data(), n);
        break;
      case 1:
        args.addBuffer(pr.g.data(), n);
        break;
      case 2:
        args.addBuffer(pr.m.data(), n);
        break;
      case 3:
        args.addBuffer(pr.v.data(), n);
        break;
      case 4:
        args.addScalar<float>(pr.delta);
        break;
      case 5:
        args.addScalar<int8_t>(pr.maxq);
        break;
      case 6:
        args.addScalar<int64_t>(pr.tid);
        break;
      }
      continue;
    }
    switch (o - numParams * kPerParam) {
    case 0:
      args.addScalar<float>(float(beta1));
      break;
    case 1:
      args.addScalar<float>(float(beta2));
      break;
    case 2:
      args.addScalar<float>(alpha);
      break;
    case 3:
      args.addScalar<float>(1e-6f);
      break;
    case 4:
      args.addScalar<float>(float(lr * wd));
      break;
    case 5:
      args.addScalar<int64_t>(seed);
      break;
    case 6:
      args.addScalar<int64_t>(step);
      break;
    }
  }
  std::vector<int64_t> partials(3 * numParams);
  args.addScalar<int64_t>(0);
  args.addScalar<int64_t>(total);
  args.addBuffer(partials.data(), partials.size());

  t0 = std::chrono::steady_clock::now();
  (*fn)(args.data());
  double runSeconds = seconds(t0);

  // 22 bytes per parameter: read g, m, v (12) + q (1), write m, v (8) + q (1).
  double gbps = 22.0 * total / runSeconds / 1e9;
  llvm::outs() << "CPU  one AdamW step (8-bit weights, f32 states) over "
               << numParams << " parameters, " << total
               << " elements: " << llvm::format("%.2f", runSeconds * 1e3)
               << " ms, " << llvm::format("%.1f", gbps)
               << " GB/s effective (1 thread)\n";
  size_t off = 0;
  for (int p = 0; p < numParams; ++p) {
    const Param &pr = params[p];
    int64_t diff = 0;
    for (size_t i = 0; i < pr.q.size(); ++i)
      diff += pr.q[i] != before[off + i];
    off += pr.q.size();
    llvm::outs() << "  param " << p << ": " << pr.q.size()
                 << " weights, changed " << partials[3 * p + 1] << " ("
                 << llvm::format("%.2f",
                                 100.0 * partials[3 * p + 1] / pr.q.size())
                 << "%), max q " << int(pr.maxq) << " -> " << partials[3 * p]
                 << ", non-finite grads " << partials[3 * p + 2] << "\n";
    if (diff != partials[3 * p + 1])
      return fail("the kernel's changed count disagrees with the buffers");
  }
  return 0;
}
