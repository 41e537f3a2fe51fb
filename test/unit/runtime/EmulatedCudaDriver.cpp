//===- EmulatedCudaDriver.cpp - the CUDA driver API on the CPU ------------===//
//
// libdqt-emulated-cuda.so: a stand-in for libcuda.so.1 that the runtime
// loads when $DQT_CUDA_DRIVER names it, so that the whole CUDA launch path
// (CudaDriver, CudaDevice, launchCuda, the cubin disk cache) runs in the test
// suite without a GPU, and the kernels it launches are the very gpu.func
// that dqt-lower-to-gpu emits, executed by the GPU emulator
// (dqt/Compiler/GpuEmulator.h).
//
// Hand-written because no library emulates the CUDA driver API (gpgpu-sim
// and similar simulators need real cubins and are far too heavy for a unit
// test); IREE and Triton test their HAL drivers against device mocks in the
// same way. It exports every entry point of CudaSymbols.def under the
// exported name, with the driver's rules where the runtime could get them
// wrong:
//
// - cuInit first (CUDA_ERROR_NOT_INITIALIZED before);
// - one device whose compute capability is $DQT_EMULATED_CUDA_CC ("9.0")
//   and SM count $DQT_EMULATED_CUDA_SMS (4); other attributes are refused;
// - the current context is per calling thread, and every entry point that
//   needs one fails with CUDA_ERROR_INVALID_CONTEXT on a thread that has
//   none (this proves that the runtime binds it on every thread);
// - device memory is host memory, 256-byte aligned, filled with garbage as
//   cuMemAlloc leaves it; copies, memsets and every buffer a launch passes
//   must lie inside a live allocation (a host pointer handed to a kernel is
//   an illegal address, as on a GPU);
// - a module is PTX whose first line is "// dqt-kernel: <config key>"
//   (GpuCodegen writes it) or a fake cubin from cuLinkComplete; its only
//   function is dqt_step; the kernel of that configuration is compiled for
//   the emulator once per process;
// - a launch runs the kernel synchronously on the calling thread on a 1-D
//   grid; every stream-ordered operation runs at once, in call order (the
//   stream is recorded, not modelled).
//
// Counters for the tests: dqt_emulated_cuda_counters (EmulatedCudaDriver.h).
//
//===----------------------------------------------------------------------===//

#include "EmulatedCudaDriver.h"

#include "dqt/Compiler/GpuEmulator.h"
#include "dqt/Compiler/KernelAbi.h"
#include "dqt/Compiler/StepConfig.h"
#include "dqt/Runtime/CudaDriver.h"

#include "llvm/Support/Error.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

using namespace dqt;

// The entry points, declared from the one list under their exported names
// (GCC's asm labels: cuMemAlloc is exported as cuMemAlloc_v2). A definition
// below whose parameters differ from the list does not compile (two C
// functions of one name), and `kEntryPoints` takes every one's address, so
// an entry point the list has and this file lacks fails the link (-z defs).
extern "C" {
#define DQT_CU_SYMBOL(member, name, params)                                    \
  __attribute__((visibility("default"))) CUresult member params __asm__(name);
#include "dqt/Runtime/CudaSymbols.def"
}

