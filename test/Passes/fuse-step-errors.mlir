// dqt-fuse-step refuses chains that cannot be one kernel, with a diagnostic
// at the op that is in the way.
//
// RUN: dqt-opt %s -split-input-file -verify-diagnostics --dqt-fuse-step

// Both roundings read %w, so they are one chain: it would need two random
// streams.
func.func @two_random_streams(%w: tensor<?xf32>, %d: f32, %seed: i64, %step: i64,
                              %t0: i64, %t1: i64) -> (tensor<?xi8>, tensor<?xi8>) {
  %u0 = dqt.uniform %seed, %step, %t0 like %w : tensor<?xf32> -> tensor<?xf32>
  // expected-error @+1 {{'dqt.uniform' op cannot be fused: one fused step draws from one random stream, and this chain has two}}
  %u1 = dqt.uniform %seed, %step, %t1 like %w : tensor<?xf32> -> tensor<?xf32>
  %q0 = dqt.stochastic_round %w, %d, %u0 grid<8> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %q1 = dqt.stochastic_round %w, %d, %u1 grid<8> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  return %q0, %q1 : tensor<?xi8>, tensor<?xi8>
}

// -----

// An intermediate tensor read by a non-dqt op in the middle of the chain
// would have to be materialized.
func.func private @consume(tensor<?xf32>)
func.func @intermediate_used_mid_chain(%q: tensor<?xi8>, %d: f32, %g: tensor<?xf32>) -> (tensor<?xi8>, i8) {
  %w = dqt.dequantize %q, %d : tensor<?xi8>, f32 -> tensor<?xf32>
  // expected-error @+1 {{'func.call' op uses a step value before the step ends; it cannot be fused}}
  func.call @consume(%w) : (tensor<?xf32>) -> ()
  %w1 = dqt.mask_nonfinite %g, %w, %w : tensor<?xf32>, tensor<?xf32>
  %mx = dqt.reduce_max %q : tensor<?xi8> -> i8
  return %q, %mx : tensor<?xi8>, i8
}

// -----

// Per-row ops of one chain must agree on the row length.
func.func @two_row_lengths(%q: tensor<?xi8>, %d: tensor<?xf32>, %l0: i64, %l1: i64)
    -> (tensor<?xf32>, tensor<?xi32>) {
  %e = dqt.expand_rows %d, %l0 like %q : tensor<?xf32>, tensor<?xi8> -> tensor<?xf32>
  %w = dqt.dequantize %q, %e : tensor<?xi8>, tensor<?xf32> -> tensor<?xf32>
  // expected-error @+1 {{'dqt.reduce_max_rows' op cannot be fused: its row length differs from that of the chain's other per-row ops}}
  %m = dqt.reduce_max_rows %q, %l1 : tensor<?xi8> -> tensor<?xi32>
  return %w, %m : tensor<?xf32>, tensor<?xi32>
}

// -----

// A per-row tensor cannot also be read element by element.
func.func @row_operand_read_per_element(%q: tensor<?xi8>, %d: tensor<?xf32>, %l: i64)
    -> (tensor<?xf32>, tensor<?xf32>) {
  %w0 = dqt.dequantize %q, %d : tensor<?xi8>, tensor<?xf32> -> tensor<?xf32>
  // expected-error @+1 {{'dqt.expand_rows' op cannot be fused: its per-row operand is also read element by element}}
  %e = dqt.expand_rows %d, %l like %q : tensor<?xf32>, tensor<?xi8> -> tensor<?xf32>
  %w = dqt.dequantize %q, %e : tensor<?xi8>, tensor<?xf32> -> tensor<?xf32>
  return %w0, %w : tensor<?xf32>, tensor<?xf32>
}
