// dqt-lower-to-gpu outlines the fused three-parameter AdamW step into ONE
// gpu.func kernel: per segment a grid-stride loop over 4-element groups
// (128-bit loads of f32 data), the n % 4 tail on the first threads, block
// reductions with gpu.all_reduce and one global atomic per block and
// reduction. math.sqrt becomes the IEEE llvm.nvvm.sqrt.rn.f.
//
// RUN: dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-fuse-step --dqt-lower-to-gpu \
// RUN:   | FileCheck %s --implicit-check-not=gpu.func --implicit-check-not=gpu.module \
// RUN:   --implicit-check-not=math.sqrt --implicit-check-not=func.func \
// RUN:   --implicit-check-not=dqt.fused_step --implicit-check-not=dqt.next_delta \
// RUN:   --implicit-check-not="tensor<"
//
// Exactly one kernel, 15 IEEE square roots (3 segments x (4 lanes + 1 tail)).
// RUN: dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-fuse-step --dqt-lower-to-gpu \
// RUN:   | grep "gpu.func @.* kernel" | count 1
// RUN: dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-fuse-step --dqt-lower-to-gpu \
// RUN:   | grep 'llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"' | count 15
//
// Without dqt-fuse-step there is nothing the GPU lowering can take.
// RUN: not dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-lower-to-gpu 2>&1 | FileCheck %s --check-prefix=UNFUSED

// UNFUSED: error: 'dqt.dequantize' op was not fused; run dqt-fuse-step first

