// dqt-lower-to-cpu rewrites a function holding one dqt.fused_step into a
// chunk function over memrefs whose arguments are the function's arguments
// in order (tensors as memrefs), then one memref per `tensor.empty`
// destination (an output that overwrites no argument), then `begin`, `end`
// (index) and a memref<?xi64> for the chunk's partial reductions;
// `dqt.arg_origins` maps each argument to the function's (-1 - k: the new
// buffer of the function's result k). No tensor is left. Every memref
// argument is `llvm.noalias`. Per segment (fused step; see
// lower-to-cpu-three-params.mlir for several) there are four loops:
//   1. head, step 1, up to the first multiple of 4;
//   2. vector loop, step 4*vector-width (default 8 groups: 32 elements), over
//      as many whole blocks as fit: one dqt.philox on vector<8xi32> (lane l =
//      group l of the block) whose words are paired in 64-bit lanes and
//      interleaved into element order, contiguous vector.load/vector.store
//      of 32 elements, the scalar body cloned on vector<32x...> (constants
//      as dense splats, scalars broadcast); counts are reduced per block
//      (vector.reduction), the max is carried lane-wise and reduced once
//      after the loop;
//   3. scalar group loop, step 4, for the remaining whole groups: four scalar
//      memref.load/store at j, j+1, j+2, j+3 and one scalar Philox;
//   4. tail, step 1.
// No loop carries a loop annotation any more.
//
// RUN: dqt-opt %s --dqt-fuse-step --dqt-lower-to-cpu | FileCheck %s \
// RUN:   --implicit-check-not="tensor<" --implicit-check-not=dqt.fused_step \
// RUN:   --implicit-check-not=loop_annotation --implicit-check-not=loop_vectorize
//
// `vector-width=4`: 4 groups per vector iteration, step 16, vector<4xi32>
// Philox, vector<16x...> accesses; nothing of width 32 is left, and of width
// 8 only the interleaved word pairs (vector<8xi64>).
// RUN: dqt-opt %s --dqt-fuse-step --dqt-lower-to-cpu="vector-width=4" \
// RUN:   | FileCheck %s --check-prefix=W4 --implicit-check-not="vector<32x" \
// RUN:   --implicit-check-not="vector<8xi32>" \
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
// its whole groups [LO4, HI4).
// CHECK: arith.maxsi %[[BEGIN]],
// CHECK: %[[LO:.*]] = arith.minsi %{{.*}}, %[[N]] : index
// CHECK: arith.maxsi %[[END]],
// CHECK: %[[HI:.*]] = arith.minsi %{{.*}}, %[[N]] : index
// CHECK: %[[LO4:.*]] = arith.minsi %{{.*}}, %[[HI]] : index
// CHECK: %[[HI4:.*]] = arith.maxsi %{{.*}}, %[[LO4]] : index
// Head (to a multiple of 4), scalar.
// CHECK: %[[R0:.*]] = scf.for %[[I:.*]] = %[[LO]] to %[[LO4]] step %c1{{(_[0-9]+)?}} iter_args(%{{.*}} = %c0_i64) -> (i64) {
// CHECK: memref.load %[[G]][%[[I]]] : memref<?xf32>
// CHECK: memref.load %[[W]][%[[I]]] : memref<?xf32>
// CHECK: memref.load %[[B]][%[[I]]] : memref<?xf32>
// CHECK: memref.store %{{.*}}, %[[W]][%[[I]]] : memref<?xf32>
// CHECK: memref.store %{{.*}}, %[[B]][%[[I]]] : memref<?xf32>
// CHECK-NOT: memref.store {{.*}}%[[G]]
// CHECK-NOT: vector.
// CHECK: scf.yield
// CHECK-NEXT: }{{$}}
// The vector loop ends at LO4 + 32 * floor((HI4 - LO4) / 32).
// CHECK-NEXT: %[[SPAN:.*]] = arith.subi %[[HI4]], %[[LO4]] : index
// CHECK-NEXT: %[[NBLK:.*]] = arith.divui %[[SPAN]], %[[C32]] : index
// CHECK-NEXT: %[[LEN:.*]] = arith.muli %[[NBLK]], %[[C32]] : index
// CHECK-NEXT: %[[HIV:.*]] = arith.addi %[[LO4]], %[[LEN]] : index
// 32 contiguous elements of each tensor per iteration (`ins` first, then
// `outs`); the scalars broadcast.
// CHECK: %[[R1:.*]] = scf.for %[[V:.*]] = %[[LO4]] to %[[HIV]] step %[[C32]] iter_args(%[[ACC:[^ ]*]] = %[[R0]]) -> (i64) {
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
// load/store at j+k.
// CHECK: %[[R2:.*]] = scf.for %[[J:.*]] = %[[HIV]] to %[[HI4]] step %c4{{(_[0-9]+)?}} iter_args(%{{.*}} = %[[R1]]) -> (i64) {
// CHECK: %[[J1:.*]] = arith.addi %[[J]], %c1{{(_[0-9]+)?}} : index
// CHECK: %[[J2:.*]] = arith.addi %[[J]], %c2{{(_[0-9]+)?}} : index
// CHECK: %[[J3:.*]] = arith.addi %[[J]], %c3{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[G0:.*]] = memref.load %[[G]][%[[J]]] : memref<?xf32>
// CHECK-NEXT: %[[G1:.*]] = memref.load %[[G]][%[[J1]]] : memref<?xf32>
// CHECK-NEXT: %[[G2:.*]] = memref.load %[[G]][%[[J2]]] : memref<?xf32>
// CHECK-NEXT: %[[G3:.*]] = memref.load %[[G]][%[[J3]]] : memref<?xf32>
// CHECK-NEXT: %[[W0:.*]] = memref.load %[[W]][%[[J]]] : memref<?xf32>
// CHECK-NEXT: %[[W1:.*]] = memref.load %[[W]][%[[J1]]] : memref<?xf32>
// CHECK-NEXT: %[[W2:.*]] = memref.load %[[W]][%[[J2]]] : memref<?xf32>
// CHECK-NEXT: %[[W3:.*]] = memref.load %[[W]][%[[J3]]] : memref<?xf32>
// CHECK-NEXT: %[[B0:.*]] = memref.load %[[B]][%[[J]]] : memref<?xf32>
// CHECK-NEXT: %[[B1:.*]] = memref.load %[[B]][%[[J1]]] : memref<?xf32>
// CHECK-NEXT: %[[B2:.*]] = memref.load %[[B]][%[[J2]]] : memref<?xf32>
// CHECK-NEXT: %[[B3:.*]] = memref.load %[[B]][%[[J3]]] : memref<?xf32>
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
// CHECK-NOT: arith.mulf %[[MU]],
// CHECK-NOT: vector.
// CHECK: memref.store %[[WN0]], %[[W]][%[[J]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[WN1]], %[[W]][%[[J1]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[WN2]], %[[W]][%[[J2]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[WN3]], %[[W]][%[[J3]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[BN0]], %[[B]][%[[J]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[BN1]], %[[B]][%[[J1]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[BN2]], %[[B]][%[[J2]]] : memref<?xf32>
// CHECK-NEXT: memref.store %[[BN3]], %[[B]][%[[J3]]] : memref<?xf32>
// CHECK-NOT: memref.store {{.*}}%[[G]]
// CHECK: scf.yield
// CHECK-NEXT: }{{$}}
// Tail, scalar; its result is the chunk's count (slot 0).
// CHECK: %[[R3:.*]] = scf.for %{{.*}} = %[[HI4]] to %[[HI]] step %c1{{(_[0-9]+)?}} iter_args(%{{.*}} = %[[R2]]) -> (i64) {
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
// every 4-element group makes one Philox call keyed by the seed (counter:
// group index, step, tensor id).
// CHECK-LABEL: func.func @untied_output
// CHECK-SAME: (%[[Q:[^:]*]]: memref<?xi8> {llvm.noalias}, %[[D:[^:]*]]: f32, %[[D1:[^:]*]]: f32, %[[SEED:[^:]*]]: i64, %[[STEP:[^:]*]]: i64, %[[TID:[^:]*]]: i64, %[[OUT:[^:]*]]: memref<?xi8> {llvm.noalias}, %{{[^:]*}}: index, %{{[^:]*}}: index, %{{[^:]*}}: memref<?xi64> {llvm.noalias})
// CHECK-SAME: attributes {dqt.arg_origins = array<i64: 0, 1, 2, 3, 4, 5, -1>} {
// Constants are hoisted to the entry block.
// CHECK-DAG: %[[ONE:.*]] = arith.constant dense<1.000000e+00> : vector<32xf32>
// CHECK-DAG: %[[SCALE:.*]] = arith.constant dense<5.96046448E-8> : vector<32xf32>
// CHECK-DAG: %[[C8:.*]] = arith.constant dense<8> : vector<32xi32>
// CHECK-DAG: %[[SH32:.*]] = arith.constant dense<32> : vector<8xi64>
// CHECK-DAG: %[[LANES:.*]] = arith.constant dense<[0, 1, 2, 3, 4, 5, 6, 7]> : vector<8xi64>
// CHECK-DAG: %[[C32:.*]] = arith.constant 32 : index
// CHECK-DAG: %[[TWO:.*]] = arith.constant 2 : i64
// CHECK: scf.for %[[I:.*]] = {{.*}} step %c1
// CHECK: memref.load %[[Q]][%[[I]]] : memref<?xi8>
// CHECK-NOT: memref.store {{.*}}%[[Q]]
// CHECK: memref.store %{{.*}}, %[[OUT]][%[[I]]] : memref<?xi8>
// CHECK-NEXT: }{{$}}
// CHECK-NEXT: arith.subi
// CHECK-NEXT: arith.divui %{{.*}}, %[[C32]] : index
// CHECK-NEXT: arith.muli %{{.*}}, %[[C32]] : index
// CHECK-NEXT: %[[HIV:.*]] = arith.addi
// The vector loop: one Philox for 8 groups. Lane l of the counter is group
// (first element / 4) + l (lo and hi words); key, step and tensor id are
// splats of the scalar words.
// CHECK: scf.for %[[V:.*]] = %{{.*}} to %[[HIV]] step %[[C32]] {
// CHECK-NEXT: %[[VI:.*]] = arith.index_cast %[[V]] : index to i64
// CHECK-NEXT: %[[GRP0:.*]] = arith.shrui %[[VI]], %[[TWO]] : i64
// CHECK-NEXT: %[[GRPB:.*]] = vector.broadcast %[[GRP0]] : i64 to vector<8xi64>
// CHECK-NEXT: %[[GRPS:.*]] = arith.addi %[[GRPB]], %[[LANES]] : vector<8xi64>
// CHECK-DAG: %[[TIDLO:.*]] = arith.trunci %[[TID]] : i64 to i32
// CHECK-DAG: %[[TIDV:.*]] = vector.broadcast %[[TIDLO]] : i32 to vector<8xi32>
// CHECK-DAG: %[[STEPLO:.*]] = arith.trunci %[[STEP]] : i64 to i32
// CHECK-DAG: %[[STEPV:.*]] = vector.broadcast %[[STEPLO]] : i32 to vector<8xi32>
// CHECK-DAG: %[[GRPS_HI64:.*]] = arith.shrui %[[GRPS]], %[[SH32]] : vector<8xi64>
// CHECK-DAG: %[[GRPS_HI:.*]] = arith.trunci %[[GRPS_HI64]] : vector<8xi64> to vector<8xi32>
// CHECK-DAG: %[[GRPS_LO:.*]] = arith.trunci %[[GRPS]] : vector<8xi64> to vector<8xi32>
// CHECK-DAG: %[[SEEDHI64:.*]] = arith.shrui %[[SEED]], %{{.*}} : i64
// CHECK-DAG: %[[SEEDHI:.*]] = arith.trunci %[[SEEDHI64]] : i64 to i32
// CHECK-DAG: %[[SEEDHIV:.*]] = vector.broadcast %[[SEEDHI]] : i32 to vector<8xi32>
// CHECK-DAG: %[[SEEDLO:.*]] = arith.trunci %[[SEED]] : i64 to i32
// CHECK-DAG: %[[SEEDLOV:.*]] = vector.broadcast %[[SEEDLO]] : i32 to vector<8xi32>
// CHECK: %[[Y0:.*]], %[[Y1:.*]], %[[Y2:.*]], %[[Y3:.*]] = dqt.philox key(%[[SEEDLOV]], %[[SEEDHIV]]) counter(%[[GRPS_LO]], %[[GRPS_HI]], %[[STEPV]], %[[TIDV]]) : vector<8xi32>{{$}}
// CHECK-NOT: dqt.philox
// Element 4l+k takes word k of lane l: the words paired in 64-bit lanes,
// (y0 | y1 << 32) and (y2 | y3 << 32) (the second pair is formed first),
// interleaved and read as i32 give [y0[0], y1[0], y2[0], y3[0], y0[1], ...].
// CHECK-NEXT: %[[E2:.*]] = arith.extui %[[Y2]] : vector<8xi32> to vector<8xi64>
// CHECK-NEXT: %[[E3:.*]] = arith.extui %[[Y3]] : vector<8xi32> to vector<8xi64>
// CHECK-NEXT: %[[S3:.*]] = arith.shli %[[E3]], %[[SH32]] : vector<8xi64>
// CHECK-NEXT: %[[P23:.*]] = arith.ori %[[E2]], %[[S3]] : vector<8xi64>
// CHECK-NEXT: %[[E0:.*]] = arith.extui %[[Y0]] : vector<8xi32> to vector<8xi64>
// CHECK-NEXT: %[[E1:.*]] = arith.extui %[[Y1]] : vector<8xi32> to vector<8xi64>
// CHECK-NEXT: %[[S1:.*]] = arith.shli %[[E1]], %[[SH32]] : vector<8xi64>
// CHECK-NEXT: %[[P01:.*]] = arith.ori %[[E0]], %[[S1]] : vector<8xi64>
// CHECK-NEXT: %[[IL:.*]] = vector.interleave %[[P01]], %[[P23]] : vector<8xi64> -> vector<16xi64>
// CHECK-NEXT: %[[WORDS:.*]] = vector.bitcast %[[IL]] : vector<16xi64> to vector<32xi32>
// CHECK-NEXT: %[[VQ:.*]] = vector.load %[[Q]][%[[V]]] : memref<?xi8>, vector<32xi8>
// CHECK-NEXT: %[[VD:.*]] = vector.broadcast %[[D]] : f32 to vector<32xf32>
// CHECK-NEXT: %[[VD1:.*]] = vector.broadcast %[[D1]] : f32 to vector<32xf32>
// Element i rounds q[i]*d*(1/d1) against uniform i (its word's top 24 bits
// * 2^-24, with splats), on vector<32xf32> (1/d1 is loop-invariant: LLVM
// hoists it).
// CHECK-NEXT: %[[VQF:.*]] = arith.sitofp %[[VQ]] : vector<32xi8> to vector<32xf32>
// CHECK-NEXT: %[[VW:.*]] = arith.mulf %[[VQF]], %[[VD]] : vector<32xf32>
// CHECK-NEXT: %[[VH:.*]] = arith.shrui %[[WORDS]], %[[C8]] : vector<32xi32>
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
// The remaining whole groups, from where the vector loop stopped.
// CHECK: scf.for %[[J:.*]] = %[[HIV]] to {{.*}} step %c4
// CHECK: %[[JI:.*]] = arith.index_cast %[[J]] : index to i64
// CHECK: %[[GRP:.*]] = arith.shrui %[[JI]], %c2_i64 : i64
// CHECK-DAG: %[[TIDLO:.*]] = arith.trunci %[[TID]] : i64 to i32
// CHECK-DAG: %[[STEPLO:.*]] = arith.trunci %[[STEP]] : i64 to i32
// CHECK-DAG: %[[GRPLO:.*]] = arith.trunci %[[GRP]] : i64 to i32
// CHECK-DAG: %[[SEEDLO:.*]] = arith.trunci %[[SEED]] : i64 to i32
// CHECK: %[[X0:.*]], %[[X1:.*]], %[[X2:.*]], %[[X3:.*]] = dqt.philox key(%[[SEEDLO]], %{{.*}}) counter(%[[GRPLO]], %{{.*}}, %[[STEPLO]], %[[TIDLO]]){{$}}
// CHECK-NOT: dqt.philox
// CHECK: %[[J1:.*]] = arith.addi %[[J]], %c1{{(_[0-9]+)?}} : index
// CHECK: %[[J2:.*]] = arith.addi %[[J]], %c2{{(_[0-9]+)?}} : index
// CHECK: %[[J3:.*]] = arith.addi %[[J]], %c3{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[Q0:.*]] = memref.load %[[Q]][%[[J]]] : memref<?xi8>
// CHECK-NEXT: %[[Q1:.*]] = memref.load %[[Q]][%[[J1]]] : memref<?xi8>
// CHECK-NEXT: %[[Q2:.*]] = memref.load %[[Q]][%[[J2]]] : memref<?xi8>
// CHECK-NEXT: %[[Q3:.*]] = memref.load %[[Q]][%[[J3]]] : memref<?xi8>
// Lane k rounds element j+k against uniform k, from Philox output k (top 24
// bits * 2^-24).
// CHECK: arith.sitofp %[[Q0]] : i8 to f32
// CHECK: %[[H0:.*]] = arith.shrui %[[X0]], %c8_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[F0:.*]] = arith.uitofp %[[H0]] : i32 to f32
// CHECK-NEXT: %[[U0:.*]] = arith.mulf %[[F0]], %{{.*}} : f32
// CHECK: arith.cmpf olt, %[[U0]], %{{.*}} : f32
// CHECK: %[[N0:.*]] = arith.fptosi %{{.*}} : f32 to i8
// CHECK: arith.sitofp %[[Q1]] : i8 to f32
// CHECK: %[[H1:.*]] = arith.shrui %[[X1]], %c8_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[F1:.*]] = arith.uitofp %[[H1]] : i32 to f32
// CHECK-NEXT: %[[U1:.*]] = arith.mulf %[[F1]], %{{.*}} : f32
// CHECK: arith.cmpf olt, %[[U1]], %{{.*}} : f32
// CHECK: %[[N1:.*]] = arith.fptosi %{{.*}} : f32 to i8
// CHECK: arith.sitofp %[[Q2]] : i8 to f32
// CHECK: %[[H2:.*]] = arith.shrui %[[X2]], %c8_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[F2:.*]] = arith.uitofp %[[H2]] : i32 to f32
// CHECK-NEXT: %[[U2:.*]] = arith.mulf %[[F2]], %{{.*}} : f32
// CHECK: arith.cmpf olt, %[[U2]], %{{.*}} : f32
// CHECK: %[[N2:.*]] = arith.fptosi %{{.*}} : f32 to i8
// CHECK: arith.sitofp %[[Q3]] : i8 to f32
// CHECK: %[[H3:.*]] = arith.shrui %[[X3]], %c8_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[F3:.*]] = arith.uitofp %[[H3]] : i32 to f32
// CHECK-NEXT: %[[U3:.*]] = arith.mulf %[[F3]], %{{.*}} : f32
// CHECK: arith.cmpf olt, %[[U3]], %{{.*}} : f32
// CHECK: %[[N3:.*]] = arith.fptosi %{{.*}} : f32 to i8
// CHECK-NOT: memref.store {{.*}}%[[Q]]
// CHECK-NOT: vector.
// CHECK: memref.store %[[N0]], %[[OUT]][%[[J]]] : memref<?xi8>
// CHECK-NEXT: memref.store %[[N1]], %[[OUT]][%[[J1]]] : memref<?xi8>
// CHECK-NEXT: memref.store %[[N2]], %[[OUT]][%[[J2]]] : memref<?xi8>
// CHECK-NEXT: memref.store %[[N3]], %[[OUT]][%[[J3]]] : memref<?xi8>
// CHECK-NEXT: }{{$}}
// CHECK: scf.for %{{.*}} step %c1
// CHECK: memref.store %{{.*}}, %[[OUT]][%{{.*}}] : memref<?xi8>
// CHECK-NEXT: }{{$}}
// CHECK-NOT: vector.
// CHECK: return{{$}}

