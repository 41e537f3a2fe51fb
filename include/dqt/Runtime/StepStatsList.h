//===- StepStatsList.h - a step's by-products, read when asked --*- C++ -*-===//
//
// What an optimizer step returns: the per-parameter statistics (max q',
// changed, non-finite). A CPU step has them on the host at once; a GPU step
// leaves them in device memory, and they are copied only when read, so
// that a step never waits for the GPU.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_STEPSTATSLIST_H
#define DQT_RUNTIME_STEPSTATSLIST_H

#include "dqt/Runtime/CpuLauncher.h"
#include "dqt/Runtime/CudaDevice.h"

#include <ATen/ATen.h>

#include <memory>
#include <optional>
#include <vector>

namespace dqt {

/// The by-products of one launch on a GPU, where launchCuda wrote them.
struct DeviceStepStats {
  CudaDevice *device = nullptr;
  CUstream stream = nullptr;
  StepConfig config;
  /// int64 [3 * n] on the device (or pageable host memory the device
  /// writes): launchCuda's by-products buffer.
  at::Tensor partials;
  size_t n = 0;
  /// Filled by the first read.
  std::optional<std::vector<StepStats>> read;
};

/// Per-parameter statistics of a step, in parameter order.
class StepStatsList {
public:
  /// One parameter's statistics: on the host, or entry `index` of a GPU
  /// launch's by-products.
  struct Slot {
    StepStats host{};
    std::shared_ptr<DeviceStepStats> device;
    size_t index = 0;
  };

  StepStatsList() = default;
  explicit StepStatsList(std::vector<Slot> slots) : slots_(std::move(slots)) {}
  StepStatsList(const std::vector<StepStats> &host);

  size_t size() const { return slots_.size(); }
  const Slot &slot(size_t i) const { return slots_[i]; }
  bool empty() const { return slots_.empty(); }
  /// Whether reading the statistics waits for a GPU (some are still in
  /// device memory).
  bool pending() const;
  void append(const StepStatsList &other);

  /// The statistics, in order. The first call copies those left on a GPU
  /// to the host: one copy and one stream synchronization per launch
  /// (readStepStats), the only place a step's results wait for the GPU.
  const std::vector<StepStats> &get() const;
  operator const std::vector<StepStats> &() const { return get(); }
  const StepStats &operator[](size_t i) const { return get()[i]; }
  std::vector<StepStats>::const_iterator begin() const { return get().begin(); }
  std::vector<StepStats>::const_iterator end() const { return get().end(); }

private:
  std::vector<Slot> slots_;
  mutable std::optional<std::vector<StepStats>> cached_;
};

} // namespace dqt

#endif // DQT_RUNTIME_STEPSTATSLIST_H