namespace {

// cuda.h's values of the results the emulation returns.
enum : CUresult {
  kSuccess = 0,
  kInvalidValue = 1,
  kOutOfMemory = 2,
  kNotInitialized = 3,
  kInvalidDevice = 101,
  kInvalidImage = 200,
  kInvalidContext = 201,
  kInvalidPtx = 218,
  kInvalidHandle = 400,
  kNotFound = 500,
  kIllegalAddress = 700,
  kLaunchFailed = 719,
};

const char *errorString(CUresult r) {
  switch (r) {
  case kSuccess:
    return "no error";
  case kInvalidValue:
    return "invalid argument";
  case kOutOfMemory:
    return "out of memory";
  case kNotInitialized:
    return "initialization error";
  case kInvalidDevice:
    return "invalid device ordinal";
  case kInvalidImage:
    return "device kernel image is invalid";
  case kInvalidContext:
    return "invalid device context";
  case kInvalidPtx:
    return "a PTX JIT compilation failed";
  case kInvalidHandle:
    return "invalid resource handle";
  case kNotFound:
    return "named symbol not found";
  case kIllegalAddress:
    return "an illegal memory access was encountered";
  case kLaunchFailed:
    return "unspecified launch failure";
  }
  return nullptr;
}

// CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT.
constexpr int kMultiprocessorCount = 16;

// cuda.h's CUjit_option values the linker reads.
enum : int { kJitErrorLogBuffer = 5, kJitErrorLogBufferSize = 6 };

constexpr const char *kPtxHeader = "// dqt-kernel: ";
constexpr const char *kCubinMagic = "DQTEMUCUBIN\n";
constexpr size_t kAlignment = 256;

/// The one context (the device's primary context).
char primaryContextStorage;
const CUcontext primaryContext =
    reinterpret_cast<CUcontext>(&primaryContextStorage);

/// A loaded module: the configuration and its emulated kernel.
struct Module {
  std::string key;
  StepConfig config;
  std::shared_ptr<const EmulatedGpuKernel> kernel;
  /// Handed out as the CUfunction of dqt_step.
  char function;
};

struct LinkState {
  std::string key;
  /// The image of cuLinkComplete, valid until cuLinkDestroy.
  std::string cubin;
  /// The caller's error log buffer (CU_JIT_ERROR_LOG_BUFFER), if any.
  char *errorLog = nullptr;
  size_t errorLogSize = 0;
};

struct State {
  std::mutex mutex;
  bool initialized = false;
  /// Live allocations: start -> bytes.
  std::map<uintptr_t, size_t> allocations;
  std::unordered_map<std::string, std::shared_ptr<const EmulatedGpuKernel>>
      kernels;
  std::unordered_set<Module *> modules;
  std::unordered_set<LinkState *> links;
  DqtEmulatedCudaCounters counters{};
  /// Serializes launches: one kernel runs at a time, as on one stream.
  std::mutex launchMutex;
};

State &state() {
  // Never destroyed: the runtime may call in during exit.
  static State *s = new State;
  return *s;
}

thread_local CUcontext currentContext = nullptr;
thread_local std::string lastError;

/// Returns `r` after recording (and printing) why.
CUresult fail(CUresult r, const std::string &why) {
  lastError = why;
  std::fprintf(stderr, "[emulated cuda] %s (%s)\n", why.c_str(),
               errorString(r));
  return r;
}

/// The checks of an entry point that needs an initialized driver and, with
/// `context`, a current context on the calling thread. Call with the state
/// locked.
CUresult ready(State &s, const char *fn, bool context = true) {
  if (!s.initialized)
    return fail(kNotInitialized, std::string(fn) + " before cuInit");
  if (context && currentContext != primaryContext) {
    ++s.counters.withoutContext;
    return fail(kInvalidContext,
                std::string(fn) + ": no current context on this thread");
  }
  return kSuccess;
}

void streamOp(State &s, CUstream stream) {
  ++s.counters.streamOps;
  if (stream == s.counters.lastStream)
    ++s.counters.streamOpsOnLastStream;
  else
    s.counters.streamOpsOnLastStream = 1;
  s.counters.lastStream = stream;
}

/// Whether $DQT_EMULATED_CUDA_PAGEABLE=1: the device then reads and writes
/// pageable host memory directly, as on HMM and ATS systems
/// (CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS), so the runtime may step CPU
/// tensors through its CUDA path. Read once.
bool pageableAccess() {
  static const bool on = [] {
    const char *v = std::getenv("DQT_EMULATED_CUDA_PAGEABLE");
    return v && std::string(v) == "1";
  }();
  return on;
}

/// Whether [p, p + bytes) lies inside one live allocation (any host memory
/// with pageable access).
bool inAllocation(const State &s, uintptr_t p, size_t bytes) {
  if (pageableAccess())
    return true;
  auto it = s.allocations.upper_bound(p);
  if (it == s.allocations.begin())
    return false;
  --it;
  return p - it->first <= it->second && bytes <= it->second - (p - it->first);
}

CUresult checkRange(const State &s, const char *fn, CUdeviceptr p,
                    size_t bytes) {
  if (!inAllocation(s, uintptr_t(p), bytes))
    return fail(kInvalidValue, std::string(fn) + ": [" + std::to_string(p) +
                                   ", +" + std::to_string(bytes) +
                                   ") is not inside one device allocation");
  return kSuccess;
}

/// The configuration key of a module image, or "" when it is not one.
std::string imageKey(const char *image) {
  for (const char *prefix : {kPtxHeader, kCubinMagic}) {
    size_t n = std::strlen(prefix);
    if (std::strncmp(image, prefix, n) != 0)
      continue;
    const char *end = std::strchr(image + n, '\n');
    return end ? std::string(image + n, end) : std::string();
  }
  return "";
}

/// Checks that `key` names a configuration; sets `config`.
bool parseKey(const std::string &key, StepConfig &config, std::string &why) {
  try {
    config = StepConfig::fromKey(key);
    return true;
  } catch (const std::exception &e) {
    why = e.what();
    return false;
  }
}

/// The emulated kernel of `config`, compiled once per key. Called unlocked
/// (compiling takes seconds); concurrent first loads may compile twice.
std::shared_ptr<const EmulatedGpuKernel>
emulatedKernel(const std::string &key, const StepConfig &config,
               std::string &why) {
  State &s = state();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.kernels.find(key);
    if (it != s.kernels.end())
      return it->second;
  }
  auto compiled = compileGpuEmulatedStep(config);
  if (!compiled) {
    why = llvm::toString(compiled.takeError());
    return nullptr;
  }
  auto kernel = std::make_shared<const EmulatedGpuKernel>(std::move(*compiled));
  std::lock_guard<std::mutex> lock(s.mutex);
  ++s.counters.compiles;
  return s.kernels.emplace(key, kernel).first->second;
}

