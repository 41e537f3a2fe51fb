//===- KernelPlan.h - the arguments of a step kernel ------------*- C++ -*-===//
//
// Which function becomes which kernel, with which arguments: the one place
// that decides a step kernel's argument list (the kernel ABI), for the CPU
// and the GPU lowering alike.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_PASSES_KERNELPLAN_H
#define DQT_PASSES_KERNELPLAN_H

#include "dqt/Dialect/DQT.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::dqt {

/// The buffers and scalars of one fused step inside a kernel (one segment
/// of a multi-tensor kernel), as values of the kernel being built.
struct SegmentBuffers {
  FusedStepOp op;
  /// 1-D memrefs of `ins`, `outs` (a destination that overwrites an
  /// argument is that argument's memref), `rows` and `row_outs`.
  SmallVector<Value> ins, outs, rows, rowOuts;
  /// The values of `scalars`, and the row length (i64) or null.
  SmallVector<Value> scalars;
  Value rowLength;
  /// The current row's values of `rows`, set by atRow.
  SmallVector<Value> rowValues;

  /// The memref whose length is the element count.
  Value countBuffer() const;
  /// A copy whose rowValues are the values of row `row` (index).
  SegmentBuffers atRow(OpBuilder &b, Location loc, Value row) const;
  /// The row length as an index, at least 1 (the runtime passes L >= 1;
  /// the clamp keeps a bad L from dividing by zero).
  Value rowLengthIndex(OpBuilder &b, Location loc) const;
};

/// A function of fused steps as one kernel. Its arguments (the kernel ABI,
/// docs/design.md): the function's arguments in order, each 1-D tensor as
/// a 1-D memref, each scalar as it is; then one buffer per destination that
/// is a `tensor.empty` (a function result the caller receives), step by
/// step, in destination order. Target-specific arguments come after these.
struct KernelPlan {
  /// The fused steps, in block order: the kernel's segments. They share one
  /// configuration (operand types, combiners, packing and body).
  SmallVector<FusedStepOp> steps;
  SmallVector<Type> argTypes;
  /// Per entry of `argTypes`: the function argument it is (>= 0), or
  /// -1 - r for the buffer of the function's result r. Lowerings attach it
  /// as `dqt.arg_origins`.
  SmallVector<int64_t> origins;
  /// Per step, per destination (`outs` then `row_outs`): its kernel argument.
  SmallVector<SmallVector<unsigned>> destinationArgs;
  /// Ops computing the scalars from the function arguments (cloned into the
  /// kernel).
  SmallVector<Operation *> prologue;
};

/// Whether two fused steps compile to the same code (one kernel can run
/// both as segments).
bool sameStepConfiguration(FusedStepOp a, FusedStepOp b);

/// Checks that `func` is fused steps over its arguments and plans its
/// kernel; emits a located diagnostic on failure. A function without fused
/// steps gives a plan with no steps.
FailureOr<KernelPlan> planKernel(func::FuncOp func);

/// In a kernel whose leading arguments follow `plan.argTypes`, clones the
/// scalar prologue at `b` and returns each step's buffers.
SmallVector<SegmentBuffers, 1>
materializeSegments(OpBuilder &b, const KernelPlan &plan, ValueRange args);

/// Marks `kernel` (a func.func or gpu.func) with the plan's origins.
void setArgOrigins(Operation *kernel, const KernelPlan &plan);

} // namespace mlir::dqt

#endif // DQT_PASSES_KERNELPLAN_H
