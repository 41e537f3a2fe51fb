// RUN: dqt-opt %s | dqt-opt | FileCheck %s

// Round trip of the per-row delta ops (dqt.expand_rows, dqt.reduce_max_rows,
// a tensor delta in dqt.dequantize and dqt.stochastic_round) and of the
// fused step's `row_length`.

// CHECK-LABEL: func.func @per_row_chain
// CHECK: %[[D:.*]] = dqt.expand_rows %{{.*}}, %{{.*}} like %{{.*}} : tensor<4xf32>, tensor<12xi8> -> tensor<12xf32>
// CHECK: dqt.dequantize %{{.*}}, %[[D]] : tensor<12xi8>, tensor<12xf32> -> tensor<12xf32>
// CHECK: dqt.stochastic_round %{{.*}}, %[[D]], %{{.*}} grid<4> : tensor<12xf32>, tensor<12xf32>, tensor<12xf32> -> tensor<12xi8>
// CHECK: dqt.reduce_max_rows %{{.*}}, %{{.*}} : tensor<12xi8> -> tensor<4xi32>
func.func @per_row_chain(%q: tensor<12xi8>, %rows: tensor<4xf32>, %len: i64,
                         %u: tensor<12xf32>) -> (tensor<12xi8>, tensor<4xi32>) {
  %d = dqt.expand_rows %rows, %len like %q : tensor<4xf32>, tensor<12xi8> -> tensor<12xf32>
  %w = dqt.dequantize %q, %d : tensor<12xi8>, tensor<12xf32> -> tensor<12xf32>
  %q1 = dqt.stochastic_round %w, %d, %u grid<4> : tensor<12xf32>, tensor<12xf32>, tensor<12xf32> -> tensor<12xi8>
  %mx = dqt.reduce_max_rows %q1, %len : tensor<12xi8> -> tensor<4xi32>
  return %q1, %mx : tensor<12xi8>, tensor<4xi32>
}

// CHECK-LABEL: func.func @fused_per_row
// CHECK: dqt.fused_step rows(%{{.*}} : tensor<?xf32>) row_length(%{{.*}}) outs(%{{.*}} : tensor<?xi8>) row_outs(%{{.*}} : tensor<?xi32>) combiners [#dqt.combiner<maxsi>, #dqt.combiner<maxsi>] -> tensor<?xi8>, tensor<?xi32>, i8
// CHECK-NEXT: ^bb0(%{{.*}}: f32, %{{.*}}: i8):
func.func @fused_per_row(%q: tensor<?xi8>, %rows: tensor<?xf32>, %len: i64,
                         %rm: tensor<?xi32>)
    -> (tensor<?xi8>, tensor<?xi32>, i8) {
  %r:3 = dqt.fused_step rows(%rows : tensor<?xf32>) row_length(%len)
      outs(%q : tensor<?xi8>) row_outs(%rm : tensor<?xi32>)
      combiners [#dqt.combiner<maxsi>, #dqt.combiner<maxsi>]
      -> tensor<?xi8>, tensor<?xi32>, i8 {
  ^bb0(%de: f32, %qe: i8):
    %w = arith.extsi %qe : i8 to i32
    dqt.yield %qe, %w, %qe : i8, i32, i8
  }
  return %r#0, %r#1, %r#2 : tensor<?xi8>, tensor<?xi32>, i8
}
