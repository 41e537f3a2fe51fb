// Per-row delta (the function at the end of this file) through dqt-fuse-step
// and dqt-lower-to-cpu.
//
// RUN: dqt-opt %s --dqt-fuse-step | FileCheck %s --check-prefix=FUSE
// RUN: dqt-opt %s --dqt-fuse-step --dqt-lower-to-cpu | FileCheck %s --check-prefix=CPU

// The two per-row deltas are `rows` operands of one fused step, the row
// length its `row_length`, the per-row maxima a `row_outs` destination of
// one i32 per row (a tensor.empty as long as the delta tensor) whose
// combiner comes first; its tensor result comes after the `outs` results.
// FUSE-LABEL: func.func @adamw_per_row_step
// FUSE: %[[NROWS:.*]] = tensor.dim %arg4, %{{.*}} : tensor<?xf32>
// FUSE-NEXT: %[[RMX:.*]] = tensor.empty(%[[NROWS]]) : tensor<?xi32>
// FUSE-NEXT: %[[R:.*]]:7 = dqt.fused_step ins(%arg1 : tensor<?xf32>) rows(%arg4, %arg5 : tensor<?xf32>, tensor<?xf32>)
// FUSE-SAME: scalars(%arg6, %arg7, %arg8, %arg10, %arg11, %arg12, %arg13, %arg14 : i64, i64, i64, f32, f32, f32, f32, f32) row_length(%arg9)
// FUSE-SAME: outs(%arg0, %arg2, %arg3 : tensor<?xi8>, tensor<?xf32>, tensor<?xf32>) row_outs(%[[RMX]] : tensor<?xi32>)
// FUSE-SAME: combiners [#dqt.combiner<maxsi>, #dqt.combiner<maxsi>, #dqt.combiner<addi>, #dqt.combiner<addi>]
// FUSE-SAME: -> tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, tensor<?xi32>, i8, i64, i64 {
// Each element sees its row's delta and delta' as f32 values after the
// gradient element and before the scalars.
// FUSE-NEXT: ^bb0(%{{[^:]*}}: f32, %[[D:[^:]*]]: f32, %[[DN:[^:]*]]: f32, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: i8, %{{[^:]*}}: f32, %{{[^:]*}}: f32):
// FUSE: arith.mulf %{{.*}}, %[[D]] : f32
// FUSE: arith.divf %{{.*}}, %[[DN]] : f32
// FUSE-NOT: dqt.expand_rows
// FUSE-NOT: dqt.reduce_max_rows
// The element yields q', m', v', its row contribution (i32), then the
// per-tensor ones; the results go back to the function's order.
// FUSE: dqt.yield {{.*}} : i8, f32, f32, i32, i8, i64, i64
// FUSE: return %[[R]]#0, %[[R]]#1, %[[R]]#2, %[[R]]#4, %[[R]]#3, %[[R]]#5, %[[R]]#6 :

