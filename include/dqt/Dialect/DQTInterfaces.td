//===- DQTInterfaces.td - interfaces of the dqt ops ---------*- tablegen -*-===//
//
// The two op interfaces dqt-fuse-step is built on: elementwise ops emit their
// per-element math, reductions their per-element contribution and combiner.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_INTERFACES
#define DQT_INTERFACES

include "mlir/IR/OpBase.td"

def DQT_ElementwiseOpInterface : OpInterface<"ElementwiseOpInterface"> {
  let description = [{
    An op on 1-D tensors whose results, element by element, depend only on
    the same element of its tensor operands and on its scalar operands. It
    knows how to emit its per-element math as `arith`/`math` ops: this is the
    single place where the step's math is written, shared by the CPU and GPU
    lowerings.
  }];
  let cppNamespace = "::mlir::dqt";
  let methods = [
    InterfaceMethod<[{
        Emits the scalar computation of one element. `operands` holds, in
        operand order, the element value of each tensor operand and the value
        of each scalar operand. Returns one scalar per result.
      }],
      "::llvm::SmallVector<::mlir::Value>", "buildScalar",
      (ins "::mlir::OpBuilder &":$b, "::mlir::Location":$loc,
           "::mlir::ValueRange":$operands)>,
    InterfaceMethod<[{
        For an in-place update, the operand that result `resultIdx` is the new
        value of (so a kernel may write it into the same buffer), or
        std::nullopt.
      }],
      "std::optional<unsigned>", "getUpdatedOperand",
      (ins "unsigned":$resultIdx), "",
      [{ return std::nullopt; }]>,
  ];
}

def DQT_ReductionOpInterface : OpInterface<"ReductionOpInterface"> {
  let description = [{
    A reduction of 1-D tensors to one integer scalar, computed as a by-product
    of a fused step: each element contributes `buildContribution(...)`,
    combined with `getCombiner()` (max or add, both exact on integers so any
    chunking or thread count gives the same result).
  }];
  let cppNamespace = "::mlir::dqt";
  let methods = [
    InterfaceMethod<"Emits one element's contribution.",
      "::mlir::Value", "buildContribution",
      (ins "::mlir::OpBuilder &":$b, "::mlir::Location":$loc,
           "::mlir::ValueRange":$elements)>,
    InterfaceMethod<"How contributions combine: signed max or sum.",
      "::mlir::dqt::CombiningKind", "getCombiner">,
  ];
}

#endif // DQT_INTERFACES
