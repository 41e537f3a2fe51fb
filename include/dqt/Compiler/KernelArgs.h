//===- KernelArgs.h - packing arguments for generated kernels ---*- C++ -*-===//
//
// A generated kernel's arguments in MLIR's packed calling convention (memref
// descriptors and scalars behind one void **), for the CPU entry point and
// cuLaunchKernel alike.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_COMPILER_KERNELARGS_H
#define DQT_COMPILER_KERNELARGS_H

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace dqt {

/// MLIR's descriptor of a 1-D memref, as generated kernels take it.
struct MemRef1D {
  void *allocated;
  void *aligned;
  int64_t offset;
  int64_t size;
  int64_t stride;
};

/// Arguments of a generated kernel in MLIR's packed form: a memref expands to
/// its five descriptor fields, a scalar is itself; `data()` is the `void **`
/// the packed entry point (or cuLaunchKernel) takes.
class KernelArgs {
public:
  /// Appends a contiguous 1-D buffer of `size` elements.
  void addBuffer(void *data, int64_t size) {
    MemRef1D &r = memrefs.emplace_back(MemRef1D{data, data, 0, size, 1});
    ptrs.insert(ptrs.end(),
                {&r.allocated, &r.aligned, &r.offset, &r.size, &r.stride});
  }
  template <typename T> void addScalar(T v) {
    static_assert(sizeof(T) <= sizeof(uint64_t), "scalar too wide");
    Slot &s = scalars.emplace_back();
    *reinterpret_cast<T *>(s.bytes) = v;
    ptrs.push_back(s.bytes);
  }
  void **data() { return ptrs.data(); }
  size_t size() const { return ptrs.size(); }

private:
  struct Slot {
    alignas(8) unsigned char bytes[8];
  };
  // Deques keep element addresses stable while growing.
  std::deque<MemRef1D> memrefs;
  std::deque<Slot> scalars;
  std::vector<void *> ptrs;
};

} // namespace dqt

#endif // DQT_COMPILER_KERNELARGS_H