// The kernel: the function's arguments in order (q, grad, m, v, delta,
// delta', seed, step, tensor id, row length, the hyper-parameters), then
// the new buffer of the row maxima (function result 4: origin -5), begin,
// end and the partials; a loop over the rows of [begin, end) loads the
// row's delta and delta' once, runs the head, vector, group and tail loops
// inside the row, and max-combines the row's max(q') into its slot.
// CPU-LABEL: func.func @adamw_per_row_step
// CPU-SAME: (%arg0: memref<?xi8> {llvm.noalias}, %arg1: memref<?xf32> {llvm.noalias}, %arg2: memref<?xf32> {llvm.noalias}, %arg3: memref<?xf32> {llvm.noalias}, %arg4: memref<?xf32> {llvm.noalias}, %arg5: memref<?xf32> {llvm.noalias}, %arg6: i64, %arg7: i64, %arg8: i64, %arg9: i64, %arg10: f32, %arg11: f32, %arg12: f32, %arg13: f32, %arg14: f32, %arg15: memref<?xi32> {llvm.noalias}, %arg16: index, %arg17: index, %arg18: memref<?xi64> {llvm.noalias})
// CPU-SAME: dqt.arg_origins = array<i64: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, -5>
// CPU: %[[LEN:.*]] = arith.index_cast %arg9 : i64 to index
// CPU: arith.ceildivui
// CPU: scf.for %[[ROW:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args({{.*}}) -> (i32, i8, i64, i64) {
// CPU-NEXT: arith.muli %[[ROW]]
// CPU: memref.load %arg4[%[[ROW]]] : memref<?xf32>
// CPU-NEXT: memref.load %arg5[%[[ROW]]] : memref<?xf32>
// CPU: scf.for
// CPU: scf.for {{.*}} -> (vector<32xi32>, vector<32xi8>, i64, i64)
// CPU: vector.reduction <maxsi>, %{{.*}} : vector<32xi32> into i32
// CPU: scf.for
// CPU: scf.for
// CPU: %[[OLD:.*]] = memref.load %arg15[%[[ROW]]] : memref<?xi32>
// CPU-NEXT: %[[NEW:.*]] = arith.maxsi %[[OLD]], %{{.*}} : i32
// CPU-NEXT: memref.store %[[NEW]], %arg15[%[[ROW]]] : memref<?xi32>
// Three per-tensor partials: max(q'), changed, non-finite.
// CPU: memref.store %{{.*}}, %arg18[%c0{{.*}}] : memref<?xi64>
// CPU: memref.store %{{.*}}, %arg18[%c1{{.*}}] : memref<?xi64>
// CPU: memref.store %{{.*}}, %arg18[%c2{{.*}}] : memref<?xi64>

// One DQT AdamW step of an 8-bit parameter with one delta per output row
// (a copy of examples/adamw_per_row.mlir).
func.func @adamw_per_row_step(
    %q: tensor<?xi8>,
    %g: tensor<?xf32>,
    %m: tensor<?xf32>,
    %v: tensor<?xf32>,
    %delta: tensor<?xf32>,
    %delta_next: tensor<?xf32>,
    %seed: i64,
    %step: i64,
    %tid: i64,
    %len: i64,
    %beta1: f32,
    %beta2: f32,
    %alpha: f32,
    %eps: f32,
    %decay: f32)
    -> (tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, tensor<?xi32>, i64,
        i64) {
  %d = dqt.expand_rows %delta, %len like %q
      : tensor<?xf32>, tensor<?xi8> -> tensor<?xf32>
  %w = dqt.dequantize %q, %d : tensor<?xi8>, tensor<?xf32> -> tensor<?xf32>
  %m1, %v1 = dqt.adam_moments %g, %m, %v, %beta1, %beta2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %w1 = dqt.adam_apply %w, %m1, %v1, %alpha, %eps, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %u = dqt.uniform %seed, %step, %tid like %g : tensor<?xf32> -> tensor<?xf32>
  %d1 = dqt.expand_rows %delta_next, %len like %q
      : tensor<?xf32>, tensor<?xi8> -> tensor<?xf32>
  %q1 = dqt.stochastic_round %w1, %d1, %u grid<8>
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xi8>
  %q2 = dqt.mask_nonfinite %g, %q1, %q : tensor<?xf32>, tensor<?xi8>
  %m2 = dqt.mask_nonfinite %g, %m1, %m : tensor<?xf32>, tensor<?xf32>
  %v2 = dqt.mask_nonfinite %g, %v1, %v : tensor<?xf32>, tensor<?xf32>
  %mx = dqt.reduce_max %q2 : tensor<?xi8> -> i8
  %rmx = dqt.reduce_max_rows %q2, %len : tensor<?xi8> -> tensor<?xi32>
  %ch = dqt.count_changed %q, %q2 : tensor<?xi8>, tensor<?xi8> -> i64
  %nf = dqt.count_nonfinite %g : tensor<?xf32> -> i64
  return %q2, %m2, %v2, %mx, %rmx, %ch, %nf
      : tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, tensor<?xi32>, i64, i64
}
