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

