// dqt-lower-to-cpu rewrites a function holding one dqt.fused_step into a
// chunk function over memrefs: per segment one memref per tensor operand and
// per untied output, then the scalars, then `begin`, `end` (index) and a
// memref<?xi64> for the chunk's partial reductions. No tensor is left. Every
// memref argument is `llvm.noalias`. Groups of 4 elements are moved with four
// scalar memref.load/store at j, j+1, j+2, j+3 (no vector ops: LLVM's loop
// vectorizer widens across groups), and only the loop over groups (step 4)
// carries a loop annotation asking for `vector-width` (default 8) at a time.
//
// RUN: dqt-opt %s --dqt-fuse-step --dqt-lower-to-cpu | FileCheck %s \
// RUN:   --implicit-check-not="tensor<" --implicit-check-not=dqt.fused_step \
// RUN:   --implicit-check-not=vector. --implicit-check-not=loop_annotation \
// RUN:   --implicit-check-not=loop_vectorize
// RUN: dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-fuse-step --dqt-lower-to-cpu \
// RUN:   | FileCheck %s --check-prefix=ADAMW --implicit-check-not="tensor<" \
// RUN:   --implicit-check-not=dqt.fused_step --implicit-check-not=dqt.next_delta \
// RUN:   --implicit-check-not=dqt.yield --implicit-check-not=vector. \
// RUN:   --implicit-check-not=loop_annotation --implicit-check-not=loop_vectorize
//
// `vector-width=0` leaves the choice to LLVM: no annotation at all; the loops
// and accesses are unchanged.
// RUN: dqt-opt %s --dqt-fuse-step --dqt-lower-to-cpu="vector-width=0" \
// RUN:   | FileCheck %s --check-prefix=NOANN --implicit-check-not=loop_annotation \
// RUN:   --implicit-check-not=loop_vectorize --implicit-check-not=vector.
// Another width is passed through as is.
// RUN: dqt-opt %s --dqt-fuse-step --dqt-lower-to-cpu="vector-width=16" \
// RUN:   | FileCheck %s --check-prefix=W16 --implicit-check-not=loop_annotation \
// RUN:   --implicit-check-not=loop_vectorize

// The annotation, printed through aliases (one per module).
// CHECK: #[[VEC:loop_vectorize[0-9]*]] = #llvm.loop_vectorize<disable = false, width = 8 : i32>
// CHECK-NEXT: #[[ANN:loop_annotation[0-9]*]] = #llvm.loop_annotation<vectorize = #[[VEC]]>
// ADAMW: #[[VEC:loop_vectorize[0-9]*]] = #llvm.loop_vectorize<disable = false, width = 8 : i32>
// ADAMW-NEXT: #[[ANN:loop_annotation[0-9]*]] = #llvm.loop_annotation<vectorize = #[[VEC]]>
// W16: #[[VEC:loop_vectorize[0-9]*]] = #llvm.loop_vectorize<disable = false, width = 16 : i32>
// W16-NEXT: #[[ANN:loop_annotation[0-9]*]] = #llvm.loop_annotation<vectorize = #[[VEC]]>

