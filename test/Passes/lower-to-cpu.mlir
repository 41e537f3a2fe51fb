// dqt-lower-to-cpu rewrites a function holding one dqt.fused_step into a
// chunk function over memrefs whose arguments are the function's arguments
// in order (tensors as memrefs), then one memref per `tensor.empty`
// destination (an output that overwrites no argument), then `begin`, `end`
// (index) and a memref<?xi64> for the chunk's partial reductions;
// `dqt.arg_origins` maps each argument to the function's (-1 - k: the new
// buffer of the function's result k). No tensor is left. Every memref
// argument is `llvm.noalias`. Per segment (fused step; see
// lower-to-cpu-three-params.mlir for several) there are four loops:
//   1. head, step 1, up to the first multiple of 8;
//   2. vector loop, step 8*vector-width (default 4 groups of 8: 32 elements),
//      over as many whole blocks as fit: one dqt.philox on vector<4xi32>
//      (lane l = group l of the block) whose words are paired in 64-bit
//      lanes, interleaved and read as vector<32xi16> (the 16-bit halves in
//      element order), contiguous vector.load/vector.store
//      of 32 elements, the scalar body cloned on vector<32x...> (constants
//      as dense splats, scalars broadcast); counts are reduced per block
//      (vector.reduction), the max is carried lane-wise and reduced once
//      after the loop;
//   3. scalar group loop, step 8, for the remaining whole groups: eight
//      scalar memref.load/store at j, j+1, ..., j+7 and one scalar Philox;
//   4. tail, step 1.
// No loop carries a loop annotation any more.
//
// RUN: dqt-opt %s --dqt-fuse-step --dqt-lower-to-cpu | FileCheck %s \
// RUN:   --implicit-check-not="tensor<" --implicit-check-not=dqt.fused_step \
// RUN:   --implicit-check-not=loop_annotation --implicit-check-not=loop_vectorize
//
// `vector-width=2` (4 is now the default): 2 groups of 8 per vector
// iteration, step 16, vector<2xi32> Philox, vector<16x...> accesses; nothing
// of width 32 is left, and no vector<4xi32> (the default's Philox).
// RUN: dqt-opt %s --dqt-fuse-step --dqt-lower-to-cpu="vector-width=2" \
// RUN:   | FileCheck %s --check-prefix=WIDTH2 --implicit-check-not="vector<32x" \
// RUN:   --implicit-check-not="vector<4xi32>" \
// RUN:   --implicit-check-not="step %c32" --implicit-check-not=loop_annotation
//
// `vector-width=0`: no vector loop and no vector op or type at all; the
// scalar group loop covers every whole group.
// RUN: dqt-opt %s --dqt-fuse-step --dqt-lower-to-cpu="vector-width=0" \
// RUN:   | FileCheck %s --check-prefix=SCALAR --implicit-check-not=vector. \
// RUN:   --implicit-check-not="vector<" --implicit-check-not="dense<" \
// RUN:   --implicit-check-not=loop_annotation --implicit-check-not=loop_vectorize