// CHECK: module attributes {gpu.container_module} {
// CHECK-NEXT: gpu.module @dqt_kernels {
// CHECK-NEXT: gpu.func @adamw_step(
// CHECK-SAME: %[[Q0:[^:]*]]: memref<?xi8>, %[[G0:[^:]*]]: memref<?xf32>, %[[M0:[^:]*]]: memref<?xf32>, %[[V0:[^:]*]]: memref<?xf32>,
// CHECK-SAME: %[[Q1:[^:]*]]: memref<?xi8>, %{{[^:]*}}: memref<?xf32>, %{{[^:]*}}: memref<?xf32>, %[[V1:[^:]*]]: memref<?xf32>,
// CHECK-SAME: %[[Q2:[^:]*]]: memref<?xi8>, %{{[^:]*}}: memref<?xf32>, %{{[^:]*}}: memref<?xf32>, %[[V2:[^:]*]]: memref<?xf32>,
// CHECK-SAME: %[[PART:[^:]*]]: memref<?xi64>) kernel{{.*}}{
// Grid-stride loop over groups of 4 elements.
// CHECK: %[[TID:.*]] = gpu.thread_id x
// CHECK-NEXT: %[[BID:.*]] = gpu.block_id x
// CHECK-NEXT: %[[BDIM:.*]] = gpu.block_dim x
// CHECK-NEXT: %[[GDIM:.*]] = gpu.grid_dim x
// CHECK-NEXT: %[[T0:.*]] = arith.muli %[[BID]], %[[BDIM]] : index
// CHECK-NEXT: %[[GTID:.*]] = arith.addi %[[T0]], %[[TID]] : index
// CHECK-NEXT: %[[STRIDE:.*]] = arith.muli %[[BDIM]], %[[GDIM]] : index
// CHECK: %[[N0:.*]] = memref.dim %[[Q0]], %{{.*}} : memref<?xi8>
// CHECK-NEXT: %[[NG0:.*]] = arith.divui %[[N0]], %c4 : index
// CHECK: %[[L0:.*]]:3 = scf.for %[[G:.*]] = %[[GTID]] to %[[NG0]] step %[[STRIDE]] iter_args({{.*}}) -> (i8, i64, i64) {
// CHECK-NEXT: %[[FIRST:.*]] = arith.muli %[[G]], %c4 : index
// One Philox call gives the 4 lanes' uniforms.
// CHECK: dqt.philox
// CHECK-NOT: dqt.philox
// 128-bit loads of the f32 streams, 32-bit loads of the int8 weights.
// CHECK: vector.load %[[Q0]][%[[FIRST]]] {alignment = 4 : i64} : memref<?xi8>, vector<4xi8>
// CHECK: vector.load %[[G0]][%[[FIRST]]] {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK: vector.load %[[M0]][%[[FIRST]]] {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK: vector.load %[[V0]][%[[FIRST]]] {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK-COUNT-4: llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"(%{{.*}}) : (f32) -> f32
// CHECK: vector.store %{{.*}}, %[[Q0]][%[[FIRST]]] {alignment = 4 : i64} : memref<?xi8>, vector<4xi8>
// CHECK: vector.store %{{.*}}, %[[M0]][%[[FIRST]]] {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK: vector.store %{{.*}}, %[[V0]][%[[FIRST]]] {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK-NOT: vector.store
// CHECK: scf.yield
// CHECK-NEXT: }
// The tail: element 4*groups + global thread id, if below n.
// CHECK-NEXT: %[[TS:.*]] = arith.muli %[[NG0]], %c4 : index
// CHECK-NEXT: %[[TI:.*]] = arith.addi %[[TS]], %[[GTID]] : index
// CHECK-NEXT: %[[IN:.*]] = arith.cmpi ult, %[[TI]], %[[N0]] : index
// CHECK-NEXT: %[[T:.*]]:3 = scf.if %[[IN]] -> (i8, i64, i64) {
// CHECK: memref.load %[[Q0]][%[[TI]]] : memref<?xi8>
// CHECK: llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"
// CHECK: memref.store %{{.*}}, %[[V0]][%[[TI]]] : memref<?xf32>
// CHECK: } else {
// CHECK-NEXT: scf.yield %[[L0]]#0, %[[L0]]#1, %[[L0]]#2 : i8, i64, i64
// Block reductions in i32, then thread 0 adds the block's partials.
// CHECK: %[[MX:.*]] = arith.extsi %[[T]]#0 : i8 to i32
// CHECK-NEXT: %[[RMX:.*]] = gpu.all_reduce maxsi %[[MX]] uniform {
// CHECK: %[[CH:.*]] = arith.trunci %[[T]]#1 : i64 to i32
// CHECK-NEXT: %[[RCH:.*]] = gpu.all_reduce add %[[CH]] uniform {
// CHECK: %[[NF:.*]] = arith.trunci %[[T]]#2 : i64 to i32
// CHECK-NEXT: %[[RNF:.*]] = gpu.all_reduce add %[[NF]] uniform {
// CHECK: %[[IS0:.*]] = arith.cmpi eq, %[[TID]], %c0 : index
// CHECK-NEXT: scf.if %[[IS0]] {
// CHECK-NEXT: %[[WMX:.*]] = arith.extsi %[[RMX]] : i32 to i64
// CHECK: memref.atomic_rmw maxs %[[WMX]], %[[PART]][%c0{{(_[0-9]+)?}}] : (i64, memref<?xi64>) -> i64
// CHECK: memref.atomic_rmw addi %{{.*}}, %[[PART]][%c1{{(_[0-9]+)?}}] : (i64, memref<?xi64>) -> i64
// CHECK: memref.atomic_rmw addi %{{.*}}, %[[PART]][%c2{{(_[0-9]+)?}}] : (i64, memref<?xi64>) -> i64
// CHECK-NEXT: }
// Segments 1 and 2: same skeleton on their own buffers, partial slots 3-8.
// CHECK: memref.dim %[[Q1]]
// CHECK: scf.for
// CHECK: vector.load %[[Q1]]
// CHECK: vector.store %{{.*}}, %[[V1]][%{{.*}}] {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK-COUNT-3: gpu.all_reduce
// CHECK: memref.atomic_rmw maxs %{{.*}}, %[[PART]][%c3{{(_[0-9]+)?}}]
// CHECK: memref.atomic_rmw addi %{{.*}}, %[[PART]][%c5{{(_[0-9]+)?}}]
// CHECK: memref.dim %[[Q2]]
// CHECK: vector.store %{{.*}}, %[[V2]][%{{.*}}] {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// CHECK-COUNT-3: gpu.all_reduce
// CHECK: memref.atomic_rmw maxs %{{.*}}, %[[PART]][%c6{{(_[0-9]+)?}}]
// CHECK: memref.atomic_rmw addi %{{.*}}, %[[PART]][%c8{{(_[0-9]+)?}}]
// CHECK-NOT: gpu.all_reduce
// CHECK-NOT: memref.atomic_rmw
// CHECK: gpu.return
// CHECK-NEXT: }
// CHECK-NEXT: }
// CHECK-NEXT: }