/// Bytes per element of a buffer argument of `config`'s kernel.
size_t elementBytes(const StepConfig &config, KernelArgKind kind) {
  switch (kind) {
  case KernelArgKind::Weights:
    return config.floatWeights ? 4 : 1;
  case KernelArgKind::State0:
  case KernelArgKind::State1:
    return config.stateType == StateType::BF16 ? 2 : 4;
  default:
    return 4;
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// Initialization, device, context
//===----------------------------------------------------------------------===//

CUresult cuInit(unsigned flags) {
  if (flags != 0)
    return fail(kInvalidValue, "cuInit: flags must be 0");
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.initialized = true;
  return kSuccess;
}

CUresult cuDriverGetVersion(int *version) {
  if (!version)
    return fail(kInvalidValue, "cuDriverGetVersion: null");
  *version = 13000;
  return kSuccess;
}

CUresult cuDeviceGetCount(int *count) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuDeviceGetCount", /*context=*/false))
    return r;
  if (!count)
    return fail(kInvalidValue, "cuDeviceGetCount: null");
  *count = 1;
  return kSuccess;
}

CUresult cuDeviceGet(CUdevice *device, int ordinal) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuDeviceGet", /*context=*/false))
    return r;
  if (!device)
    return fail(kInvalidValue, "cuDeviceGet: null");
  if (ordinal != 0)
    return fail(kInvalidDevice,
                "cuDeviceGet: no device " + std::to_string(ordinal));
  *device = 0;
  return kSuccess;
}

CUresult cuDeviceGetAttribute(int *value, int attribute, CUdevice device) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuDeviceGetAttribute", /*context=*/false))
    return r;
  if (!value)
    return fail(kInvalidValue, "cuDeviceGetAttribute: null");
  if (device != 0)
    return fail(kInvalidDevice,
                "cuDeviceGetAttribute: no device " + std::to_string(device));
  if (attribute == kMultiprocessorCount) {
    // Few: a launcher that sizes its grid by the SM count then wraps its
    // grid-stride loop at sizes the emulation runs quickly.
    const char *sms = std::getenv("DQT_EMULATED_CUDA_SMS");
    *value = sms ? std::atoi(sms) : 4;
    if (*value < 1)
      return fail(kInvalidValue, "DQT_EMULATED_CUDA_SMS must be positive");
    return kSuccess;
  }
  if (attribute == kCuDeviceAttributePageableMemoryAccess) {
    *value = pageableAccess() ? 1 : 0;
    return kSuccess;
  }
  if (attribute != kCuDeviceAttributeComputeCapabilityMajor &&
      attribute != kCuDeviceAttributeComputeCapabilityMinor)
    return fail(kInvalidValue, "cuDeviceGetAttribute: attribute " +
                                   std::to_string(attribute) +
                                   " is not emulated");
  const char *cc = std::getenv("DQT_EMULATED_CUDA_CC");
  int major = 9, minor = 0;
  if (cc && std::sscanf(cc, "%d.%d", &major, &minor) != 2)
    return fail(kInvalidValue,
                std::string("DQT_EMULATED_CUDA_CC is not major.minor: ") + cc);
  *value =
      attribute == kCuDeviceAttributeComputeCapabilityMajor ? major : minor;
  return kSuccess;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *context, CUdevice device) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuDevicePrimaryCtxRetain", /*context=*/false))
    return r;
  if (!context)
    return fail(kInvalidValue, "cuDevicePrimaryCtxRetain: null");
  if (device != 0)
    return fail(kInvalidDevice, "cuDevicePrimaryCtxRetain: no device " +
                                    std::to_string(device));
  *context = primaryContext;
  return kSuccess;
}

