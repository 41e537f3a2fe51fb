//===- CudaDevice.h - one GPU as the launches use it ------------*- C++ -*-===//
//
// IREE HAL's device for CUDA: a device's primary context (bound on every
// calling thread), its compute capability and the chip its kernels are
// generated for, and the executables loaded on it.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_CUDADEVICE_H
#define DQT_RUNTIME_CUDADEVICE_H

#include "dqt/Runtime/CudaDriver.h"
#include "dqt/Runtime/Executable.h"

#include <mutex>
#include <string>
#include <unordered_map>

namespace dqt {

class CudaDevice {
public:
  /// Device `index` (opened once). Throws c10::Error when no driver can be
  /// loaded (with its reason), there is no such device, or its compute
  /// capability is below 8.0 (dqt's kernels need sm_80 or newer).
  static CudaDevice &get(int index);

  const CudaDriver &driver() const { return *cu; }
  int index() const { return ordinal; }
  /// Compute capability, e.g. 9.0 for an H100 / H200.
  int major() const { return ccMajor; }
  int minor() const { return ccMinor; }
  /// The chip its kernels are generated for: "sm_90" from compute
  /// capability 9.0 on (PTX for sm_90 runs on newer GPUs), else "sm_80".
  const std::string &chip() const { return chipName; }
  /// Whether it runs cubins made for `chip`: those of its own major compute
  /// capability (an sm_90 cubin runs on 9.x, not on 10.x).
  bool runsCubinsOf(const std::string &chip) const {
    return chip == "sm_" + std::to_string(ccMajor) + "0";
  }
  /// Streaming multiprocessors (the launcher sizes grids by them).
  int multiprocessors() const { return numSMs; }
  /// Whether its kernels can read and write pageable host memory directly
  /// (CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS: HMM or ATS systems such as
  /// Grace Hopper, and the emulated driver of the tests).
  bool pageableMemoryAccess() const { return pageable; }

  /// Makes the device's primary context current on the calling thread. The
  /// driver's current context is per thread, so every entry point of the
  /// launcher calls it first (cheap: a thread-local store in the driver).
  void bind() const;

  /// `kernel` (Target::Cuda, for chip()) loaded on this device, its entry
  /// `dqt_step`: a cubin as it is; PTX linked into a cubin by the driver
  /// once per configuration and device and kept in the disk cache
  /// `cacheDir` (empty: memory only) under a key naming the configuration,
  /// the chip, the compute capability and the driver version, with the
  /// kernel cache's checksum and atomic-write rules. Kept by the
  /// executable's address: `kernel` must stay alive while it is used (the
  /// KernelCache's executables live as long as the process). Thread-safe.
  CUfunction function(const Executable &kernel, const std::string &cacheDir);

  /// Cubins linked from PTX and cubins loaded from the disk cache so far.
  int64_t linked() const { return numLinked; }
  int64_t loadedFromDisk() const { return numLoaded; }

private:
  CudaDevice(const CudaDriver &cu, int ordinal);
  const CudaDriver *cu;
  int ordinal;
  CUdevice device = 0;
  CUcontext context = nullptr;
  int ccMajor = 0, ccMinor = 0, driverVersion = 0, numSMs = 0;
  bool pageable = false;
  std::string chipName;
  std::mutex mutex;
  struct Loaded {
    const char *image;
    size_t size;
    CUfunction fn;
  };
  std::unordered_map<const Executable *, Loaded> functions;
  int64_t numLinked = 0, numLoaded = 0;
};

} // namespace dqt

#endif // DQT_RUNTIME_CUDADEVICE_H
