// dqt-fuse-step refuses chains whose state streams cannot be one kernel's.
//
// RUN: dqt-opt %s -split-input-file -verify-diagnostics --dqt-fuse-step

// Two state streams in one chain.
func.func @two_state_streams(%x: tensor<?xf32>, %seed: i64, %step: i64, %t0: i64, %t1: i64)
    -> (tensor<?xbf16>, tensor<?xbf16>) {
  %r0 = dqt.random_bits %seed, %step, %t0 like %x : tensor<?xf32> -> tensor<?xi32>
  // expected-error @+1 {{'dqt.random_bits' op cannot be fused: one fused step draws from one state stream, and this chain has two}}
  %r1 = dqt.random_bits %seed, %step, %t1 like %x : tensor<?xf32> -> tensor<?xi32>
  %a = dqt.stochastic_round_bf16 %x, %r0 {shift = 0} : tensor<?xf32>, tensor<?xi32> -> tensor<?xbf16>
  %b = dqt.stochastic_round_bf16 %x, %r1 {shift = 0} : tensor<?xf32>, tensor<?xi32> -> tensor<?xbf16>
  return %a, %b : tensor<?xbf16>, tensor<?xbf16>
}

// -----

// The state stream must be the weight stream's (seed, step, tensor id).
func.func @streams_of_other_tensors(%w: tensor<?xf32>, %d: f32, %seed: i64, %step: i64,
                                    %t0: i64, %t1: i64) -> (tensor<?xi8>, tensor<?xbf16>) {
  %u = dqt.uniform %seed, %step, %t0 like %w : tensor<?xf32> -> tensor<?xf32>
  // expected-error @+1 {{'dqt.random_bits' op cannot be fused: its seed, step and tensor id differ from those of the chain's other stream}}
  %r = dqt.random_bits %seed, %step, %t1 like %w : tensor<?xf32> -> tensor<?xi32>
  %q = dqt.stochastic_round %w, %d, %u grid<8> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %b = dqt.stochastic_round_bf16 %w, %r {shift = 0} : tensor<?xf32>, tensor<?xi32> -> tensor<?xbf16>
  return %q, %b : tensor<?xi8>, tensor<?xbf16>
}