// vector-width=4: the vector loop takes 16 elements (4 groups) at a time.
// W4-LABEL: func.func @sgd_step
// W4: %[[C16:.*]] = arith.constant 16 : index
// W4: scf.for {{.*}} step %c1{{(_[0-9]+)?}} iter_args
// W4: scf.yield
// W4-NEXT: }{{$}}
// W4-NEXT: arith.subi
// W4-NEXT: arith.divui %{{.*}}, %[[C16]] : index
// W4-NEXT: arith.muli %{{.*}}, %[[C16]] : index
// W4-NEXT: %[[HIV:.*]] = arith.addi
// W4: scf.for %[[V:.*]] = %{{.*}} to %[[HIV]] step %c16{{(_[0-9]+)?}} iter_args
// W4-NEXT: vector.load %{{.*}}[%[[V]]] : memref<?xf32>, vector<16xf32>
// W4-NEXT: vector.load %{{.*}}[%[[V]]] : memref<?xf32>, vector<16xf32>
// W4-NEXT: vector.load %{{.*}}[%[[V]]] : memref<?xf32>, vector<16xf32>
// W4: vector.store %{{.*}}, %{{.*}}[%[[V]]] : memref<?xf32>, vector<16xf32>
// W4-NEXT: vector.store %{{.*}}, %{{.*}}[%[[V]]] : memref<?xf32>, vector<16xf32>
// W4-NEXT: vector.reduction <add>, %{{.*}} : vector<16xi64> into i64
// W4: scf.for %{{.*}} = %[[HIV]] to %{{.*}} step %c4{{(_[0-9]+)?}} iter_args
// W4: scf.yield
// W4-NEXT: }{{$}}
// W4: scf.for {{.*}} step %c1{{(_[0-9]+)?}} iter_args
// W4: scf.yield
// W4-NEXT: }{{$}}
// W4-LABEL: func.func @untied_output
// W4: %[[LANES:.*]] = arith.constant dense<[0, 1, 2, 3]> : vector<4xi64>
// W4: scf.for %[[V:.*]] = {{.*}} step %c16{{(_[0-9]+)?}} {
// W4: arith.addi %{{.*}}, %[[LANES]] : vector<4xi64>
// W4: dqt.philox key(%{{.*}}, %{{.*}}) counter(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : vector<4xi32>{{$}}
// W4: %[[IL:.*]] = vector.interleave %{{.*}}, %{{.*}} : vector<4xi64> -> vector<8xi64>
// W4-NEXT: %[[WORDS:.*]] = vector.bitcast %[[IL]] : vector<8xi64> to vector<16xi32>
// W4-NEXT: vector.load %{{.*}}[%[[V]]] : memref<?xi8>, vector<16xi8>
// W4: arith.shrui %[[WORDS]], %{{.*}} : vector<16xi32>
// W4-NEXT: arith.uitofp
// W4-NEXT: %[[U:.*]] = arith.mulf %{{.*}}, %{{.*}} : vector<16xf32>
// W4: arith.cmpf olt, %[[U]], %{{.*}} : vector<16xf32>
// W4: vector.store %{{.*}}, %{{.*}}[%[[V]]] : memref<?xi8>, vector<16xi8>
// W4-NEXT: }{{$}}
// W4: scf.for {{.*}} step %c4
// W4: dqt.philox key(%{{.*}}, %{{.*}}) counter(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}){{$}}
// W4: scf.for {{.*}} step %c1
// W4: return{{$}}

