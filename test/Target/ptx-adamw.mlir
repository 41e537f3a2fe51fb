// The GPU pipeline turns the three-parameter AdamW group (the function at the
// end of this file) into one PTX kernel in a gpu.binary, for sm_80 and for
// sm_90. No GPU is needed: the PTX text is checked for the shape the
// numerics contract and the design need (ptxas-adamw.mlir assembles it).
// The PTX prefix holds what both chips share, SM80/SM90 what differs.
//
// RUN: dqt-opt %s --dqt-compile-gpu="chip=sm_80" > %t.sm80.mlir
// RUN: dqt-opt %s --dqt-compile-gpu="chip=sm_90" > %t.sm90.mlir
//
// The module holds the binary only: no gpu.func, no host or device IR left.
// RUN: FileCheck %s --check-prefix=MODULE80 --input-file=%t.sm80.mlir \
// RUN:   --implicit-check-not=gpu.func --implicit-check-not=gpu.module \
// RUN:   --implicit-check-not=func.func --implicit-check-not=llvm.func \
// RUN:   --implicit-check-not=dqt. --implicit-check-not=gpu.binary
// RUN: FileCheck %s --check-prefix=MODULE90 --input-file=%t.sm90.mlir \
// RUN:   --implicit-check-not=gpu.func --implicit-check-not=gpu.module \
// RUN:   --implicit-check-not=func.func --implicit-check-not=llvm.func \
// RUN:   --implicit-check-not=dqt. --implicit-check-not=gpu.binary
// MODULE80-LABEL: module attributes {gpu.container_module} {
// MODULE80-NEXT: gpu.binary @dqt_kernels [#gpu.object<#nvvm.target<O = 3, chip = "sm_80", features = "+ptx80">, properties = {{.*}}, assembly = "
// MODULE80-NEXT: {{^}}}{{$}}
// MODULE90-LABEL: module attributes {gpu.container_module} {
// MODULE90-NEXT: gpu.binary @dqt_kernels [#gpu.object<#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">, properties = {{.*}}, assembly = "
// MODULE90-NEXT: {{^}}}{{$}}
//
// RUN: %extract-ptx %t.sm80.mlir > %t.sm80.ptx
// RUN: %extract-ptx %t.sm90.mlir > %t.sm90.ptx
// RUN: FileCheck %s --check-prefixes=SM80,PTX --input-file=%t.sm80.ptx \
// RUN:   --implicit-check-not=.entry \
// RUN:   --implicit-check-not=sqrt.approx --implicit-check-not=div.approx \
// RUN:   --implicit-check-not=div.full --implicit-check-not=rcp.approx \
// RUN:   --implicit-check-not=fma. --implicit-check-not=.ftz \
// RUN:   --implicit-check-not=mul.f32 --implicit-check-not=add.f32 \
// RUN:   --implicit-check-not=sub.f32 --implicit-check-not=.local \
// RUN:   --implicit-check-not=.extern --implicit-check-not=call.uni
// RUN: FileCheck %s --check-prefixes=SM90,PTX --input-file=%t.sm90.ptx \
// RUN:   --implicit-check-not=.entry \
// RUN:   --implicit-check-not=sqrt.approx --implicit-check-not=div.approx \
// RUN:   --implicit-check-not=div.full --implicit-check-not=rcp.approx \
// RUN:   --implicit-check-not=fma. --implicit-check-not=.ftz \
// RUN:   --implicit-check-not=mul.f32 --implicit-check-not=add.f32 \
// RUN:   --implicit-check-not=sub.f32 --implicit-check-not=.local \
// RUN:   --implicit-check-not=.extern --implicit-check-not=call.uni
//
// Exactly one kernel. A thread handles a group of 8 elements (one Philox
// block): two 128-bit loads of each of the 3 f32 streams (g, m, v) of each of
// the 3 segments (3 x 3 x 2 = 18) and two 128-bit stores of m and v
// (3 x 2 x 2 = 12), one 64-bit load and store of the 8 int8 weights
// (v2.b32, one per segment); IEEE sqrt and division for every element path
// (3 segments x (8 lanes + 1 tail) = 27: one division per element plus the 3
// next-delta ones = 30), and one IEEE reciprocal 1/delta' per segment, shared
// by its lanes. With groups of 4 these were 9, 6, 15 and 18. The same counts
// on both chips.
// RUN: grep "\.entry" %t.sm80.ptx | count 1
// RUN: grep "ld\.global\.v4" %t.sm80.ptx | count 18
// RUN: grep "st\.global\.v4" %t.sm80.ptx | count 12
// RUN: grep "ld\.global\.v2\.b32" %t.sm80.ptx | count 3
// RUN: grep "st\.global\.v2\.b32" %t.sm80.ptx | count 3
// RUN: grep "sqrt\.rn\.f32" %t.sm80.ptx | count 27
// RUN: grep "div\.rn\.f32" %t.sm80.ptx | count 30
// RUN: grep "rcp\.rn\.f32" %t.sm80.ptx | count 3
// RUN: grep "\.entry" %t.sm90.ptx | count 1
// RUN: grep "ld\.global\.v4" %t.sm90.ptx | count 18
// RUN: grep "st\.global\.v4" %t.sm90.ptx | count 12
// RUN: grep "ld\.global\.v2\.b32" %t.sm90.ptx | count 3
// RUN: grep "st\.global\.v2\.b32" %t.sm90.ptx | count 3
// RUN: grep "sqrt\.rn\.f32" %t.sm90.ptx | count 27
// RUN: grep "div\.rn\.f32" %t.sm90.ptx | count 30
// RUN: grep "rcp\.rn\.f32" %t.sm90.ptx | count 3

