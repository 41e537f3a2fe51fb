// dqt-outline-steps moves fused steps out of larger functions (training
// graphs) into kernel functions, leaving a dqt.launch where they stood.
//
// RUN: dqt-opt %s -split-input-file --dqt-fuse-step --dqt-outline-steps | FileCheck %s

// Two steps of one configuration after a backward pass: one kernel of two
// segments (the steps' operands once each, then each destination), launched
// where the second step stood. Dynamic lengths are asserted equal at run
// time.
// CHECK-LABEL: func.func @two_layers(
// CHECK: linalg.generic
// CHECK-COUNT-4: cf.assert %{{.*}}, "dqt.fused_step: element tensors of different lengths"
// CHECK: %[[L:.*]]:6 = dqt.launch @two_layers_step0(%{{.*}}) outs(%arg1, %arg2, %arg4, %arg5 : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>, tensor<?xf32>) combiners [#dqt.combiner<addi>] -> tensor<?xf32>, tensor<?xf32>, tensor<?xf32>, tensor<?xf32>, i64, i64
// CHECK-NOT: dqt.launch
// CHECK: return %[[L]]#0, %[[L]]#1, %[[L]]#4, %[[L]]#2, %[[L]]#3, %[[L]]#5
// CHECK: func.func private @two_layers_step0(
// CHECK-COUNT-2: dqt.fused_step
// CHECK-NOT: dqt.fused_step
// CHECK: return
#map = affine_map<(d0) -> (d0)>
func.func @two_layers(%x0: tensor<?xf32>, %m0: tensor<?xf32>, %v0: tensor<?xf32>,
                      %x1: tensor<?xf32>, %m1: tensor<?xf32>, %v1: tensor<?xf32>,
                      %b1: f32, %b2: f32)
    -> (tensor<?xf32>, tensor<?xf32>, i64, tensor<?xf32>, tensor<?xf32>, i64) {
  // Gradients from a (stand-in) backward pass: g = 2 x.
  %c0 = arith.constant 0 : index
  %n0 = tensor.dim %x0, %c0 : tensor<?xf32>
  %e0 = tensor.empty(%n0) : tensor<?xf32>
  %g0 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]}
      ins(%x0 : tensor<?xf32>) outs(%e0 : tensor<?xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.addf %a, %a : f32
    linalg.yield %r : f32
  } -> tensor<?xf32>
  %n1 = tensor.dim %x1, %c0 : tensor<?xf32>
  %e1 = tensor.empty(%n1) : tensor<?xf32>
  %g1 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]}
      ins(%x1 : tensor<?xf32>) outs(%e1 : tensor<?xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.addf %a, %a : f32
    linalg.yield %r : f32
  } -> tensor<?xf32>
  %m0a, %v0a = dqt.adam_moments %g0, %m0, %v0, %b1, %b2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %nf0 = dqt.count_nonfinite %g0 : tensor<?xf32> -> i64
  %m1a, %v1a = dqt.adam_moments %g1, %m1, %v1, %b1, %b2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %nf1 = dqt.count_nonfinite %g1 : tensor<?xf32> -> i64
  return %m0a, %v0a, %nf0, %m1a, %v1a, %nf1
      : tensor<?xf32>, tensor<?xf32>, i64, tensor<?xf32>, tensor<?xf32>, i64
}

// -----

// A function that already is a kernel is left to the kernel lowerings.
// CHECK-LABEL: func.func @kernel(
// CHECK-NOT: dqt.launch
// CHECK: dqt.fused_step
func.func @kernel(%g: tensor<?xf32>, %m: tensor<?xf32>, %v: tensor<?xf32>,
                  %b1: f32, %b2: f32) -> (tensor<?xf32>, tensor<?xf32>) {
  %m1, %v1 = dqt.adam_moments %g, %m, %v, %b1, %b2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  return %m1, %v1 : tensor<?xf32>, tensor<?xf32>
}

// -----