// SGD with momentum on float weights, no random stream: w and buf are written
// in place (tied), g is only read; one "addi" reduction (non-finite count).
// CHECK-LABEL: func.func @sgd_step
// CHECK-SAME: (%[[W:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[G:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[B:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[LR:[^:]*]]: f32, %[[MU:[^:]*]]: f32, %[[L:[^:]*]]: f32, %[[BEGIN:[^:]*]]: index, %[[END:[^:]*]]: index, %[[PART:[^:]*]]: memref<?xi64> {llvm.noalias})
// CHECK-SAME: attributes {dqt.arg_origins = array<i64: 0, 1, 2, 3, 4, 5>} {
// Constants are hoisted to the entry block.
// CHECK-DAG: %[[C32:.*]] = arith.constant 32 : index
// CHECK-DAG: %[[INF:.*]] = arith.constant dense<0x7F800000> : vector<32xf32>
// CHECK-DAG: %[[TRUE:.*]] = arith.constant dense<true> : vector<32xi1>
// The element count is the length of g, the step's only `ins` operand.
// CHECK: %[[N:.*]] = memref.dim %[[G]], %{{.*}} : memref<?xf32>
// The chunk, clamped to the segment (here the only one, at offset 0), and
// its whole groups of 8 [LO8, HI8).
// CHECK: arith.maxsi %[[BEGIN]],
// CHECK: %[[LO:.*]] = arith.minsi %{{.*}}, %[[N]] : index
// CHECK: arith.maxsi %[[END]],
// CHECK: %[[HI:.*]] = arith.minsi %{{.*}}, %[[N]] : index
// CHECK: %[[LO8:.*]] = arith.minsi %{{.*}}, %[[HI]] : index
// CHECK: %[[HI8:.*]] = arith.maxsi %{{.*}}, %[[LO8]] : index
// Head (to a multiple of 8), scalar.
// CHECK: %[[R0:.*]] = scf.for %[[I:.*]] = %[[LO]] to %[[LO8]] step %c1{{(_[0-9]+)?}} iter_args(%{{.*}} = %c0_i64) -> (i64) {
// CHECK: memref.load %[[G]][%[[I]]] : memref<?xf32>
// CHECK: memref.load %[[W]][%[[I]]] : memref<?xf32>
// CHECK: memref.load %[[B]][%[[I]]] : memref<?xf32>
// CHECK: memref.store %{{.*}}, %[[W]][%[[I]]] : memref<?xf32>
// CHECK: memref.store %{{.*}}, %[[B]][%[[I]]] : memref<?xf32>
// CHECK-NOT: memref.store {{.*}}%[[G]]
// CHECK-NOT: vector.
// CHECK: scf.yield
// CHECK-NEXT: }{{$}}
// The vector loop ends at LO8 + 32 * floor((HI8 - LO8) / 32).
// CHECK-NEXT: %[[SPAN:.*]] = arith.subi %[[HI8]], %[[LO8]] : index
// CHECK-NEXT: %[[NBLK:.*]] = arith.divui %[[SPAN]], %[[C32]] : index
// CHECK-NEXT: %[[LEN:.*]] = arith.muli %[[NBLK]], %[[C32]] : index
// CHECK-NEXT: %[[HIV:.*]] = arith.addi %[[LO8]], %[[LEN]] : index
// 32 contiguous elements of each tensor per iteration (`ins` first, then
// `outs`); the scalars broadcast.
// CHECK: %[[R1:.*]] = scf.for %[[V:.*]] = %[[LO8]] to %[[HIV]] step %[[C32]] iter_args(%[[ACC:[^ ]*]] = %[[R0]]) -> (i64) {
// CHECK-NEXT: %[[VG:.*]] = vector.load %[[G]][%[[V]]] : memref<?xf32>, vector<32xf32>
// CHECK-NEXT: %[[VW:.*]] = vector.load %[[W]][%[[V]]] : memref<?xf32>, vector<32xf32>
// CHECK-NEXT: %[[VB:.*]] = vector.load %[[B]][%[[V]]] : memref<?xf32>, vector<32xf32>
// CHECK-NEXT: %[[VLR:.*]] = vector.broadcast %[[LR]] : f32 to vector<32xf32>
// CHECK-NEXT: %[[VMU:.*]] = vector.broadcast %[[MU]] : f32 to vector<32xf32>
// CHECK-NEXT: %[[VL:.*]] = vector.broadcast %[[L]] : f32 to vector<32xf32>
// The scalar body on vector<32xf32>: buf' = mu*buf + g, w' = w - lr*buf'
// minus decay, each kept where g is finite (the constant inf is a splat,
// hoisted).
// CHECK-NEXT: %[[VM:.*]] = arith.mulf %[[VMU]], %[[VB]] : vector<32xf32>
// CHECK-NEXT: %[[VS:.*]] = arith.addf %[[VM]], %[[VG]] : vector<32xf32>
// CHECK-NEXT: %[[VSTEP:.*]] = arith.mulf %[[VLR]], %[[VS]] : vector<32xf32>
// CHECK-NEXT: %[[VW1:.*]] = arith.subf %[[VW]], %[[VSTEP]] : vector<32xf32>
// CHECK-NEXT: %[[VD:.*]] = arith.mulf %[[VL]], %[[VW1]] : vector<32xf32>
// CHECK-NEXT: %[[VW2:.*]] = arith.subf %[[VW1]], %[[VD]] : vector<32xf32>
// CHECK-NOT: memref.
// CHECK: %[[FIN:.*]] = arith.cmpf olt, %{{.*}}, %[[INF]] : vector<32xf32>
// CHECK-NEXT: %[[VWN:.*]] = arith.select %[[FIN]], %[[VW2]], %[[VW]] : vector<32xi1>, vector<32xf32>
// CHECK: %[[VBN:.*]] = arith.select %{{.*}}, %[[VS]], %[[VB]] : vector<32xi1>, vector<32xf32>
// CHECK: %[[NFB:.*]] = arith.xori %{{.*}}, %[[TRUE]] : vector<32xi1>
// CHECK-NEXT: %[[NF:.*]] = arith.extui %[[NFB]] : vector<32xi1> to vector<32xi64>
// Stores of the two tied outputs (never g), then the block's count, added
// to the running one.
// CHECK-NEXT: vector.store %[[VWN]], %[[W]][%[[V]]] : memref<?xf32>, vector<32xf32>
// CHECK-NEXT: vector.store %[[VBN]], %[[B]][%[[V]]] : memref<?xf32>, vector<32xf32>
// CHECK-NEXT: %[[RED:.*]] = vector.reduction <add>, %[[NF]] : vector<32xi64> into i64
// CHECK-NEXT: %[[SUM:.*]] = arith.addi %[[ACC]], %[[RED]] : i64
// CHECK-NEXT: scf.yield %[[SUM]] : i64
// CHECK-NEXT: }{{$}}
// The remaining groups: element k of group j is moved with a scalar
// load/store at j+k, k = 0..7.
// CHECK: %[[R2:.*]] = scf.for %[[J:.*]] = %[[HIV]] to %[[HI8]] step %c8{{(_[0-9]+)?}} iter_args(%{{.*}} = %[[R1]]) -> (i64) {
// CHECK: %[[J1:.*]] = arith.addi %[[J]], %c1{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[J2:.*]] = arith.addi %[[J]], %c2{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[J3:.*]] = arith.addi %[[J]], %c3{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[J4:.*]] = arith.addi %[[J]], %c4{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[J5:.*]] = arith.addi %[[J]], %c5{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[J6:.*]] = arith.addi %[[J]], %c6{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[J7:.*]] = arith.addi %[[J]], %c7{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[G0:.*]] = memref.load %[[G]][%[[J]]] : memref<?xf32>
// CHECK-NEXT: %[[G1:.*]] = memref.load %[[G]][%[[J1]]] : memref<?xf32>
// CHECK-NEXT: %[[G2:.*]] = memref.load %[[G]][%[[J2]]] : memref<?xf32>
// CHECK-NEXT: %[[G3:.*]] = memref.load %[[G]][%[[J3]]] : memref<?xf32>
// CHECK-NEXT: %[[G4:.*]] = memref.load %[[G]][%[[J4]]] : memref<?xf32>
// CHECK-NEXT: %[[G5:.*]] = memref.load %[[G]][%[[J5]]] : memref<?xf32>
// CHECK-NEXT: %[[G6:.*]] = memref.load %[[G]][%[[J6]]] : memref<?xf32>
// CHECK-NEXT: %[[G7:.*]] = memref.load %[[G]][%[[J7]]] : memref<?xf32>
// CHECK-NEXT: %[[W0:.*]] = memref.load %[[W]][%[[J]]] : memref<?xf32>
// CHECK-NEXT: %[[W1:.*]] = memref.load %[[W]][%[[J1]]] : memref<?xf32>
// CHECK-NEXT: %[[W2:.*]] = memref.load %[[W]][%[[J2]]] : memref<?xf32>
// CHECK-NEXT: %[[W3:.*]] = memref.load %[[W]][%[[J3]]] : memref<?xf32>
// CHECK-NEXT: %[[W4:.*]] = memref.load %[[W]][%[[J4]]] : memref<?xf32>
// CHECK-NEXT: %[[W5:.*]] = memref.load %[[W]][%[[J5]]] : memref<?xf32>
// CHECK-NEXT: %[[W6:.*]] = memref.load %[[W]][%[[J6]]] : memref<?xf32>
// CHECK-NEXT: %[[W7:.*]] = memref.load %[[W]][%[[J7]]] : memref<?xf32>
// CHECK-NEXT: %[[B0:.*]] = memref.load %[[B]][%[[J]]] : memref<?xf32>
// CHECK-NEXT: %[[B1:.*]] = memref.load %[[B]][%[[J1]]] : memref<?xf32>
// CHECK-NEXT: %[[B2:.*]] = memref.load %[[B]][%[[J2]]] : memref<?xf32>
// CHECK-NEXT: %[[B3:.*]] = memref.load %[[B]][%[[J3]]] : memref<?xf32>
// CHECK-NEXT: %[[B4:.*]] = memref.load %[[B]][%[[J4]]] : memref<?xf32>
// CHECK-NEXT: %[[B5:.*]] = memref.load %[[B]][%[[J5]]] : memref<?xf32>
// CHECK-NEXT: %[[B6:.*]] = memref.load %[[B]][%[[J6]]] : memref<?xf32>
// CHECK-NEXT: %[[B7:.*]] = memref.load %[[B]][%[[J7]]] : memref<?xf32>
// The scalar body is cloned once per lane, each on its own elements:
// buf' = mu*buf + g (kept where g is finite), w' selected against the old w.
// CHECK: %[[M0:.*]] = arith.mulf %[[MU]], %[[B0]] : f32
// CHECK-NEXT: %[[S0:.*]] = arith.addf %[[M0]], %[[G0]] : f32
// CHECK: %[[WN0:.*]] = arith.select %{{.*}}, %{{.*}}, %[[W0]] : f32
// CHECK: %[[BN0:.*]] = arith.select %{{.*}}, %[[S0]], %[[B0]] : f32
// CHECK: %[[M1:.*]] = arith.mulf %[[MU]], %[[B1]] : f32
// CHECK-NEXT: %[[S1:.*]] = arith.addf %[[M1]], %[[G1]] : f32
// CHECK: %[[WN1:.*]] = arith.select %{{.*}}, %{{.*}}, %[[W1]] : f32
// CHECK: %[[BN1:.*]] = arith.select %{{.*}}, %[[S1]], %[[B1]] : f32
// CHECK: %[[M2:.*]] = arith.mulf %[[MU]], %[[B2]] : f32
// CHECK-NEXT: %[[S2:.*]] = arith.addf %[[M2]], %[[G2]] : f32
// CHECK: %[[WN2:.*]] = arith.select %{{.*}}, %{{.*}}, %[[W2]] : f32
// CHECK: %[[BN2:.*]] = arith.select %{{.*}}, %[[S2]], %[[B2]] : f32
// CHECK: %[[M3:.*]] = arith.mulf %[[MU]], %[[B3]] : f32
// CHECK-NEXT: %[[S3:.*]] = arith.addf %[[M3]], %[[G3]] : f32
// CHECK: %[[WN3:.*]] = arith.select %{{.*}}, %{{.*}}, %[[W3]] : f32
// CHECK: %[[BN3:.*]] = arith.select %{{.*}}, %[[S3]], %[[B3]] : f32
// CHECK: %[[M4:.*]] = arith.mulf %[[MU]], %[[B4]] : f32
// CHECK-NEXT: %[[S4:.*]] = arith.addf %[[M4]], %[[G4]] : f32
// CHECK: %[[WN4:.*]] = arith.select %{{.*}}, %{{.*}}, %[[W4]] : f32
// CHECK: %[[BN4:.*]] = arith.select %{{.*}}, %[[S4]], %[[B4]] : f32
// CHECK: %[[M5:.*]] = arith.mulf %[[MU]], %[[B5]] : f32
// CHECK-NEXT: %[[S5:.*]] = arith.addf %[[M5]], %[[G5]] : f32
// CHECK: %[[WN5:.*]] = arith.select %{{.*}}, %{{.*}}, %[[W5]] : f32
// CHECK: %[[BN5:.*]] = arith.select %{{.*}}, %[[S5]], %[[B5]] : f32
// CHECK: %[[M6:.*]] = arith.mulf %[[MU]], %[[B6]] : f32
// CHECK-NEXT: %[[S6:.*]] = arith.addf %[[M6]], %[[G6]] : f32
// CHECK: %[[WN6:.*]] = arith.select %{{.*}}, %{{.*}}, %[[W6]] : f32
// CHECK: %[[BN6:.*]] = arith.select %{{.*}}, %[[S6]], %[[B6]] : f32
// CHECK: %[[M7:.*]] = arith.mulf %[[MU]], %[[B7]] : f32
// CHECK-NEXT: %[[S7:.*]] = arith.addf %[[M7]], %[[G7]] : f32
// CHECK: %[[WN7:.*]] = arith.select %{{.*}}, %{{.*}}, %[[W7]] : f32
// CHECK: %[[BN7:.*]] = arith.select %{{.*}}, %[[S7]], %[[B7]] : f32
// CHECK-NOT: arith.mulf %[[MU]],
// CHECK-NOT: vector.
// CHECK: memref.store %[[WN0]], %[[W]][%[[J]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[WN1]], %[[W]][%[[J1]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[WN2]], %[[W]][%[[J2]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[WN3]], %[[W]][%[[J3]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[WN4]], %[[W]][%[[J4]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[WN5]], %[[W]][%[[J5]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[WN6]], %[[W]][%[[J6]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[WN7]], %[[W]][%[[J7]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[BN0]], %[[B]][%[[J]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[BN1]], %[[B]][%[[J1]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[BN2]], %[[B]][%[[J2]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[BN3]], %[[B]][%[[J3]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[BN4]], %[[B]][%[[J4]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[BN5]], %[[B]][%[[J5]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[BN6]], %[[B]][%[[J6]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[BN7]], %[[B]][%[[J7]]] : memref<?xf32>
// CHECK-NOT: memref.store {{.*}}%[[G]]
// CHECK: scf.yield
// CHECK-NEXT: }{{$}}
// Tail, scalar; its result is the chunk's count (slot 0).
// CHECK: %[[R3:.*]] = scf.for %{{.*}} = %[[HI8]] to %[[HI]] step %c1{{(_[0-9]+)?}} iter_args(%{{.*}} = %[[R2]]) -> (i64) {
// CHECK-NOT: vector.
// CHECK: scf.yield
// CHECK-NEXT: }{{$}}
// CHECK: memref.store %[[R3]], %[[PART]][%c0{{(_[0-9]+)?}}] : memref<?xi64>
// CHECK: return{{$}}
func.func @sgd_step(%w: tensor<?xf32>, %g: tensor<?xf32>, %buf: tensor<?xf32>,
                    %lr: f32, %mu: f32, %decay: f32) -> (tensor<?xf32>, tensor<?xf32>, i64) {
  %w1, %b1 = dqt.sgd_momentum %w, %g, %buf, %lr, %mu, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %w2 = dqt.mask_nonfinite %g, %w1, %w : tensor<?xf32>, tensor<?xf32>
  %b2 = dqt.mask_nonfinite %g, %b1, %buf : tensor<?xf32>, tensor<?xf32>
  %nf = dqt.count_nonfinite %g : tensor<?xf32> -> i64
  return %w2, %b2, %nf : tensor<?xf32>, tensor<?xf32>, i64
}

