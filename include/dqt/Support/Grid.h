//===- Grid.h - the integer grid of a quantized weight ----------*- C++ -*-===//
//
// The one definition of the grid bounds, shared by the dialect
// (#dqt.grid), the compiler's StepConfig and the runtime's Grid. Plain C++:
// the runtime includes it without MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_SUPPORT_GRID_H
#define DQT_SUPPORT_GRID_H

#include <cstdint>

namespace dqt {

/// The integer range [qn, qp] a quantized weight lives in.
struct GridBounds {
  int64_t qn;
  int64_t qp;
};

/// The bounds of a `bits`-bit grid (bits in [2, 8]): [-2^(b-1), 2^(b-1)-1];
/// ternary (1.58 bits): [-1, 1] whatever `bits` says (docs/numerics.md).
constexpr GridBounds gridBounds(int64_t bits, bool ternary) {
  if (ternary)
    return {-1, 1};
  return {-(int64_t(1) << (bits - 1)), (int64_t(1) << (bits - 1)) - 1};
}

/// The bit widths a grid may have; ternary grids are stored in 2 bits.
constexpr int64_t kMinGridBits = 2, kMaxGridBits = 8;

} // namespace dqt

#endif // DQT_SUPPORT_GRID_H
