//===- DQTAttrs.td - attributes and enums of dqt -------------*- tablegen -*-===//
//
// The grid of a quantized weight and the kinds a fused step is made of,
// as typed attributes (never strings or flags).
//
//===----------------------------------------------------------------------===//

#ifndef DQT_ATTRS
#define DQT_ATTRS

include "DQTDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def DQT_GridAttr : AttrDef<DQT_Dialect, "Grid"> {
  let mnemonic = "grid";
  let summary = "The integer grid of a quantized weight";
  let description = [{
    `#dqt.grid<b>` is the `b`-bit grid (`b` in [2, 8]):
    `Qn = -2^(b-1)`, `Qp = 2^(b-1) - 1`. `#dqt.grid<ternary>` is BitNet's
    1.58-bit grid, `Qn = -1`, `Qp = 1`, stored in 2 bits. The bounds are
    computed in one place (`dqt/Support/Grid.h`) for the dialect, the
    compiler's `StepConfig` and the runtime.
  }];
  let parameters = (ins "int64_t":$bits, "bool":$ternary);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let builders = [
    AttrBuilder<(ins "int64_t":$bits), [{
      return $_get($_ctxt, bits, false);
    }]>,
  ];
  let extraClassDeclaration = [{
    /// The ternary grid.
    static GridAttr getTernaryGrid(::mlir::MLIRContext *ctx) {
      return get(ctx, 2, true);
    }
    ::dqt::GridBounds getBounds() const {
      return ::dqt::gridBounds(getBits(), getTernary());
    }
    int64_t getQn() const { return getBounds().qn; }
    int64_t getQp() const { return getBounds().qp; }
  }];
}

def DQT_CombiningKind : I32EnumAttr<"CombiningKind",
    "How a fused step combines the contributions of its elements",
    [I32EnumAttrCase<"maxsi", 0>, I32EnumAttrCase<"addi", 1>]> {
  let cppNamespace = "::mlir::dqt";
  let genSpecializedAttr = 0;
}

/// `#dqt.combiner<maxsi>` or `#dqt.combiner<addi>`: signed maximum or sum,
/// both exact on integers, so any chunking or thread count gives the same
/// result (as vector::CombiningKindAttr, for the by-products of a step).
def DQT_CombiningKindAttr : EnumAttr<DQT_Dialect, DQT_CombiningKind,
                                     "combiner"> {
  let assemblyFormat = "`<` $value `>`";
}
def DQT_CombiningKindArrayAttr
    : TypedArrayAttrBase<DQT_CombiningKindAttr, "combining kinds">;

/// `weight`: the uniforms that round the weights; `state0`, `state1`: the
/// bits that round the first and second bf16 optimizer state
/// (docs/numerics.md). Printed as the bare keyword in `dqt.philox_bits`.
def DQT_RandomStreamAttr : I32EnumAttr<"RandomStream",
    "The Philox stream random bits come from",
    [I32EnumAttrCase<"weight", 0>, I32EnumAttrCase<"state0", 1>,
     I32EnumAttrCase<"state1", 2>]> {
  let cppNamespace = "::mlir::dqt";
}

/// The rule that picks the next step's delta (docs/numerics.md, "Scale
/// rules"): the paper's `maxq`, or `absmax`.
def DQT_ScaleRule : I32EnumAttr<"ScaleRule",
    "How the next step's delta is chosen",
    [I32EnumAttrCase<"maxq", 0>, I32EnumAttrCase<"absmax", 1>]> {
  let cppNamespace = "::mlir::dqt";
  let genSpecializedAttr = 0;
}
/// `#dqt.scale_rule<absmax>`; printed as `<absmax>` after `rule` in
/// `dqt.next_delta`.
def DQT_ScaleRuleAttr : EnumAttr<DQT_Dialect, DQT_ScaleRule, "scale_rule"> {
  let assemblyFormat = "`<` $value `>`";
}

#endif // DQT_ATTRS
