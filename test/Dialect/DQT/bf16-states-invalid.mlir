// RUN: dqt-opt %s -split-input-file -verify-diagnostics

// The verifiers of the bf16-state ops: one reason per case, each diagnostic
// the verifier's exact text at the op that is wrong.

func.func @shift_not_a_half(%x: tensor<?xf32>, %r: tensor<?xi32>) -> tensor<?xbf16> {
  // expected-error @+1 {{'dqt.stochastic_round_bf16' op shift must be 0 or 16 (the low or high half of the random word), got 8}}
  %b = dqt.stochastic_round_bf16 %x, %r {shift = 8} : tensor<?xf32>, tensor<?xi32> -> tensor<?xbf16>
  return %b : tensor<?xbf16>
}

// -----

func.func @shift_missing(%x: tensor<?xf32>, %r: tensor<?xi32>) -> tensor<?xbf16> {
  // expected-error @+1 {{'dqt.stochastic_round_bf16' op requires attribute 'shift'}}
  %b = dqt.stochastic_round_bf16 %x, %r : tensor<?xf32>, tensor<?xi32> -> tensor<?xbf16>
  return %b : tensor<?xbf16>
}

// -----

func.func @rounding_lengths_differ(%x: tensor<4xf32>, %r: tensor<8xi32>) -> tensor<4xbf16> {
  // expected-error @+1 {{'dqt.stochastic_round_bf16' op tensor lengths differ: 'tensor<4xf32>' vs 'tensor<8xi32>'}}
  %b = dqt.stochastic_round_bf16 %x, %r {shift = 0} : tensor<4xf32>, tensor<8xi32> -> tensor<4xbf16>
  return %b : tensor<4xbf16>
}

// -----

func.func @rounding_to_f16(%x: tensor<?xf32>, %r: tensor<?xi32>) -> tensor<?xf16> {
  // expected-error @+1 {{'dqt.stochastic_round_bf16' op result #0 must be 1D tensor of bfloat16 type values, but got 'tensor<?xf16>'}}
  %b = "dqt.stochastic_round_bf16"(%x, %r) {shift = 0} : (tensor<?xf32>, tensor<?xi32>) -> tensor<?xf16>
  return %b : tensor<?xf16>
}

// -----

func.func @random_bits_not_i32(%seed: i64, %step: i64, %tid: i64, %g: tensor<?xf32>) -> tensor<?xi16> {
  // expected-error @+1 {{'dqt.random_bits' op result #0 must be 1D tensor of 32-bit signless integer values, but got 'tensor<?xi16>'}}
  %r = "dqt.random_bits"(%seed, %step, %tid, %g) : (i64, i64, i64, tensor<?xf32>) -> tensor<?xi16>
  return %r : tensor<?xi16>
}

// -----

func.func @random_bits_lengths_differ(%seed: i64, %step: i64, %tid: i64, %g: tensor<4xf32>) -> tensor<5xi32> {
  // expected-error @+1 {{'dqt.random_bits' op tensor lengths differ: 'tensor<4xf32>' vs 'tensor<5xi32>'}}
  %r = dqt.random_bits %seed, %step, %tid like %g : tensor<4xf32> -> tensor<5xi32>
  return %r : tensor<5xi32>
}

// -----

func.func @f16_state(%g: tensor<?xf32>, %m: tensor<?xf16>, %v: tensor<?xf32>, %b1: f32, %b2: f32) {
  // expected-error @+1 {{'dqt.adam_moments' op operand #1 must be 1D tensor of 32-bit float or bfloat16 type values, but got 'tensor<?xf16>'}}
  %m1, %v1 = "dqt.adam_moments"(%g, %m, %v, %b1, %b2) : (tensor<?xf32>, tensor<?xf16>, tensor<?xf32>, f32, f32) -> (tensor<?xf32>, tensor<?xf32>)
  return
}

// -----

func.func @bf16_moment_result(%g: tensor<?xf32>, %m: tensor<?xbf16>, %v: tensor<?xbf16>, %b1: f32, %b2: f32) {
  // expected-error @+1 {{'dqt.adam_moments' op result #0 must be 1D tensor of 32-bit float values, but got 'tensor<?xbf16>'}}
  %m1, %v1 = "dqt.adam_moments"(%g, %m, %v, %b1, %b2) : (tensor<?xf32>, tensor<?xbf16>, tensor<?xbf16>, f32, f32) -> (tensor<?xbf16>, tensor<?xf32>)
  return
}

// -----

func.func @sgd_moment_shape(%w: tensor<4xf32>, %g: tensor<4xf32>, %buf: tensor<4xbf16>, %lr: f32, %mu: f32, %d: f32) {
  // expected-error @+1 {{'dqt.sgd_momentum' op failed to verify that new_momentum_buffer is momentum_buffer in f32}}
  %w1, %b1 = "dqt.sgd_momentum"(%w, %g, %buf, %lr, %mu, %d) : (tensor<4xf32>, tensor<4xf32>, tensor<4xbf16>, f32, f32, f32) -> (tensor<4xf32>, tensor<?xf32>)
  return
}

