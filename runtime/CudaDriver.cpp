//===- CudaDriver.cpp - the CUDA driver API, loaded at run time -----------===//

#include "dqt/Runtime/CudaDriver.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <dlfcn.h>

namespace dqt {

namespace {

struct Loaded {
  CudaDriver driver;
  bool ok = false;
  std::string why;
};

Loaded load() {
  Loaded l;
  const char *env = std::getenv("DQT_CUDA_DRIVER");
  std::string library = env && *env ? env : "libcuda.so.1";
  // RTLD_LOCAL: the driver's symbols stay out of the global namespace.
  void *lib = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *err = ::dlerror();
    l.why = "cannot open " + library + ": " + (err ? err : "?");
    return l;
  }
  CudaDriver &d = l.driver;
  d.library = library;
#define DQT_CU_SYMBOL(member, name, params)                                    \
  d.member = reinterpret_cast<decltype(d.member)>(::dlsym(lib, name));         \
  if (!d.member && l.why.empty())                                              \
    l.why = library + " lacks " name;
#include "dqt/Runtime/CudaSymbols.def"
  if (!l.why.empty())
    return l;
  if (CUresult r = d.cuInit(0)) {
    l.why = "cuInit failed with error " + std::to_string(r);
    return l;
  }
  int count = 0;
  if (d.cuDeviceGetCount(&count) || count == 0) {
    l.why = "no CUDA device";
    return l;
  }
  l.ok = true;
  return l;
}

} // namespace

const CudaDriver *CudaDriver::get(std::string *why) {
  // The library is never closed: kernels and contexts live as long as the
  // process.
  static Loaded loaded = load();
  if (why)
    *why = loaded.why;
  return loaded.ok ? &loaded.driver : nullptr;
}

void CudaDriver::check(CUresult r, const char *what) const {
  if (r == 0)
    return;
  const char *msg = nullptr;
  cuGetErrorString(r, &msg);
  TORCH_CHECK(false, "dqt: CUDA ", what, " failed: ", msg ? msg : "?", " (", r,
              ")");
}

} // namespace dqt
