// Per-row delta through dqt-fuse-step and dqt-lower-to-cpu.
//
// RUN: dqt-opt %dqt_src/examples/adamw_per_row.mlir --dqt-fuse-step | FileCheck %s --check-prefix=FUSE
// RUN: dqt-opt %dqt_src/examples/adamw_per_row.mlir --dqt-fuse-step --dqt-lower-to-cpu | FileCheck %s --check-prefix=CPU

// The two per-row deltas are row operands of one fused step (in the scalars,
// after seed, step, tensor id), the row length is scalar #8, the per-row
// maxima a tensor result next to the tensor's maximum.
// FUSE: dqt.fused_step(%arg0, %arg1, %arg2, %arg3, %arg6, %arg7, %arg8, %arg4, %arg9, %arg10, %arg11, %arg12, %arg13, %arg14, %arg5 :
// FUSE-SAME: {reductions = ["maxsi", "maxsi", "addi", "addi"], rng, row_length = 8 : i64, segments = 1 : i64, tensors = 4 : i64, tied = array<i64: 0, 2, 3>}
// FUSE-SAME: -> (tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, tensor<?xi32>, i64, i64)
// Each element sees its row's delta and delta' as f32 scalars.
// FUSE-NEXT: ^bb0(%{{.*}}: f32, %{{.*}}: i8, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %[[D:.*]]: f32, %{{.*}}: i64, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32, %[[DN:.*]]: f32):
// FUSE: arith.mulf %{{.*}}, %[[D]] : f32
// FUSE: arith.divf %{{.*}}, %[[DN]] : f32
// FUSE-NOT: dqt.expand_rows
// FUSE-NOT: dqt.reduce_max_rows

// The kernel (StepConfig.h's per-row layout): q, grad, m, v, the row
// buffers (delta, delta', row max), then seed, step, tensor id, row length
// and the hyper-parameters; a loop over the rows of [begin, end) loads the
// row's delta and delta' once, runs the head, vector, group and tail loops
// inside the row, and max-combines the row's max(q') into its slot.
// CPU: func.func @adamw_per_row_step(%arg0: memref<?xi8> {llvm.noalias}, %arg1: memref<?xf32> {llvm.noalias}, %arg2: memref<?xf32> {llvm.noalias}, %arg3: memref<?xf32> {llvm.noalias}, %arg4: memref<?xf32> {llvm.noalias}, %arg5: memref<?xf32> {llvm.noalias}, %arg6: memref<?xi32> {llvm.noalias}, %arg7: i64, %arg8: i64, %arg9: i64, %arg10: i64, %arg11: f32, %arg12: f32, %arg13: f32, %arg14: f32, %arg15: f32, %arg16: index, %arg17: index, %arg18: memref<?xi64> {llvm.noalias})
// CPU-SAME: dqt.arg_origins = array<i64: 0, 1, 2, 3, 4, 5, -5, 6, 7, 8, 9, 10, 11, 12, 13, 14>
// CPU: %[[LEN:.*]] = arith.index_cast %arg10 : i64 to index
// CPU: arith.ceildivui
// CPU: scf.for %[[ROW:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args({{.*}}) -> (i8, i32, i64, i64) {
// CPU-NEXT: arith.muli %[[ROW]]
// CPU: memref.load %arg4[%[[ROW]]] : memref<?xf32>
// CPU-NEXT: memref.load %arg5[%[[ROW]]] : memref<?xf32>
// CPU: scf.for
// CPU: scf.for {{.*}} -> (vector<32xi8>, vector<32xi32>, i64, i64)
// CPU: vector.reduction <maxsi>, %{{.*}} : vector<32xi32> into i32
// CPU: scf.for
// CPU: scf.for
// CPU: %[[OLD:.*]] = memref.load %arg6[%[[ROW]]] : memref<?xi32>
// CPU-NEXT: %[[NEW:.*]] = arith.maxsi %[[OLD]], %{{.*}} : i32
// CPU-NEXT: memref.store %[[NEW]], %arg6[%[[ROW]]] : memref<?xi32>
// Three per-tensor partials: max(q'), changed, non-finite.
// CPU: memref.store %{{.*}}, %arg18[%c0{{.*}}] : memref<?xi64>
// CPU: memref.store %{{.*}}, %arg18[%c1{{.*}}] : memref<?xi64>
// CPU: memref.store %{{.*}}, %arg18[%c2{{.*}}] : memref<?xi64>