// The old weights are returned too, so the new ones cannot overwrite them:
// the output's tensor.empty destination gets its own memref after the
// function's arguments (origin -1: result 0). With the random stream,
// every 8-element group makes one Philox call keyed by the seed (counter:
// group index j = i div 8, step, tensor id).
// CHECK-LABEL: func.func @untied_output
// CHECK-SAME: (%[[Q:[^:]*]]: memref<?xi8> {llvm.noalias}, %[[D:[^:]*]]: f32, %[[D1:[^:]*]]: f32, %[[SEED:[^:]*]]: i64, %[[STEP:[^:]*]]: i64, %[[TID:[^:]*]]: i64, %[[OUT:[^:]*]]: memref<?xi8> {llvm.noalias}, %{{[^:]*}}: index, %{{[^:]*}}: index, %{{[^:]*}}: memref<?xi64> {llvm.noalias})
// CHECK-SAME: attributes {dqt.arg_origins = array<i64: 0, 1, 2, 3, 4, 5, -1>} {
// Constants are hoisted to the entry block.
// CHECK-DAG: %[[ONE:.*]] = arith.constant dense<1.000000e+00> : vector<32xf32>
// CHECK-DAG: %[[SCALE:.*]] = arith.constant dense<7.62939453E-6> : vector<32xf32>
// CHECK-DAG: %[[VONE:.*]] = arith.constant dense<1> : vector<32xi32>
// CHECK-DAG: %[[SH32:.*]] = arith.constant dense<32> : vector<4xi64>
// CHECK-DAG: %[[LANES:.*]] = arith.constant dense<[0, 1, 2, 3]> : vector<4xi64>
// CHECK-DAG: %[[C32:.*]] = arith.constant 32 : index
// CHECK-DAG: %[[THREE:.*]] = arith.constant 3 : i64
// CHECK: scf.for %[[I:.*]] = {{.*}} step %c1
// CHECK: memref.load %[[Q]][%[[I]]] : memref<?xi8>
// CHECK-NOT: memref.store {{.*}}%[[Q]]
// CHECK: memref.store %{{.*}}, %[[OUT]][%[[I]]] : memref<?xi8>
// CHECK-NEXT: }{{$}}
// CHECK-NEXT: arith.subi
// CHECK-NEXT: arith.divui %{{.*}}, %[[C32]] : index
// CHECK-NEXT: arith.muli %{{.*}}, %[[C32]] : index
// CHECK-NEXT: %[[HIV:.*]] = arith.addi
// The vector loop: one Philox for 4 groups of 8. Lane l of the counter is
// group (first element / 8) + l (lo and hi words); key, step and tensor id are
// splats of the scalar words.
// CHECK: scf.for %[[V:.*]] = %{{.*}} to %[[HIV]] step %[[C32]] {
// CHECK-NEXT: %[[VI:.*]] = arith.index_cast %[[V]] : index to i64
// CHECK-NEXT: %[[GRP0:.*]] = arith.shrui %[[VI]], %[[THREE]] : i64
// CHECK-NEXT: %[[GRPB:.*]] = vector.broadcast %[[GRP0]] : i64 to vector<4xi64>
// CHECK-NEXT: %[[GRPS:.*]] = arith.addi %[[GRPB]], %[[LANES]] : vector<4xi64>
// CHECK-DAG: %[[TIDLO:.*]] = arith.trunci %[[TID]] : i64 to i32
// CHECK-DAG: %[[TIDV:.*]] = vector.broadcast %[[TIDLO]] : i32 to vector<4xi32>
// CHECK-DAG: %[[STEPLO:.*]] = arith.trunci %[[STEP]] : i64 to i32
// CHECK-DAG: %[[STEPV:.*]] = vector.broadcast %[[STEPLO]] : i32 to vector<4xi32>
// CHECK-DAG: %[[GRPS_HI64:.*]] = arith.shrui %[[GRPS]], %[[SH32]] : vector<4xi64>
// CHECK-DAG: %[[GRPS_HI:.*]] = arith.trunci %[[GRPS_HI64]] : vector<4xi64> to vector<4xi32>
// CHECK-DAG: %[[GRPS_LO:.*]] = arith.trunci %[[GRPS]] : vector<4xi64> to vector<4xi32>
// CHECK-DAG: %[[SEEDHI64:.*]] = arith.shrui %[[SEED]], %{{.*}} : i64
// CHECK-DAG: %[[SEEDHI:.*]] = arith.trunci %[[SEEDHI64]] : i64 to i32
// CHECK-DAG: %[[SEEDHIV:.*]] = vector.broadcast %[[SEEDHI]] : i32 to vector<4xi32>
// CHECK-DAG: %[[SEEDLO:.*]] = arith.trunci %[[SEED]] : i64 to i32
// CHECK-DAG: %[[SEEDLOV:.*]] = vector.broadcast %[[SEEDLO]] : i32 to vector<4xi32>
// CHECK: %[[Y0:.*]], %[[Y1:.*]], %[[Y2:.*]], %[[Y3:.*]] = dqt.philox key(%[[SEEDLOV]], %[[SEEDHIV]]) counter(%[[GRPS_LO]], %[[GRPS_HI]], %[[STEPV]], %[[TIDV]]) : vector<4xi32>{{$}}
// CHECK-NOT: dqt.philox
// Element 8l+k takes half k mod 2 (low first) of word k div 2 of lane l: the
// words paired in 64-bit lanes, (y0 | y1 << 32) and (y2 | y3 << 32) (the
// second pair is formed first), interleaved and read as i16 give
// [lo y0[0], hi y0[0], lo y1[0], hi y1[0], ..., hi y3[0], lo y0[1], ...].
// CHECK-NEXT: %[[E2:.*]] = arith.extui %[[Y2]] : vector<4xi32> to vector<4xi64>
// CHECK-NEXT: %[[E3:.*]] = arith.extui %[[Y3]] : vector<4xi32> to vector<4xi64>
// CHECK-NEXT: %[[S3:.*]] = arith.shli %[[E3]], %[[SH32]] : vector<4xi64>
// CHECK-NEXT: %[[P23:.*]] = arith.ori %[[E2]], %[[S3]] : vector<4xi64>
// CHECK-NEXT: %[[E0:.*]] = arith.extui %[[Y0]] : vector<4xi32> to vector<4xi64>
// CHECK-NEXT: %[[E1:.*]] = arith.extui %[[Y1]] : vector<4xi32> to vector<4xi64>
// CHECK-NEXT: %[[S1:.*]] = arith.shli %[[E1]], %[[SH32]] : vector<4xi64>
// CHECK-NEXT: %[[P01:.*]] = arith.ori %[[E0]], %[[S1]] : vector<4xi64>
// CHECK-NEXT: %[[IL:.*]] = vector.interleave %[[P01]], %[[P23]] : vector<4xi64> -> vector<8xi64>
// CHECK-NEXT: %[[BITS:.*]] = vector.bitcast %[[IL]] : vector<8xi64> to vector<32xi16>
// CHECK-NEXT: %[[VQ:.*]] = vector.load %[[Q]][%[[V]]] : memref<?xi8>, vector<32xi8>
// CHECK-NEXT: %[[VD:.*]] = vector.broadcast %[[D]] : f32 to vector<32xf32>
// CHECK-NEXT: %[[VD1:.*]] = vector.broadcast %[[D1]] : f32 to vector<32xf32>
// Element i rounds q[i]*d*(1/d1) against uniform i (its 16 bits h:
// (2h + 1) * 2^-17 = (h + 0.5) * 2^-16, with splats), on vector<32xf32>
// (1/d1 is loop-invariant: LLVM hoists it).
// CHECK-NEXT: %[[VQF:.*]] = arith.sitofp %[[VQ]] : vector<32xi8> to vector<32xf32>
// CHECK-NEXT: %[[VW:.*]] = arith.mulf %[[VQF]], %[[VD]] : vector<32xf32>
// CHECK-NEXT: %[[VZ:.*]] = arith.extui %[[BITS]] : vector<32xi16> to vector<32xi32>
// CHECK-NEXT: %[[VS:.*]] = arith.shli %[[VZ]], %[[VONE]] : vector<32xi32>
// CHECK-NEXT: %[[VH:.*]] = arith.ori %[[VS]], %[[VONE]] : vector<32xi32>
// CHECK-NEXT: %[[VF:.*]] = arith.uitofp %[[VH]] : vector<32xi32> to vector<32xf32>
// CHECK-NEXT: %[[VU:.*]] = arith.mulf %[[VF]], %[[SCALE]] : vector<32xf32>
// CHECK-NEXT: %[[VR:.*]] = arith.divf %[[ONE]], %[[VD1]] : vector<32xf32>
// CHECK-NEXT: %[[VX:.*]] = arith.mulf %[[VW]], %[[VR]] : vector<32xf32>
// CHECK-NEXT: %[[VFL:.*]] = math.floor %[[VX]] : vector<32xf32>
// CHECK-NEXT: %[[VFR:.*]] = arith.subf %[[VX]], %[[VFL]] : vector<32xf32>
// CHECK-NEXT: arith.cmpf olt, %[[VU]], %[[VFR]] : vector<32xf32>
// CHECK: %[[VN:.*]] = arith.fptosi %{{.*}} : vector<32xf32> to vector<32xi8>
// CHECK-NEXT: vector.store %[[VN]], %[[OUT]][%[[V]]] : memref<?xi8>, vector<32xi8>
// CHECK-NEXT: }{{$}}
// The remaining whole groups, from where the vector loop stopped: one
// Philox for the group j = first / 8.
// CHECK: scf.for %[[J:.*]] = %[[HIV]] to {{.*}} step %c8
// CHECK: %[[JI:.*]] = arith.index_cast %[[J]] : index to i64
// CHECK: %[[GRP:.*]] = arith.shrui %[[JI]], %c3_i64 : i64
// CHECK-DAG: %[[TIDLO:.*]] = arith.trunci %[[TID]] : i64 to i32
// CHECK-DAG: %[[STEPLO:.*]] = arith.trunci %[[STEP]] : i64 to i32
// CHECK-DAG: %[[GRPLO:.*]] = arith.trunci %[[GRP]] : i64 to i32
// CHECK-DAG: %[[SEEDLO:.*]] = arith.trunci %[[SEED]] : i64 to i32
// CHECK: %[[X0:.*]], %[[X1:.*]], %[[X2:.*]], %[[X3:.*]] = dqt.philox key(%[[SEEDLO]], %{{.*}}) counter(%[[GRPLO]], %{{.*}}, %[[STEPLO]], %[[TIDLO]]){{$}}
// CHECK-NOT: dqt.philox
// Lane k takes half k mod 2 of word k div 2: the low half by truncation, the
// high half after a shift by 16.
// CHECK-NEXT: %[[B0:.*]] = arith.trunci %[[X0]] : i32 to i16
// CHECK-NEXT: %[[X0H:.*]] = arith.shrui %[[X0]], %c16_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[B1:.*]] = arith.trunci %[[X0H]] : i32 to i16
// CHECK-NEXT: %[[B2:.*]] = arith.trunci %[[X1]] : i32 to i16
// CHECK-NEXT: %[[X1H:.*]] = arith.shrui %[[X1]], %c16_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[B3:.*]] = arith.trunci %[[X1H]] : i32 to i16
// CHECK-NEXT: %[[B4:.*]] = arith.trunci %[[X2]] : i32 to i16
// CHECK-NEXT: %[[X2H:.*]] = arith.shrui %[[X2]], %c16_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[B5:.*]] = arith.trunci %[[X2H]] : i32 to i16
// CHECK-NEXT: %[[B6:.*]] = arith.trunci %[[X3]] : i32 to i16
// CHECK-NEXT: %[[X3H:.*]] = arith.shrui %[[X3]], %c16_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[B7:.*]] = arith.trunci %[[X3H]] : i32 to i16
// CHECK-NEXT: %[[J1:.*]] = arith.addi %[[J]], %c1{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[J2:.*]] = arith.addi %[[J]], %c2{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[J3:.*]] = arith.addi %[[J]], %c3{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[J4:.*]] = arith.addi %[[J]], %c4{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[J5:.*]] = arith.addi %[[J]], %c5{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[J6:.*]] = arith.addi %[[J]], %c6{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[J7:.*]] = arith.addi %[[J]], %c7{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[Q0:.*]] = memref.load %[[Q]][%[[J]]] : memref<?xi8>
// CHECK-NEXT: %[[Q1:.*]] = memref.load %[[Q]][%[[J1]]] : memref<?xi8>
// CHECK-NEXT: %[[Q2:.*]] = memref.load %[[Q]][%[[J2]]] : memref<?xi8>
// CHECK-NEXT: %[[Q3:.*]] = memref.load %[[Q]][%[[J3]]] : memref<?xi8>
// CHECK-NEXT: %[[Q4:.*]] = memref.load %[[Q]][%[[J4]]] : memref<?xi8>
// CHECK-NEXT: %[[Q5:.*]] = memref.load %[[Q]][%[[J5]]] : memref<?xi8>
// CHECK-NEXT: %[[Q6:.*]] = memref.load %[[Q]][%[[J6]]] : memref<?xi8>
// CHECK-NEXT: %[[Q7:.*]] = memref.load %[[Q]][%[[J7]]] : memref<?xi8>
// Lane k rounds element j+k against uniform k, (2 h_k + 1) * 2^-17.
// CHECK: arith.sitofp %[[Q0]] : i8 to f32
// CHECK: %[[Z0:.*]] = arith.extui %[[B0]] : i16 to i32
// CHECK-NEXT: %[[S0:.*]] = arith.shli %[[Z0]], %c1_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[H0:.*]] = arith.ori %[[S0]], %c1_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[F0:.*]] = arith.uitofp %[[H0]] : i32 to f32
// CHECK-NEXT: %[[U0:.*]] = arith.mulf %[[F0]], %{{.*}} : f32
// CHECK: arith.cmpf olt, %[[U0]], %{{.*}} : f32
// CHECK: %[[N0:.*]] = arith.fptosi %{{.*}} : f32 to i8
// CHECK: arith.sitofp %[[Q1]] : i8 to f32
// CHECK: %[[Z1:.*]] = arith.extui %[[B1]] : i16 to i32
// CHECK-NEXT: %[[S1:.*]] = arith.shli %[[Z1]], %c1_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[H1:.*]] = arith.ori %[[S1]], %c1_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[F1:.*]] = arith.uitofp %[[H1]] : i32 to f32
// CHECK-NEXT: %[[U1:.*]] = arith.mulf %[[F1]], %{{.*}} : f32
// CHECK: arith.cmpf olt, %[[U1]], %{{.*}} : f32
// CHECK: %[[N1:.*]] = arith.fptosi %{{.*}} : f32 to i8
// CHECK: arith.sitofp %[[Q2]] : i8 to f32
// CHECK: %[[Z2:.*]] = arith.extui %[[B2]] : i16 to i32
// CHECK-NEXT: %[[S2:.*]] = arith.shli %[[Z2]], %c1_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[H2:.*]] = arith.ori %[[S2]], %c1_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[F2:.*]] = arith.uitofp %[[H2]] : i32 to f32
// CHECK-NEXT: %[[U2:.*]] = arith.mulf %[[F2]], %{{.*}} : f32
// CHECK: arith.cmpf olt, %[[U2]], %{{.*}} : f32
// CHECK: %[[N2:.*]] = arith.fptosi %{{.*}} : f32 to i8
// CHECK: arith.sitofp %[[Q3]] : i8 to f32
// CHECK: %[[Z3:.*]] = arith.extui %[[B3]] : i16 to i32
// CHECK-NEXT: %[[S3:.*]] = arith.shli %[[Z3]], %c1_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[H3:.*]] = arith.ori %[[S3]], %c1_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[F3:.*]] = arith.uitofp %[[H3]] : i32 to f32
// CHECK-NEXT: %[[U3:.*]] = arith.mulf %[[F3]], %{{.*}} : f32
// CHECK: arith.cmpf olt, %[[U3]], %{{.*}} : f32
// CHECK: %[[N3:.*]] = arith.fptosi %{{.*}} : f32 to i8
// CHECK: arith.sitofp %[[Q4]] : i8 to f32
// CHECK: %[[Z4:.*]] = arith.extui %[[B4]] : i16 to i32
// CHECK-NEXT: %[[S4:.*]] = arith.shli %[[Z4]], %c1_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[H4:.*]] = arith.ori %[[S4]], %c1_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[F4:.*]] = arith.uitofp %[[H4]] : i32 to f32
// CHECK-NEXT: %[[U4:.*]] = arith.mulf %[[F4]], %{{.*}} : f32
// CHECK: arith.cmpf olt, %[[U4]], %{{.*}} : f32
// CHECK: %[[N4:.*]] = arith.fptosi %{{.*}} : f32 to i8
// CHECK: arith.sitofp %[[Q5]] : i8 to f32
// CHECK: %[[Z5:.*]] = arith.extui %[[B5]] : i16 to i32
// CHECK-NEXT: %[[S5:.*]] = arith.shli %[[Z5]], %c1_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[H5:.*]] = arith.ori %[[S5]], %c1_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[F5:.*]] = arith.uitofp %[[H5]] : i32 to f32
// CHECK-NEXT: %[[U5:.*]] = arith.mulf %[[F5]], %{{.*}} : f32
// CHECK: arith.cmpf olt, %[[U5]], %{{.*}} : f32
// CHECK: %[[N5:.*]] = arith.fptosi %{{.*}} : f32 to i8
// CHECK: arith.sitofp %[[Q6]] : i8 to f32
// CHECK: %[[Z6:.*]] = arith.extui %[[B6]] : i16 to i32
// CHECK-NEXT: %[[S6:.*]] = arith.shli %[[Z6]], %c1_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[H6:.*]] = arith.ori %[[S6]], %c1_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[F6:.*]] = arith.uitofp %[[H6]] : i32 to f32
// CHECK-NEXT: %[[U6:.*]] = arith.mulf %[[F6]], %{{.*}} : f32
// CHECK: arith.cmpf olt, %[[U6]], %{{.*}} : f32
// CHECK: %[[N6:.*]] = arith.fptosi %{{.*}} : f32 to i8
// CHECK: arith.sitofp %[[Q7]] : i8 to f32
// CHECK: %[[Z7:.*]] = arith.extui %[[B7]] : i16 to i32
// CHECK-NEXT: %[[S7:.*]] = arith.shli %[[Z7]], %c1_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[H7:.*]] = arith.ori %[[S7]], %c1_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[F7:.*]] = arith.uitofp %[[H7]] : i32 to f32
// CHECK-NEXT: %[[U7:.*]] = arith.mulf %[[F7]], %{{.*}} : f32
// CHECK: arith.cmpf olt, %[[U7]], %{{.*}} : f32
// CHECK: %[[N7:.*]] = arith.fptosi %{{.*}} : f32 to i8
// CHECK-NOT: memref.store {{.*}}%[[Q]]
// CHECK-NOT: vector.
// CHECK: memref.store %[[N0]], %[[OUT]][%[[J]]] : memref<?xi8>
// CHECK-NEXT: memref.store %[[N1]], %[[OUT]][%[[J1]]] : memref<?xi8>
// CHECK-NEXT: memref.store %[[N2]], %[[OUT]][%[[J2]]] : memref<?xi8>
// CHECK-NEXT: memref.store %[[N3]], %[[OUT]][%[[J3]]] : memref<?xi8>
// CHECK-NEXT: memref.store %[[N4]], %[[OUT]][%[[J4]]] : memref<?xi8>
// CHECK-NEXT: memref.store %[[N5]], %[[OUT]][%[[J5]]] : memref<?xi8>
// CHECK-NEXT: memref.store %[[N6]], %[[OUT]][%[[J6]]] : memref<?xi8>
// CHECK-NEXT: memref.store %[[N7]], %[[OUT]][%[[J7]]] : memref<?xi8>
// CHECK-NEXT: }{{$}}
// CHECK: scf.for %{{.*}} step %c1
// CHECK: memref.store %{{.*}}, %[[OUT]][%{{.*}}] : memref<?xi8>
// CHECK-NEXT: }{{$}}
// CHECK-NOT: vector.
// CHECK: return{{$}}