CUresult cuCtxSetCurrent(CUcontext context) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuCtxSetCurrent", /*context=*/false))
    return r;
  if (context && context != primaryContext)
    return fail(kInvalidContext, "cuCtxSetCurrent: unknown context");
  currentContext = context;
  return kSuccess;
}

CUresult cuCtxGetCurrent(CUcontext *context) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuCtxGetCurrent", /*context=*/false))
    return r;
  if (!context)
    return fail(kInvalidValue, "cuCtxGetCurrent: null");
  *context = currentContext;
  return kSuccess;
}

//===----------------------------------------------------------------------===//
// Modules and the linker
//===----------------------------------------------------------------------===//

CUresult cuModuleLoadData(CUmodule *module, const void *image) {
  State &s = state();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (CUresult r = ready(s, "cuModuleLoadData"))
      return r;
  }
  if (!module || !image)
    return fail(kInvalidValue, "cuModuleLoadData: null");
  const char *text = static_cast<const char *>(image);
  bool cubin = std::strncmp(text, kCubinMagic, std::strlen(kCubinMagic)) == 0;
  if (text[0] == '\x7f' && std::strncmp(text + 1, "ELF", 3) == 0)
    return fail(kInvalidImage,
                "cuModuleLoadData: a cubin from ptxas; the emulation runs "
                "dqt's PTX or its own cubins only (a bundle made with "
                "dqt-aot --no-cubin)");
  std::string key = imageKey(text), why;
  StepConfig config;
  if (key.empty() || !parseKey(key, config, why))
    return fail(kInvalidImage,
                "cuModuleLoadData: neither dqt PTX (first line \"" +
                    std::string(kPtxHeader) + "<key>\") nor an emulated cubin" +
                    (why.empty() ? "" : ": " + why));
  auto kernel = emulatedKernel(key, config, why);
  if (!kernel)
    return fail(kInvalidImage, "cuModuleLoadData: cannot compile the emulated "
                               "kernel of " +
                                   key + ": " + why);
  auto *m = new Module{key, config, kernel, 0};
  std::lock_guard<std::mutex> lock(s.mutex);
  s.modules.insert(m);
  ++(cubin ? s.counters.cubinLoads : s.counters.ptxLoads);
  *module = reinterpret_cast<CUmodule>(m);
  return kSuccess;
}

CUresult cuModuleGetFunction(CUfunction *function, CUmodule module,
                             const char *name) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuModuleGetFunction"))
    return r;
  if (!function || !name)
    return fail(kInvalidValue, "cuModuleGetFunction: null");
  auto *m = reinterpret_cast<Module *>(module);
  if (!s.modules.count(m))
    return fail(kInvalidHandle, "cuModuleGetFunction: unknown module");
  if (std::strcmp(name, kStepKernelName) != 0)
    return fail(kNotFound, std::string("cuModuleGetFunction: the module has "
                                       "no function ") +
                               name);
  *function = reinterpret_cast<CUfunction>(&m->function);
  return kSuccess;
}

