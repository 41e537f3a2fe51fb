// A chain whose results nothing reads (a training graph's caller that drops
// the new states, once inlined) fuses to nothing: its ops are erased rather
// than made into a fused step without results.
//
// RUN: dqt-opt %s --dqt-fuse-step | FileCheck %s

// CHECK-LABEL: func.func @dead(
// CHECK-NEXT: return
func.func @dead(%g: tensor<?xf32>, %m: tensor<?xf32>, %v: tensor<?xf32>,
                %b1: f32, %b2: f32) {
  %m1, %v1 = dqt.adam_moments %g, %m, %v, %b1, %b2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  return
}

// A reduction is a result: that chain is kept.
// CHECK-LABEL: func.func @counted(
// CHECK: dqt.fused_step
// CHECK: dqt.yield
func.func @counted(%g: tensor<?xf32>) -> i64 {
  %nf = dqt.count_nonfinite %g : tensor<?xf32> -> i64
  return %nf : i64
}