// PTX: .version 8.0
// SM80: .target sm_80
// SM90: .target sm_90
// PTX: .address_size 64
// PTX-LABEL: .visible .entry adamw_step(
// PTX: ld.global.v4.{{b32|f32}}
// PTX: sqrt.rn.f32
// PTX: div.rn.f32
// f32 multiplies and adds are explicitly round-to-nearest: ptxas never
// contracts mul.rn/add.rn into an fma.
// PTX: mul.rn.f32
// PTX: add.rn.f32
// PTX: st.global.v4.{{b32|f32}}
// Block reductions through shared memory and shuffles, one atomic per block
// and by-product: max of q', then the two counts.
// PTX: shfl.sync.bfly.b32
// PTX: atom.global.max.s64
// PTX: atom.global.add.u64
// PTX: atom.global.add.u64
// PTX: ret;

// One DQT AdamW step for a group of three 8-bit parameters (f32 gradients
// and states), as a trainer emits it (a copy of examples/adamw_step.mlir).
func.func @adamw_step(
    %q0: tensor<?xi8>,
    %g0: tensor<?xf32>,
    %m0: tensor<?xf32>,
    %v0: tensor<?xf32>,
    %delta0: f32,
    %maxq0: i8,
    %tid0: i64,
    %q1: tensor<?xi8>,
    %g1: tensor<?xf32>,
    %m1: tensor<?xf32>,
    %v1: tensor<?xf32>,
    %delta1: f32,
    %maxq1: i8,
    %tid1: i64,
    %q2: tensor<?xi8>,
    %g2: tensor<?xf32>,
    %m2: tensor<?xf32>,
    %v2: tensor<?xf32>,
    %delta2: f32,
    %maxq2: i8,
    %tid2: i64,
    %beta1: f32,
    %beta2: f32,
    %alpha: f32,
    %eps: f32,
    %decay: f32,
    %seed: i64,
    %step: i64)
    -> (tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64, tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64, tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64) {
  %d0 = dqt.next_delta %delta0, %maxq0 grid<8>
  %w0 = dqt.dequantize %q0, %delta0 : tensor<?xi8>, f32 -> tensor<?xf32>
  %m0a, %v0a = dqt.adam_moments %g0, %m0, %v0, %beta1, %beta2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %w0a = dqt.adam_apply %w0, %m0a, %v0a, %alpha, %eps, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %u0 = dqt.uniform %seed, %step, %tid0 like %g0 : tensor<?xf32> -> tensor<?xf32>
  %q0a = dqt.stochastic_round %w0a, %d0, %u0 grid<8>
      : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %q0b = dqt.mask_nonfinite %g0, %q0a, %q0 : tensor<?xf32>, tensor<?xi8>
  %m0b = dqt.mask_nonfinite %g0, %m0a, %m0 : tensor<?xf32>, tensor<?xf32>
  %v0b = dqt.mask_nonfinite %g0, %v0a, %v0 : tensor<?xf32>, tensor<?xf32>
  %mx0 = dqt.reduce_max %q0b : tensor<?xi8> -> i8
  %ch0 = dqt.count_changed %q0, %q0b : tensor<?xi8>, tensor<?xi8> -> i64
  %nf0 = dqt.count_nonfinite %g0 : tensor<?xf32> -> i64
  %d1 = dqt.next_delta %delta1, %maxq1 grid<8>
  %w1 = dqt.dequantize %q1, %delta1 : tensor<?xi8>, f32 -> tensor<?xf32>
  %m1a, %v1a = dqt.adam_moments %g1, %m1, %v1, %beta1, %beta2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %w1a = dqt.adam_apply %w1, %m1a, %v1a, %alpha, %eps, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %u1 = dqt.uniform %seed, %step, %tid1 like %g1 : tensor<?xf32> -> tensor<?xf32>
  %q1a = dqt.stochastic_round %w1a, %d1, %u1 grid<8>
      : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %q1b = dqt.mask_nonfinite %g1, %q1a, %q1 : tensor<?xf32>, tensor<?xi8>
  %m1b = dqt.mask_nonfinite %g1, %m1a, %m1 : tensor<?xf32>, tensor<?xf32>
  %v1b = dqt.mask_nonfinite %g1, %v1a, %v1 : tensor<?xf32>, tensor<?xf32>
  %mx1 = dqt.reduce_max %q1b : tensor<?xi8> -> i8
  %ch1 = dqt.count_changed %q1, %q1b : tensor<?xi8>, tensor<?xi8> -> i64
  %nf1 = dqt.count_nonfinite %g1 : tensor<?xf32> -> i64
  %d2 = dqt.next_delta %delta2, %maxq2 grid<8>
  %w2 = dqt.dequantize %q2, %delta2 : tensor<?xi8>, f32 -> tensor<?xf32>
  %m2a, %v2a = dqt.adam_moments %g2, %m2, %v2, %beta1, %beta2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %w2a = dqt.adam_apply %w2, %m2a, %v2a, %alpha, %eps, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %u2 = dqt.uniform %seed, %step, %tid2 like %g2 : tensor<?xf32> -> tensor<?xf32>
  %q2a = dqt.stochastic_round %w2a, %d2, %u2 grid<8>
      : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %q2b = dqt.mask_nonfinite %g2, %q2a, %q2 : tensor<?xf32>, tensor<?xi8>
  %m2b = dqt.mask_nonfinite %g2, %m2a, %m2 : tensor<?xf32>, tensor<?xf32>
  %v2b = dqt.mask_nonfinite %g2, %v2a, %v2 : tensor<?xf32>, tensor<?xf32>
  %mx2 = dqt.reduce_max %q2b : tensor<?xi8> -> i8
  %ch2 = dqt.count_changed %q2, %q2b : tensor<?xi8>, tensor<?xi8> -> i64
  %nf2 = dqt.count_nonfinite %g2 : tensor<?xf32> -> i64
  return %q0b, %m0b, %v0b, %mx0, %ch0, %nf0, %q1b, %m1b, %v1b, %mx1, %ch1, %nf1, %q2b, %m2b, %v2b, %mx2, %ch2, %nf2
      : tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64, tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64, tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64
}