// vector-width=0: head, one scalar group loop over all whole groups [LO4,
// HI4) (nothing between it and the head loop), tail.
// SCALAR-LABEL: func.func @sgd_step
// SCALAR-SAME: (%[[W:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[G:[^:]*]]: memref<?xf32> {llvm.noalias}, {{.*}}, %[[END:[^:]*]]: index, %{{[^:]*}}: memref<?xi64> {llvm.noalias})
// SCALAR: %[[C4:.*]] = arith.constant 4 : index
// SCALAR: %[[N:.*]] = memref.dim %[[G]], %{{.*}} : memref<?xf32>
// SCALAR: arith.maxsi %[[END]],
// SCALAR: %[[HI:.*]] = arith.minsi %{{.*}}, %[[N]] : index
// SCALAR: %[[LO4:.*]] = arith.minsi %{{.*}}, %[[HI]] : index
// SCALAR: %[[HI4:.*]] = arith.maxsi %{{.*}}, %[[LO4]] : index
// SCALAR: scf.for {{.*}} to %[[LO4]] step %c1{{(_[0-9]+)?}} iter_args
// SCALAR: scf.yield
// SCALAR-NEXT: }{{$}}
// SCALAR-NEXT: scf.for %[[J:.*]] = %[[LO4]] to %[[HI4]] step %[[C4]] iter_args
// SCALAR: %[[J3:.*]] = arith.addi %[[J]], %c3{{(_[0-9]+)?}} : index
// SCALAR: memref.load %[[W]][%[[J3]]] : memref<?xf32>
// SCALAR: memref.store %{{.*}}, %[[W]][%[[J3]]] : memref<?xf32>
// SCALAR: scf.yield
// SCALAR-NEXT: }{{$}}
// SCALAR: scf.for {{.*}} = %[[HI4]] to %[[HI]] step %c1{{(_[0-9]+)?}} iter_args
// SCALAR: scf.yield
// SCALAR-NEXT: }{{$}}
// SCALAR: return{{$}}
// SCALAR-LABEL: func.func @untied_output
// SCALAR: %[[C4:.*]] = arith.constant 4 : index
// SCALAR: scf.for {{.*}} step %c1
// SCALAR: }{{$}}
// SCALAR-NEXT: scf.for {{.*}} step %[[C4]] {
// SCALAR: dqt.philox key(%{{.*}}, %{{.*}}) counter(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}){{$}}
// SCALAR: memref.store
// SCALAR-NEXT: memref.store
// SCALAR-NEXT: memref.store
// SCALAR-NEXT: memref.store
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
