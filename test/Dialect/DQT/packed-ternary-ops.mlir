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
// CHECK: dqt.fused_step ins(%{{.*}} : tensor<7xf32>) outs(%{{.*}} : tensor<2xi8>) combiners [#dqt.combiner<maxsi>] attributes {packed = array<i64: 0>} -> tensor<2xi8>, i8
func.func @fused_packed(%p: tensor<2xi8>, %g: tensor<7xf32>) -> (tensor<2xi8>, i8) {
  %r:2 = dqt.fused_step ins(%g : tensor<7xf32>) outs(%p : tensor<2xi8>)
      combiners [#dqt.combiner<maxsi>] attributes {packed = array<i64: 0>}
      -> tensor<2xi8>, i8 {
  ^bb0(%x: f32, %q: i8):
    dqt.yield %q, %q : i8, i8
  }
  return %r#0, %r#1 : tensor<2xi8>, i8
}