// SGD with momentum on float weights, no random stream: w and buf are written
// in place (tied), g is only read; one "addi" reduction (non-finite count).
// CHECK-LABEL: func.func @sgd_step
// CHECK-SAME: (%[[W:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[G:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[B:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[LR:[^:]*]]: f32, %[[MU:[^:]*]]: f32, %[[L:[^:]*]]: f32, %[[BEGIN:[^:]*]]: index, %[[END:[^:]*]]: index, %[[PART:[^:]*]]: memref<?xi64> {llvm.noalias}){{.*}}{
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
// CHECK-NEXT: }{{$}}
// The groups: element k of group j is moved with a scalar load/store at j+k.
// CHECK: %[[R1:.*]] = scf.for %[[J:.*]] = %[[LO4]] to %[[HI4:.*]] step %c4{{(_[0-9]+)?}} iter_args(%{{.*}} = %[[R0]]) -> (i64) {
// CHECK: %[[J1:.*]] = arith.addi %[[J]], %c1{{(_[0-9]+)?}} : index
// CHECK: %[[J2:.*]] = arith.addi %[[J]], %c2{{(_[0-9]+)?}} : index
// CHECK: %[[J3:.*]] = arith.addi %[[J]], %c3{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[W0:.*]] = memref.load %[[W]][%[[J]]] : memref<?xf32>
// CHECK-NEXT: %[[W1:.*]] = memref.load %[[W]][%[[J1]]] : memref<?xf32>
// CHECK-NEXT: %[[W2:.*]] = memref.load %[[W]][%[[J2]]] : memref<?xf32>
// CHECK-NEXT: %[[W3:.*]] = memref.load %[[W]][%[[J3]]] : memref<?xf32>
// CHECK-NEXT: %[[G0:.*]] = memref.load %[[G]][%[[J]]] : memref<?xf32>
// CHECK-NEXT: %[[G1:.*]] = memref.load %[[G]][%[[J1]]] : memref<?xf32>
// CHECK-NEXT: %[[G2:.*]] = memref.load %[[G]][%[[J2]]] : memref<?xf32>
// CHECK-NEXT: %[[G3:.*]] = memref.load %[[G]][%[[J3]]] : memref<?xf32>
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
// Only this loop carries the annotation (the head and tail loops end in a
// bare `}`; --implicit-check-not rejects any other loop_annotation).
// CHECK-NEXT: } {loop_annotation = #[[ANN]]}
// CHECK: %[[R2:.*]] = scf.for %{{.*}} = %[[HI4]] to %[[HI]] step %c1{{(_[0-9]+)?}} iter_args(%{{.*}} = %[[R1]]) -> (i64) {
// CHECK: scf.yield
// CHECK-NEXT: }{{$}}
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
// CHECK-SAME: (%[[Q:[^:]*]]: memref<?xi8> {llvm.noalias}, %[[OUT:[^:]*]]: memref<?xi8> {llvm.noalias}, %[[SEED:[^:]*]]: i64, %[[STEP:[^:]*]]: i64, %[[TID:[^:]*]]: i64, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: index, %{{[^:]*}}: index, %{{[^:]*}}: memref<?xi64> {llvm.noalias}){{.*}}{
// CHECK: scf.for %[[I:.*]] = {{.*}} step %c1
// CHECK: memref.load %[[Q]][%[[I]]] : memref<?xi8>
// CHECK-NOT: memref.store {{.*}}%[[Q]]
// CHECK: memref.store %{{.*}}, %[[OUT]][%[[I]]] : memref<?xi8>
// CHECK-NEXT: }{{$}}
// CHECK: scf.for %[[J:.*]] = {{.*}} step %c4
// CHECK: %[[JI:.*]] = arith.index_cast %[[J]] : index to i64
// CHECK: %[[GRP:.*]] = arith.shrui %[[JI]], %c2_i64 : i64
// CHECK-DAG: %[[TIDLO:.*]] = arith.trunci %[[TID]] : i64 to i32
// CHECK-DAG: %[[STEPLO:.*]] = arith.trunci %[[STEP]] : i64 to i32
// CHECK-DAG: %[[GRPLO:.*]] = arith.trunci %[[GRP]] : i64 to i32
// CHECK-DAG: %[[SEEDLO:.*]] = arith.trunci %[[SEED]] : i64 to i32
// CHECK: %[[X0:.*]], %[[X1:.*]], %[[X2:.*]], %[[X3:.*]] = dqt.philox key(%[[SEEDLO]], %{{.*}}) counter(%[[GRPLO]], %{{.*}}, %[[STEPLO]], %[[TIDLO]])
// CHECK-NOT: dqt.philox
// Lane k's uniform comes from Philox output k (top 24 bits * 2^-24).
// CHECK: %[[H0:.*]] = arith.shrui %[[X0]], %c8_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[F0:.*]] = arith.uitofp %[[H0]] : i32 to f32
// CHECK: %[[U0:.*]] = arith.mulf %[[F0]], %{{.*}} : f32
// CHECK: %[[H1:.*]] = arith.shrui %[[X1]], %c8_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[F1:.*]] = arith.uitofp %[[H1]] : i32 to f32
// CHECK: %[[U1:.*]] = arith.mulf %[[F1]], %{{.*}} : f32
// CHECK: %[[H2:.*]] = arith.shrui %[[X2]], %c8_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[F2:.*]] = arith.uitofp %[[H2]] : i32 to f32
// CHECK: %[[U2:.*]] = arith.mulf %[[F2]], %{{.*}} : f32
// CHECK: %[[H3:.*]] = arith.shrui %[[X3]], %c8_i32{{(_[0-9]+)?}} : i32
// CHECK-NEXT: %[[F3:.*]] = arith.uitofp %[[H3]] : i32 to f32
// CHECK: %[[U3:.*]] = arith.mulf %[[F3]], %{{.*}} : f32
// CHECK: %[[J1:.*]] = arith.addi %[[J]], %c1{{(_[0-9]+)?}} : index
// CHECK: %[[J2:.*]] = arith.addi %[[J]], %c2{{(_[0-9]+)?}} : index
// CHECK: %[[J3:.*]] = arith.addi %[[J]], %c3{{(_[0-9]+)?}} : index
// CHECK-NEXT: %[[Q0:.*]] = memref.load %[[Q]][%[[J]]] : memref<?xi8>
// CHECK-NEXT: %[[Q1:.*]] = memref.load %[[Q]][%[[J1]]] : memref<?xi8>
// CHECK-NEXT: %[[Q2:.*]] = memref.load %[[Q]][%[[J2]]] : memref<?xi8>
// CHECK-NEXT: %[[Q3:.*]] = memref.load %[[Q]][%[[J3]]] : memref<?xi8>
// Lane k rounds element j+k against uniform k.
// CHECK: arith.sitofp %[[Q0]] : i8 to f32
// CHECK: arith.cmpf olt, %[[U0]], %{{.*}} : f32
// CHECK: %[[N0:.*]] = arith.fptosi %{{.*}} : f32 to i8
// CHECK: arith.sitofp %[[Q1]] : i8 to f32
// CHECK: arith.cmpf olt, %[[U1]], %{{.*}} : f32
// CHECK: %[[N1:.*]] = arith.fptosi %{{.*}} : f32 to i8
// CHECK: arith.sitofp %[[Q2]] : i8 to f32
// CHECK: arith.cmpf olt, %[[U2]], %{{.*}} : f32
// CHECK: %[[N2:.*]] = arith.fptosi %{{.*}} : f32 to i8
// CHECK: arith.sitofp %[[Q3]] : i8 to f32
// CHECK: arith.cmpf olt, %[[U3]], %{{.*}} : f32
// CHECK: %[[N3:.*]] = arith.fptosi %{{.*}} : f32 to i8
// CHECK-NOT: memref.store {{.*}}%[[Q]]
// CHECK: memref.store %[[N0]], %[[OUT]][%[[J]]] : memref<?xi8>
// CHECK-NEXT: memref.store %[[N1]], %[[OUT]][%[[J1]]] : memref<?xi8>
// CHECK-NEXT: memref.store %[[N2]], %[[OUT]][%[[J2]]] : memref<?xi8>
// CHECK-NEXT: memref.store %[[N3]], %[[OUT]][%[[J3]]] : memref<?xi8>
// CHECK-NEXT: } {loop_annotation = #[[ANN]]}
// CHECK: scf.for %{{.*}} step %c1
// CHECK: memref.store %{{.*}}, %[[OUT]][%{{.*}}] : memref<?xi8>
// CHECK-NEXT: }{{$}}
// CHECK: return{{$}}

