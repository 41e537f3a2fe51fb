// RUN: dqt-opt %s | dqt-opt | FileCheck %s

// Round trip of the per-row delta ops (dqt.expand_rows, dqt.reduce_max_rows,
// a tensor delta in dqt.dequantize and dqt.stochastic_round) and of the
// fused step's `row_length`.

// CHECK-LABEL: func.func @per_row_chain
// CHECK: %[[D:.*]] = dqt.expand_rows %{{.*}}, %{{.*}} like %{{.*}} : tensor<4xf32>, tensor<12xi8> -> tensor<12xf32>
// CHECK: dqt.dequantize %{{.*}}, %[[D]] : tensor<12xi8>, tensor<12xf32> -> tensor<12xf32>
// CHECK: dqt.stochastic_round %{{.*}}, %[[D]], %{{.*}} {bits = 4 : i64} : tensor<12xf32>, tensor<12xf32>, tensor<12xf32> -> tensor<12xi8>
// CHECK: dqt.reduce_max_rows %{{.*}}, %{{.*}} : tensor<12xi8> -> tensor<4xi32>
func.func @per_row_chain(%q: tensor<12xi8>, %rows: tensor<4xf32>, %len: i64,
                         %u: tensor<12xf32>) -> (tensor<12xi8>, tensor<4xi32>) {
  %d = dqt.expand_rows %rows, %len like %q : tensor<4xf32>, tensor<12xi8> -> tensor<12xf32>
  %w = dqt.dequantize %q, %d : tensor<12xi8>, tensor<12xf32> -> tensor<12xf32>
  %q1 = dqt.stochastic_round %w, %d, %u {bits = 4} : tensor<12xf32>, tensor<12xf32>, tensor<12xf32> -> tensor<12xi8>
  %mx = dqt.reduce_max_rows %q1, %len : tensor<12xi8> -> tensor<4xi32>
  return %q1, %mx : tensor<12xi8>, tensor<4xi32>
}

// CHECK-LABEL: func.func @fused_per_row
// CHECK: dqt.fused_step({{.*}}) {reductions = ["maxsi", "maxsi"], row_length = 2 : i64, segments = 1 : i64, tensors = 1 : i64, tied = array<i64: 0>}
// CHECK-NEXT: ^bb0(%{{.*}}: i8, %{{.*}}: f32, %{{.*}}: i64):
func.func @fused_per_row(%q: tensor<?xi8>, %rows: tensor<?xf32>, %len: i64)
    -> (tensor<?xi8>, i8, tensor<?xi32>) {
  %r:3 = dqt.fused_step(%q, %rows, %len : tensor<?xi8>, tensor<?xf32>, i64) {
      reductions = ["maxsi", "maxsi"], row_length = 2, segments = 1,
      tensors = 1, tied = array<i64: 0>}
      -> (tensor<?xi8>, i8, tensor<?xi32>) {
  ^bb0(%qe: i8, %de: f32, %l: i64):
    %w = arith.extsi %qe : i8 to i32
    dqt.yield %qe, %qe, %w : i8, i8, i32
  }
  return %r#0, %r#1, %r#2 : tensor<?xi8>, i8, tensor<?xi32>
}
