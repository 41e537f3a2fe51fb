//===- BundleWriter.h - a kernel bundle's files -----------------*- C++ -*-===//

#ifndef DQT_TOOLS_AOT_BUNDLEWRITER_H
#define DQT_TOOLS_AOT_BUNDLEWRITER_H

#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace dqt::aot {

/// One CPU kernel: object code defining `_mlir_<symbol>`.
struct CpuKernel {
  std::string key, level, symbol, object;
};

/// One GPU image of a step kernel.
struct GpuKernel {
  std::string key, chip, format; // format: "ptx" or "cubin"
  std::string data;
};

struct Bundle {
  std::string name;
  std::string compiler; // compiler version
  std::vector<CpuKernel> cpu;
  std::vector<GpuKernel> gpu;
};

/// Writes `bundle` to `dir` in its two forms, with the layout of
/// dqt/Runtime/BundleAbi.h: lib<name>.a (the kernels' objects and a manifest
/// object defining `dqt_bundle_<name>`), lib<name>.so (the same, linked by
/// the system's C compiler driver `cc`, exporting it as `dqt_bundle` too),
/// <name>.h (the declaration a trainer that links the static form includes)
/// and <name>.json (the manifest, for people and tools).
llvm::Error writeBundle(const Bundle &bundle, const std::string &dir);

} // namespace dqt::aot

#endif // DQT_TOOLS_AOT_BUNDLEWRITER_H
