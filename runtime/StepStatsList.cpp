//===- StepStatsList.cpp - a step's by-products, read when asked ----------===//

#include "dqt/Runtime/StepStatsList.h"

#include "dqt/Runtime/CudaLauncher.h"

namespace dqt {

StepStatsList::StepStatsList(const std::vector<StepStats> &host) {
  for (const StepStats &s : host)
    slots_.push_back(Slot{s, nullptr, 0});
}

bool StepStatsList::pending() const {
  if (cached_)
    return false;
  for (const Slot &s : slots_)
    if (s.device && !s.device->read)
      return true;
  return false;
}

void StepStatsList::append(const StepStatsList &other) {
  slots_.insert(slots_.end(), other.slots_.begin(), other.slots_.end());
  cached_.reset();
}

const std::vector<StepStats> &StepStatsList::get() const {
  if (cached_)
    return *cached_;
  std::vector<StepStats> out;
  for (const Slot &s : slots_) {
    if (!s.device) {
      out.push_back(s.host);
      continue;
    }
    DeviceStepStats &d = *s.device;
    if (!d.read)
      d.read = readStepStats(
          *d.device, d.config,
          reinterpret_cast<CUdeviceptr>(d.partials.data_ptr()), d.n, d.stream);
    out.push_back((*d.read)[s.index]);
  }
  cached_ = std::move(out);
  return *cached_;
}

} // namespace dqt