// vector-width=2: the vector loop takes 16 elements (2 groups of 8) at a time.
// WIDTH2-LABEL: func.func @sgd_step
// WIDTH2: %[[C16:.*]] = arith.constant 16 : index
// WIDTH2: scf.for {{.*}} step %c1{{(_[0-9]+)?}} iter_args
// WIDTH2: scf.yield
// WIDTH2-NEXT: }{{$}}
// WIDTH2-NEXT: arith.subi
// WIDTH2-NEXT: arith.divui %{{.*}}, %[[C16]] : index
// WIDTH2-NEXT: arith.muli %{{.*}}, %[[C16]] : index
// WIDTH2-NEXT: %[[HIV:.*]] = arith.addi
// WIDTH2: scf.for %[[V:.*]] = %{{.*}} to %[[HIV]] step %c16{{(_[0-9]+)?}} iter_args
// WIDTH2-NEXT: vector.load %{{.*}}[%[[V]]] : memref<?xf32>, vector<16xf32>
// WIDTH2-NEXT: vector.load %{{.*}}[%[[V]]] : memref<?xf32>, vector<16xf32>
// WIDTH2-NEXT: vector.load %{{.*}}[%[[V]]] : memref<?xf32>, vector<16xf32>
// WIDTH2: vector.store %{{.*}}, %{{.*}}[%[[V]]] : memref<?xf32>, vector<16xf32>
// WIDTH2-NEXT: vector.store %{{.*}}, %{{.*}}[%[[V]]] : memref<?xf32>, vector<16xf32>
// WIDTH2-NEXT: vector.reduction <add>, %{{.*}} : vector<16xi64> into i64
// WIDTH2: scf.for %{{.*}} = %[[HIV]] to %{{.*}} step %c8{{(_[0-9]+)?}} iter_args
// WIDTH2: scf.yield
// WIDTH2-NEXT: }{{$}}
// WIDTH2: scf.for {{.*}} step %c1{{(_[0-9]+)?}} iter_args
// WIDTH2: scf.yield
// WIDTH2-NEXT: }{{$}}
// WIDTH2-LABEL: func.func @untied_output
// WIDTH2: %[[LANES:.*]] = arith.constant dense<[0, 1]> : vector<2xi64>
// WIDTH2: scf.for %[[V:.*]] = {{.*}} step %c16{{(_[0-9]+)?}} {
// WIDTH2: arith.addi %{{.*}}, %[[LANES]] : vector<2xi64>
// WIDTH2: dqt.philox key(%{{.*}}, %{{.*}}) counter(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : vector<2xi32>{{$}}
// WIDTH2: %[[IL:.*]] = vector.interleave %{{.*}}, %{{.*}} : vector<2xi64> -> vector<4xi64>
// WIDTH2-NEXT: %[[BITS:.*]] = vector.bitcast %[[IL]] : vector<4xi64> to vector<16xi16>
// WIDTH2-NEXT: vector.load %{{.*}}[%[[V]]] : memref<?xi8>, vector<16xi8>
// WIDTH2: arith.extui %[[BITS]] : vector<16xi16> to vector<16xi32>
// WIDTH2-NEXT: arith.shli
// WIDTH2-NEXT: arith.ori
// WIDTH2-NEXT: arith.uitofp
// WIDTH2-NEXT: %[[U:.*]] = arith.mulf %{{.*}}, %{{.*}} : vector<16xf32>
// WIDTH2: arith.cmpf olt, %[[U]], %{{.*}} : vector<16xf32>
// WIDTH2: vector.store %{{.*}}, %{{.*}}[%[[V]]] : memref<?xi8>, vector<16xi8>
// WIDTH2-NEXT: }{{$}}
// WIDTH2: scf.for {{.*}} step %c8
// WIDTH2: dqt.philox key(%{{.*}}, %{{.*}}) counter(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}){{$}}
// WIDTH2: scf.for {{.*}} step %c1
// WIDTH2: return{{$}}

