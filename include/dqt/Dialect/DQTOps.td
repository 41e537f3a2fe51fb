//===- DQTOps.td - dqt dialect ops -------------------------*- tablegen -*-===//
//
// Tensor-level ops describe one parameter's optimizer step on 1-D tensors
// (weights are flattened, as optimizers see them). The elementwise ones
// implement ElementwiseOpInterface, the by-product reductions
// ReductionOpInterface; `dqt-fuse-step` folds both into `dqt.fused_step`.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_OPS
#define DQT_OPS

include "DQTDialect.td"
include "DQTAttrs.td"
include "DQTInterfaces.td"
include "mlir/Interfaces/DestinationStyleOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/OpBase.td"
include "mlir/IR/SymbolInterfaces.td"

def DQT_FloatTensor : 1DTensorOf<[F32]>;
def DQT_IntTensor : 1DTensorOf<[I8]>;
// An optimizer state as stored: f32, or bf16 (widened exactly to f32).
def DQT_StateTensor : 1DTensorOf<[F32, BF16]>;
def DQT_BF16Tensor : 1DTensorOf<[BF16]>;
def DQT_BitsTensor : 1DTensorOf<[I32]>;
def DQT_AnyTensor1D : 1DTensorOf<[AnyType]>;
// What a fused step's body reads as it is.
def DQT_Scalar : AnyTypeOf<[AnySignlessInteger, AnyFloat, Index]>;
// A step delta: one f32 for the tensor, or one per element (a per-row delta
// spread over its rows by dqt.expand_rows).
def DQT_Delta : AnyTypeOf<[F32, DQT_FloatTensor]>;

// The f32 tensor of the same shape as a state tensor ($_self).
defvar DQT_AsF32 =
    "::mlir::RankedTensorType::get(::llvm::cast<::mlir::ShapedType>($_self)"
    ".getShape(), ::mlir::Float32Type::get($_self.getContext()))";


def DQT_QuantizeOp : DQT_Op<"quantize", [Pure]> {
  let summary = "Quantize a float weight to the integer grid (initialization)";
  let description = [{
    The initialization of a DQT weight from a float tensor `W`, as the
    official code does it:
    `s = Qp / max(mean|W|, 1e-5)`, `q = clamp(round_half_even(W*s), Qn, Qp)`,
    `delta = 1/s`, on the grid `#dqt.grid<b>` (`Qn = -2^(b-1)`,
    `Qp = 2^(b-1)-1`) or `#dqt.grid<ternary>` (`Qn = -1`, `Qp = 1`).

    ```mlir
    %q, %delta = dqt.quantize %w grid<8> : tensor<?xf32> -> tensor<?xi8>, f32
    ```
  }];
  let arguments = (ins DQT_FloatTensor:$weight, DQT_GridAttr:$grid);
  let results = (outs DQT_IntTensor:$q, F32:$delta);
  let assemblyFormat = [{
    $weight `grid` `` $grid attr-dict `:` type($weight) `->` type($q) `,`
    type($delta)
  }];
  let hasVerifier = 1;
}

def DQT_DequantizeOp : DQT_Op<"dequantize",
    [Pure, DeclareOpInterfaceMethods<DQT_ElementwiseOpInterface>]> {
  let summary = "Real value of a quantized weight: q * delta";
  let description = [{
    `delta` is the tensor's step, or a tensor of one step per element (a
    per-row delta spread by `dqt.expand_rows`).

    ```mlir
    %w = dqt.dequantize %q, %delta : tensor<?xi8>, f32 -> tensor<?xf32>
    %wr = dqt.dequantize %q, %dr : tensor<?xi8>, tensor<?xf32> -> tensor<?xf32>
    ```
  }];
  let arguments = (ins DQT_IntTensor:$q, DQT_Delta:$delta);
  let results = (outs DQT_FloatTensor:$result);
  let assemblyFormat = [{
    $q `,` $delta attr-dict `:` type($q) `,` type($delta) `->` type($result)
  }];
  let hasVerifier = 1;
}