CUresult cuLinkCreate(unsigned numOptions, int *options, void **optionValues,
                      CUlinkState *out) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuLinkCreate_v2"))
    return r;
  if (!out || (numOptions && (!options || !optionValues)))
    return fail(kInvalidValue, "cuLinkCreate_v2: null");
  auto *link = new LinkState;
  for (unsigned i = 0; i < numOptions; ++i) {
    if (options[i] == kJitErrorLogBuffer)
      link->errorLog = static_cast<char *>(optionValues[i]);
    else if (options[i] == kJitErrorLogBufferSize)
      link->errorLogSize = reinterpret_cast<uintptr_t>(optionValues[i]);
  }
  s.links.insert(link);
  *out = reinterpret_cast<CUlinkState>(link);
  return kSuccess;
}

CUresult cuLinkAddData(CUlinkState state_, int type, void *data, size_t size,
                       const char *name, unsigned numOptions, int *options,
                       void **optionValues) {
  (void)name, (void)numOptions, (void)options, (void)optionValues;
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuLinkAddData_v2"))
    return r;
  auto *link = reinterpret_cast<LinkState *>(state_);
  if (!s.links.count(link))
    return fail(kInvalidHandle, "cuLinkAddData_v2: unknown link state");
  if (type != kCuJitInputPtx)
    return fail(kInvalidValue, "cuLinkAddData_v2: input type " +
                                   std::to_string(type) +
                                   " (only PTX, 1, is emulated)");
  if (!data || !size)
    return fail(kInvalidValue, "cuLinkAddData_v2: no data");
  if (!link->key.empty())
    return fail(kInvalidValue, "cuLinkAddData_v2: the emulation links one "
                               "PTX module per link");
  std::string text(static_cast<const char *>(data),
                   strnlen(static_cast<const char *>(data), size));
  std::string key = imageKey(text.c_str()), why;
  StepConfig config;
  if (std::strncmp(text.c_str(), kPtxHeader, std::strlen(kPtxHeader)) != 0 ||
      key.empty() || !parseKey(key, config, why) ||
      text.find(".entry dqt_step") == std::string::npos) {
    std::string msg = "cuLinkAddData_v2: not a dqt PTX kernel (first line \"" +
                      std::string(kPtxHeader) + "<key>\", an entry dqt_step)" +
                      (why.empty() ? "" : ": " + why);
    if (link->errorLog && link->errorLogSize)
      std::snprintf(link->errorLog, link->errorLogSize, "%s", msg.c_str());
    return fail(kInvalidPtx, msg);
  }
  link->key = key;
  return kSuccess;
}

CUresult cuLinkComplete(CUlinkState state_, void **cubin, size_t *size) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuLinkComplete"))
    return r;
  auto *link = reinterpret_cast<LinkState *>(state_);
  if (!s.links.count(link))
    return fail(kInvalidHandle, "cuLinkComplete: unknown link state");
  if (!cubin || !size)
    return fail(kInvalidValue, "cuLinkComplete: null");
  if (link->key.empty())
    return fail(kInvalidValue, "cuLinkComplete: nothing was added");
  link->cubin = std::string(kCubinMagic) + link->key + "\n";
  *cubin = link->cubin.data();
  *size = link->cubin.size();
  ++s.counters.links;
  return kSuccess;
}

CUresult cuLinkDestroy(CUlinkState state_) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuLinkDestroy"))
    return r;
  auto *link = reinterpret_cast<LinkState *>(state_);
  if (!s.links.erase(link))
    return fail(kInvalidHandle, "cuLinkDestroy: unknown link state");
  // The image dies with the link: a caller still holding it reads garbage.
  std::memset(link->cubin.data(), 0xDD, link->cubin.size());
  delete link;
  return kSuccess;
}

//===----------------------------------------------------------------------===//
// Launches
//===----------------------------------------------------------------------===//

