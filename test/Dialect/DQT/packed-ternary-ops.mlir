// RUN: dqt-opt %s | dqt-opt | FileCheck %s

// Round trip of the packed ternary storage ops and the fused step's
// `packed` attribute.

// CHECK-LABEL: func.func @pack_unpack
// CHECK: dqt.unpack_ternary %{{.*}} like %{{.*}} : tensor<3xi8>, tensor<10xf32> -> tensor<10xi8>
// CHECK: dqt.pack_ternary %{{.*}} : tensor<10xi8> -> tensor<3xi8>
func.func @pack_unpack(%p: tensor<3xi8>, %g: tensor<10xf32>) -> tensor<3xi8> {
  %q = dqt.unpack_ternary %p like %g : tensor<3xi8>, tensor<10xf32> -> tensor<10xi8>
  %p1 = dqt.pack_ternary %q : tensor<10xi8> -> tensor<3xi8>
  return %p1 : tensor<3xi8>
}

// CHECK-LABEL: func.func @fused_packed
// CHECK: dqt.fused_step({{.*}}) {packed = array<i64: 0>, reductions = ["maxsi"], segments = 1 : i64, tensors = 2 : i64, tied = array<i64: 0>}
func.func @fused_packed(%p: tensor<2xi8>, %g: tensor<7xf32>) -> (tensor<2xi8>, i8) {
  %r:2 = dqt.fused_step(%p, %g : tensor<2xi8>, tensor<7xf32>) {packed = array<i64: 0>,
      reductions = ["maxsi"], segments = 1, tensors = 2, tied = array<i64: 0>}
      -> (tensor<2xi8>, i8) {
  ^bb0(%q: i8, %x: f32):
    dqt.yield %q, %q : i8, i8
  }
  return %r#0, %r#1 : tensor<2xi8>, i8
}