def DQT_AdamMomentsOp : DQT_Op<"adam_moments",
    [Pure,
     TypesMatchWith<"new_exp_avg is exp_avg in f32", "exp_avg", "new_exp_avg",
                    DQT_AsF32>,
     TypesMatchWith<"new_exp_avg_sq is exp_avg_sq in f32", "exp_avg_sq",
                    "new_exp_avg_sq", DQT_AsF32>,
     DeclareOpInterfaceMethods<DQT_ElementwiseOpInterface,
                                    ["getUpdatedOperand"]>]> {
  let summary = "Adam first and second moments";
  let description = [{
    `m' = beta1*m + (1-beta1)*g`, `v' = beta2*v + (1-beta2)*(g*g)`, in f32
    with `1-beta` computed in f32. The states may be stored as bf16: they
    are then widened exactly to f32 (the bf16 bits are the high half of the
    f32's); the new moments are f32 either way (`dqt.stochastic_round_bf16`
    stores them back).

    ```mlir
    %m1, %v1 = dqt.adam_moments %g, %m, %v, %beta1, %beta2
        : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
    %n1, %w1 = dqt.adam_moments %g, %mb, %vb, %beta1, %beta2
        : tensor<?xf32>, tensor<?xbf16>, tensor<?xbf16>
    ```
  }];
  let arguments = (ins DQT_FloatTensor:$grad, DQT_StateTensor:$exp_avg,
                       DQT_StateTensor:$exp_avg_sq, F32:$beta1, F32:$beta2);
  let results = (outs DQT_FloatTensor:$new_exp_avg,
                      DQT_FloatTensor:$new_exp_avg_sq);
  let assemblyFormat = [{
    $grad `,` $exp_avg `,` $exp_avg_sq `,` $beta1 `,` $beta2 attr-dict `:`
    type($grad) `,` type($exp_avg) `,` type($exp_avg_sq)
  }];
  let builders = [
    OpBuilder<(ins "Value":$grad, "Value":$expAvg, "Value":$expAvgSq,
                   "Value":$beta1, "Value":$beta2), [{
      build($_builder, $_state, asF32Tensor(expAvg.getType()),
            asF32Tensor(expAvgSq.getType()), grad, expAvg, expAvgSq, beta1,
            beta2);
    }]>];
  let hasVerifier = 1;
}

def DQT_AdamApplyOp : DQT_Op<"adam_apply",
    [Pure, DeclareOpInterfaceMethods<DQT_ElementwiseOpInterface>]> {
  let summary = "AdamW weight update with decoupled weight decay";
  let description = [{
    `w1 = w - alpha*(m/(sqrt(v)+eps))`, then `w2 = w1 - decay*w1`, where
    `alpha = lr*sqrt(1-beta2^t)/(1-beta1^t)` and `decay = lr*lambda` are
    computed by the host (HuggingFace AdamW order, as in the official code).

    ```mlir
    %w2 = dqt.adam_apply %w, %m1, %v1, %alpha, %eps, %decay
        : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
    ```
  }];
  let arguments = (ins DQT_FloatTensor:$weight, DQT_FloatTensor:$exp_avg,
                       DQT_FloatTensor:$exp_avg_sq, F32:$alpha, F32:$eps,
                       F32:$decay);
  let results = (outs DQT_FloatTensor:$result);
  let assemblyFormat = [{
    $weight `,` $exp_avg `,` $exp_avg_sq `,` $alpha `,` $eps `,` $decay
    attr-dict `:` type($weight) `,` type($exp_avg) `,` type($exp_avg_sq)
    `->` type($result)
  }];
  let hasVerifier = 1;
}

def DQT_SgdMomentumOp : DQT_Op<"sgd_momentum",
    [Pure, AllTypesMatch<["weight", "result"]>,
     TypesMatchWith<"new_momentum_buffer is momentum_buffer in f32",
                    "momentum_buffer", "new_momentum_buffer", DQT_AsF32>,
     DeclareOpInterfaceMethods<DQT_ElementwiseOpInterface,
                                    ["getUpdatedOperand"]>]> {
  let summary = "SGD with momentum and decoupled weight decay";
  let description = [{
    `buf' = momentum*buf + g`, `w1 = w - lr*buf'`, `w2 = w1 - decay*w1`.
    A bf16 `buf` is widened exactly to f32; `buf'` is f32.

    ```mlir
    %w2, %b1 = dqt.sgd_momentum %w, %g, %buf, %lr, %mu, %decay
        : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
    ```
  }];
  let arguments = (ins DQT_FloatTensor:$weight, DQT_FloatTensor:$grad,
                       DQT_StateTensor:$momentum_buffer, F32:$lr,
                       F32:$momentum, F32:$decay);
  let results = (outs DQT_FloatTensor:$result,
                      DQT_FloatTensor:$new_momentum_buffer);
  let assemblyFormat = [{
    $weight `,` $grad `,` $momentum_buffer `,` $lr `,` $momentum `,` $decay
    attr-dict `:` type($weight) `,` type($grad) `,` type($momentum_buffer)
  }];
  let builders = [
    OpBuilder<(ins "Value":$weight, "Value":$grad, "Value":$buf,
                   "Value":$lr, "Value":$momentum, "Value":$decay), [{
      build($_builder, $_state, weight.getType(), asF32Tensor(buf.getType()),
            weight, grad, buf, lr, momentum, decay);
    }]>];
  let hasVerifier = 1;
}