CUresult cuLaunchKernel(CUfunction function, unsigned gridX, unsigned gridY,
                        unsigned gridZ, unsigned blockX, unsigned blockY,
                        unsigned blockZ, unsigned sharedBytes, CUstream stream,
                        void **params, void **extra) {
  State &s = state();
  Module *m = nullptr;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (CUresult r = ready(s, "cuLaunchKernel"))
      return r;
    for (Module *candidate : s.modules)
      if (reinterpret_cast<CUfunction>(&candidate->function) == function)
        m = candidate;
    if (!m)
      return fail(kInvalidHandle, "cuLaunchKernel: unknown function");
    if (gridY != 1 || gridZ != 1 || blockY != 1 || blockZ != 1 || !gridX ||
        !blockX || blockX > 1024)
      return fail(kInvalidValue,
                  "cuLaunchKernel: grid " + std::to_string(gridX) + "x" +
                      std::to_string(gridY) + "x" + std::to_string(gridZ) +
                      ", block " + std::to_string(blockX) + "x" +
                      std::to_string(blockY) + "x" + std::to_string(blockZ) +
                      " (the emulation runs 1-D grids of 1 to 1024 threads)");
    if (sharedBytes)
      return fail(kInvalidValue, "cuLaunchKernel: dynamic shared memory (the "
                                 "step kernels have none)");
    if (extra || !params)
      return fail(kInvalidValue,
                  "cuLaunchKernel: arguments must come as kernelParams");
    // Every buffer must be device memory: its descriptor's aligned pointer,
    // offset and size inside one live allocation.
    std::vector<KernelArg> abi = stepKernelArgs(m->config);
    size_t at = 0;
    auto checkBuffer = [&](const std::string &name, size_t bytes) -> CUresult {
      auto aligned = *static_cast<uintptr_t *>(params[at + 1]);
      auto offset = *static_cast<int64_t *>(params[at + 2]);
      auto size = *static_cast<int64_t *>(params[at + 3]);
      auto stride = *static_cast<int64_t *>(params[at + 4]);
      at += 5;
      if (size == 0)
        return kSuccess;
      if (offset < 0 || size < 0 || stride != 1 ||
          !inAllocation(s, aligned + offset * bytes, size * bytes))
        return fail(kIllegalAddress,
                    "cuLaunchKernel: argument " + name + " (" +
                        std::to_string(size) + " x " + std::to_string(bytes) +
                        " bytes at " + std::to_string(aligned) +
                        ") is not inside one device allocation");
      return kSuccess;
    };
    for (const KernelArg &arg : abi) {
      if (!arg.isBuffer()) {
        ++at;
        continue;
      }
      if (CUresult r =
              checkBuffer(arg.name(), elementBytes(m->config, arg.kind)))
        return r;
    }
    if (CUresult r = checkBuffer("reductions", 8))
      return r;
    ++s.counters.launches;
    s.counters.lastGrid = gridX;
    s.counters.lastBlock = blockX;
    streamOp(s, stream);
  }
  std::lock_guard<std::mutex> launch(s.launchMutex);
  size_t numArgs = 0;
  for (const KernelArg &arg : stepKernelArgs(m->config))
    numArgs += arg.isBuffer() ? 5 : 1;
  numArgs += 5; // the reductions buffer
  if (llvm::Error e =
          emulateGpuKernel(*m->kernel, params, numArgs, gridX, blockX))
    return fail(kLaunchFailed,
                "cuLaunchKernel: " + llvm::toString(std::move(e)));
  return kSuccess;
}

//===----------------------------------------------------------------------===//
// Memory
//===----------------------------------------------------------------------===//

CUresult cuMemAlloc(CUdeviceptr *out, size_t bytes) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuMemAlloc_v2"))
    return r;
  if (!out || !bytes)
    return fail(kInvalidValue, "cuMemAlloc_v2: null or 0 bytes");
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void *p = std::aligned_alloc(kAlignment, rounded);
  if (!p)
    return fail(kOutOfMemory,
                "cuMemAlloc_v2: " + std::to_string(bytes) + " bytes");
  // Device memory starts out as whatever was there.
  std::memset(p, 0xCD, rounded);
  s.allocations[uintptr_t(p)] = bytes;
  ++s.counters.allocs;
  ++s.counters.liveAllocations;
  *out = CUdeviceptr(uintptr_t(p));
  return kSuccess;
}

CUresult cuMemFree(CUdeviceptr p) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuMemFree_v2"))
    return r;
  auto it = s.allocations.find(uintptr_t(p));
  if (it == s.allocations.end())
    return fail(kInvalidValue, "cuMemFree_v2: " + std::to_string(p) +
                                   " is not a live allocation");
  std::memset(reinterpret_cast<void *>(p), 0xDF, it->second);
  std::free(reinterpret_cast<void *>(p));
  s.allocations.erase(it);
  ++s.counters.frees;
  --s.counters.liveAllocations;
  return kSuccess;
}