// vector-width=0: the same loops and scalar accesses, no annotation anywhere.
// NOANN-LABEL: func.func @sgd_step
// NOANN-SAME: (%[[W:[^:]*]]: memref<?xf32> {llvm.noalias},
// NOANN: scf.for {{.*}} step %c1{{(_[0-9]+)?}} iter_args
// NOANN: scf.yield
// NOANN-NEXT: }{{$}}
// NOANN: scf.for %[[J:.*]] = {{.*}} step %c4{{(_[0-9]+)?}} iter_args
// NOANN: %[[J3:.*]] = arith.addi %[[J]], %c3{{(_[0-9]+)?}} : index
// NOANN: memref.load %[[W]][%[[J3]]] : memref<?xf32>
// NOANN: memref.store %{{.*}}, %[[W]][%[[J3]]] : memref<?xf32>
// NOANN: scf.yield
// NOANN-NEXT: }{{$}}
// NOANN: scf.for {{.*}} step %c1{{(_[0-9]+)?}} iter_args
// NOANN: scf.yield
// NOANN-NEXT: }{{$}}
// NOANN: return{{$}}
// NOANN-LABEL: func.func @untied_output
// NOANN: scf.for {{.*}} step %c4
// NOANN: memref.store
// NOANN-NEXT: memref.store
// NOANN-NEXT: memref.store
// NOANN-NEXT: memref.store
// NOANN-NEXT: }{{$}}
// NOANN: return{{$}}

