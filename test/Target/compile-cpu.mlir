// The CPU pipeline (what the JIT runs) takes the three-parameter AdamW group
// (the function at the end of this file; three fused steps, one per
// parameter) to one LLVM-dialect chunk function: nothing of dqt, scf, memref, vector,
// arith, math or func is left, the f32 math has no fast-math flags (no
// contraction), and sqrt/division stay the IEEE ones. Per segment there are
// four loops (test/Passes/lower-to-cpu.mlir): scalar head, explicit vector
// loop (4 groups of 8 = 32 elements per iteration: one Philox on
// vector<4xi32>, carried in 64-bit lanes, its words interleaved with
// shufflevector and read as vector<32xi16>, the 16-bit halves in element
// order; vector<32x...> loads/stores, llvm.intr.vector.reduce.* for the
// by-products), scalar group loop (step 8), scalar tail. No loop carries a loop annotation, so the LLVM
// IR has no `!llvm.loop` metadata. Nothing goes through the stack: a
// memref's size is read from its descriptor (convert-to-llvm), no alloca.
//
// `vector.` ops are all lowered; only `llvm.intr.vector.reduce.*` (preceded
// by a `.`) may spell it.
// RUN: dqt-opt %s --dqt-compile-cpu | FileCheck %s \
// RUN:   --implicit-check-not=dqt. --implicit-check-not=scf. --implicit-check-not=cf. \
// RUN:   --implicit-check-not=memref. --implicit-check-not='{{[^.]}}vector.' \
// RUN:   --implicit-check-not=arith. --implicit-check-not=math. \
// RUN:   --implicit-check-not=func.func --implicit-check-not=func.return \
// RUN:   --implicit-check-not=unrealized_conversion_cast \
// RUN:   --implicit-check-not=fastmath --implicit-check-not=llvm.intr.fma \
// RUN:   --implicit-check-not=llvm.intr.fmuladd --implicit-check-not=llvm.func \
// RUN:   --implicit-check-not=loop_annotation --implicit-check-not=loop_vectorize \
// RUN:   --implicit-check-not=llvm.alloca
//
// 48 IEEE divisions: 3 next-delta steps in the prologue (f32), and per
// segment m/(sqrt(v)+eps) per element and the reciprocal 1/delta' once per
// loop body (CSE shares it between the 8 lanes of a group): the vector loop
// (on vector<32xf32>) 2, the scalar group loop 8 + 1, the head and the tail
// loop 2 each: 3 + 3 * (2 + 9 + 2 + 2) = 48, of which 3 * 2 = 6 on vectors
// (LLVM hoists the loop-invariant reciprocals out of the loops). With groups
// of 4 the group loop had 4 + 1 and the total was 36.
// RUN: dqt-opt %s --dqt-compile-cpu | grep "llvm.fdiv" | count 48
// RUN: dqt-opt %s --dqt-compile-cpu \
// RUN:   | grep "llvm.fdiv .* : vector<32xf32>" | count 6
//
// In LLVM IR: the vector code of the three vector loops, no `!llvm.loop`, and
// no fast-math flag or fused multiply-add anywhere.
// RUN: dqt-opt %s --dqt-compile-cpu \
// RUN:   | mlir-translate --mlir-to-llvmir \
// RUN:   | FileCheck %s --check-prefix=LLVMIR --implicit-check-not="!llvm.loop" \
// RUN:   --implicit-check-not=fmuladd --implicit-check-not=@llvm.fma \
// RUN:   --implicit-check-not=contract --implicit-check-not=reassoc \
// RUN:   --implicit-check-not=" fast " --implicit-check-not=nnan \
// RUN:   --implicit-check-not=ninf --implicit-check-not=afn

