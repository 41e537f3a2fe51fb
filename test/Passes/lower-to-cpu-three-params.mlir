// dqt-fuse-step makes one dqt.fused_step per parameter of the
// three-parameter AdamW group (the function at the end of this file), and
// dqt-lower-to-cpu turns all three into ONE chunk function: three segments
// one after the other in the chunk index space [begin, end), each with its
// head, vector, group and tail loops (lower-to-cpu.mlir) and its three
// partials (max, changed, non-finite) at slots 3p, 3p+1, 3p+2. The next grid
// steps (dqt.next_delta) are computed once in the prologue.
//
// RUN: dqt-opt %s --dqt-fuse-step --dqt-lower-to-cpu \
// RUN:   | FileCheck %s --check-prefix=ADAMW --implicit-check-not="tensor<" \
// RUN:   --implicit-check-not=dqt.fused_step --implicit-check-not=dqt.next_delta \
// RUN:   --implicit-check-not=dqt.yield --implicit-check-not=loop_annotation \
// RUN:   --implicit-check-not=loop_vectorize
// Exactly one chunk function.
// RUN: dqt-opt %s --dqt-fuse-step --dqt-lower-to-cpu | grep "func.func" | count 1

// The kernel's arguments are the function's, in order: per parameter 4
// memrefs (q, g, m, v; all outputs update their argument in place, so no
// new buffer), delta, maxq and tensor id; the shared scalars; then begin,
// end and the partials. All memrefs are noalias.
// ADAMW-LABEL: func.func @adamw_step(
// ADAMW-SAME: %[[Q0:[^:]*]]: memref<?xi8> {llvm.noalias}, %[[G0:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[M0:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[V0:[^:]*]]: memref<?xf32> {llvm.noalias}, %{{[^:]*}}: f32, %{{[^:]*}}: i8, %{{[^:]*}}: i64,
// ADAMW-SAME: %[[Q1:[^:]*]]: memref<?xi8> {llvm.noalias}, %[[G1:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[M1:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[V1:[^:]*]]: memref<?xf32> {llvm.noalias}, %{{[^:]*}}: f32, %{{[^:]*}}: i8, %{{[^:]*}}: i64,
// ADAMW-SAME: %[[Q2:[^:]*]]: memref<?xi8> {llvm.noalias}, %[[G2:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[M2:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[V2:[^:]*]]: memref<?xf32> {llvm.noalias}, %{{[^:]*}}: f32, %{{[^:]*}}: i8, %{{[^:]*}}: i64,
// ADAMW-SAME: %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: i64, %{{[^:]*}}: i64,
// ADAMW-SAME: %[[BEGIN:[^:]*]]: index, %{{[^:]*}}: index, %[[PART:[^:]*]]: memref<?xi64> {llvm.noalias})
// ADAMW-SAME: attributes {dqt.arg_origins = array<i64: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27>} {
// ADAMW: %[[SPLAT:.*]] = arith.constant dense<-128> : vector<32xi8>
// The next grid steps are computed in the prologue (maxq > 0 ? maxq*delta/127 : delta).
// ADAMW: arith.divf %{{.*}}, %cst{{(_[0-9]+)?}} : f32
// ADAMW-NEXT: %[[ND0:.*]] = arith.select %{{.*}}, %{{.*}}, %{{.*}} : f32
// ADAMW: arith.divf %{{.*}}, %cst{{(_[0-9]+)?}} : f32
// ADAMW-NEXT: %[[ND1:.*]] = arith.select %{{.*}}, %{{.*}}, %{{.*}} : f32
// ADAMW: arith.divf %{{.*}}, %cst{{(_[0-9]+)?}} : f32
// ADAMW-NEXT: %[[ND2:.*]] = arith.select %{{.*}}, %{{.*}}, %{{.*}} : f32
// Segment 0 (the first fused step) runs over [0, n0) of the chunk index
// space, counted by its gradient: head, vector loop, group loop, tail; g is
// never stored.
// ADAMW: %[[N0:.*]] = memref.dim %[[G0]], %{{.*}} : memref<?xf32>
// ADAMW: %[[HEAD:.*]]:3 = scf.for {{.*}} step %c1{{(_[0-9]+)?}} iter_args({{.*}}) -> (i8, i64, i64) {
// ADAMW: scf.yield
// ADAMW-NEXT: }{{$}}
// The vector loop carries max (lane-wise, from a splat of -128), changed and
// non-finite through the blocks.
// ADAMW: %[[VR:.*]]:3 = scf.for %[[IV:.*]] = {{.*}} step %c32{{(_[0-9]+)?}} iter_args(%[[AMX:[^ ]*]] = %[[SPLAT]], %[[ACH:[^ ]*]] = %[[HEAD]]#1, %[[ANF:[^ ]*]] = %[[HEAD]]#2) -> (vector<32xi8>, i64, i64) {
// One Philox for the 4 groups of 8 (vector<4xi32>), its 16-bit halves in
// element order.
// ADAMW: dqt.philox key(%{{.*}}, %{{.*}}) counter(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : vector<4xi32>{{$}}
// ADAMW: %[[BITS:.*]] = vector.bitcast %{{.*}} : vector<8xi64> to vector<32xi16>
// ADAMW-NEXT: vector.load %[[G0]][%[[IV]]] : memref<?xf32>, vector<32xf32>
// ADAMW-NEXT: %[[VQ:.*]] = vector.load %[[Q0]][%[[IV]]] : memref<?xi8>, vector<32xi8>
// ADAMW-NEXT: vector.load %[[M0]][%[[IV]]] : memref<?xf32>, vector<32xf32>
// ADAMW-NEXT: vector.load %[[V0]][%[[IV]]] : memref<?xf32>, vector<32xf32>
// The segment's next grid step from the prologue, broadcast.
// ADAMW: %[[VND:.*]] = vector.broadcast %[[ND0]] : f32 to vector<32xf32>
// ADAMW: math.sqrt %{{.*}} : vector<32xf32>
// ADAMW-NOT: math.sqrt
// The uniforms (2h + 1) * 2^-17.
// ADAMW: arith.extui %[[BITS]] : vector<32xi16> to vector<32xi32>
// ADAMW-NEXT: arith.shli
// ADAMW-NEXT: arith.ori
// ADAMW-NEXT: arith.uitofp
// ADAMW-NEXT: %[[VU:.*]] = arith.mulf %{{.*}}, %{{.*}} : vector<32xf32>
// ADAMW-NEXT: %[[VRND:.*]] = arith.divf %{{.*}}, %[[VND]] : vector<32xf32>
// ADAMW-NEXT: arith.mulf %{{.*}}, %[[VRND]] : vector<32xf32>
// ADAMW: arith.cmpf olt, %[[VU]], %{{.*}} : vector<32xf32>
// ADAMW: %[[VQN:.*]] = arith.select %{{.*}}, %{{.*}}, %[[VQ]] : vector<32xi1>, vector<32xi8>
// ADAMW: %[[VCH:.*]] = arith.cmpi ne, %[[VQ]], %[[VQN]] : vector<32xi8>
// ADAMW-NOT: vector.store {{.*}}%[[G0]]
// ADAMW: vector.store %[[VQN]], %[[Q0]][%[[IV]]] : memref<?xi8>, vector<32xi8>
// ADAMW-NEXT: vector.store %{{.*}}, %[[M0]][%[[IV]]] : memref<?xf32>, vector<32xf32>
// ADAMW-NEXT: vector.store %{{.*}}, %[[V0]][%[[IV]]] : memref<?xf32>, vector<32xf32>
// ADAMW-NEXT: %[[RCH:.*]] = vector.reduction <add>, %{{.*}} : vector<32xi64> into i64
// ADAMW-NEXT: %[[RNF:.*]] = vector.reduction <add>, %{{.*}} : vector<32xi64> into i64
// ADAMW-NEXT: %[[NMX:.*]] = arith.maxsi %[[AMX]], %[[VQN]] : vector<32xi8>
// ADAMW-NEXT: %[[NCH:.*]] = arith.addi %[[ACH]], %[[RCH]] : i64
// ADAMW-NEXT: %[[NNF:.*]] = arith.addi %[[ANF]], %[[RNF]] : i64
// ADAMW-NEXT: scf.yield %[[NMX]], %[[NCH]], %[[NNF]] : vector<32xi8>, i64, i64
// ADAMW-NEXT: }{{$}}
// One horizontal max after the loop, combined with the head loop's.
// ADAMW-NEXT: %[[RMX:.*]] = vector.reduction <maxsi>, %[[VR]]#0 : vector<32xi8> into i8
// ADAMW-NEXT: %[[MX:.*]] = arith.maxsi %[[HEAD]]#0, %[[RMX]] : i8
// The scalar group loop continues the vector loop's reductions.
// ADAMW: scf.for %[[J:.*]] = {{.*}} step %c8{{(_[0-9]+)?}} iter_args(%{{[^ ]*}} = %[[MX]], %{{[^ ]*}} = %[[VR]]#1, %{{[^ ]*}} = %[[VR]]#2) -> (i8, i64, i64) {
// ADAMW: %[[J1:.*]] = arith.addi %[[J]], %c1{{(_[0-9]+)?}} : index
// ADAMW-NEXT: %[[J2:.*]] = arith.addi %[[J]], %c2{{(_[0-9]+)?}} : index
// ADAMW-NEXT: %[[J3:.*]] = arith.addi %[[J]], %c3{{(_[0-9]+)?}} : index
// ADAMW-NEXT: %[[J4:.*]] = arith.addi %[[J]], %c4{{(_[0-9]+)?}} : index
// ADAMW-NEXT: %[[J5:.*]] = arith.addi %[[J]], %c5{{(_[0-9]+)?}} : index
// ADAMW-NEXT: %[[J6:.*]] = arith.addi %[[J]], %c6{{(_[0-9]+)?}} : index
// ADAMW-NEXT: %[[J7:.*]] = arith.addi %[[J]], %c7{{(_[0-9]+)?}} : index
// ADAMW-NEXT: memref.load %[[G0]][%[[J]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[G0]][%[[J1]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[G0]][%[[J2]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[G0]][%[[J3]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[G0]][%[[J4]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[G0]][%[[J5]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[G0]][%[[J6]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[G0]][%[[J7]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[Q0]][%[[J]]] : memref<?xi8>
// ADAMW-NEXT: memref.load %[[Q0]][%[[J1]]] : memref<?xi8>
// ADAMW-NEXT: memref.load %[[Q0]][%[[J2]]] : memref<?xi8>
// ADAMW-NEXT: memref.load %[[Q0]][%[[J3]]] : memref<?xi8>
// ADAMW-NEXT: memref.load %[[Q0]][%[[J4]]] : memref<?xi8>
// ADAMW-NEXT: memref.load %[[Q0]][%[[J5]]] : memref<?xi8>
// ADAMW-NEXT: memref.load %[[Q0]][%[[J6]]] : memref<?xi8>
// ADAMW-NEXT: memref.load %[[Q0]][%[[J7]]] : memref<?xi8>
// ADAMW-NEXT: memref.load %[[M0]][%[[J]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[M0]][%[[J1]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[M0]][%[[J2]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[M0]][%[[J3]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[M0]][%[[J4]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[M0]][%[[J5]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[M0]][%[[J6]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[M0]][%[[J7]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[V0]][%[[J]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[V0]][%[[J1]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[V0]][%[[J2]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[V0]][%[[J3]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[V0]][%[[J4]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[V0]][%[[J5]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[V0]][%[[J6]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[V0]][%[[J7]]] : memref<?xf32>
// ADAMW-COUNT-8: math.sqrt %{{.*}} : f32
// ADAMW-NOT: math.sqrt
// ADAMW: memref.store %{{.*}}, %[[Q0]][%[[J]]] : memref<?xi8>
// ADAMW-NEXT: memref.store %{{.*}}, %[[Q0]][%[[J1]]] : memref<?xi8>
// ADAMW-NEXT: memref.store %{{.*}}, %[[Q0]][%[[J2]]] : memref<?xi8>
// ADAMW-NEXT: memref.store %{{.*}}, %[[Q0]][%[[J3]]] : memref<?xi8>
// ADAMW-NEXT: memref.store %{{.*}}, %[[Q0]][%[[J4]]] : memref<?xi8>
// ADAMW-NEXT: memref.store %{{.*}}, %[[Q0]][%[[J5]]] : memref<?xi8>
// ADAMW-NEXT: memref.store %{{.*}}, %[[Q0]][%[[J6]]] : memref<?xi8>
// ADAMW-NEXT: memref.store %{{.*}}, %[[Q0]][%[[J7]]] : memref<?xi8>
// ADAMW-NEXT: memref.store %{{.*}}, %[[M0]][%[[J]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[M0]][%[[J1]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[M0]][%[[J2]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[M0]][%[[J3]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[M0]][%[[J4]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[M0]][%[[J5]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[M0]][%[[J6]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[M0]][%[[J7]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[V0]][%[[J]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[V0]][%[[J1]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[V0]][%[[J2]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[V0]][%[[J3]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[V0]][%[[J4]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[V0]][%[[J5]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[V0]][%[[J6]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[V0]][%[[J7]]] : memref<?xf32>
// ADAMW: scf.yield
// ADAMW-NEXT: }{{$}}
// ADAMW: %[[HEAD:.*]]:3 = scf.for {{.*}} step %c1{{(_[0-9]+)?}} iter_args({{.*}}) -> (i8, i64, i64) {
// ADAMW: scf.yield
// ADAMW-NEXT: }{{$}}
// Partials, segment-major: max (sign-extended), changed, non-finite.
// ADAMW: %[[MX0:.*]] = arith.extsi %{{.*}} : i8 to i64
// ADAMW: memref.store %[[MX0]], %[[PART]][%c0{{(_[0-9]+)?}}] : memref<?xi64>
// ADAMW: memref.store %{{.*}}, %[[PART]][%c1{{(_[0-9]+)?}}] : memref<?xi64>
// ADAMW: memref.store %{{.*}}, %[[PART]][%c2{{(_[0-9]+)?}}] : memref<?xi64>
// Segments 1 and 2: their own buffers and next grid steps, their own vector
// and group loops; segment 1 starts at n0 in the chunk index space.
// ADAMW: memref.dim %[[G1]], %{{.*}} : memref<?xf32>
// ADAMW-NEXT: arith.subi %[[BEGIN]], %[[N0]] : index
// ADAMW: scf.for %[[IVB:.*]] = {{.*}} step %c32
// ADAMW: vector.load %[[Q1]][%[[IVB]]] : memref<?xi8>, vector<32xi8>
// ADAMW: vector.broadcast %[[ND1]] : f32 to vector<32xf32>
// ADAMW: vector.store %{{.*}}, %[[V1]][%[[IVB]]] : memref<?xf32>, vector<32xf32>
// ADAMW: scf.for %[[JB:.*]] = {{.*}} step %c8
// ADAMW: %[[JB7:.*]] = arith.addi %[[JB]], %c7{{(_[0-9]+)?}} : index
// ADAMW-NEXT: memref.load %[[G1]][%[[JB]]]
// ADAMW: memref.load %[[Q1]][%[[JB7]]]
// ADAMW: memref.store %{{.*}}, %[[V1]][%[[JB7]]]
// ADAMW: scf.yield
// ADAMW-NEXT: }{{$}}
// ADAMW: memref.store %{{.*}}, %[[PART]][%c5{{(_[0-9]+)?}}] : memref<?xi64>
// ADAMW: scf.for %[[IVC:.*]] = {{.*}} step %c32
// ADAMW: vector.load %[[Q2]][%[[IVC]]] : memref<?xi8>, vector<32xi8>
// ADAMW: vector.broadcast %[[ND2]] : f32 to vector<32xf32>
// ADAMW: vector.store %{{.*}}, %[[V2]][%[[IVC]]] : memref<?xf32>, vector<32xf32>
// ADAMW: scf.for %[[JC:.*]] = {{.*}} step %c8
// ADAMW: %[[JC7:.*]] = arith.addi %[[JC]], %c7{{(_[0-9]+)?}} : index
// ADAMW-NEXT: memref.load %[[G2]][%[[JC]]]
// ADAMW: memref.load %[[Q2]][%[[JC]]]
// ADAMW: memref.store %{{.*}}, %[[V2]][%[[JC7]]]
// ADAMW: scf.yield
// ADAMW-NEXT: }{{$}}
// ADAMW: memref.store %{{.*}}, %[[PART]][%c8{{(_[0-9]+)?}}] : memref<?xi64>
// ADAMW: return{{$}}

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