def DQT_UniformOp : DQT_Op<"uniform", [Pure]> {
  let summary = "Philox4x32-10 uniform stream u in (0, 1)";
  let description = [{
    Element `i` is `(h_i + 0.5) * 2^-16` (numerics contract v2,
    docs/numerics.md): `h_i` is the low (even `i`) or high (odd `i`) half of
    word `(i mod 8) div 2` of Philox4x32-10 with key `(seed lo, seed hi)` and
    counter `(j lo, j hi, step, tensor_id)`, `j = i div 8`. The stream
    depends only on (seed, step, tensor, element). `like` gives the shape
    only.

    ```mlir
    %u = dqt.uniform %seed, %step, %tid like %g : tensor<?xf32> -> tensor<?xf32>
    ```
  }];
  let arguments = (ins I64:$seed, I64:$step, I64:$tensor_id,
                       AnyTypeOf<[DQT_FloatTensor, DQT_IntTensor]>:$like);
  let results = (outs DQT_FloatTensor:$result);
  let assemblyFormat = [{
    $seed `,` $step `,` $tensor_id `like` $like attr-dict `:` type($like)
    `->` type($result)
  }];
  let hasVerifier = 1;
}

def DQT_StochasticRoundOp : DQT_Op<"stochastic_round",
    [Pure, DeclareOpInterfaceMethods<DQT_ElementwiseOpInterface>]> {
  let summary = "Unbiased stochastic rounding of x/delta to the integer grid";
  let description = [{
    With `x = value/delta`: `Qp` if `x >= Qp`, `Qn` if `x <= Qn`, otherwise
    `floor(x) + (u < x - floor(x) ? 1 : 0)`. A NaN `x` (only reachable when
    states overflow) rounds to 0. `E[q*delta] = value` inside the grid, and the variance
    is at most `delta^2/4`. `delta` is one f32 for the tensor or one per
    element (a per-row delta through `dqt.expand_rows`); either way
    `x = value * (1/delta)` (docs/numerics.md).

    ```mlir
    %q1 = dqt.stochastic_round %w2, %delta1, %u grid<8>
        : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
    ```
  }];
  let arguments = (ins DQT_FloatTensor:$value, DQT_Delta:$delta,
                       DQT_FloatTensor:$uniform, DQT_GridAttr:$grid);
  let results = (outs DQT_IntTensor:$result);
  let assemblyFormat = [{
    $value `,` $delta `,` $uniform `grid` `` $grid attr-dict `:`
    type($value) `,` type($delta) `,` type($uniform) `->` type($result)
  }];
  let hasVerifier = 1;
}

def DQT_RandomBitsOp : DQT_Op<"random_bits", [Pure]> {
  let summary = "The state streams: 2 x 16 random bits per element";
  let description = [{
    Element `i` is `h_i(state0) | h_i(state1) << 16`: the 16 bits of
    element `i` (docs/numerics.md, contract v2) in the two state streams,
    whose counters are those of `dqt.uniform` with `0x80000000` and
    `0xC0000000` ORed into the second word. Element indices are below 2^63,
    so `j hi` is below 2^28 and no two streams share a Philox block (for any
    tensor id and step): they are independent. The low half rounds the first
    optimizer state, the high half the second (`dqt.stochastic_round_bf16`
    with shift 0 or 16), never the weights. `like` gives the shape only.

    ```mlir
    %r = dqt.random_bits %seed, %step, %tid like %g : tensor<?xf32> -> tensor<?xi32>
    ```
  }];
  let arguments = (ins I64:$seed, I64:$step, I64:$tensor_id,
                       AnyTypeOf<[DQT_FloatTensor, DQT_IntTensor]>:$like);
  let results = (outs DQT_BitsTensor:$result);
  let assemblyFormat = [{
    $seed `,` $step `,` $tensor_id `like` $like attr-dict `:` type($like)
    `->` type($result)
  }];
  let hasVerifier = 1;
}