// The kernel ABI: the function's arguments in order (memrefs expanded to
// allocated, aligned, offset, size, stride; per parameter q, g, m, v, delta,
// maxq, tensor id; then the shared scalars), then begin, end and the
// partials buffer. Nothing is returned.
// The memrefs' `llvm.noalias` (test/Passes/lower-to-cpu.mlir) does not reach
// the pointers yet: convert-func-to-llvm keeps argument attributes only for
// arguments converted 1:1, so they are tolerated here, not required.
// CHECK-LABEL: llvm.func @adamw_step(
// CHECK-SAME: %{{[^:]*}}: !llvm.ptr{{( \{llvm.noalias\})?}}, %[[Q0:[^:]*]]: !llvm.ptr{{( \{llvm.noalias\})?}}, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: i64,
// CHECK-SAME: %{{[^:]*}}: !llvm.ptr{{( \{llvm.noalias\})?}}, %[[G0:[^:]*]]: !llvm.ptr{{( \{llvm.noalias\})?}}, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: i64,
// CHECK-SAME: %{{[^:]*}}: !llvm.ptr{{( \{llvm.noalias\})?}}, %[[M0:[^:]*]]: !llvm.ptr{{( \{llvm.noalias\})?}}, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: i64,
// CHECK-SAME: %{{[^:]*}}: !llvm.ptr{{( \{llvm.noalias\})?}}, %[[V0:[^:]*]]: !llvm.ptr{{( \{llvm.noalias\})?}}, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: i64,
// CHECK-SAME: %[[D0:[^:]*]]: f32, %[[MXQ0:[^:]*]]: i8, %{{[^:]*}}: i64, %{{[^:]*}}: !llvm.ptr
// CHECK-SAME: %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32,
// CHECK-SAME: %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: !llvm.ptr{{( \{llvm.noalias\})?}}, %{{[^:]*}}: !llvm.ptr{{( \{llvm.noalias\})?}}, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: i64){{.*}}{
// Philox multipliers 0xD2511F53 and 0xCD9E8D57, as 64-bit products (scalar
// loops) and as vector<4xi64> splats (vector loops: 4 groups, words in
// 64-bit lanes); the low-word mask; the group lanes 0..3; the offsets of the
// elements of a group (1..7), its step 8 and the vector step 32; the uniform's
// 1 and 2^-17 ((2h + 1) * 2^-17 = (h + 0.5) * 2^-16).
// CHECK-DAG: llvm.mlir.constant(3528531795 : i64) : i64
// CHECK-DAG: llvm.mlir.constant(3449720151 : i64) : i64
// CHECK-DAG: %[[M0V:[0-9]+]] = llvm.mlir.constant(dense<3528531795> : vector<4xi64>) : vector<4xi64>
// CHECK-DAG: llvm.mlir.constant(dense<3449720151> : vector<4xi64>) : vector<4xi64>
// CHECK-DAG: %[[LOW32:[0-9]+]] = llvm.mlir.constant(dense<4294967295> : vector<4xi64>) : vector<4xi64>
// CHECK-DAG: %[[LANES:[0-9]+]] = llvm.mlir.constant(dense<[0, 1, 2, 3]> : vector<4xi64>) : vector<4xi64>
// CHECK-DAG: %[[C1:[0-9]+]] = llvm.mlir.constant(1 : index) : i64
// CHECK-DAG: %[[C2:[0-9]+]] = llvm.mlir.constant(2 : index) : i64
// CHECK-DAG: %[[C3:[0-9]+]] = llvm.mlir.constant(3 : index) : i64
// CHECK-DAG: %[[C4:[0-9]+]] = llvm.mlir.constant(4 : index) : i64
// CHECK-DAG: %[[C5:[0-9]+]] = llvm.mlir.constant(5 : index) : i64
// CHECK-DAG: %[[C6:[0-9]+]] = llvm.mlir.constant(6 : index) : i64
// CHECK-DAG: %[[C7:[0-9]+]] = llvm.mlir.constant(7 : index) : i64
// CHECK-DAG: %[[C8:[0-9]+]] = llvm.mlir.constant(8 : index) : i64
// CHECK-DAG: %[[C32:[0-9]+]] = llvm.mlir.constant(32 : index) : i64
// CHECK-DAG: %[[ONEV:[0-9]+]] = llvm.mlir.constant(dense<1> : vector<32xi32>) : vector<32xi32>
// CHECK-DAG: %[[P17V:[0-9]+]] = llvm.mlir.constant(dense<7.62939453E-6> : vector<32xf32>) : vector<32xf32>
// The prologue: each parameter's next grid step,
// maxq > 0 ? maxq * delta / 127 : delta (one IEEE division each).
// CHECK: %[[MQF:[0-9]+]] = llvm.sitofp %[[MXQ0]] : i8 to f32
// CHECK-NEXT: %[[MD:[0-9]+]] = llvm.fmul %[[MQF]], %[[D0]] : f32
// CHECK-NEXT: %[[DD:[0-9]+]] = llvm.fdiv %[[MD]], %{{[0-9]+}} : f32
// CHECK-NEXT: %[[ND0:[0-9]+]] = llvm.select %{{[0-9]+}}, %[[DD]], %[[D0]] : i1, f32
// Segment 0, head loop (step 1): a bare back edge.
// CHECK: ^[[HEAD:bb[0-9]+]](%[[I:[0-9]+]]: i64, %{{[0-9]+}}: i8, %{{[0-9]+}}: i64, %{{[0-9]+}}: i64):
// CHECK: %[[INEXT:[0-9]+]] = llvm.add %[[I]], %[[C1]] : i64
// CHECK-NEXT: llvm.br ^[[HEAD]](%[[INEXT]], %{{.*}}){{$}}
// The vector loop runs from the first whole group of 8 to
// LO8 + 32 * floor((HI8 - LO8) / 32).
// CHECK: %[[SPAN:[0-9]+]] = llvm.sub %[[HI8:[0-9]+]], %[[LO8:[0-9]+]] : i64
// CHECK-NEXT: %[[NBLK:[0-9]+]] = llvm.udiv %[[SPAN]], %[[C32]] : i64
// CHECK-NEXT: %[[LEN:[0-9]+]] = llvm.mul %[[NBLK]], %[[C32]] : i64
// CHECK-NEXT: %[[HIV:[0-9]+]] = llvm.add %[[LO8]], %[[LEN]] : i64
// CHECK-NEXT: llvm.br ^[[VEC:bb[0-9]+]](%[[LO8]], %{{.*}}){{$}}
// CHECK-NEXT: ^[[VEC]](%[[IV:[0-9]+]]: i64, %[[AMX:[0-9]+]]: vector<32xi8>, %[[ACH:[0-9]+]]: i64, %[[ANF:[0-9]+]]: i64):
// CHECK-NEXT: llvm.icmp "slt" %[[IV]], %[[HIV]] : i64
// Counter lanes: splat(first / 8) + [0..3] (the group j = i div 8 of each
// of the 4 groups).
// CHECK: %[[GRP0:[0-9]+]] = llvm.lshr %[[IV]], %{{[0-9]+}} : i64
// CHECK-NEXT: %[[GINS:[0-9]+]] = llvm.insertelement %[[GRP0]], %{{[0-9]+}}[%{{[0-9]+}} : i32] : vector<4xi64>
// CHECK-NEXT: %[[GSPL:[0-9]+]] = llvm.shufflevector %[[GINS]], %{{[0-9]+}} [0, 0, 0, 0] : vector<4xi64>
// CHECK-NEXT: llvm.add %[[GSPL]], %[[LANES]] : vector<4xi64>
// Philox-4x32-10 on 4 lanes in 64-bit lanes: 20 products (x & low32) * M
// on vector<4xi64> (x86: vpmuludq), the first by the splat multiplier M0.
// CHECK: %[[X0:[0-9]+]] = llvm.and %{{[0-9]+}}, %[[LOW32]] : vector<4xi64>
// CHECK-NEXT: llvm.mul %[[X0]], %[[M0V]] : vector<4xi64>
// CHECK-COUNT-19: llvm.mul %{{[0-9]+}}, %{{[0-9]+}} : vector<4xi64>
// CHECK-NOT: llvm.mul
// The four words y0..y3 paired in 64-bit lanes (y0 | y1 << 32, y2 | y3 << 32;
// the second pair is formed first), interleaved, read as i16 in element
// order: element 8l + k of the 32 is half k mod 2 (low first) of word
// k div 2 of group l.
// CHECK: %[[Y0:[0-9]+]] = llvm.trunc %{{[0-9]+}} : vector<4xi64> to vector<4xi32>
// CHECK-NEXT: %[[Y1:[0-9]+]] = llvm.trunc %{{[0-9]+}} : vector<4xi64> to vector<4xi32>
// CHECK-NEXT: %[[Y2:[0-9]+]] = llvm.trunc %{{[0-9]+}} : vector<4xi64> to vector<4xi32>
// CHECK-NEXT: %[[Y3:[0-9]+]] = llvm.trunc %{{[0-9]+}} : vector<4xi64> to vector<4xi32>
// CHECK-NEXT: %[[E2:[0-9]+]] = llvm.zext %[[Y2]] : vector<4xi32> to vector<4xi64>
// CHECK-NEXT: %[[E3:[0-9]+]] = llvm.zext %[[Y3]] : vector<4xi32> to vector<4xi64>
// CHECK-NEXT: %[[S3:[0-9]+]] = llvm.shl %[[E3]], %{{[0-9]+}} : vector<4xi64>
// CHECK-NEXT: %[[W23:[0-9]+]] = llvm.or %[[E2]], %[[S3]] : vector<4xi64>
// CHECK-NEXT: %[[E0:[0-9]+]] = llvm.zext %[[Y0]] : vector<4xi32> to vector<4xi64>
// CHECK-NEXT: %[[E1:[0-9]+]] = llvm.zext %[[Y1]] : vector<4xi32> to vector<4xi64>
// CHECK-NEXT: %[[S1:[0-9]+]] = llvm.shl %[[E1]], %{{[0-9]+}} : vector<4xi64>
// CHECK-NEXT: %[[W01:[0-9]+]] = llvm.or %[[E0]], %[[S1]] : vector<4xi64>
// CHECK-NEXT: %[[IL:[0-9]+]] = llvm.shufflevector %[[W01]], %[[W23]] [0, 4, 1, 5, 2, 6, 3, 7] : vector<4xi64>
// CHECK-NEXT: %[[BITS:[0-9]+]] = llvm.bitcast %[[IL]] : vector<8xi64> to vector<32xi16>
// 32 contiguous elements of g (the step's `ins`), then of q, m, v (its
// `outs`, updated in place) at the loop index.
// CHECK-NEXT: %[[PVG:[0-9]+]] = llvm.getelementptr {{(inbounds\|nuw )?}}%[[G0]][%[[IV]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %[[PVG]] {alignment = 4 : i64} : !llvm.ptr -> vector<32xf32>
// CHECK-NEXT: %[[PVQ:[0-9]+]] = llvm.getelementptr {{(inbounds\|nuw )?}}%[[Q0]][%[[IV]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT: %[[VQ:[0-9]+]] = llvm.load %[[PVQ]] {alignment = 1 : i64} : !llvm.ptr -> vector<32xi8>
// CHECK-NEXT: %[[PVM:[0-9]+]] = llvm.getelementptr {{(inbounds\|nuw )?}}%[[M0]][%[[IV]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %[[PVM]] {alignment = 4 : i64} : !llvm.ptr -> vector<32xf32>
// CHECK-NEXT: %[[PVV:[0-9]+]] = llvm.getelementptr {{(inbounds\|nuw )?}}%[[V0]][%[[IV]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %[[PVV]] {alignment = 4 : i64} : !llvm.ptr -> vector<32xf32>
// The body on vector<32xf32>: IEEE sqrt, the division m/den, the uniforms
// from the interleaved 16-bit halves h ((2h + 1) * 2^-17, exact in f32), the
// reciprocal 1/delta' (loop-invariant) and x = w2 * it, floor, the stochastic
// rounding against the uniforms.
// CHECK: llvm.intr.sqrt(%{{[0-9]+}}) : (vector<32xf32>) -> vector<32xf32>
// CHECK: llvm.fdiv %{{[0-9]+}}, %{{[0-9]+}} : vector<32xf32>
// CHECK: %[[HZ:[0-9]+]] = llvm.zext %[[BITS]] : vector<32xi16> to vector<32xi32>
// CHECK-NEXT: %[[H2:[0-9]+]] = llvm.shl %[[HZ]], %[[ONEV]] : vector<32xi32>
// CHECK-NEXT: %[[HO:[0-9]+]] = llvm.or %[[H2]], %[[ONEV]] : vector<32xi32>
// CHECK-NEXT: %[[UF:[0-9]+]] = llvm.uitofp %[[HO]] : vector<32xi32> to vector<32xf32>
// CHECK-NEXT: %[[UV:[0-9]+]] = llvm.fmul %[[UF]], %[[P17V]] : vector<32xf32>
// CHECK-NEXT: %[[RCP:[0-9]+]] = llvm.fdiv %{{[0-9]+}}, %{{[0-9]+}} : vector<32xf32>
// CHECK-NEXT: %[[X:[0-9]+]] = llvm.fmul %{{[0-9]+}}, %[[RCP]] : vector<32xf32>
// CHECK-NEXT: llvm.intr.floor(%[[X]]) : (vector<32xf32>) -> vector<32xf32>
// CHECK: llvm.fcmp "olt" %[[UV]], %{{[0-9]+}} : vector<32xf32>
// CHECK: %[[VQR:[0-9]+]] = llvm.fptosi %{{[0-9]+}} : vector<32xf32> to vector<32xi8>
// CHECK: %[[VQN:[0-9]+]] = llvm.select %{{[0-9]+}}, %[[VQR]], %[[VQ]] : vector<32xi1>, vector<32xi8>
// Vector stores of q, m, v (not g), the two counts reduced and added to the
// running counts, the max combined lane-wise, and a bare back edge after
// iv += 32; one horizontal max after the loop.
// CHECK: llvm.getelementptr {{(inbounds\|nuw )?}}%[[Q0]][%[[IV]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT: llvm.store %[[VQN]], %{{[0-9]+}} {alignment = 1 : i64} : vector<32xi8>, !llvm.ptr
// CHECK-NEXT: llvm.getelementptr {{(inbounds\|nuw )?}}%[[M0]][%[[IV]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.store %{{[0-9]+}}, %{{[0-9]+}} {alignment = 4 : i64} : vector<32xf32>, !llvm.ptr
// CHECK-NEXT: llvm.getelementptr {{(inbounds\|nuw )?}}%[[V0]][%[[IV]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.store %{{[0-9]+}}, %{{[0-9]+}} {alignment = 4 : i64} : vector<32xf32>, !llvm.ptr
// CHECK-NEXT: %[[RCH:[0-9]+]] = "llvm.intr.vector.reduce.add"(%{{[0-9]+}}) : (vector<32xi64>) -> i64
// CHECK-NEXT: %[[RNF:[0-9]+]] = "llvm.intr.vector.reduce.add"(%{{[0-9]+}}) : (vector<32xi64>) -> i64
// CHECK-NEXT: %[[NMX:[0-9]+]] = llvm.intr.smax(%[[AMX]], %[[VQN]]) : (vector<32xi8>, vector<32xi8>) -> vector<32xi8>
// CHECK-NEXT: %[[NCH:[0-9]+]] = llvm.add %[[ACH]], %[[RCH]] : i64
// CHECK-NEXT: %[[NNF:[0-9]+]] = llvm.add %[[ANF]], %[[RNF]] : i64
// CHECK-NEXT: %[[IVNEXT:[0-9]+]] = llvm.add %[[IV]], %[[C32]] : i64
// CHECK-NEXT: llvm.br ^[[VEC]](%[[IVNEXT]], %[[NMX]], %[[NCH]], %[[NNF]] : i64, vector<32xi8>, i64, i64){{$}}
// The scalar group loop starts where the vector loop stopped and runs to
// HI8: f32 gradient, int8 weights, f32 states, each loaded as eight scalars
// at j, j+1, ..., j+7 (one group of 8, one Philox block).
// CHECK-NEXT: ^bb{{[0-9]+}}: // pred: ^[[VEC]]
// CHECK-NEXT: %[[RMX:[0-9]+]] = "llvm.intr.vector.reduce.smax"(%[[AMX]]) : (vector<32xi8>) -> i8
// CHECK-NEXT: %[[MX:[0-9]+]] = llvm.intr.smax(%{{[0-9]+}}, %[[RMX]]) : (i8, i8) -> i8
// CHECK-NEXT: llvm.br ^[[GRP:bb[0-9]+]](%[[HIV]], %[[MX]], {{.*}}){{$}}
// CHECK-NEXT: ^[[GRP]](%[[J:[0-9]+]]: i64, %{{[0-9]+}}: i8, %{{[0-9]+}}: i64, %{{[0-9]+}}: i64):
// CHECK-NEXT: llvm.icmp "slt" %[[J]], %[[HI8]] : i64
// CHECK-NOT: vector<
// CHECK: %[[J1:[0-9]+]] = llvm.add %[[J]], %[[C1]] : i64
// CHECK-NEXT: %[[J2:[0-9]+]] = llvm.add %[[J]], %[[C2]] : i64
// CHECK-NEXT: %[[J3:[0-9]+]] = llvm.add %[[J]], %[[C3]] : i64
// CHECK-NEXT: %[[J4:[0-9]+]] = llvm.add %[[J]], %[[C4]] : i64
// CHECK-NEXT: %[[J5:[0-9]+]] = llvm.add %[[J]], %[[C5]] : i64
// CHECK-NEXT: %[[J6:[0-9]+]] = llvm.add %[[J]], %[[C6]] : i64
// CHECK-NEXT: %[[J7:[0-9]+]] = llvm.add %[[J]], %[[C7]] : i64
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[G0]][%[[J]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[G0]][%[[J1]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[G0]][%[[J2]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[G0]][%[[J3]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[G0]][%[[J4]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[G0]][%[[J5]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[G0]][%[[J6]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[G0]][%[[J7]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-NEXT: %[[PQ0:[0-9]+]] = llvm.getelementptr inbounds|nuw %[[Q0]][%[[J]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT: llvm.load %[[PQ0]] : !llvm.ptr -> i8
// CHECK-NEXT: %[[PQ1:[0-9]+]] = llvm.getelementptr inbounds|nuw %[[Q0]][%[[J1]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT: llvm.load %[[PQ1]] : !llvm.ptr -> i8
// CHECK-NEXT: %[[PQ2:[0-9]+]] = llvm.getelementptr inbounds|nuw %[[Q0]][%[[J2]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT: llvm.load %[[PQ2]] : !llvm.ptr -> i8
// CHECK-NEXT: %[[PQ3:[0-9]+]] = llvm.getelementptr inbounds|nuw %[[Q0]][%[[J3]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT: llvm.load %[[PQ3]] : !llvm.ptr -> i8
// CHECK-NEXT: %[[PQ4:[0-9]+]] = llvm.getelementptr inbounds|nuw %[[Q0]][%[[J4]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT: llvm.load %[[PQ4]] : !llvm.ptr -> i8
// CHECK-NEXT: %[[PQ5:[0-9]+]] = llvm.getelementptr inbounds|nuw %[[Q0]][%[[J5]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT: llvm.load %[[PQ5]] : !llvm.ptr -> i8
// CHECK-NEXT: %[[PQ6:[0-9]+]] = llvm.getelementptr inbounds|nuw %[[Q0]][%[[J6]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT: llvm.load %[[PQ6]] : !llvm.ptr -> i8
// CHECK-NEXT: %[[PQ7:[0-9]+]] = llvm.getelementptr inbounds|nuw %[[Q0]][%[[J7]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT: llvm.load %[[PQ7]] : !llvm.ptr -> i8
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[M0]][%[[J]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-COUNT-7: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[V0]][%[[J]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-COUNT-7: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-NOT: vector<
// CHECK: llvm.intr.sqrt(%{{.*}}) : (f32) -> f32
// CHECK: llvm.fdiv %{{.*}}, %{{.*}} : f32
// CHECK: llvm.intr.floor(%{{.*}}) : (f32) -> f32
// CHECK: llvm.fptosi %{{.*}} : f32 to i8
// Eight scalar stores each of the new weights and both states.
// CHECK: llvm.getelementptr inbounds|nuw %[[Q0]][%[[J]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT: llvm.store %{{.*}}, %{{.*}} : i8, !llvm.ptr
// CHECK-COUNT-7: llvm.store %{{.*}}, %{{.*}} : i8, !llvm.ptr
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[M0]][%[[J]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.store %{{.*}}, %{{.*}} : f32, !llvm.ptr
// CHECK-COUNT-7: llvm.store %{{.*}}, %{{.*}} : f32, !llvm.ptr
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[V0]][%[[J]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.store %{{.*}}, %{{.*}} : f32, !llvm.ptr
// CHECK-COUNT-7: llvm.store %{{.*}}, %{{.*}} : f32, !llvm.ptr
// The back edge after j += 8: bare.
// CHECK: %[[JNEXT:[0-9]+]] = llvm.add %[[J]], %[[C8]] : i64
// CHECK-NEXT: llvm.br ^[[GRP]](%[[JNEXT]], %{{.*}}){{$}}
// Tail loop (step 1) from HI8: a bare back edge.
// CHECK-NEXT: ^bb{{[0-9]+}}: // pred: ^[[GRP]]
// CHECK-NEXT: llvm.br ^[[TAIL:bb[0-9]+]](%[[HI8]], %{{.*}}){{$}}
// CHECK-NEXT: ^[[TAIL]](%[[T:[0-9]+]]: i64, %{{[0-9]+}}: i8, %{{[0-9]+}}: i64, %{{[0-9]+}}: i64):
// CHECK: %[[TNEXT:[0-9]+]] = llvm.add %[[T]], %[[C1]] : i64
// CHECK-NEXT: llvm.br ^[[TAIL]](%[[TNEXT]], %{{.*}}){{$}}
// Segments 1 and 2: the same four loops, all back edges bare.
// CHECK: ^[[HEAD1:bb[0-9]+]](%{{[0-9]+}}: i64,
// CHECK: llvm.br ^[[HEAD1]](%{{.*}}){{$}}
// CHECK: ^[[VEC1:bb[0-9]+]](%[[IV1:[0-9]+]]: i64,
// CHECK: llvm.load %{{[0-9]+}} {alignment = 1 : i64} : !llvm.ptr -> vector<32xi8>
// CHECK: llvm.intr.smax(%{{[0-9]+}}, %{{[0-9]+}}) : (vector<32xi8>, vector<32xi8>) -> vector<32xi8>
// CHECK: %[[IV1NEXT:[0-9]+]] = llvm.add %[[IV1]], %[[C32]] : i64
// CHECK-NEXT: llvm.br ^[[VEC1]](%[[IV1NEXT]], %{{.*}}){{$}}
// CHECK: "llvm.intr.vector.reduce.smax"(%{{[0-9]+}}) : (vector<32xi8>) -> i8
// CHECK: ^[[GRP1:bb[0-9]+]](%[[J1B:[0-9]+]]: i64,
// CHECK: %[[J1NEXT:[0-9]+]] = llvm.add %[[J1B]], %[[C8]] : i64
// CHECK-NEXT: llvm.br ^[[GRP1]](%[[J1NEXT]], %{{.*}}){{$}}
// CHECK: ^[[TAIL1:bb[0-9]+]](%{{[0-9]+}}: i64,
// CHECK: llvm.br ^[[TAIL1]](%{{.*}}){{$}}
// CHECK: ^[[HEAD2:bb[0-9]+]](%{{[0-9]+}}: i64,
// CHECK: llvm.br ^[[HEAD2]](%{{.*}}){{$}}
// CHECK: ^[[VEC2:bb[0-9]+]](%[[IV2:[0-9]+]]: i64,
// CHECK: llvm.load %{{[0-9]+}} {alignment = 1 : i64} : !llvm.ptr -> vector<32xi8>
// CHECK: llvm.intr.smax(%{{[0-9]+}}, %{{[0-9]+}}) : (vector<32xi8>, vector<32xi8>) -> vector<32xi8>
// CHECK: %[[IV2NEXT:[0-9]+]] = llvm.add %[[IV2]], %[[C32]] : i64
// CHECK-NEXT: llvm.br ^[[VEC2]](%[[IV2NEXT]], %{{.*}}){{$}}
// CHECK: "llvm.intr.vector.reduce.smax"(%{{[0-9]+}}) : (vector<32xi8>) -> i8
// CHECK: ^[[GRP2:bb[0-9]+]](%[[J2B:[0-9]+]]: i64,
// CHECK: %[[J2NEXT:[0-9]+]] = llvm.add %[[J2B]], %[[C8]] : i64
// CHECK-NEXT: llvm.br ^[[GRP2]](%[[J2NEXT]], %{{.*}}){{$}}
// CHECK: ^[[TAIL2:bb[0-9]+]](%{{[0-9]+}}: i64,
// CHECK: llvm.br ^[[TAIL2]](%{{.*}}){{$}}
// CHECK: llvm.return{{$}}

// LLVM IR, per segment: the interleave of the paired words as an <8 x i32>
// shufflevector mask on <4 x i64> and a bitcast to <32 x i16>, then
// <32 x float>/<32 x i8> loads, the vector sqrt, the 16-bit halves to
// uniforms,
// <32 x ...> stores, the
// llvm.vector.reduce.add calls and a lane-wise smax; the back edge after
// iv += 32 has no metadata; the horizontal smax follows the loop.
// LLVMIR-LABEL: define void @adamw_step(
// LLVMIR: shufflevector <4 x i64> %{{[0-9]+}}, <4 x i64> %{{[0-9]+}}, <8 x i32> <i32 0, i32 4, i32 1, i32 5, i32 2, i32 6, i32 3, i32 7>
// LLVMIR-NEXT: %[[BITS:[0-9]+]] = bitcast <8 x i64> %{{[0-9]+}} to <32 x i16>
// LLVMIR-NEXT: getelementptr float, ptr %{{[0-9]+}}, i64 %[[IV0:[0-9]+]]
// LLVMIR-NEXT: load <32 x float>, ptr %{{[0-9]+}}, align 4
// LLVMIR-NEXT: getelementptr i8, ptr %{{[0-9]+}}, i64 %[[IV0]]
// LLVMIR-NEXT: load <32 x i8>, ptr %{{[0-9]+}}, align 1
// LLVMIR-NEXT: getelementptr float, ptr %{{[0-9]+}}, i64 %[[IV0]]
// LLVMIR-NEXT: load <32 x float>, ptr %{{[0-9]+}}, align 4
// LLVMIR-NEXT: getelementptr float, ptr %{{[0-9]+}}, i64 %[[IV0]]
// LLVMIR-NEXT: load <32 x float>, ptr %{{[0-9]+}}, align 4
// LLVMIR: call <32 x float> @llvm.sqrt.v32f32(<32 x float> %{{[0-9]+}})
// LLVMIR: fdiv <32 x float>
// LLVMIR: zext <32 x i16> %[[BITS]] to <32 x i32>
// LLVMIR-NEXT: shl <32 x i32> %{{[0-9]+}}, splat (i32 1)
// LLVMIR-NEXT: or <32 x i32> %{{[0-9]+}}, splat (i32 1)
// LLVMIR-NEXT: uitofp <32 x i32> %{{[0-9]+}} to <32 x float>
// LLVMIR-NEXT: fmul <32 x float> %{{[0-9]+}}, splat (float 0x3EE0000000000000)
// LLVMIR: store <32 x i8> %{{[0-9]+}}, ptr %{{[0-9]+}}, align 1
// LLVMIR: call i64 @llvm.vector.reduce.add.v32i64(<32 x i64> %{{[0-9]+}})
// LLVMIR-NEXT: call i64 @llvm.vector.reduce.add.v32i64(<32 x i64> %{{[0-9]+}})
// LLVMIR-NEXT: call <32 x i8> @llvm.smax.v32i8(<32 x i8> %{{[0-9]+}}, <32 x i8> %{{[0-9]+}})
// LLVMIR: add i64 %[[IV0]], 32
// LLVMIR-NEXT: br label %{{[0-9]+}}{{$}}
// LLVMIR: call i8 @llvm.vector.reduce.smax.v32i8(<32 x i8> %{{[0-9]+}})
// LLVMIR: shufflevector <4 x i64> %{{[0-9]+}}, <4 x i64> %{{[0-9]+}}, <8 x i32> <i32 0, i32 4, i32 1, i32 5,
// LLVMIR: load <32 x i8>, ptr %{{[0-9]+}}, align 1
// LLVMIR: call i8 @llvm.vector.reduce.smax.v32i8(<32 x i8> %{{[0-9]+}})
// LLVMIR: shufflevector <4 x i64> %{{[0-9]+}}, <4 x i64> %{{[0-9]+}}, <8 x i32> <i32 0, i32 4, i32 1, i32 5,
// LLVMIR: load <32 x i8>, ptr %{{[0-9]+}}, align 1
// LLVMIR: call i8 @llvm.vector.reduce.smax.v32i8(<32 x i8> %{{[0-9]+}})
// LLVMIR-NOT: @llvm.vector.reduce.smax.v32i8(<32 x i8> %
// LLVMIR: ret void
// LLVMIR: declare i8 @llvm.vector.reduce.smax.v32i8(<32 x i8>)
// LLVMIR: declare i64 @llvm.vector.reduce.add.v32i64(<32 x i64>)

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
