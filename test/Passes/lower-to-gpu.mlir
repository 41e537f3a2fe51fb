// dqt-lower-to-gpu outlines the three fused steps of the three-parameter
// AdamW group (the function at the end of this file; one fused step per
// parameter) into ONE gpu.func kernel whose arguments are the function's
// arguments in order, then the partials buffer. The prologue computes each
// parameter's next grid step; per segment (fused step) a grid-stride loop
// over 8-element groups (one Philox block each; two 128-bit loads of f32
// data), the n % 8 tail on the first threads, block reductions with gpu.all_reduce and one global atomic
// per block and reduction. math.sqrt becomes the IEEE llvm.nvvm.sqrt.rn.f.
//
// RUN: dqt-opt %s --dqt-fuse-step --dqt-lower-to-gpu \
// RUN:   | FileCheck %s --implicit-check-not=gpu.func --implicit-check-not=gpu.module \
// RUN:   --implicit-check-not=math.sqrt --implicit-check-not=func.func \
// RUN:   --implicit-check-not=dqt.fused_step --implicit-check-not=dqt.next_delta \
// RUN:   --implicit-check-not="tensor<"
//
// Exactly one kernel, 27 IEEE square roots (3 segments x (8 lanes + 1 tail);
// 15 = 3 x (4 + 1) with the former groups of 4).
// RUN: dqt-opt %s --dqt-fuse-step --dqt-lower-to-gpu \
// RUN:   | grep "gpu.func @.* kernel" | count 1
// RUN: dqt-opt %s --dqt-fuse-step --dqt-lower-to-gpu \
// RUN:   | grep 'llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"' | count 27
//
// Without dqt-fuse-step there is nothing the GPU lowering can take.
// RUN: not dqt-opt %s --dqt-lower-to-gpu 2>&1 | FileCheck %s --check-prefix=UNFUSED

// UNFUSED: error: 'dqt.dequantize' op was not fused; run dqt-fuse-step first