def DQT_StochasticRoundBF16Op : DQT_Op<"stochastic_round_bf16",
    [Pure, DeclareOpInterfaceMethods<DQT_ElementwiseOpInterface>]> {
  let summary = "Unbiased stochastic rounding of f32 to bf16";
  let description = [{
    With `b` the f32 bits of `value` and `r = (random >> shift) & 0xffff`
    (`shift` 0 or 16: the low or high half of the random word, so two states
    can share one word with independent bits): the bf16 with bits
    `(b + r) >> 16`. The 16 bits dropped by truncation are the fraction
    between the two neighbouring bf16 values, so the result rounds up with
    probability exactly that fraction: `E[result] = value`. `+-inf` stays
    `+-inf`; finite values beyond the largest bf16 round to `+-inf` with the
    probability of rounding up; NaN becomes the quiet NaN
    `(b >> 16) | 0x0040` (sign kept).

    ```mlir
    %mb = dqt.stochastic_round_bf16 %m1, %r {shift = 0}
        : tensor<?xf32>, tensor<?xi32> -> tensor<?xbf16>
    ```
  }];
  let arguments = (ins DQT_FloatTensor:$value, DQT_BitsTensor:$random,
                       I64Attr:$shift);
  let results = (outs DQT_BF16Tensor:$result);
  let assemblyFormat = [{
    $value `,` $random attr-dict `:` type($value) `,` type($random) `->`
    type($result)
  }];
  let builders = [
    OpBuilder<(ins "Type":$result, "Value":$value, "Value":$random,
                   "int64_t":$shift), [{
      build($_builder, $_state, result, value, random,
            $_builder.getI64IntegerAttr(shift));
    }]>];
  let hasVerifier = 1;
}

def DQT_UnpackTernaryOp : DQT_Op<"unpack_ternary", [Pure]> {
  let summary = "Ternary weights from packed storage, 4 per byte";
  let description = [{
    Element `i` is bits `2*(i mod 4)` and `2*(i mod 4)+1` of byte `i div 4`
    of `packed`, a two's-complement 2-bit code: `0b00` = 0, `0b01` = 1,
    `0b11` = -1; `0b10` (never written) reads as -2, which the next rounding
    clamps into the grid. `like` gives the element count `n` (the packed
    tensor has `ceil(n/4)` bytes). Only `dqt-fuse-step` consumes it: the
    fused kernel reads each byte once and unpacks in registers.

    ```mlir
    %q = dqt.unpack_ternary %p like %g : tensor<?xi8>, tensor<?xf32> -> tensor<?xi8>
    ```
  }];
  let arguments = (ins DQT_IntTensor:$packed,
                       AnyTypeOf<[DQT_FloatTensor, DQT_IntTensor]>:$like);
  let results = (outs DQT_IntTensor:$result);
  let assemblyFormat = [{
    $packed `like` $like attr-dict `:` type($packed) `,` type($like) `->`
    type($result)
  }];
  let hasVerifier = 1;
}

def DQT_PackTernaryOp : DQT_Op<"pack_ternary", [Pure]> {
  let summary = "Ternary weights to packed storage, 4 per byte";
  let description = [{
    The inverse of `dqt.unpack_ternary`: element `i` (in [-1, 1]) goes to
    bits `2*(i mod 4)`.. of byte `i div 4` as its low two bits; the unused
    bits of the last byte are 0. Only `dqt-fuse-step` consumes it, and its
    result must be the new value of a packed weight (written in place).

    ```mlir
    %p1 = dqt.pack_ternary %q1 : tensor<?xi8> -> tensor<?xi8>
    ```
  }];
  let arguments = (ins DQT_IntTensor:$q);
  let results = (outs DQT_IntTensor:$result);
  let assemblyFormat = "$q attr-dict `:` type($q) `->` type($result)";
  let hasVerifier = 1;
}

def DQT_MaskedTensor
    : AnyTypeOf<[DQT_FloatTensor, DQT_IntTensor, DQT_BF16Tensor]>;

def DQT_MaskNonFiniteOp : DQT_Op<"mask_nonfinite",
    [Pure, AllTypesMatch<["new_value", "old_value", "result"]>,
     DeclareOpInterfaceMethods<DQT_ElementwiseOpInterface,
                               ["getUpdatedOperand"]>]> {
  let summary = "Keep the old value where the gradient is not finite";
  let description = [{
    `result[i] = isfinite(grad[i]) ? new[i] : old[i]`: a non-finite gradient
    element never reaches weights or states. The result is the new value of
    `old` (a kernel writes it in place).

    ```mlir
    %q2 = dqt.mask_nonfinite %g, %q1, %q : tensor<?xf32>, tensor<?xi8>
    ```
  }];
  let arguments = (ins DQT_FloatTensor:$grad,
                       DQT_MaskedTensor:$new_value, DQT_MaskedTensor:$old_value);
  let results = (outs DQT_MaskedTensor:$result);
  let assemblyFormat = [{
    $grad `,` $new_value `,` $old_value attr-dict `:` type($grad) `,`
    type($new_value)
  }];
  let hasVerifier = 1;
}

