// Both lowerings need a function that is one fused step over its arguments
// (plus a pure scalar prologue); anything else gets a located diagnostic.
//
// RUN: dqt-opt %s -split-input-file -verify-diagnostics --dqt-lower-to-cpu
// RUN: dqt-opt %s -split-input-file -verify-diagnostics --dqt-lower-to-gpu

func.func @not_fused(%q: tensor<?xi8>, %d: f32) -> tensor<?xf32> {
  // expected-error @+1 {{'dqt.dequantize' op was not fused; run dqt-fuse-step first}}
  %w = dqt.dequantize %q, %d : tensor<?xi8>, f32 -> tensor<?xf32>
  return %w : tensor<?xf32>
}

// -----

func.func @two_fused_steps(%q0: tensor<?xi8>, %q1: tensor<?xi16>) -> (i8, i8) {
  %a = dqt.fused_step(%q0 : tensor<?xi8>) {segments = 1, tensors = 1,
      tied = array<i64>, reductions = ["maxsi"]} -> (i8) {
  ^bb0(%e: i8):
    dqt.yield %e : i8
  }
  // expected-error @+1 {{'dqt.fused_step' op is the second fused step of @two_fused_steps; a kernel is made of one (run dqt-fuse-step with group)}}
  %b = dqt.fused_step(%q1 : tensor<?xi16>) {segments = 1, tensors = 1,
      tied = array<i64>, reductions = ["maxsi"]} -> (i8) {
  ^bb0(%e: i16):
    %t = arith.trunci %e : i16 to i8
    dqt.yield %t : i8
  }
  return %a, %b : i8, i8
}

// -----

func.func @tensor_operand_not_argument(%d: f32) -> i8 {
  %q = arith.constant dense<1> : tensor<4xi8>
  // expected-error @+1 {{'dqt.fused_step' op tensor operand #0 must be an argument of the function}}
  %r = dqt.fused_step(%q, %d : tensor<4xi8>, f32) {segments = 1, tensors = 1,
      tied = array<i64>, reductions = ["maxsi"]} -> (i8) {
  ^bb0(%e: i8, %de: f32):
    dqt.yield %e : i8
  }
  return %r : i8
}

// -----

func.func private @host_scalar() -> f32
func.func @scalar_not_computable_in_kernel(%q: tensor<?xi8>) -> i8 {
  // expected-error @+1 {{'func.call' op cannot be computed inside the kernel}}
  %d = func.call @host_scalar() : () -> f32
  %r = dqt.fused_step(%q, %d : tensor<?xi8>, f32) {segments = 1, tensors = 1,
      tied = array<i64>, reductions = ["maxsi"]} -> (i8) {
  ^bb0(%e: i8, %de: f32):
    dqt.yield %e : i8
  }
  return %r : i8
}

// -----

// A row operand (per-row delta) is read from a kernel buffer: it must be an
// argument of the function, not computed in it.
func.func @row_operand_computed(%q: tensor<?xi8>, %len: i64) -> tensor<?xi8> {
  %d = arith.constant dense<0.5> : tensor<4xf32>
  // expected-error @+1 {{'dqt.fused_step' op row operand #1 must be an argument of the function}}
  %r = dqt.fused_step(%q, %d, %len : tensor<?xi8>, tensor<4xf32>, i64) {
      reductions = [], row_length = 2, segments = 1, tensors = 1, tied = array<i64: 0>} -> (tensor<?xi8>) {
  ^bb0(%qe: i8, %de: f32, %l: i64):
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}
