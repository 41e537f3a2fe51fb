//===- DQTDialect.td - Direct Quantized Training dialect ---*- tablegen -*-===//
//
// The dqt dialect: its namespace, dependent dialects and the discardable
// attributes it declares.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_DIALECT
#define DQT_DIALECT

include "mlir/IR/OpBase.td"

def DQT_Dialect : Dialect {
  let name = "dqt";
  let summary = "Optimizer steps on weights that exist only as n-bit integers";
  let description = [{
    The `dqt` dialect expresses Direct Quantized Training (DQT) optimizer
    steps: weights are integer tensors `q` with a per-tensor step `delta`, and
    every step writes the updated value back to the integer grid with
    stochastic rounding. High-level ops (`dqt.dequantize`, `dqt.adam_moments`,
    `dqt.adam_apply`, `dqt.stochastic_round`, ...) describe one parameter's
    step on 1-D tensors; `dqt-fuse-step` turns a chain of them (and all
    parameters of one configuration) into a single `dqt.fused_step` whose body
    is scalar code, which `dqt-lower-to-cpu` and `dqt-lower-to-gpu` turn into
    one kernel.

    Numerics follow the project's contract (docs/numerics.md) bit for bit.
  }];
  let cppNamespace = "::mlir::dqt";
  // Fused bodies hold scalar arith/math code.
  let dependentDialects = ["arith::ArithDialect", "math::MathDialect"];
  // #dqt.grid, #dqt.combiner, #dqt.stream.
  let useDefaultAttributePrinterParser = 1;
  // The attributes the passes and tools put on ops of other dialects.
  let discardableAttrs = (ins
    // On a module built by the compiler library: its configuration's
    // kernel cache key ("adamw-b8-gf32-sf32"), so a dump says what it is.
    "::mlir::StringAttr":$config,
    // On a lowered kernel (func.func or gpu.func): per kernel argument, the
    // argument of the step function it comes from (>= 0), or -1 - r for the
    // buffer of the function's result r (a destination that was not a
    // function argument). The compiler library checks it against the declared kernel
    // ABI (dqt/Compiler/KernelAbi.h).
    "::mlir::DenseI64ArrayAttr":$arg_origins
  );
  let hasOperationAttrVerify = 1;
  let extraClassDeclaration = [{
    void registerAttributes();
  }];
}

class DQT_Op<string mnemonic, list<Trait> traits = []> :
    Op<DQT_Dialect, mnemonic, traits>;

#endif // DQT_DIALECT