def DQT_NextDeltaOp : DQT_Op<"next_delta", [Pure]> {
  let summary = "The step size of the next grid, by a scale rule";
  let description = [{
    The paper's rule (`maxq`, the default): `delta' = maxq*delta/Qp` if
    `maxq > 0`, else `delta` (f32, in that order). `maxq` is the signed
    maximum of the integers before the step (the previous step's
    `dqt.reduce_max`), an i8.

    The `absmax` rule: `delta' = a/Qp` if `0 < a < inf`, else `delta`, where
    `a` is the previous step's `dqt.reduce_absmax` (the bits of an f32 in an
    i32). 2..8-bit grids only (docs/numerics.md, "Scale rules").

    ```mlir
    %d1 = dqt.next_delta %delta, %maxq grid<8>
    %d2 = dqt.next_delta %delta, %amax grid<8> rule<absmax>
    ```
  }];
  let arguments = (ins F32:$delta, AnyTypeOf<[I8, I32]>:$max_q,
                       DQT_GridAttr:$grid,
                       DefaultValuedAttr<DQT_ScaleRuleAttr,
                                         "ScaleRule::maxq">:$rule);
  let results = (outs F32:$result);
  let assemblyFormat = [{
    $delta `,` $max_q `grid` `` $grid (`rule` `` $rule^)? attr-dict
    `` custom<MaxQType>(type($max_q))
  }];
  let hasVerifier = 1;
}

def DQT_PhiloxWord : AnyTypeOf<[I32, VectorOfRankAndType<[1], [I32]>]>;

def DQT_PhiloxOp : DQT_Op<"philox", [Pure,
    AllTypesMatch<["key0", "key1", "ctr0", "ctr1", "ctr2", "ctr3",
                   "r0", "r1", "r2", "r3"]>]> {
  let summary = "Philox4x32 block: four 32-bit words from key and counter";
  let description = [{
    The counter-based generator of Salmon et al. (2011) with the constants of
    Random123 and PyTorch's PhiloxRNGEngine. `dqt-expand-rng` expands it into
    `arith` integer ops. On `vector<Nxi32>` operands it computes N
    independent blocks (lane by lane); the type is printed only then.

    ```mlir
    %r:4 = dqt.philox key(%k0, %k1) counter(%c0, %c1, %c2, %c3)
    %v:4 = dqt.philox key(%a, %b) counter(%c, %d, %e, %f) : vector<8xi32>
    ```
  }];
  let arguments = (ins DQT_PhiloxWord:$key0, DQT_PhiloxWord:$key1,
                       DQT_PhiloxWord:$ctr0, DQT_PhiloxWord:$ctr1,
                       DQT_PhiloxWord:$ctr2, DQT_PhiloxWord:$ctr3,
                       DefaultValuedAttr<I64Attr, "10">:$rounds);
  let results = (outs DQT_PhiloxWord:$r0, DQT_PhiloxWord:$r1,
                      DQT_PhiloxWord:$r2, DQT_PhiloxWord:$r3);
  let assemblyFormat = [{
    `key` `(` $key0 `,` $key1 `)` `counter` `(` $ctr0 `,` $ctr1 `,` $ctr2 `,`
    $ctr3 `)` attr-dict `` custom<WordType>(type($key0))
  }];
  let hasVerifier = 1;
}

