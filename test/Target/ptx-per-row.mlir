// The per-row delta kernel (the function at the end of this file) for
// sm_90: each thread reads its group's row delta and delta' from their
// per-row buffers and max-combines its row's max(q') with a 32-bit global
// atomic (the narrowest PTX atom.max); the per-tensor by-products keep one
// block reduction and one 64-bit atomic per block. ptxas (no GPU needed) accepts
// it with no register spills.
//
// REQUIRES: ptxas
// RUN: dqt-opt %s --dqt-compile-gpu="chip=sm_90" | %extract-ptx > %t.ptx
// RUN: FileCheck %s --check-prefix=PTX < %t.ptx
// RUN: %ptxas -arch=sm_90 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s
// RUN: test -s %t.cubin

// PTX-LABEL: .entry adamw_per_row_step(
// PTX-DAG: atom.global.max.s32
// PTX-DAG: atom.global.max.s64
// PTX-DAG: atom.global.add.u64
// PTX-DAG: div.rn.f32
// PTX-DAG: sqrt.rn.f32
// PTX-NOT: fma.rn.f32

// CHECK: ptxas info    : Compiling entry function 'adamw_per_row_step' for 'sm_90'
// CHECK: ptxas info    : Function properties for adamw_per_row_step
// CHECK-NEXT: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-NOT: ptxas {{(warning|error|fatal)}}

// One DQT AdamW step of an 8-bit parameter with one delta per output row
// (a copy of examples/adamw_per_row.mlir).
func.func @adamw_per_row_step(
    %q: tensor<?xi8>,
    %g: tensor<?xf32>,
    %m: tensor<?xf32>,
    %v: tensor<?xf32>,
    %delta: tensor<?xf32>,
    %delta_next: tensor<?xf32>,
    %seed: i64,
    %step: i64,
    %tid: i64,
    %len: i64,
    %beta1: f32,
    %beta2: f32,
    %alpha: f32,
    %eps: f32,
    %decay: f32)
    -> (tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, tensor<?xi32>, i64,
        i64) {
  %d = dqt.expand_rows %delta, %len like %q
      : tensor<?xf32>, tensor<?xi8> -> tensor<?xf32>
  %w = dqt.dequantize %q, %d : tensor<?xi8>, tensor<?xf32> -> tensor<?xf32>
  %m1, %v1 = dqt.adam_moments %g, %m, %v, %beta1, %beta2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %w1 = dqt.adam_apply %w, %m1, %v1, %alpha, %eps, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %u = dqt.uniform %seed, %step, %tid like %g : tensor<?xf32> -> tensor<?xf32>
  %d1 = dqt.expand_rows %delta_next, %len like %q
      : tensor<?xf32>, tensor<?xi8> -> tensor<?xf32>
  %q1 = dqt.stochastic_round %w1, %d1, %u grid<8>
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xi8>
  %q2 = dqt.mask_nonfinite %g, %q1, %q : tensor<?xf32>, tensor<?xi8>
  %m2 = dqt.mask_nonfinite %g, %m1, %m : tensor<?xf32>, tensor<?xf32>
  %v2 = dqt.mask_nonfinite %g, %v1, %v : tensor<?xf32>, tensor<?xf32>
  %mx = dqt.reduce_max %q2 : tensor<?xi8> -> i8
  %rmx = dqt.reduce_max_rows %q2, %len : tensor<?xi8> -> tensor<?xi32>
  %ch = dqt.count_changed %q, %q2 : tensor<?xi8>, tensor<?xi8> -> i64
  %nf = dqt.count_nonfinite %g : tensor<?xf32> -> i64
  return %q2, %m2, %v2, %mx, %rmx, %ch, %nf
      : tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, tensor<?xi32>, i64, i64
}
