// A dqt.uniform stream that is used outside its chain (returned) must be
// fused as an (untied) output or refused with a diagnostic, never crash.
//
// (dqt.uniform updates no operand, so its output is never tied.)
//
// RUN: dqt-opt %s --dqt-fuse-step > %t.out 2>&1 || true
// RUN: FileCheck %s --input-file=%t.out --implicit-check-not="Stack dump" \
// RUN:   --implicit-check-not="PLEASE submit"

// CHECK: %[[R:.*]]:2 = dqt.fused_step
// CHECK-SAME: rng
// CHECK-SAME: tied = array<i64: -1, -1>
// CHECK-SAME: -> (tensor<?xf32>, tensor<?xi8>)
// CHECK: return %[[R]]#1, %[[R]]#0
func.func @uniform_escapes(%w: tensor<?xf32>, %d: f32, %seed: i64, %step: i64,
                           %tid: i64) -> (tensor<?xi8>, tensor<?xf32>) {
  %u = dqt.uniform %seed, %step, %tid like %w : tensor<?xf32> -> tensor<?xf32>
  %q = dqt.stochastic_round %w, %d, %u {bits = 8} : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  return %q, %u : tensor<?xi8>, tensor<?xf32>
}
