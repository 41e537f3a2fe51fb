// dqt-lower-to-cpu rewrites a function holding one dqt.fused_step into a
// chunk function over memrefs: per segment one memref per tensor operand and
// per untied output, then the scalars, then `begin`, `end` (index) and a
// memref<?xi64> for the chunk's partial reductions. No tensor is left.
//
// RUN: dqt-opt %s --dqt-fuse-step --dqt-lower-to-cpu | FileCheck %s \
// RUN:   --implicit-check-not="tensor<" --implicit-check-not=dqt.fused_step
// RUN: dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-fuse-step --dqt-lower-to-cpu \
// RUN:   | FileCheck %s --check-prefix=ADAMW --implicit-check-not="tensor<" \
// RUN:   --implicit-check-not=dqt.fused_step --implicit-check-not=dqt.next_delta \
// RUN:   --implicit-check-not=dqt.yield

// SGD with momentum on float weights, no random stream: w and buf are written
// in place (tied), g is only read; one "addi" reduction (non-finite count).
// CHECK-LABEL: func.func @sgd_step
// CHECK-SAME: (%[[W:[^:]*]]: memref<?xf32>, %[[G:[^:]*]]: memref<?xf32>, %[[B:[^:]*]]: memref<?xf32>, %[[LR:[^:]*]]: f32, %[[MU:[^:]*]]: f32, %[[L:[^:]*]]: f32, %[[BEGIN:[^:]*]]: index, %[[END:[^:]*]]: index, %[[PART:[^:]*]]: memref<?xi64>){{.*}}{
// CHECK: %[[N:.*]] = memref.dim %[[W]], %{{.*}} : memref<?xf32>
// The chunk, clamped to the segment.
// CHECK: arith.subi %[[BEGIN]],
// CHECK: %[[LO:.*]] = arith.minsi %{{.*}}, %[[N]] : index
// CHECK: arith.subi %[[END]],
// CHECK: %[[HI:.*]] = arith.minsi %{{.*}}, %[[N]] : index
// Head (to a multiple of 4), body of 4-element groups, tail.
// CHECK: %[[R0:.*]] = scf.for %[[I:.*]] = %[[LO]] to %[[LO4:.*]] step %c1{{(_[0-9]+)?}} iter_args(%{{.*}} = %c0_i64) -> (i64) {
// CHECK: memref.load %[[W]][%[[I]]] : memref<?xf32>
// CHECK: memref.load %[[G]][%[[I]]] : memref<?xf32>
// CHECK: memref.load %[[B]][%[[I]]] : memref<?xf32>
// CHECK: memref.store %{{.*}}, %[[W]][%[[I]]] : memref<?xf32>
// CHECK: memref.store %{{.*}}, %[[B]][%[[I]]] : memref<?xf32>
// CHECK-NOT: memref.store {{.*}}%[[G]]
// CHECK: scf.yield
// CHECK: %[[R1:.*]] = scf.for %[[J:.*]] = %[[LO4]] to %[[HI4:.*]] step %c4{{(_[0-9]+)?}} iter_args(%{{.*}} = %[[R0]]) -> (i64) {
// CHECK: vector.load %[[W]][%[[J]]] {alignment = 4 : i64} : memref<?xf32>, vector<4xf32>
// CHECK: vector.load %[[G]][%[[J]]] {alignment = 4 : i64} : memref<?xf32>, vector<4xf32>
// CHECK: %[[BV:.*]] = vector.load %[[B]][%[[J]]] {alignment = 4 : i64} : memref<?xf32>, vector<4xf32>
// CHECK: vector.extract %[[BV]][3] : f32 from vector<4xf32>
// The scalar body is cloned once per lane: buf' = mu*buf + g four times.
// CHECK-COUNT-4: arith.mulf %[[MU]], %{{.*}} : f32
// CHECK-NOT: arith.mulf %[[MU]],
// CHECK: vector.from_elements %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : vector<4xf32>
// CHECK: vector.store %{{.*}}, %[[W]][%[[J]]] {alignment = 4 : i64} : memref<?xf32>, vector<4xf32>
// CHECK: vector.store %{{.*}}, %[[B]][%[[J]]] {alignment = 4 : i64} : memref<?xf32>, vector<4xf32>
// CHECK: scf.yield
// CHECK: %[[R2:.*]] = scf.for %{{.*}} = %[[HI4]] to %[[HI]] step %c1{{(_[0-9]+)?}} iter_args(%{{.*}} = %[[R1]]) -> (i64) {
// CHECK: scf.yield
// CHECK: memref.store %[[R2]], %[[PART]][%c0{{(_[0-9]+)?}}] : memref<?xi64>
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
// the output gets its own memref after the inputs. With the random stream,
// every 4-element group makes one Philox call keyed by the seed (counter:
// group index, step, tensor id).
// CHECK-LABEL: func.func @untied_output
// CHECK-SAME: (%[[Q:[^:]*]]: memref<?xi8>, %[[OUT:[^:]*]]: memref<?xi8>, %[[SEED:[^:]*]]: i64, %[[STEP:[^:]*]]: i64, %[[TID:[^:]*]]: i64, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: index, %{{[^:]*}}: index, %{{[^:]*}}: memref<?xi64>){{.*}}{
// CHECK: scf.for %[[I:.*]] = {{.*}} step %c1
// CHECK: memref.load %[[Q]][%[[I]]] : memref<?xi8>
// CHECK-NOT: memref.store {{.*}}%[[Q]]
// CHECK: memref.store %{{.*}}, %[[OUT]][%[[I]]] : memref<?xi8>
// CHECK: scf.for %[[J:.*]] = {{.*}} step %c4
// CHECK: %[[JI:.*]] = arith.index_cast %[[J]] : index to i64
// CHECK: %[[GRP:.*]] = arith.shrui %[[JI]], %c2_i64 : i64
// CHECK-DAG: %[[TIDLO:.*]] = arith.trunci %[[TID]] : i64 to i32
// CHECK-DAG: %[[STEPLO:.*]] = arith.trunci %[[STEP]] : i64 to i32
// CHECK-DAG: %[[GRPLO:.*]] = arith.trunci %[[GRP]] : i64 to i32
// CHECK-DAG: %[[SEEDLO:.*]] = arith.trunci %[[SEED]] : i64 to i32
// CHECK: dqt.philox key(%[[SEEDLO]], %{{.*}}) counter(%[[GRPLO]], %{{.*}}, %[[STEPLO]], %[[TIDLO]])
// CHECK-NOT: dqt.philox
// CHECK: vector.load %[[Q]][%[[J]]] {alignment = 1 : i64} : memref<?xi8>, vector<4xi8>
// CHECK-NOT: vector.store {{.*}}%[[Q]]
// CHECK: vector.store %{{.*}}, %[[OUT]][%[[J]]] {alignment = 1 : i64} : memref<?xi8>, vector<4xi8>
// CHECK: return{{$}}
func.func @untied_output(%q: tensor<?xi8>, %d: f32, %d1: f32, %seed: i64, %step: i64, %tid: i64)
    -> (tensor<?xi8>, tensor<?xi8>) {
  %w = dqt.dequantize %q, %d : tensor<?xi8>, f32 -> tensor<?xf32>
  %u = dqt.uniform %seed, %step, %tid like %q : tensor<?xi8> -> tensor<?xf32>
  %q1 = dqt.stochastic_round %w, %d1, %u {ternary} : tensor<?xf32>, tensor<?xf32> -> tensor<?xi8>
  return %q1, %q : tensor<?xi8>, tensor<?xi8>
}

