// The ops of bf16 optimizer states parse, verify and print back to the same
// IR, in the custom assembly format and in the generic one: moments and SGD
// momentum on bf16 states (f32 results), the state stream dqt.random_bits,
// dqt.stochastic_round_bf16, dqt.mask_nonfinite on bf16, and a fused step
// with `rng_bits`.
//
// RUN: dqt-opt %s | dqt-opt | FileCheck %s
// RUN: dqt-opt %s --mlir-print-op-generic | dqt-opt | FileCheck %s

// CHECK-LABEL: func.func @adam_moments_bf16
// CHECK-SAME: (%[[G:.*]]: tensor<?xf32>, %[[M:.*]]: tensor<?xbf16>, %[[V:.*]]: tensor<?xbf16>, %[[B1:.*]]: f32, %[[B2:.*]]: f32)
func.func @adam_moments_bf16(%g: tensor<?xf32>, %m: tensor<?xbf16>, %v: tensor<?xbf16>,
                             %b1: f32, %b2: f32) -> (tensor<?xf32>, tensor<?xf32>) {
  // CHECK: %[[M1:.*]], %[[V1:.*]] = dqt.adam_moments %[[G]], %[[M]], %[[V]], %[[B1]], %[[B2]] : tensor<?xf32>, tensor<?xbf16>, tensor<?xbf16>
  %m1, %v1 = dqt.adam_moments %g, %m, %v, %b1, %b2
      : tensor<?xf32>, tensor<?xbf16>, tensor<?xbf16>
  // CHECK: return %[[M1]], %[[V1]] : tensor<?xf32>, tensor<?xf32>
  return %m1, %v1 : tensor<?xf32>, tensor<?xf32>
}

// CHECK-LABEL: func.func @sgd_momentum_bf16
func.func @sgd_momentum_bf16(%w: tensor<8xf32>, %g: tensor<8xf32>, %buf: tensor<8xbf16>,
                             %lr: f32, %mu: f32, %decay: f32) -> (tensor<8xf32>, tensor<8xf32>) {
  // CHECK: dqt.sgd_momentum %{{.*}} : tensor<8xf32>, tensor<8xf32>, tensor<8xbf16>
  %w1, %b1 = dqt.sgd_momentum %w, %g, %buf, %lr, %mu, %decay
      : tensor<8xf32>, tensor<8xf32>, tensor<8xbf16>
  return %w1, %b1 : tensor<8xf32>, tensor<8xf32>
}

// CHECK-LABEL: func.func @random_bits_and_rounding
// CHECK-SAME: (%[[S:.*]]: i64, %[[T:.*]]: i64, %[[I:.*]]: i64, %[[X:.*]]: tensor<?xf32>, %[[Q:.*]]: tensor<?xi8>, %[[G:.*]]: tensor<?xf32>, %[[OLD:.*]]: tensor<?xbf16>)
func.func @random_bits_and_rounding(%seed: i64, %step: i64, %tid: i64, %x: tensor<?xf32>,
                                    %q: tensor<?xi8>, %g: tensor<?xf32>, %old: tensor<?xbf16>)
    -> (tensor<?xbf16>, tensor<?xbf16>) {
  // CHECK: %[[R:.*]] = dqt.random_bits %[[S]], %[[T]], %[[I]] like %[[Q]] : tensor<?xi8> -> tensor<?xi32>
  %r = dqt.random_bits %seed, %step, %tid like %q : tensor<?xi8> -> tensor<?xi32>
  // CHECK: %[[LO:.*]] = dqt.stochastic_round_bf16 %[[X]], %[[R]] {shift = 0 : i64} : tensor<?xf32>, tensor<?xi32> -> tensor<?xbf16>
  %lo = dqt.stochastic_round_bf16 %x, %r {shift = 0} : tensor<?xf32>, tensor<?xi32> -> tensor<?xbf16>
  // CHECK: %[[HI:.*]] = dqt.stochastic_round_bf16 %[[X]], %[[R]] {shift = 16 : i64} : tensor<?xf32>, tensor<?xi32> -> tensor<?xbf16>
  %hi = dqt.stochastic_round_bf16 %x, %r {shift = 16} : tensor<?xf32>, tensor<?xi32> -> tensor<?xbf16>
  // CHECK: %[[K:.*]] = dqt.mask_nonfinite %[[G]], %[[LO]], %[[OLD]] : tensor<?xf32>, tensor<?xbf16>
  %k = dqt.mask_nonfinite %g, %lo, %old : tensor<?xf32>, tensor<?xbf16>
  // CHECK: return %[[K]], %[[HI]]
  return %k, %hi : tensor<?xbf16>, tensor<?xbf16>
}

// CHECK-LABEL: func.func @fused_state_stream
// CHECK: dqt.fused_step scalars({{.*}} : i64, i64, i64) outs(%{{.*}} : tensor<?xbf16>) combiners [] -> tensor<?xbf16>
// CHECK-NEXT: ^bb0(%{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: bf16):
// CHECK: dqt.philox_bits state0
func.func @fused_state_stream(%m: tensor<?xbf16>, %seed: i64, %step: i64, %tid: i64) -> tensor<?xbf16> {
  %r = dqt.fused_step scalars(%seed, %step, %tid : i64, i64, i64)
      outs(%m : tensor<?xbf16>) combiners [] -> tensor<?xbf16> {
  ^bb0(%s: i64, %t: i64, %id: i64, %me: bf16):
    %i = dqt.element_index : index
    %bits = dqt.philox_bits state0 %s, %t, %id at %i : i16
    dqt.yield %me : bf16
  }
  return %r : tensor<?xbf16>
}
