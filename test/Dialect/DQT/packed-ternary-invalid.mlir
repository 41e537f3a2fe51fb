// RUN: dqt-opt %s -split-input-file -verify-diagnostics

// The verifiers of packed ternary storage: one reason per case.

func.func @unpack_wrong_bytes(%p: tensor<2xi8>, %g: tensor<10xf32>) -> tensor<10xi8> {
  // expected-error @+1 {{'dqt.unpack_ternary' op packed storage of 10 elements has 3 bytes, got 2}}
  %q = dqt.unpack_ternary %p like %g : tensor<2xi8>, tensor<10xf32> -> tensor<10xi8>
  return %q : tensor<10xi8>
}

// -----

func.func @pack_wrong_bytes(%q: tensor<8xi8>) -> tensor<3xi8> {
  // expected-error @+1 {{'dqt.pack_ternary' op packed storage of 8 elements has 2 bytes, got 3}}
  %p = dqt.pack_ternary %q : tensor<8xi8> -> tensor<3xi8>
  return %p : tensor<3xi8>
}

// -----

func.func @packed_not_a_tensor(%p: tensor<?xi8>, %g: tensor<?xf32>) -> i8 {
  // expected-error @+1 {{'dqt.fused_step' op packed operand 2 is not a tensor operand (in [0, 2))}}
  %r = dqt.fused_step(%p, %g : tensor<?xi8>, tensor<?xf32>) {packed = array<i64: 2>,
      reductions = ["maxsi"], segments = 1, tensors = 2, tied = array<i64>} -> (i8) {
  ^bb0(%q: i8, %x: f32):
    dqt.yield %q : i8
  }
  return %r : i8
}

// -----

func.func @packed_float(%p: tensor<?xi8>, %g: tensor<?xf32>) -> i8 {
  // expected-error @+1 {{'dqt.fused_step' op packed operand #1 must be an i8 tensor (4 ternary codes per byte), got 'tensor<?xf32>'}}
  %r = dqt.fused_step(%p, %g : tensor<?xi8>, tensor<?xf32>) {packed = array<i64: 1>,
      reductions = ["maxsi"], segments = 1, tensors = 2, tied = array<i64>} -> (i8) {
  ^bb0(%q: i8, %x: f32):
    dqt.yield %q : i8
  }
  return %r : i8
}

// -----

func.func @all_packed(%p: tensor<?xi8>) -> i8 {
  // expected-error @+1 {{'dqt.fused_step' op needs a tensor operand that is not packed (it gives the element count)}}
  %r = dqt.fused_step(%p : tensor<?xi8>) {packed = array<i64: 0>,
      reductions = ["maxsi"], segments = 1, tensors = 1, tied = array<i64>} -> (i8) {
  ^bb0(%q: i8):
    dqt.yield %q : i8
  }
  return %r : i8
}

// -----

func.func @packed_length(%p: tensor<3xi8>, %g: tensor<7xf32>) -> i8 {
  // expected-error @+1 {{'dqt.fused_step' op packed storage of 7 elements has 2 bytes, got 'tensor<3xi8>'}}
  %r = dqt.fused_step(%p, %g : tensor<3xi8>, tensor<7xf32>) {packed = array<i64: 0>,
      reductions = ["maxsi"], segments = 1, tensors = 2, tied = array<i64>} -> (i8) {
  ^bb0(%q: i8, %x: f32):
    dqt.yield %q : i8
  }
  return %r : i8
}
