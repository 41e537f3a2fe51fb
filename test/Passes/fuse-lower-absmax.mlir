// One SGD step under the absmax scale rule (docs/numerics.md, "Scale
// rules"), written as a trainer would: dqt.next_delta rule<absmax> from the
// previous step's max|w2| bits, and dqt.reduce_absmax of the updated values
// (masked where the gradient is not finite) as the fourth by-product.
// dqt-fuse-step makes it one fused step with four tensor reductions;
// dqt-lower-to-cpu computes the next delta in the prologue (0 < a < inf on
// the bits, then a / 7) and writes max|w2| to partial slot 3.
//
// RUN: dqt-opt %s --dqt-fuse-step | FileCheck %s --check-prefix=FUSED
// RUN: dqt-opt %s --dqt-fuse-step --dqt-lower-to-cpu | FileCheck %s --check-prefix=CPU \
// RUN:   --implicit-check-not=dqt.next_delta --implicit-check-not=dqt.reduce_absmax

// FUSED: dqt.next_delta %{{.*}}, %{{.*}} grid<4> rule<absmax> : i32
// FUSED: dqt.fused_step
// FUSED-SAME: combiners [#dqt.combiner<maxsi>, #dqt.combiner<addi>, #dqt.combiner<addi>, #dqt.combiner<maxsi>]
// FUSED-SAME: -> tensor<?xi8>, tensor<?xf32>, i8, i64, i64, i32
// The contribution: |w2| as bits (sign cleared), NaN as 0.
// FUSED: arith.andi %{{.*}}, %{{.*}} : i32
// FUSED: arith.cmpi sgt
// FUSED: dqt.yield

// CPU-LABEL: func.func @sgd_absmax(
// CPU: %[[C3:.*]] = arith.constant 3 : index
// CPU: %[[INF:.*]] = arith.constant 2139095040 : i32
// CPU: arith.cmpi slt, %{{.*}}, %[[INF]] : i32
// CPU-NEXT: arith.andi
// CPU-NEXT: arith.bitcast %{{.*}} : i32 to f32
// CPU-NEXT: arith.divf
// CPU: memref.store %{{.*}}, %[[PART:.*]][%c2] : memref<?xi64>
// CPU: memref.store %{{.*}}, %[[PART]][%[[C3]]] : memref<?xi64>
func.func @sgd_absmax(%q: tensor<?xi8>, %g: tensor<?xf32>, %buf: tensor<?xf32>,
                      %delta: f32, %amax: i32, %tid: i64, %lr: f32, %mu: f32,
                      %decay: f32, %seed: i64, %step: i64)
    -> (tensor<?xi8>, tensor<?xf32>, i8, i64, i64, i32) {
  %d1 = dqt.next_delta %delta, %amax grid<4> rule<absmax> : i32
  %w = dqt.dequantize %q, %delta : tensor<?xi8>, f32 -> tensor<?xf32>
  %w2, %buf1 = dqt.sgd_momentum %w, %g, %buf, %lr, %mu, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %u = dqt.uniform %seed, %step, %tid like %g : tensor<?xf32> -> tensor<?xf32>
  %q1 = dqt.stochastic_round %w2, %d1, %u grid<4>
      : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %qm = dqt.mask_nonfinite %g, %q1, %q : tensor<?xf32>, tensor<?xi8>
  %bm = dqt.mask_nonfinite %g, %buf1, %buf : tensor<?xf32>, tensor<?xf32>
  %mx = dqt.reduce_max %qm : tensor<?xi8> -> i8
  %ch = dqt.count_changed %q, %qm : tensor<?xi8>, tensor<?xi8> -> i64
  %nf = dqt.count_nonfinite %g : tensor<?xf32> -> i64
  %kept = dqt.mask_nonfinite %g, %w2, %w : tensor<?xf32>, tensor<?xf32>
  %a = dqt.reduce_absmax %kept : tensor<?xf32> -> i32
  return %qm, %bm, %mx, %ch, %nf, %a
      : tensor<?xi8>, tensor<?xf32>, i8, i64, i64, i32
}