def DQT_ReduceMaxOp : DQT_Op<"reduce_max",
    [Pure, DeclareOpInterfaceMethods<DQT_ReductionOpInterface>]> {
  let summary = "Signed maximum of the integer weights";
  let description = [{
    ```mlir
    %mx = dqt.reduce_max %q1 : tensor<?xi8> -> i8
    ```
  }];
  let arguments = (ins DQT_IntTensor:$input);
  let results = (outs I8:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def DQT_CountChangedOp : DQT_Op<"count_changed",
    [Pure, DeclareOpInterfaceMethods<DQT_ReductionOpInterface>]> {
  let summary = "Number of elements where two integer tensors differ";
  let description = [{
    The paper's "percentage of updated weights" numerator.

    ```mlir
    %n = dqt.count_changed %q, %q1 : tensor<?xi8>, tensor<?xi8> -> i64
    ```
  }];
  let arguments = (ins DQT_IntTensor:$before, DQT_IntTensor:$after);
  let results = (outs I64:$result);
  let assemblyFormat = [{
    $before `,` $after attr-dict `:` type($before) `,` type($after) `->`
    type($result)
  }];
  let hasVerifier = 1;
}

def DQT_CountNonFiniteOp : DQT_Op<"count_nonfinite",
    [Pure, DeclareOpInterfaceMethods<DQT_ReductionOpInterface>]> {
  let summary = "Number of NaN or infinite elements";
  let description = [{
    ```mlir
    %n = dqt.count_nonfinite %g : tensor<?xf32> -> i64
    ```
  }];
  let arguments = (ins DQT_FloatTensor:$input);
  let results = (outs I64:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def DQT_ExpandRowsOp : DQT_Op<"expand_rows", [Pure]> {
  let summary = "A per-row value spread over the elements of its row";
  let description = [{
    Element `i` of the result is `rows[i div row_length]`: the per-output-row
    step delta of a weight flattened row by row (docs/numerics.md,
    "Per-row scale"). `like` gives the shape only. Inside a fused step the row
    value is read once per row, not per element.

    ```mlir
    %d = dqt.expand_rows %delta_rows, %row_length like %q
        : tensor<?xf32>, tensor<?xi8> -> tensor<?xf32>
    ```
  }];
  let arguments = (ins DQT_FloatTensor:$rows, I64:$row_length,
                       AnyTypeOf<[DQT_FloatTensor, DQT_IntTensor]>:$like);
  let results = (outs DQT_FloatTensor:$result);
  let assemblyFormat = [{
    $rows `,` $row_length `like` $like attr-dict `:` type($rows) `,`
    type($like) `->` type($result)
  }];
  let hasVerifier = 1;
}

def DQT_ReduceMaxRowsOp : DQT_Op<"reduce_max_rows",
    [Pure, DeclareOpInterfaceMethods<DQT_ReductionOpInterface>]> {
  let summary = "Signed maximum of each row of the integer weights";
  let description = [{
    Element `r` of the result is the maximum of elements
    `[r*row_length, (r+1)*row_length)` of `input`: the next step's per-row
    `maxq`. It is i32, the narrowest integer a GPU atomic max takes.

    ```mlir
    %mx = dqt.reduce_max_rows %q1, %row_length : tensor<?xi8> -> tensor<?xi32>
    ```
  }];
  let arguments = (ins DQT_IntTensor:$input, I64:$row_length);
  let results = (outs 1DTensorOf<[I32]>:$result);
  let assemblyFormat = [{
    $input `,` $row_length attr-dict `:` type($input) `->` type($result)
  }];
}

def DQT_ReduceAbsMaxOp : DQT_Op<"reduce_absmax",
    [Pure, DeclareOpInterfaceMethods<DQT_ReductionOpInterface>]> {
  let summary = "Largest magnitude of f32 values, as the bits of an f32";
  let description = [{
    The by-product of the absmax scale rule (docs/numerics.md, "Scale
    rules"): the maximum of `|x|` over the elements, NaN counting as 0,
    returned as the bits of that f32 in an i32. Non-negative floats order as
    their bits do, so it is an exact signed integer maximum (any chunking or
    thread count gives the same bits, and a GPU combines it with an atomic
    max).

    ```mlir
    %a = dqt.reduce_absmax %w2 : tensor<?xf32> -> i32
    ```
  }];
  let arguments = (ins DQT_FloatTensor:$input);
  let results = (outs I32:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def DQT_ReduceAbsMaxRowsOp : DQT_Op<"reduce_absmax_rows",
    [Pure, DeclareOpInterfaceMethods<DQT_ReductionOpInterface>]> {
  let summary = "Largest magnitude of each row, as the bits of an f32";
  let description = [{
    `dqt.reduce_absmax` of each row `[r*row_length, (r+1)*row_length)`: the
    absmax rule's per-row by-product.

    ```mlir
    %a = dqt.reduce_absmax_rows %w2, %row_length
        : tensor<?xf32> -> tensor<?xi32>
    ```
  }];
  let arguments = (ins DQT_FloatTensor:$input, I64:$row_length);
  let results = (outs 1DTensorOf<[I32]>:$result);
  let assemblyFormat = [{
    $input `,` $row_length attr-dict `:` type($input) `->` type($result)
  }];
}

def DQT_FusedStepOp : DQT_Op<"fused_step", [RecursiveMemoryEffects,
    IsolatedFromAbove, AttrSizedOperandSegments,
    DestinationStyleOpInterface,
    SingleBlockImplicitTerminator<"YieldOp">]> {
  let summary = "One parameter's optimizer step as per-element scalar code";
  let description = [{
    One parameter's step, produced by `dqt-fuse-step`: a body run once per
    element plus the by-product reductions of all elements. The lowerings
    turn every fused step of a function into one kernel, several steps
    with the same configuration into one multi-tensor kernel.

    Operands, in groups (`AttrSizedOperandSegments`):
    - `ins`: 1-D tensors read element by element;
    - `rows` (per-row delta): 1-D tensors of one value per row; the body
      sees the value of the element's row (`dqt.expand_rows`);
    - `scalars`: values the body reads as they are;
    - `row_length` (with `rows` or `row_outs`): the row length L (i64); row
      `r` is elements `[r*L, (r+1)*L)`;
    - `outs` (destination-passing style): one destination per element
      output; the result is that tensor with every element replaced. A
      destination that is an operand the step updates in place (the weights,
      the states) carries the element's current value into the body;
    - `row_outs`: one destination per per-row reduction (i32, one value per
      row; `dqt.reduce_max_rows`).

    `combiners` holds one `#dqt.combiner` per reduction: first the per-row
    ones (`row_outs`), then those whose results are integers after the
    tensor results. `packed` lists the `outs` stored as packed ternary
    weights (`ceil(n/4)` bytes of 2-bit codes; see `dqt.unpack_ternary`):
    the body still sees one i8 per element. The element count n is the
    length of the first `ins` or `outs` tensor that is not packed.

    The body's arguments are the elements of `ins`, the row values of
    `rows`, the `scalars`, then the current elements of `outs`. The body asks
    for its element's index with `dqt.element_index` and for random bits
    with `dqt.philox_bits`. It yields the new element of each of `outs`,
    then each reduction's contribution (per-row ones first).

    ```mlir
    %q1, %mx = dqt.fused_step outs(%q : tensor<?xi8>)
        combiners [#dqt.combiner<maxsi>] -> tensor<?xi8>, i8 {
    ^bb0(%qe: i8):
      dqt.yield %qe, %qe : i8, i8
    }
    ```
  }];
  let arguments = (ins Variadic<DQT_AnyTensor1D>:$ins,
                       Variadic<DQT_AnyTensor1D>:$rows,
                       Variadic<DQT_Scalar>:$scalars,
                       Optional<I64>:$row_length,
                       Variadic<DQT_AnyTensor1D>:$outs,
                       Variadic<1DTensorOf<[I32]>>:$row_outs,
                       DQT_CombiningKindArrayAttr:$combiners,
                       OptionalAttr<DenseI64ArrayAttr>:$packed);
  let results = (outs Variadic<AnyType>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    (`ins` `(` $ins^ `:` type($ins) `)`)?
    (`rows` `(` $rows^ `:` type($rows) `)`)?
    (`scalars` `(` $scalars^ `:` type($scalars) `)`)?
    (`row_length` `(` $row_length^ `)`)?
    (`outs` `(` $outs^ `:` type($outs) `)`)?
    (`row_outs` `(` $row_outs^ `:` type($row_outs) `)`)?
    `combiners` $combiners attr-dict-with-keyword `->` type($results) $body
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    /// DestinationStyleOpInterface: `outs` and `row_outs`, adjacent.
    ::mlir::MutableOperandRange getDpsInitsMutable() {
      auto [start, length] = getODSOperandIndexAndLength(4);
      return ::mlir::MutableOperandRange(
          getOperation(), start, length + getRowOuts().size());
    }
    /// The number of reductions (per row and per tensor).
    unsigned getNumReductions() { return getCombiners().size(); }
    /// Reductions [0, getRowOuts().size()) are per row.
    bool isRowReduction(unsigned k) { return k < getRowOuts().size(); }
    CombiningKind getCombiner(unsigned k) {
      return ::llvm::cast<CombiningKindAttr>(getCombiners()[k]).getValue();
    }
    /// The result of reduction `k`: a per-row tensor or an integer.
    ::mlir::OpResult getReductionResult(unsigned k) {
      return getOperation()->getResult(getOuts().size() + k);
    }
    /// The element type of reduction `k`'s contributions.
    ::mlir::Type getReductionElementType(unsigned k) {
      return ::mlir::getElementTypeOrSelf(getReductionResult(k).getType());
    }
    /// The number of reductions that produce one integer for the tensor.
    unsigned getNumTensorReductions() {
      return getNumReductions() - getRowOuts().size();
    }
    /// Whether output `k` is stored as packed ternary codes.
    bool isPackedOut(unsigned k) {
      auto p = getPacked();
      return p && ::llvm::is_contained(*p, int64_t(k));
    }
    /// The tensor whose length is the element count: the first of `ins`,
    /// then of `outs`, that is not packed.
    ::mlir::Value getCountTensor();
    ::mlir::Block &getBodyBlock() { return getBody().front(); }
    /// Body arguments by group.
    ::mlir::Block::BlockArgListType getInArgs() {
      return getBodyBlock().getArguments().take_front(getIns().size());
    }
    ::mlir::Block::BlockArgListType getRowArgs() {
      return getBodyBlock().getArguments().slice(getIns().size(),
                                                 getRows().size());
    }
    ::mlir::Block::BlockArgListType getScalarArgs() {
      return getBodyBlock().getArguments().slice(
          getIns().size() + getRows().size(), getScalars().size());
    }
    ::mlir::Block::BlockArgListType getOutArgs() {
      return getBodyBlock().getArguments().take_back(getOuts().size());
    }
  }];
}

def DQT_ElementIndexOp : DQT_Op<"element_index",
    [Pure, HasParent<"FusedStepOp">]> {
  let summary = "The index of the element a fused step's body runs for";
  let description = [{
    As `linalg.index`: inside a `dqt.fused_step`, the position of the
    current element in its tensors.

    ```mlir
    %i = dqt.element_index : index
    ```
  }];
  let results = (outs Index:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
}

def DQT_PhiloxBitsOp : DQT_Op<"philox_bits",
    [Pure, HasParent<"FusedStepOp">]> {
  let summary = "The 16 random bits of an element, in one stream";
  let description = [{
    Inside a `dqt.fused_step`: the 16 random bits `h_i` of element
    `index` (which must be the body's `dqt.element_index`) under the numerics
    contract v2 (docs/numerics.md): Philox4x32-10 with key (seed low, seed
    high) and counter (j low, j high | stream, step, tensor id), j = index
    div 8; word (index mod 8) div 2 of the block, its low half for an even
    index and its high half for an odd one. The `weight` stream rounds the
    weights; `state0` and `state1` (counter word 1 with 0x80000000 and
    0xC0000000 set) round the first and second bf16 optimizer states, so no
    two streams share a block. `seed`, `step` and `tensor_id` must be the
    body's scalar arguments: the lowerings draw one Philox block per group
    of 8 elements and stream.

    ```mlir
    %h = dqt.philox_bits weight %seed, %step, %tid at %i : i16
    ```
  }];
  let arguments = (ins DQT_RandomStreamAttr:$stream, I64:$seed, I64:$step,
                       I64:$tensor_id, Index:$index);
  let results = (outs I16:$bits);
  let assemblyFormat = [{
    $stream $seed `,` $step `,` $tensor_id `at` $index attr-dict `:`
    type($bits)
  }];
  let hasVerifier = 1;
}

def DQT_YieldOp : DQT_Op<"yield", [Pure, Terminator,
    HasParent<"FusedStepOp">]> {
  let summary = "Per-element outputs and reduction contributions";
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
  let builders = [OpBuilder<(ins), [{ /* empty yield */ }]>];
}

def DQT_LaunchOp : DQT_Op<"launch", [AttrSizedOperandSegments,
    DestinationStyleOpInterface,
    DeclareOpInterfaceMethods<MemoryEffectsOpInterface>,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "Run a step kernel from host code";
  let description = [{
    Host code's call of a step kernel: what `dqt-outline-steps` leaves where
    fused steps stood inside a larger function (a training graph), after it
    moved the steps into the kernel function `kernel`. The kernel's
    arguments are `args` then `outs`, in order (the kernel ABI,
    docs/design.md); each segment of the kernel is one of the steps.

    With tensors (destination-passing style), the results are one tensor per
    `outs`, the destination with every element replaced, then the steps'
    tensor reductions, step by step (per step, one per entry of
    `combiners`). One-shot bufferization (its external model) turns it into
    the same op on memrefs, which has the reductions only, and
    `dqt-lower-launch-to-cpu` / `-gpu` into the target's call: the chunk
    function over all elements, or a `gpu.launch_func` of the `gpu.func`.

    ```mlir
    %q1, %m1, %v1, %mx = dqt.launch @train_step_step0(%g, %d, ... : tensor<16xf32>, f32, ...)
        outs(%q, %m, %v : tensor<16xi8>, tensor<16xf32>, tensor<16xf32>)
        combiners [#dqt.combiner<maxsi>]
        -> tensor<16xi8>, tensor<16xf32>, tensor<16xf32>, i8
    ```
  }];
  let arguments = (ins SymbolRefAttr:$kernel,
                       Variadic<AnyType>:$args,
                       Variadic<AnyShaped>:$outs,
                       DQT_CombiningKindArrayAttr:$combiners);
  let results = (outs Variadic<AnyType>:$results);
  let assemblyFormat = [{
    $kernel `(` ($args^ `:` type($args))? `)`
    (`outs` `(` $outs^ `:` type($outs) `)`)?
    `combiners` $combiners attr-dict (`->` type($results)^)?
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::MutableOperandRange getDpsInitsMutable() {
      return getOutsMutable();
    }
    /// Whether it runs on tensors (before bufferization) or on memrefs.
    bool isTensorForm() {
      return ::llvm::any_of(getOperandTypes(),
                            ::llvm::IsaPred<::mlir::TensorType>);
    }
    /// The results that are tensor reductions (all of them on memrefs).
    ::mlir::ResultRange getReductions() {
      return getResults().drop_front(isTensorForm() ? getOuts().size() : 0);
    }
    /// The combiner of reduction result `k` (segment-major).
    CombiningKind getReductionCombiner(unsigned k) {
      auto kinds = getCombiners();
      return ::llvm::cast<CombiningKindAttr>(kinds[k % kinds.size()])
          .getValue();
    }
  }];
}

#endif // DQT_OPS