CUresult cuMemcpyHtoD(CUdeviceptr dst, const void *src, size_t bytes) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuMemcpyHtoD_v2"))
    return r;
  if (CUresult r = checkRange(s, "cuMemcpyHtoD_v2", dst, bytes))
    return r;
  std::memcpy(reinterpret_cast<void *>(dst), src, bytes);
  ++s.counters.copiesHtoD;
  return kSuccess;
}

CUresult cuMemcpyDtoH(void *dst, CUdeviceptr src, size_t bytes) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuMemcpyDtoH_v2"))
    return r;
  if (CUresult r = checkRange(s, "cuMemcpyDtoH_v2", src, bytes))
    return r;
  std::memcpy(dst, reinterpret_cast<const void *>(src), bytes);
  ++s.counters.copiesDtoH;
  return kSuccess;
}

CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t bytes,
                           CUstream stream) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuMemcpyHtoDAsync_v2"))
    return r;
  if (CUresult r = checkRange(s, "cuMemcpyHtoDAsync_v2", dst, bytes))
    return r;
  std::memcpy(reinterpret_cast<void *>(dst), src, bytes);
  ++s.counters.asyncCopiesHtoD;
  streamOp(s, stream);
  return kSuccess;
}

CUresult cuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t bytes,
                           CUstream stream) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuMemcpyDtoHAsync_v2"))
    return r;
  if (CUresult r = checkRange(s, "cuMemcpyDtoHAsync_v2", src, bytes))
    return r;
  std::memcpy(dst, reinterpret_cast<const void *>(src), bytes);
  ++s.counters.asyncCopiesDtoH;
  streamOp(s, stream);
  return kSuccess;
}

CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes,
                           CUstream stream) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuMemcpyDtoDAsync_v2"))
    return r;
  if (CUresult r = checkRange(s, "cuMemcpyDtoDAsync_v2", src, bytes))
    return r;
  if (CUresult r = checkRange(s, "cuMemcpyDtoDAsync_v2", dst, bytes))
    return r;
  std::memmove(reinterpret_cast<void *>(dst),
               reinterpret_cast<const void *>(src), bytes);
  ++s.counters.asyncCopiesDtoD;
  streamOp(s, stream);
  return kSuccess;
}

CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned value, size_t count,
                          CUstream stream) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuMemsetD32Async"))
    return r;
  if (dst % 4)
    return fail(kInvalidValue, "cuMemsetD32Async: unaligned destination");
  if (CUresult r = checkRange(s, "cuMemsetD32Async", dst, count * 4))
    return r;
  auto *p = reinterpret_cast<uint32_t *>(dst);
  for (size_t i = 0; i < count; ++i)
    p[i] = value;
  ++s.counters.memsets;
  streamOp(s, stream);
  return kSuccess;
}

CUresult cuStreamSynchronize(CUstream stream) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (CUresult r = ready(s, "cuStreamSynchronize"))
    return r;
  ++s.counters.syncs;
  streamOp(s, stream);
  return kSuccess;
}

CUresult cuGetErrorString(CUresult error, const char **out) {
  if (!out)
    return kInvalidValue;
  *out = errorString(error);
  return *out ? kSuccess : kInvalidValue;
}

//===----------------------------------------------------------------------===//
// For the tests
//===----------------------------------------------------------------------===//

namespace {
/// Every entry point of the list, referenced: one this file lacks is an
/// undefined symbol, and the library links with -z defs.
__attribute__((used)) void *const kEntryPoints[] = {
#define DQT_CU_SYMBOL(member, name, params) reinterpret_cast<void *>(&member),
#include "dqt/Runtime/CudaSymbols.def"
};
} // namespace

extern "C" {

__attribute__((visibility("default"))) int
dqt_emulated_cuda_counters(DqtEmulatedCudaCounters *out, unsigned size) {
  if (size != sizeof(DqtEmulatedCudaCounters))
    return 1;
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  *out = s.counters;
  return 0;
}

__attribute__((visibility("default"))) void dqt_emulated_cuda_reset(void) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  int64_t live = s.counters.liveAllocations;
  s.counters = {};
  s.counters.liveAllocations = live;
}

__attribute__((visibility("default"))) const char *
dqt_emulated_cuda_last_error(void) {
  return lastError.c_str();
}
}