// CHECK: module attributes {gpu.container_module} {
// CHECK-NEXT: gpu.module @dqt_kernels {
// CHECK-LABEL: gpu.func @adamw_step(
// CHECK-SAME: %[[Q0:[^:]*]]: memref<?xi8>, %[[G0:[^:]*]]: memref<?xf32>, %[[M0:[^:]*]]: memref<?xf32>, %[[V0:[^:]*]]: memref<?xf32>, %[[D0:[^:]*]]: f32, %[[MXQ0:[^:]*]]: i8, %{{[^:]*}}: i64,
// CHECK-SAME: %[[Q1:[^:]*]]: memref<?xi8>, %[[G1:[^:]*]]: memref<?xf32>, %{{[^:]*}}: memref<?xf32>, %[[V1:[^:]*]]: memref<?xf32>, %{{[^:]*}}: f32, %{{[^:]*}}: i8, %{{[^:]*}}: i64,
// CHECK-SAME: %[[Q2:[^:]*]]: memref<?xi8>, %[[G2:[^:]*]]: memref<?xf32>, %{{[^:]*}}: memref<?xf32>, %[[V2:[^:]*]]: memref<?xf32>, %{{[^:]*}}: f32, %{{[^:]*}}: i8, %{{[^:]*}}: i64,
// CHECK-SAME: %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: i64, %{{[^:]*}}: i64,
// CHECK-SAME: %[[PART:[^:]*]]: memref<?xi64>) kernel
// CHECK-SAME: dqt.arg_origins = array<i64: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27>
// The prologue: the next grid step of segment 0,
// maxq > 0 ? maxq * delta / 127 : delta.
// CHECK: %[[POS:.*]] = arith.cmpi sgt, %[[MXQ0]], %{{.*}} : i8
// CHECK-NEXT: %[[MQF:.*]] = arith.sitofp %[[MXQ0]] : i8 to f32
// CHECK-NEXT: %[[MD:.*]] = arith.mulf %[[MQF]], %[[D0]] : f32
// CHECK-NEXT: %[[DD:.*]] = arith.divf %[[MD]], %{{.*}} : f32
// CHECK-NEXT: %[[ND0:.*]] = arith.select %[[POS]], %[[DD]], %[[D0]] : f32
// Grid-stride loop over groups of 8 elements.
// CHECK: %[[TID:.*]] = gpu.thread_id x
// CHECK-NEXT: %[[BID:.*]] = gpu.block_id x
// CHECK-NEXT: %[[BDIM:.*]] = gpu.block_dim x
// CHECK-NEXT: %[[GDIM:.*]] = gpu.grid_dim x
// CHECK-NEXT: %[[T0:.*]] = arith.muli %[[BID]], %[[BDIM]] : index
// CHECK-NEXT: %[[GTID:.*]] = arith.addi %[[T0]], %[[TID]] : index
// CHECK-NEXT: %[[STRIDE:.*]] = arith.muli %[[BDIM]], %[[GDIM]] : index
// The element count is the length of the gradient (the step's `ins`).
// CHECK: %[[N0:.*]] = memref.dim %[[G0]], %{{.*}} : memref<?xf32>
// CHECK-NEXT: %[[NG0:.*]] = arith.divui %[[N0]], %c8 : index
// CHECK: %[[L0:.*]]:3 = scf.for %[[G:.*]] = %[[GTID]] to %[[NG0]] step %[[STRIDE]] iter_args({{.*}}) -> (i8, i64, i64) {
// CHECK-NEXT: %[[FIRST:.*]] = arith.muli %[[G]], %c8 : index
// One Philox call, on block j = first div 8 (its low word the first counter
// word), gives the 8 lanes' 16-bit halves: lane k takes half k mod 2 (low
// first) of word k div 2.
// CHECK-NEXT: %[[FI:.*]] = arith.index_cast %[[FIRST]] : index to i64
// CHECK-NEXT: %[[J:.*]] = arith.shrui %[[FI]], %c3_i64 : i64
// CHECK: %[[JLO:.*]] = arith.trunci %[[J]] : i64 to i32
// CHECK: %[[R0:.*]], %[[R1:.*]], %{{.*}}, %{{.*}} = dqt.philox key(%{{.*}}, %{{.*}}) counter(%[[JLO]], %{{.*}}, %{{.*}}, %{{.*}})
// CHECK-NEXT: %[[H0:.*]] = arith.trunci %[[R0]] : i32 to i16
// CHECK-NEXT: %[[S1:.*]] = arith.shrui %[[R0]], %c16_i32 : i32
// CHECK-NEXT: %[[H1:.*]] = arith.trunci %[[S1]] : i32 to i16
// CHECK-NEXT: %[[H2:.*]] = arith.trunci %[[R1]] : i32 to i16
// CHECK-NOT: dqt.philox
// 128-bit accesses of the f32 streams (vector<8xf32>: two v4 loads in PTX),
// 64-bit loads of the int8 weights.
// CHECK: vector.load %[[G0]][%[[FIRST]]] {alignment = 16 : i64} : memref<?xf32>, vector<8xf32>
// CHECK: vector.load %[[Q0]][%[[FIRST]]] {alignment = 8 : i64} : memref<?xi8>, vector<8xi8>
// CHECK: vector.load %[[M0]][%[[FIRST]]] {alignment = 16 : i64} : memref<?xf32>, vector<8xf32>
// CHECK: vector.load %[[V0]][%[[FIRST]]] {alignment = 16 : i64} : memref<?xf32>, vector<8xf32>
// Each lane: the IEEE square root, the uniform (2h + 1) * 2^-17 from its
// 16 bits, and the reciprocal of the next grid step. Lanes 0, 1, 2 take the
// low and high half of word 0 and the low half of word 1.
// CHECK: llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"(%{{.*}}) : (f32) -> f32
// CHECK: arith.extui %[[H0]] : i16 to i32
// CHECK: arith.divf %{{.*}}, %[[ND0]] : f32
// CHECK: llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"(%{{.*}}) : (f32) -> f32
// CHECK: arith.extui %[[H1]] : i16 to i32
// CHECK: llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"(%{{.*}}) : (f32) -> f32
// CHECK: arith.extui %[[H2]] : i16 to i32
// CHECK-COUNT-5: llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"(%{{.*}}) : (f32) -> f32
// CHECK: vector.store %{{.*}}, %[[Q0]][%[[FIRST]]] {alignment = 8 : i64} : memref<?xi8>, vector<8xi8>
// CHECK: vector.store %{{.*}}, %[[M0]][%[[FIRST]]] {alignment = 16 : i64} : memref<?xf32>, vector<8xf32>
// CHECK: vector.store %{{.*}}, %[[V0]][%[[FIRST]]] {alignment = 16 : i64} : memref<?xf32>, vector<8xf32>
// CHECK-NOT: vector.store
// CHECK: scf.yield
// CHECK-NEXT: }
// The tail: element 8*groups + global thread id, if below n.
// CHECK-NEXT: %[[TS:.*]] = arith.muli %[[NG0]], %c8 : index
// CHECK-NEXT: %[[TI:.*]] = arith.addi %[[TS]], %[[GTID]] : index
// CHECK-NEXT: %[[IN:.*]] = arith.cmpi ult, %[[TI]], %[[N0]] : index
// CHECK-NEXT: %[[T:.*]]:3 = scf.if %[[IN]] -> (i8, i64, i64) {
// CHECK: memref.load %[[G0]][%[[TI]]] : memref<?xf32>
// CHECK-NEXT: memref.load %[[Q0]][%[[TI]]] : memref<?xi8>
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
// CHECK: memref.dim %[[G1]]
// CHECK: scf.for
// CHECK: vector.load %[[Q1]]
// CHECK: vector.store %{{.*}}, %[[V1]][%{{.*}}] {alignment = 16 : i64} : memref<?xf32>, vector<8xf32>
// CHECK-COUNT-3: gpu.all_reduce
// CHECK: memref.atomic_rmw maxs %{{.*}}, %[[PART]][%c3{{(_[0-9]+)?}}]
// CHECK: memref.atomic_rmw addi %{{.*}}, %[[PART]][%c5{{(_[0-9]+)?}}]
// CHECK: memref.dim %[[G2]]
// CHECK: vector.store %{{.*}}, %[[V2]][%{{.*}}] {alignment = 16 : i64} : memref<?xf32>, vector<8xf32>
// CHECK-COUNT-3: gpu.all_reduce
// CHECK: memref.atomic_rmw maxs %{{.*}}, %[[PART]][%c6{{(_[0-9]+)?}}]
// CHECK: memref.atomic_rmw addi %{{.*}}, %[[PART]][%c8{{(_[0-9]+)?}}]
// CHECK-NOT: gpu.all_reduce
// CHECK-NOT: memref.atomic_rmw
// CHECK: gpu.return
// CHECK-NEXT: }
// CHECK-NEXT: }
// CHECK-NEXT: }