// A step in a training loop is launched in the loop body, each iteration;
// static lengths need no run-time check. The kernel reads the loop's values
// through its arguments.
// CHECK-LABEL: func.func @loop(
// CHECK-NOT: cf.assert
// CHECK: scf.for
// CHECK: %[[R:.*]]:2 = dqt.launch @loop_step0(%{{.*}}, %{{.*}}, %{{.*}} : tensor<16xf32>, f32, f32) outs(%{{.*}}, %{{.*}} : tensor<16xf32>, tensor<16xf32>) combiners [] -> tensor<16xf32>, tensor<16xf32>
// CHECK: scf.yield %[[R]]#0, %[[R]]#1
// CHECK: func.func private @loop_step0(%{{.*}}: tensor<16xf32>, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: tensor<16xf32>, %{{.*}}: tensor<16xf32>) -> (tensor<16xf32>, tensor<16xf32>)
func.func @loop(%g: tensor<16xf32>, %m: tensor<16xf32>, %v: tensor<16xf32>,
                %b1: f32, %b2: f32, %n: index) -> (tensor<16xf32>, tensor<16xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %r:2 = scf.for %i = %c0 to %n step %c1 iter_args(%mi = %m, %vi = %v)
      -> (tensor<16xf32>, tensor<16xf32>) {
    %m1, %v1 = dqt.adam_moments %g, %mi, %vi, %b1, %b2
        : tensor<16xf32>, tensor<16xf32>, tensor<16xf32>
    scf.yield %m1, %v1 : tensor<16xf32>, tensor<16xf32>
  }
  return %r#0, %r#1 : tensor<16xf32>, tensor<16xf32>
}

// -----

// The per-row maxima start from the identity: the kernels max-combine into
// their destination.
// CHECK-LABEL: func.func @per_row(
// CHECK: %[[MIN:.*]] = arith.constant -2147483648 : i32
// CHECK: %[[FILL:.*]] = linalg.fill ins(%[[MIN]] : i32) outs(%{{.*}} : tensor<?xi32>) -> tensor<?xi32>
// CHECK: dqt.launch @per_row_step0({{.*}}) outs(%[[FILL]] : tensor<?xi32>)
#map1 = affine_map<(d0) -> (d0)>
func.func @per_row(%x: tensor<?xi8>, %len: i64) -> tensor<?xi32> {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?xi8>
  %e = tensor.empty(%n) : tensor<?xi8>
  %q = linalg.generic {indexing_maps = [#map1, #map1], iterator_types = ["parallel"]}
      ins(%x : tensor<?xi8>) outs(%e : tensor<?xi8>) {
  ^bb0(%a: i8, %o: i8):
    linalg.yield %a : i8
  } -> tensor<?xi8>
  %rmx = dqt.reduce_max_rows %q, %len : tensor<?xi8> -> tensor<?xi32>
  return %rmx : tensor<?xi32>
}

// -----

// Steps that depend on each other run as two kernels, in order.
// CHECK-LABEL: func.func @chained(
// CHECK: dqt.launch @chained_step0
// CHECK: linalg.generic
// CHECK: dqt.launch @chained_step1
// CHECK: func.func private @chained_step0(
// CHECK: func.func private @chained_step1(
#map2 = affine_map<(d0) -> (d0)>
func.func @chained(%g: tensor<16xf32>, %m: tensor<16xf32>, %v: tensor<16xf32>,
                   %m2: tensor<16xf32>, %v2: tensor<16xf32>, %b1: f32, %b2: f32)
    -> (tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>) {
  %m1, %v1 = dqt.adam_moments %g, %m, %v, %b1, %b2
      : tensor<16xf32>, tensor<16xf32>, tensor<16xf32>
  %e = tensor.empty() : tensor<16xf32>
  %g2 = linalg.generic {indexing_maps = [#map2, #map2], iterator_types = ["parallel"]}
      ins(%m1 : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  } -> tensor<16xf32>
  %m3, %v3 = dqt.adam_moments %g2, %m2, %v2, %b1, %b2
      : tensor<16xf32>, tensor<16xf32>, tensor<16xf32>
  return %m1, %v1, %m3, %v3 : tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>
}
