// A dqt.uniform stream that is used outside its chain (returned) is fused as
// an output of its own: dqt.uniform updates no operand, so both outputs get a
// tensor.empty destination of the element count.
//
// RUN: dqt-opt %s --dqt-fuse-step | FileCheck %s

// CHECK-LABEL: func.func @uniform_escapes
// CHECK-SAME: (%[[W:[^:]*]]: tensor<?xf32>
// CHECK: %[[N:.*]] = tensor.dim %[[W]], %{{.*}} : tensor<?xf32>
// CHECK: %[[EU:.*]] = tensor.empty(%[[N]]) : tensor<?xf32>
// CHECK: %[[EQ:.*]] = tensor.empty(%[[N]]) : tensor<?xi8>
// CHECK: %[[R:.*]]:2 = dqt.fused_step ins(%[[W]] : tensor<?xf32>)
// CHECK-SAME: outs(%[[EU]], %[[EQ]] : tensor<?xf32>, tensor<?xi8>) combiners []
// CHECK-SAME: -> tensor<?xf32>, tensor<?xi8>
// The element's 16 bits of the weight stream, and its uniform
// (2h + 1) * 2^-17 = (h + 0.5) * 2^-16.
// CHECK: %[[H:.*]] = dqt.philox_bits weight %{{.*}}, %{{.*}}, %{{.*}} at %{{.*}} : i16
// CHECK-NEXT: arith.extui %[[H]] : i16 to i32
// CHECK: arith.constant 7.62939453E-6 : f32
// CHECK: return %[[R]]#1, %[[R]]#0
func.func @uniform_escapes(%w: tensor<?xf32>, %d: f32, %seed: i64, %step: i64,
                           %tid: i64) -> (tensor<?xi8>, tensor<?xf32>) {
  %u = dqt.uniform %seed, %step, %tid like %w : tensor<?xf32> -> tensor<?xf32>
  %q = dqt.stochastic_round %w, %d, %u grid<8> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  return %q, %u : tensor<?xi8>, tensor<?xf32>
}