// vector-width=16: the same annotation with width 16, on the step-4 loops only.
// W16-LABEL: func.func @sgd_step
// W16: scf.for {{.*}} step %c1{{(_[0-9]+)?}} iter_args
// W16: scf.yield
// W16-NEXT: }{{$}}
// W16: scf.for {{.*}} step %c4{{(_[0-9]+)?}} iter_args
// W16: scf.yield
// W16-NEXT: } {loop_annotation = #[[ANN]]}
// W16: scf.for {{.*}} step %c1{{(_[0-9]+)?}} iter_args
// W16: scf.yield
// W16-NEXT: }{{$}}
// W16-LABEL: func.func @untied_output
// W16: scf.for {{.*}} step %c4
// W16: memref.store
// W16-NEXT: memref.store
// W16-NEXT: memref.store
// W16-NEXT: memref.store
// W16-NEXT: } {loop_annotation = #[[ANN]]}
// W16: return{{$}}
func.func @untied_output(%q: tensor<?xi8>, %d: f32, %d1: f32, %seed: i64, %step: i64, %tid: i64)
    -> (tensor<?xi8>, tensor<?xi8>) {
  %w = dqt.dequantize %q, %d : tensor<?xi8>, f32 -> tensor<?xf32>
  %u = dqt.uniform %seed, %step, %tid like %q : tensor<?xi8> -> tensor<?xf32>
  %q1 = dqt.stochastic_round %w, %d1, %u {ternary} : tensor<?xf32>, tensor<?xf32> -> tensor<?xi8>
  return %q1, %q : tensor<?xi8>, tensor<?xi8>
}

