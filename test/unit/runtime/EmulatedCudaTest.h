//===- EmulatedCudaTest.h - tests on the emulated CUDA driver ---*- C++ -*-===//
//
// What the tests that run the runtime's CUDA path on libdqt-emulated-cuda.so
// share: whether this process runs against it, the skip reason otherwise,
// and its counters (EmulatedCudaDriver.h) from the library the runtime
// loaded.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_TEST_UNIT_RUNTIME_EMULATEDCUDATEST_H
#define DQT_TEST_UNIT_RUNTIME_EMULATEDCUDATEST_H

#include "EmulatedCudaDriver.h"

#include "dqt/Runtime/CudaDriver.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <dlfcn.h>
#include <string>

namespace dqt::test {

/// Whether this process runs against the emulated driver (ctest sets
/// DQT_CUDA_DRIVER).
inline bool emulated() {
  const char *env = std::getenv("DQT_CUDA_DRIVER");
  return env && std::string(env).find("dqt-emulated-cuda") != std::string::npos;
}

constexpr const char *kNotEmulated =
    "run through ctest (ctest -L gpu-emulated): needs "
    "DQT_CUDA_DRIVER=<build>/lib/libdqt-emulated-cuda.so";

/// The emulated driver's entry points beside the driver API, found in the
/// library the runtime loaded (RTLD_NOLOAD opens nothing new); null when
/// the runtime has no driver or another one.
struct Emulation {
  int (*counters)(DqtEmulatedCudaCounters *, unsigned) = nullptr;
  void (*reset)() = nullptr;

  DqtEmulatedCudaCounters now() const {
    DqtEmulatedCudaCounters c{};
    EXPECT_EQ(counters(&c, sizeof(c)), 0) << "the driver's counters differ";
    return c;
  }
};

inline const Emulation &emulation() {
  static Emulation e = [] {
    Emulation e;
    const CudaDriver *cu = CudaDriver::get();
    if (!cu)
      return e;
    void *lib = ::dlopen(cu->library.c_str(), RTLD_NOW | RTLD_NOLOAD);
    if (!lib)
      return e;
    e.counters = reinterpret_cast<decltype(e.counters)>(
        ::dlsym(lib, "dqt_emulated_cuda_counters"));
    e.reset = reinterpret_cast<decltype(e.reset)>(
        ::dlsym(lib, "dqt_emulated_cuda_reset"));
    return e;
  }();
  return e;
}

} // namespace dqt::test

#endif // DQT_TEST_UNIT_RUNTIME_EMULATEDCUDATEST_H
