// RUN: dqt-opt %s | dqt-opt | FileCheck %s
// RUN: dqt-opt %s --mlir-print-op-generic | dqt-opt | FileCheck %s

// Round trip of the absmax scale rule's ops (docs/numerics.md, "Scale
// rules"): its by-products dqt.reduce_absmax and dqt.reduce_absmax_rows, and
// dqt.next_delta under `rule<absmax>`.

// CHECK-LABEL: func.func @absmax_by_products
// CHECK: dqt.reduce_absmax %{{.*}} : tensor<12xf32> -> i32
// CHECK: dqt.reduce_absmax_rows %{{.*}}, %{{.*}} : tensor<12xf32> -> tensor<4xi32>
func.func @absmax_by_products(%w: tensor<12xf32>, %len: i64) -> (i32, tensor<4xi32>) {
  %a = dqt.reduce_absmax %w : tensor<12xf32> -> i32
  %r = dqt.reduce_absmax_rows %w, %len : tensor<12xf32> -> tensor<4xi32>
  return %a, %r : i32, tensor<4xi32>
}

// CHECK-LABEL: func.func @next_delta_rules
// CHECK: dqt.next_delta %{{.*}}, %{{.*}} grid<8> rule<absmax> : i32
// CHECK: dqt.next_delta %{{.*}}, %{{.*}} grid<8>{{$}}
func.func @next_delta_rules(%d: f32, %a: i32, %mx: i8) -> (f32, f32) {
  %d1 = dqt.next_delta %d, %a grid<8> rule<absmax> : i32
  %d2 = dqt.next_delta %d, %mx grid<8> rule<maxq>
  return %d1, %d2 : f32, f32
}
