// The GPU kernel of an AdamW step with bf16 states (the function at the end
// of this file), for sm_80 and sm_90: no GPU is needed.
// The PTX has one kernel with the contract's IEEE math, 128-bit vector
// accesses of the eight bf16 states of a thread (ld.global.v4.b32,
// st.global.v4.b32) next to the two 128-bit gradient loads, no conversion
// instruction (the bf16 <-> f32 steps are integer ops), and ptxas assembles
// it without spills.
//
// RUN: dqt-opt %s --dqt-compile-gpu="chip=sm_90" \
// RUN:   | %extract-ptx > %t.sm90.ptx
// RUN: FileCheck %s --check-prefix=PTX --input-file=%t.sm90.ptx \
// RUN:   --implicit-check-not=.entry \
// RUN:   --implicit-check-not=sqrt.approx --implicit-check-not=div.approx \
// RUN:   --implicit-check-not=div.full --implicit-check-not=rcp.approx \
// RUN:   --implicit-check-not=fma. --implicit-check-not=.ftz \
// RUN:   --implicit-check-not=mul.f32 --implicit-check-not=add.f32 \
// RUN:   --implicit-check-not=sub.f32 --implicit-check-not=.local \
// RUN:   --implicit-check-not=.extern --implicit-check-not=call.uni \
// RUN:   --implicit-check-not=cvt.f32.bf16 --implicit-check-not=cvt.rn.bf16
//
// Per thread, a group of 8 elements (one Philox block per stream): two
// 128-bit loads of g (8 f32), one 128-bit load each of the bf16 m and v
// (8 bf16, as v4.b32), 4 in all (with groups of 4: one load of g and two
// 64-bit loads of m and v); two 128-bit stores of m and v (were two 64-bit
// v4.b16 stores); the 8 int8 weights as one 64-bit load and store
// (v2.b32); the tail (n mod 8) handles single elements (b16).
// RUN: grep "ld\.global\.v4" %t.sm90.ptx | count 4
// RUN: grep "st\.global\.v4\.b32" %t.sm90.ptx | count 2
// RUN: grep "ld\.global\.v2\.b32" %t.sm90.ptx | count 1
// RUN: grep "st\.global\.v2\.b32" %t.sm90.ptx | count 1
// RUN: grep "ld\.global\.b16" %t.sm90.ptx | count 2
// RUN: grep "st\.global\.b16" %t.sm90.ptx | count 2
//
// PTX: .target sm_90
// PTX-LABEL: .visible .entry adamw_bf16_step(
// PTX: ld.global.v2.b32
// PTX-COUNT-4: ld.global.v4.b32
// PTX: sqrt.rn.f32
// PTX: div.rn.f32
// PTX: st.global.v2.b32
// PTX-NEXT: st.global.v4.b32
// PTX-NEXT: st.global.v4.b32
// PTX: atom.global.max.s64
// PTX: ret;
//
// REQUIRES: ptxas
// RUN: %ptxas -arch=sm_90 -v %t.sm90.ptx -o %t.sm90.cubin 2>&1 \
// RUN:   | FileCheck %s --check-prefix=SM90
// RUN: dqt-opt %s --dqt-compile-gpu="chip=sm_80" \
// RUN:   | %extract-ptx > %t.sm80.ptx
// RUN: %ptxas -arch=sm_80 -v %t.sm80.ptx -o %t.sm80.cubin 2>&1 \
// RUN:   | FileCheck %s --check-prefix=SM80
// RUN: test -s %t.sm90.cubin && test -s %t.sm80.cubin
//
// SM90: ptxas info    : Compiling entry function 'adamw_bf16_step' for 'sm_90'
// SM90: ptxas info    : Function properties for adamw_bf16_step
// SM90-NEXT: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// SM90-NOT: ptxas {{(warning|error|fatal)}}
// SM80: ptxas info    : Compiling entry function 'adamw_bf16_step' for 'sm_80'
// SM80: ptxas info    : Function properties for adamw_bf16_step
// SM80-NEXT: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// SM80-NOT: ptxas {{(warning|error|fatal)}}

// One DQT AdamW step of a ternary parameter with bf16 Adam states (a copy
// of examples/adamw_bf16_states.mlir).
func.func @adamw_bf16_step(
    %q: tensor<?xi8>,
    %g: tensor<?xf32>,
    %m: tensor<?xbf16>,
    %v: tensor<?xbf16>,
    %delta: f32,
    %maxq: i8,
    %tid: i64,
    %beta1: f32,
    %beta2: f32,
    %alpha: f32,
    %eps: f32,
    %decay: f32,
    %seed: i64,
    %step: i64)
    -> (tensor<?xi8>, tensor<?xbf16>, tensor<?xbf16>, i8, i64, i64) {
  %d1 = dqt.next_delta %delta, %maxq grid<ternary>
  %w = dqt.dequantize %q, %delta : tensor<?xi8>, f32 -> tensor<?xf32>
  %m1, %v1 = dqt.adam_moments %g, %m, %v, %beta1, %beta2
      : tensor<?xf32>, tensor<?xbf16>, tensor<?xbf16>
  %w1 = dqt.adam_apply %w, %m1, %v1, %alpha, %eps, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %u = dqt.uniform %seed, %step, %tid like %g : tensor<?xf32> -> tensor<?xf32>
  %q1 = dqt.stochastic_round %w1, %d1, %u grid<ternary>
      : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %r = dqt.random_bits %seed, %step, %tid like %g : tensor<?xf32> -> tensor<?xi32>
  %mb = dqt.stochastic_round_bf16 %m1, %r {shift = 0}
      : tensor<?xf32>, tensor<?xi32> -> tensor<?xbf16>
  %vb = dqt.stochastic_round_bf16 %v1, %r {shift = 16}
      : tensor<?xf32>, tensor<?xi32> -> tensor<?xbf16>
  %q2 = dqt.mask_nonfinite %g, %q1, %q : tensor<?xf32>, tensor<?xi8>
  %m2 = dqt.mask_nonfinite %g, %mb, %m : tensor<?xf32>, tensor<?xbf16>
  %v2 = dqt.mask_nonfinite %g, %vb, %v : tensor<?xf32>, tensor<?xbf16>
  %mx = dqt.reduce_max %q2 : tensor<?xi8> -> i8
  %ch = dqt.count_changed %q, %q2 : tensor<?xi8>, tensor<?xi8> -> i64
  %nf = dqt.count_nonfinite %g : tensor<?xf32> -> i64
  return %q2, %m2, %v2, %mx, %ch, %nf
      : tensor<?xi8>, tensor<?xbf16>, tensor<?xbf16>, i8, i64, i64
}