// The three-parameter AdamW group: 12 memrefs (q, g, m, v per segment; all
// outputs tied), all noalias, the scalars, then begin, end and the partials.
// ADAMW-LABEL: func.func @adamw_step(
// ADAMW-SAME: %[[Q0:[^:]*]]: memref<?xi8> {llvm.noalias}, %[[G0:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[M0:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[V0:[^:]*]]: memref<?xf32> {llvm.noalias},
// ADAMW-SAME: %[[Q1:[^:]*]]: memref<?xi8> {llvm.noalias}, %[[G1:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[M1:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[V1:[^:]*]]: memref<?xf32> {llvm.noalias},
// ADAMW-SAME: %[[Q2:[^:]*]]: memref<?xi8> {llvm.noalias}, %[[G2:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[M2:[^:]*]]: memref<?xf32> {llvm.noalias}, %[[V2:[^:]*]]: memref<?xf32> {llvm.noalias},
// ADAMW-SAME: %{{[^:]*}}: index, %{{[^:]*}}: index, %[[PART:[^:]*]]: memref<?xi64> {llvm.noalias}){{.*}}{
// The next grid steps are computed in the prologue (maxq > 0 ? maxq*delta/127 : delta).
// ADAMW-COUNT-3: arith.divf %{{.*}}, %cst{{(_[0-9]+)?}} : f32
// Segment 0: head, 4-wide body (the only annotated loop), tail; g is never stored.
// ADAMW: scf.for {{.*}} step %c1{{(_[0-9]+)?}} iter_args({{.*}}) -> (i8, i64, i64) {
// ADAMW: scf.yield
// ADAMW-NEXT: }{{$}}
// ADAMW: scf.for %[[J:.*]] = {{.*}} step %c4{{(_[0-9]+)?}} iter_args({{.*}}) -> (i8, i64, i64) {
// ADAMW: %[[J1:.*]] = arith.addi %[[J]], %c1{{(_[0-9]+)?}} : index
// ADAMW: %[[J2:.*]] = arith.addi %[[J]], %c2{{(_[0-9]+)?}} : index
// ADAMW: %[[J3:.*]] = arith.addi %[[J]], %c3{{(_[0-9]+)?}} : index
// ADAMW-NEXT: memref.load %[[Q0]][%[[J]]] : memref<?xi8>
// ADAMW-NEXT: memref.load %[[Q0]][%[[J1]]] : memref<?xi8>
// ADAMW-NEXT: memref.load %[[Q0]][%[[J2]]] : memref<?xi8>
// ADAMW-NEXT: memref.load %[[Q0]][%[[J3]]] : memref<?xi8>
// ADAMW-NEXT: memref.load %[[G0]][%[[J]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[G0]][%[[J1]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[G0]][%[[J2]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[G0]][%[[J3]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[M0]][%[[J]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[M0]][%[[J1]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[M0]][%[[J2]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[M0]][%[[J3]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[V0]][%[[J]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[V0]][%[[J1]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[V0]][%[[J2]]] : memref<?xf32>
// ADAMW-NEXT: memref.load %[[V0]][%[[J3]]] : memref<?xf32>
// ADAMW-COUNT-4: math.sqrt
// ADAMW-NOT: math.sqrt
// ADAMW: memref.store %{{.*}}, %[[Q0]][%[[J]]] : memref<?xi8>
// ADAMW-NEXT: memref.store %{{.*}}, %[[Q0]][%[[J1]]] : memref<?xi8>
// ADAMW-NEXT: memref.store %{{.*}}, %[[Q0]][%[[J2]]] : memref<?xi8>
// ADAMW-NEXT: memref.store %{{.*}}, %[[Q0]][%[[J3]]] : memref<?xi8>
// ADAMW-NEXT: memref.store %{{.*}}, %[[M0]][%[[J]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[M0]][%[[J1]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[M0]][%[[J2]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[M0]][%[[J3]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[V0]][%[[J]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[V0]][%[[J1]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[V0]][%[[J2]]] : memref<?xf32>
// ADAMW-NEXT: memref.store %{{.*}}, %[[V0]][%[[J3]]] : memref<?xf32>
// ADAMW: scf.yield
// ADAMW-NEXT: } {loop_annotation = #[[ANN]]}
// ADAMW: scf.for {{.*}} step %c1{{(_[0-9]+)?}} iter_args({{.*}}) -> (i8, i64, i64) {
// ADAMW: scf.yield
// ADAMW-NEXT: }{{$}}
// Partials, segment-major: max (sign-extended), changed, non-finite.
// ADAMW: %[[MX0:.*]] = arith.extsi %{{.*}} : i8 to i64
// ADAMW: memref.store %[[MX0]], %[[PART]][%c0{{(_[0-9]+)?}}] : memref<?xi64>
// ADAMW: memref.store %{{.*}}, %[[PART]][%c1{{(_[0-9]+)?}}] : memref<?xi64>
// ADAMW: memref.store %{{.*}}, %[[PART]][%c2{{(_[0-9]+)?}}] : memref<?xi64>
// Segments 1 and 2: their own buffers, their own annotated group loops.
// ADAMW: scf.for %[[JB:.*]] = {{.*}} step %c4
// ADAMW: %[[JB3:.*]] = arith.addi %[[JB]], %c3{{(_[0-9]+)?}} : index
// ADAMW-NEXT: memref.load %[[Q1]][%[[JB]]]
// ADAMW: memref.load %[[G1]][%[[JB3]]]
// ADAMW: memref.store %{{.*}}, %[[V1]][%[[JB3]]]
// ADAMW: scf.yield
// ADAMW-NEXT: } {loop_annotation = #[[ANN]]}
// ADAMW: memref.store %{{.*}}, %[[PART]][%c5{{(_[0-9]+)?}}] : memref<?xi64>
// ADAMW: scf.for %[[JC:.*]] = {{.*}} step %c4
// ADAMW: %[[JC3:.*]] = arith.addi %[[JC]], %c3{{(_[0-9]+)?}} : index
// ADAMW-NEXT: memref.load %[[Q2]][%[[JC]]]
// ADAMW: memref.load %[[G2]][%[[JC]]]
// ADAMW: memref.store %{{.*}}, %[[V2]][%[[JC3]]]
// ADAMW: scf.yield
// ADAMW-NEXT: } {loop_annotation = #[[ANN]]}
// ADAMW: memref.store %{{.*}}, %[[PART]][%c8{{(_[0-9]+)?}}] : memref<?xi64>
// ADAMW: return{{$}}