// The three-parameter AdamW group: 12 memrefs (q, g, m, v per segment; all
// outputs tied), the scalars, then begin, end and the partials.
// ADAMW-LABEL: func.func @adamw_step(
// ADAMW-SAME: %[[Q0:[^:]*]]: memref<?xi8>, %[[G0:[^:]*]]: memref<?xf32>, %[[M0:[^:]*]]: memref<?xf32>, %[[V0:[^:]*]]: memref<?xf32>,
// ADAMW-SAME: %[[Q1:[^:]*]]: memref<?xi8>, %[[G1:[^:]*]]: memref<?xf32>, %[[M1:[^:]*]]: memref<?xf32>, %[[V1:[^:]*]]: memref<?xf32>,
// ADAMW-SAME: %[[Q2:[^:]*]]: memref<?xi8>, %[[G2:[^:]*]]: memref<?xf32>, %[[M2:[^:]*]]: memref<?xf32>, %[[V2:[^:]*]]: memref<?xf32>,
// ADAMW-SAME: %{{[^:]*}}: index, %{{[^:]*}}: index, %[[PART:[^:]*]]: memref<?xi64>){{.*}}{
// The next grid steps are computed in the prologue (maxq > 0 ? maxq*delta/127 : delta).
// ADAMW-COUNT-3: arith.divf %{{.*}}, %cst{{(_[0-9]+)?}} : f32
// Segment 0: head, 4-wide body, tail; g is never stored.
// ADAMW: scf.for {{.*}} step %c1{{(_[0-9]+)?}} iter_args({{.*}}) -> (i8, i64, i64) {
// ADAMW: scf.for %[[J:.*]] = {{.*}} step %c4{{(_[0-9]+)?}} iter_args({{.*}}) -> (i8, i64, i64) {
// ADAMW: vector.load %[[Q0]][%[[J]]] {alignment = 1 : i64} : memref<?xi8>, vector<4xi8>
// ADAMW: vector.load %[[G0]][%[[J]]] {alignment = 4 : i64} : memref<?xf32>, vector<4xf32>
// ADAMW: vector.load %[[M0]][%[[J]]] {alignment = 4 : i64} : memref<?xf32>, vector<4xf32>
// ADAMW: vector.load %[[V0]][%[[J]]] {alignment = 4 : i64} : memref<?xf32>, vector<4xf32>
// ADAMW-COUNT-4: math.sqrt
// ADAMW-NOT: math.sqrt
// ADAMW: vector.store %{{.*}}, %[[Q0]][%[[J]]] {alignment = 1 : i64} : memref<?xi8>, vector<4xi8>
// ADAMW: vector.store %{{.*}}, %[[M0]][%[[J]]] {alignment = 4 : i64} : memref<?xf32>, vector<4xf32>
// ADAMW: vector.store %{{.*}}, %[[V0]][%[[J]]] {alignment = 4 : i64} : memref<?xf32>, vector<4xf32>
// ADAMW: scf.for {{.*}} step %c1{{(_[0-9]+)?}} iter_args({{.*}}) -> (i8, i64, i64) {
// Partials, segment-major: max (sign-extended), changed, non-finite.
// ADAMW: %[[MX0:.*]] = arith.extsi %{{.*}} : i8 to i64
// ADAMW: memref.store %[[MX0]], %[[PART]][%c0{{(_[0-9]+)?}}] : memref<?xi64>
// ADAMW: memref.store %{{.*}}, %[[PART]][%c1{{(_[0-9]+)?}}] : memref<?xi64>
// ADAMW: memref.store %{{.*}}, %[[PART]][%c2{{(_[0-9]+)?}}] : memref<?xi64>
// Segments 1 and 2: their own buffers.
// ADAMW: scf.for %[[J1:.*]] = {{.*}} step %c4
// ADAMW: vector.load %[[Q1]][%[[J1]]]
// ADAMW: vector.store %{{.*}}, %[[V1]][%[[J1]]]
// ADAMW: memref.store %{{.*}}, %[[PART]][%c5{{(_[0-9]+)?}}] : memref<?xi64>
// ADAMW: scf.for %[[J2:.*]] = {{.*}} step %c4
// ADAMW: vector.load %[[Q2]][%[[J2]]]
// ADAMW: vector.load %[[G2]][%[[J2]]]
// ADAMW: vector.store %{{.*}}, %[[V2]][%[[J2]]]
// ADAMW: memref.store %{{.*}}, %[[PART]][%c8{{(_[0-9]+)?}}] : memref<?xi64>
// ADAMW: return{{$}}