// One DQT AdamW step for a group of three 8-bit parameters (f32 gradients
// and states), as a trainer emits it (a copy of examples/adamw_step.mlir).
func.func @adamw_step(
    %q0: tensor<?xi8>,
    %g0: tensor<?xf32>,
    %m0: tensor<?xf32>,
    %v0: tensor<?xf32>,
    %delta0: f32,
    %maxq0: i8,
    %tid0: i64,
    %q1: tensor<?xi8>,
    %g1: tensor<?xf32>,
    %m1: tensor<?xf32>,
    %v1: tensor<?xf32>,
    %delta1: f32,
    %maxq1: i8,
    %tid1: i64,
    %q2: tensor<?xi8>,
    %g2: tensor<?xf32>,
    %m2: tensor<?xf32>,
    %v2: tensor<?xf32>,
    %delta2: f32,
    %maxq2: i8,
    %tid2: i64,
    %beta1: f32,
    %beta2: f32,
    %alpha: f32,
    %eps: f32,
    %decay: f32,
    %seed: i64,
    %step: i64)
    -> (tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64, tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64, tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64) {
  %d0 = dqt.next_delta %delta0, %maxq0 grid<8>
  %w0 = dqt.dequantize %q0, %delta0 : tensor<?xi8>, f32 -> tensor<?xf32>
  %m0a, %v0a = dqt.adam_moments %g0, %m0, %v0, %beta1, %beta2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %w0a = dqt.adam_apply %w0, %m0a, %v0a, %alpha, %eps, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %u0 = dqt.uniform %seed, %step, %tid0 like %g0 : tensor<?xf32> -> tensor<?xf32>
  %q0a = dqt.stochastic_round %w0a, %d0, %u0 grid<8>
      : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %q0b = dqt.mask_nonfinite %g0, %q0a, %q0 : tensor<?xf32>, tensor<?xi8>
  %m0b = dqt.mask_nonfinite %g0, %m0a, %m0 : tensor<?xf32>, tensor<?xf32>
  %v0b = dqt.mask_nonfinite %g0, %v0a, %v0 : tensor<?xf32>, tensor<?xf32>
  %mx0 = dqt.reduce_max %q0b : tensor<?xi8> -> i8
  %ch0 = dqt.count_changed %q0, %q0b : tensor<?xi8>, tensor<?xi8> -> i64
  %nf0 = dqt.count_nonfinite %g0 : tensor<?xf32> -> i64
  %d1 = dqt.next_delta %delta1, %maxq1 grid<8>
  %w1 = dqt.dequantize %q1, %delta1 : tensor<?xi8>, f32 -> tensor<?xf32>
  %m1a, %v1a = dqt.adam_moments %g1, %m1, %v1, %beta1, %beta2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %w1a = dqt.adam_apply %w1, %m1a, %v1a, %alpha, %eps, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %u1 = dqt.uniform %seed, %step, %tid1 like %g1 : tensor<?xf32> -> tensor<?xf32>
  %q1a = dqt.stochastic_round %w1a, %d1, %u1 grid<8>
      : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %q1b = dqt.mask_nonfinite %g1, %q1a, %q1 : tensor<?xf32>, tensor<?xi8>
  %m1b = dqt.mask_nonfinite %g1, %m1a, %m1 : tensor<?xf32>, tensor<?xf32>
  %v1b = dqt.mask_nonfinite %g1, %v1a, %v1 : tensor<?xf32>, tensor<?xf32>
  %mx1 = dqt.reduce_max %q1b : tensor<?xi8> -> i8
  %ch1 = dqt.count_changed %q1, %q1b : tensor<?xi8>, tensor<?xi8> -> i64
  %nf1 = dqt.count_nonfinite %g1 : tensor<?xf32> -> i64
  %d2 = dqt.next_delta %delta2, %maxq2 grid<8>
  %w2 = dqt.dequantize %q2, %delta2 : tensor<?xi8>, f32 -> tensor<?xf32>
  %m2a, %v2a = dqt.adam_moments %g2, %m2, %v2, %beta1, %beta2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %w2a = dqt.adam_apply %w2, %m2a, %v2a, %alpha, %eps, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %u2 = dqt.uniform %seed, %step, %tid2 like %g2 : tensor<?xf32> -> tensor<?xf32>
  %q2a = dqt.stochastic_round %w2a, %d2, %u2 grid<8>
      : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %q2b = dqt.mask_nonfinite %g2, %q2a, %q2 : tensor<?xf32>, tensor<?xi8>
  %m2b = dqt.mask_nonfinite %g2, %m2a, %m2 : tensor<?xf32>, tensor<?xf32>
  %v2b = dqt.mask_nonfinite %g2, %v2a, %v2 : tensor<?xf32>, tensor<?xf32>
  %mx2 = dqt.reduce_max %q2b : tensor<?xi8> -> i8
  %ch2 = dqt.count_changed %q2, %q2b : tensor<?xi8>, tensor<?xi8> -> i64
  %nf2 = dqt.count_nonfinite %g2 : tensor<?xf32> -> i64
  return %q0b, %m0b, %v0b, %mx0, %ch0, %nf0, %q1b, %m1b, %v1b, %mx1, %ch1, %nf1, %q2b, %m2b, %v2b, %mx2, %ch2, %nf2
      : tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64, tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64, tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64
}
