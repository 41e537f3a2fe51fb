// RUN: dqt-opt %s -split-input-file -verify-diagnostics

// The verifiers of the per-row delta ops: one reason per case.

func.func @expand_rows_length(%rows: tensor<4xf32>, %len: i64, %q: tensor<12xi8>) -> tensor<8xf32> {
  // expected-error @+1 {{'dqt.expand_rows' op tensor lengths differ: 'tensor<12xi8>' vs 'tensor<8xf32>'}}
  %d = dqt.expand_rows %rows, %len like %q : tensor<4xf32>, tensor<12xi8> -> tensor<8xf32>
  return %d : tensor<8xf32>
}

// -----

func.func @dequantize_delta_length(%q: tensor<12xi8>, %d: tensor<4xf32>) -> tensor<12xf32> {
  // expected-error @+1 {{'dqt.dequantize' op tensor lengths differ: 'tensor<12xi8>' vs 'tensor<4xf32>'}}
  %w = dqt.dequantize %q, %d : tensor<12xi8>, tensor<4xf32> -> tensor<12xf32>
  return %w : tensor<12xf32>
}

// -----

func.func @reduce_max_rows_i8(%q: tensor<?xi8>, %len: i64) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.reduce_max_rows' op result #0 must be 1D tensor of 32-bit signless integer values, but got 'tensor<?xi8>'}}
  %m = "dqt.reduce_max_rows"(%q, %len) : (tensor<?xi8>, i64) -> tensor<?xi8>
  return %m : tensor<?xi8>
}

// -----

func.func @row_operand_without_row_length(%q: tensor<?xi8>, %rows: tensor<?xf32>) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op operand #1 must be a scalar (after the 1 tensors), got 'tensor<?xf32>'}}
  %r = dqt.fused_step(%q, %rows : tensor<?xi8>, tensor<?xf32>) {
      reductions = [], segments = 1, tensors = 1, tied = array<i64: 0>} -> (tensor<?xi8>) {
  ^bb0(%qe: i8, %de: f32):
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @row_length_not_scalar(%q: tensor<?xi8>, %rows: tensor<?xf32>, %len: i64) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op 'row_length' = 0 is not a scalar operand (in [1, 3))}}
  %r = dqt.fused_step(%q, %rows, %len : tensor<?xi8>, tensor<?xf32>, i64) {
      reductions = [], row_length = 0, segments = 1, tensors = 1, tied = array<i64: 0>} -> (tensor<?xi8>) {
  ^bb0(%qe: i8, %de: f32, %l: i64):
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @row_length_not_i64(%q: tensor<?xi8>, %rows: tensor<?xf32>, %len: i32) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op row length operand #2 must be i64, got 'i32'}}
  %r = dqt.fused_step(%q, %rows, %len : tensor<?xi8>, tensor<?xf32>, i32) {
      reductions = [], row_length = 2, segments = 1, tensors = 1, tied = array<i64: 0>} -> (tensor<?xi8>) {
  ^bb0(%qe: i8, %de: f32, %l: i32):
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @row_reduction_without_row_length(%q: tensor<?xi8>) -> tensor<?xi32> {
  // expected-error @+1 {{'dqt.fused_step' op reduction #0 is per row (a tensor result) but 'row_length' is not set}}
  %r = dqt.fused_step(%q : tensor<?xi8>) {
      reductions = ["maxsi"], segments = 1, tensors = 1, tied = array<i64>} -> (tensor<?xi32>) {
  ^bb0(%qe: i8):
    %w = arith.extsi %qe : i8 to i32
    dqt.yield %w : i32
  }
  return %r : tensor<?xi32>
}

// -----

func.func @row_operand_body_type(%q: tensor<?xi8>, %rows: tensor<?xf32>, %len: i64) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op body arguments must be the element types of the 1 tensors, then the scalars (a row operand's element type)}}
  %r = dqt.fused_step(%q, %rows, %len : tensor<?xi8>, tensor<?xf32>, i64) {
      reductions = [], row_length = 2, segments = 1, tensors = 1, tied = array<i64: 0>} -> (tensor<?xi8>) {
  ^bb0(%qe: i8, %de: tensor<?xf32>, %l: i64):
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}