// vector-width=0: head, one scalar group loop over all whole groups of 8
// [LO8, HI8) (nothing between it and the head loop), tail.
// SCALAR-LABEL: func.func @sgd_step
// SCALAR-SAME: (%[[W:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[G:[^:]*]]: memref<?xf32> {llvm.noalias}, {{.*}}, %[[END:[^:]*]]: index, %{{[^:]*}}: memref<?xi64> {llvm.noalias})
// SCALAR: %[[C8:.*]] = arith.constant 8 : index
// SCALAR: %[[N:.*]] = memref.dim %[[G]], %{{.*}} : memref<?xf32>
// SCALAR: arith.maxsi %[[END]],
// SCALAR: %[[HI:.*]] = arith.minsi %{{.*}}, %[[N]] : index
// SCALAR: %[[LO8:.*]] = arith.minsi %{{.*}}, %[[HI]] : index
// SCALAR: %[[HI8:.*]] = arith.maxsi %{{.*}}, %[[LO8]] : index
// SCALAR: scf.for {{.*}} to %[[LO8]] step %c1{{(_[0-9]+)?}} iter_args
// SCALAR: scf.yield
// SCALAR-NEXT: }{{$}}
// SCALAR-NEXT: scf.for %[[J:.*]] = %[[LO8]] to %[[HI8]] step %[[C8]] iter_args
// SCALAR: %[[J7:.*]] = arith.addi %[[J]], %c7{{(_[0-9]+)?}} : index
// SCALAR: memref.load %[[W]][%[[J7]]] : memref<?xf32>
// SCALAR: memref.store %{{.*}}, %[[W]][%[[J7]]] : memref<?xf32>
// SCALAR: scf.yield
// SCALAR-NEXT: }{{$}}
// SCALAR: scf.for {{.*}} = %[[HI8]] to %[[HI]] step %c1{{(_[0-9]+)?}} iter_args
// SCALAR: scf.yield
// SCALAR-NEXT: }{{$}}
// SCALAR: return{{$}}
// SCALAR-LABEL: func.func @untied_output
// SCALAR: %[[C8:.*]] = arith.constant 8 : index
// SCALAR: scf.for {{.*}} step %c1
// SCALAR: }{{$}}
// SCALAR-NEXT: scf.for {{.*}} step %[[C8]] {
// SCALAR: dqt.philox key(%{{.*}}, %{{.*}}) counter(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}){{$}}
// SCALAR-COUNT-8: memref.store
// SCALAR-NEXT: }{{$}}
// SCALAR: scf.for {{.*}} step %c1
// SCALAR: return{{$}}
func.func @untied_output(%q: tensor<?xi8>, %d: f32, %d1: f32, %seed: i64, %step: i64, %tid: i64)
    -> (tensor<?xi8>, tensor<?xi8>) {
  %w = dqt.dequantize %q, %d : tensor<?xi8>, f32 -> tensor<?xf32>
  %u = dqt.uniform %seed, %step, %tid like %q : tensor<?xi8> -> tensor<?xf32>
  %q1 = dqt.stochastic_round %w, %d1, %u grid<ternary> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  return %q1, %q : tensor<?xi8>, tensor<?xi8>
}
