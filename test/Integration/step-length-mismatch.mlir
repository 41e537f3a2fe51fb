// Element tensors of dynamic length must agree: a training graph whose
// gradient (16 elements) and states (8) disagree stops at the step with the
// assertion dqt-outline-steps inserted, before the kernel reads out of
// bounds. (stdbuf: the message goes through puts, whose buffer abort would
// lose.)
//
// RUN: dqt-opt %s --dqt-compile-cpu \
// RUN:   | not --crash stdbuf -o0 mlir-runner -e main -entry-point-result=void \
// RUN:       -shared-libs=%mlir_c_runner_utils -shared-libs=%mlir_runner_utils 2>&1 \
// RUN:   | FileCheck %s
// CHECK: before the step
// CHECK: dqt.fused_step: element tensors of different lengths
// CHECK-NOT: after the step

#map = affine_map<(d0) -> (d0)>
func.func @step(%x: tensor<?xf32>, %m: tensor<?xf32>, %v: tensor<?xf32>)
    -> (tensor<?xf32>, tensor<?xf32>) {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?xf32>
  %e = tensor.empty(%n) : tensor<?xf32>
  %g = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]}
      ins(%x : tensor<?xf32>) outs(%e : tensor<?xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.addf %a, %a : f32
    linalg.yield %r : f32
  } -> tensor<?xf32>
  %b1 = arith.constant 0.9 : f32
  %b2 = arith.constant 0.999 : f32
  %m1, %v1 = dqt.adam_moments %g, %m, %v, %b1, %b2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  return %m1, %v1 : tensor<?xf32>, tensor<?xf32>
}

func.func @main() {
  %x = arith.constant dense<1.0> : tensor<16xf32>
  %s = arith.constant dense<0.0> : tensor<8xf32>
  %s2 = arith.constant dense<1.0> : tensor<8xf32>
  %xd = tensor.cast %x : tensor<16xf32> to tensor<?xf32>
  %sd = tensor.cast %s : tensor<8xf32> to tensor<?xf32>
  %sd2 = tensor.cast %s2 : tensor<8xf32> to tensor<?xf32>
  vector.print str "before the step\n"
  %r:2 = func.call @step(%xd, %sd, %sd2) : (tensor<?xf32>, tensor<?xf32>, tensor<?xf32>) -> (tensor<?xf32>, tensor<?xf32>)
  vector.print str "after the step\n"
  %c0 = arith.constant 0 : index
  %e = tensor.extract %r#0[%c0] : tensor<?xf32>
  vector.print %e : f32
  return
}
