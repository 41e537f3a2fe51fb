//===- Precision.cpp - dqt-train's training environments ------------------===//

#include "Precision.h"

#include <ATen/autocast_mode.h>
#include <c10/util/Exception.h>

namespace dqt::train {

Precision precisionFromName(const std::string &name, const char *who) {
  if (name == "fp32")
    return Precision::Fp32;
  if (name == "bf16")
    return Precision::Bf16;
  if (name == "fp8")
    return Precision::Fp8;
  TORCH_CHECK(false, who, " must be fp32, bf16 or fp8, got '", name, "'");
}

AutocastGuard::AutocastGuard(Precision precision, at::Device device)
    : active_(precision != Precision::Fp32), device_(device.type()) {
  if (!active_)
    return;
  wasEnabled_ = at::autocast::is_autocast_enabled(device_);
  oldDtype_ = at::autocast::get_autocast_dtype(device_);
  at::autocast::set_autocast_enabled(device_, true);
  at::autocast::set_autocast_dtype(device_, at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_)
    return;
  // As torch.autocast's __exit__: the outermost exit drops the cast cache.
  if (at::autocast::decrement_nesting() == 0)
    at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_, wasEnabled_);
  at::autocast::set_autocast_dtype(device_, oldDtype_);
}

} // namespace dqt::train
