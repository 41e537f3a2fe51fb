// The CPU pipeline (what the JIT runs) takes the three-parameter AdamW group
// to one LLVM-dialect chunk function: nothing of dqt, scf, memref, vector,
// arith, math or func is left (and no vector type: the groups of 4 are moved
// with scalar loads/stores, LLVM's loop vectorizer widens the loop), the f32
// math has no fast-math flags (no contraction), and sqrt/division stay the
// IEEE ones. Only the back edge of each group loop (step 4) carries the loop
// annotation; mlir-translate makes it `!llvm.loop` metadata.
//
// RUN: dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-compile-cpu | FileCheck %s \
// RUN:   --implicit-check-not=dqt. --implicit-check-not=scf. --implicit-check-not=cf. \
// RUN:   --implicit-check-not=memref. --implicit-check-not=vector. \
// RUN:   --implicit-check-not="vector<" \
// RUN:   --implicit-check-not=arith. --implicit-check-not=math. \
// RUN:   --implicit-check-not=func.func --implicit-check-not=func.return \
// RUN:   --implicit-check-not=unrealized_conversion_cast \
// RUN:   --implicit-check-not=fastmath --implicit-check-not=llvm.intr.fma \
// RUN:   --implicit-check-not=llvm.intr.fmuladd --implicit-check-not=llvm.func \
// RUN:   --implicit-check-not=loop_annotation --implicit-check-not=loop_vectorize
//
// 39 IEEE divisions: 3 next-delta steps in the prologue, and per segment 2 in
// each of the 4 lanes of the group loop plus 2 in each scalar loop.
// RUN: dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-compile-cpu | grep "llvm.fdiv" | count 39
//
// In LLVM IR: exactly the three group loops (back edge after j += 4) carry
// !llvm.loop, asking for vectorization with width 8.
// RUN: dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-compile-cpu \
// RUN:   | mlir-translate --mlir-to-llvmir \
// RUN:   | FileCheck %s --check-prefix=LLVMIR --implicit-check-not="!llvm.loop"

// The annotation (aliases of the module).
// CHECK: #[[VEC:loop_vectorize[0-9]*]] = #llvm.loop_vectorize<disable = false, width = 8 : i32>
// CHECK-NEXT: #[[ANN:loop_annotation[0-9]*]] = #llvm.loop_annotation<vectorize = #[[VEC]]>

// Memrefs are expanded to (allocated, aligned, offset, size, stride); the
// last ones are begin, end and the partials buffer. Nothing is returned.
// The memrefs' `llvm.noalias` (test/Passes/lower-to-cpu.mlir) does not reach
// the pointers yet: convert-func-to-llvm keeps argument attributes only for
// arguments converted 1:1, so they are tolerated here, not required.
// CHECK: llvm.func @adamw_step(%{{[^:]*}}: !llvm.ptr{{( \{llvm.noalias\})?}}, %[[Q0:[^:]*]]: !llvm.ptr{{( \{llvm.noalias\})?}}, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: i64,
// CHECK-SAME: %{{[^:]*}}: !llvm.ptr{{( \{llvm.noalias\})?}}, %[[G0:[^:]*]]: !llvm.ptr{{( \{llvm.noalias\})?}}, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: i64,
// CHECK-SAME: %{{[^:]*}}: !llvm.ptr{{( \{llvm.noalias\})?}}, %[[M0:[^:]*]]: !llvm.ptr{{( \{llvm.noalias\})?}}, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: i64,
// CHECK-SAME: %{{[^:]*}}: !llvm.ptr{{( \{llvm.noalias\})?}}, %[[V0:[^:]*]]: !llvm.ptr{{( \{llvm.noalias\})?}}, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: i64,
// CHECK-SAME: %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: !llvm.ptr{{( \{llvm.noalias\})?}}, %{{[^:]*}}: !llvm.ptr{{( \{llvm.noalias\})?}}, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: i64){{.*}}{
// Philox multipliers 0xD2511F53 and 0xCD9E8D57, as 64-bit products; the
// offsets of the elements of a group and its step.
// CHECK-DAG: llvm.mlir.constant(3528531795 : i64) : i64
// CHECK-DAG: llvm.mlir.constant(3449720151 : i64) : i64
// CHECK-DAG: %[[C1:[0-9]+]] = llvm.mlir.constant(1 : index) : i64
// CHECK-DAG: %[[C2:[0-9]+]] = llvm.mlir.constant(2 : index) : i64
// CHECK-DAG: %[[C3:[0-9]+]] = llvm.mlir.constant(3 : index) : i64
// CHECK-DAG: %[[C4:[0-9]+]] = llvm.mlir.constant(4 : index) : i64
// Segment 0, head loop (step 1): a bare back edge.
// CHECK: ^[[HEAD:bb[0-9]+]](%[[I:[0-9]+]]: i64, %{{[0-9]+}}: i8, %{{[0-9]+}}: i64, %{{[0-9]+}}: i64):
// CHECK: %[[INEXT:[0-9]+]] = llvm.add %[[I]], %[[C1]] : i64
// CHECK-NEXT: llvm.br ^[[HEAD]](%[[INEXT]], %{{.*}}){{$}}
// The group loop: int8 weights, f32 gradient and states, each loaded as four
// scalars at j, j+1, j+2, j+3.
// CHECK: ^[[GRP:bb[0-9]+]](%[[J:[0-9]+]]: i64, %{{[0-9]+}}: i8, %{{[0-9]+}}: i64, %{{[0-9]+}}: i64):
// CHECK: %[[J1:[0-9]+]] = llvm.add %[[J]], %[[C1]] : i64
// CHECK-NEXT: %[[J2:[0-9]+]] = llvm.add %[[J]], %[[C2]] : i64
// CHECK-NEXT: %[[J3:[0-9]+]] = llvm.add %[[J]], %[[C3]] : i64
// CHECK-NEXT: %[[PQ0:[0-9]+]] = llvm.getelementptr inbounds|nuw %[[Q0]][%[[J]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT: llvm.load %[[PQ0]] : !llvm.ptr -> i8
// CHECK-NEXT: %[[PQ1:[0-9]+]] = llvm.getelementptr inbounds|nuw %[[Q0]][%[[J1]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT: llvm.load %[[PQ1]] : !llvm.ptr -> i8
// CHECK-NEXT: %[[PQ2:[0-9]+]] = llvm.getelementptr inbounds|nuw %[[Q0]][%[[J2]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT: llvm.load %[[PQ2]] : !llvm.ptr -> i8
// CHECK-NEXT: %[[PQ3:[0-9]+]] = llvm.getelementptr inbounds|nuw %[[Q0]][%[[J3]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT: llvm.load %[[PQ3]] : !llvm.ptr -> i8
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[G0]][%[[J]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[G0]][%[[J1]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[G0]][%[[J2]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[G0]][%[[J3]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[M0]][%[[J]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-COUNT-3: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[V0]][%[[J]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK-COUNT-3: llvm.load %{{[0-9]+}} : !llvm.ptr -> f32
// CHECK: llvm.intr.sqrt(%{{.*}}) : (f32) -> f32
// CHECK: llvm.fdiv %{{.*}}, %{{.*}} : f32
// CHECK: llvm.intr.floor(%{{.*}}) : (f32) -> f32
// CHECK: llvm.fptosi %{{.*}} : f32 to i8
// Four scalar stores each of the new weights and both states.
// CHECK: llvm.getelementptr inbounds|nuw %[[Q0]][%[[J]]] : (!llvm.ptr, i64) -> !llvm.ptr, i8
// CHECK-NEXT: llvm.store %{{.*}}, %{{.*}} : i8, !llvm.ptr
// CHECK-COUNT-3: llvm.store %{{.*}}, %{{.*}} : i8, !llvm.ptr
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[M0]][%[[J]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.store %{{.*}}, %{{.*}} : f32, !llvm.ptr
// CHECK-COUNT-3: llvm.store %{{.*}}, %{{.*}} : f32, !llvm.ptr
// CHECK-NEXT: llvm.getelementptr inbounds|nuw %[[V0]][%[[J]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT: llvm.store %{{.*}}, %{{.*}} : f32, !llvm.ptr
// CHECK-COUNT-3: llvm.store %{{.*}}, %{{.*}} : f32, !llvm.ptr
// The back edge after j += 4 carries the annotation.
// CHECK: %[[JNEXT:[0-9]+]] = llvm.add %[[J]], %[[C4]] : i64
// CHECK-NEXT: llvm.br ^[[GRP]](%[[JNEXT]], %{{.*}}) {loop_annotation = #[[ANN]]}
// Tail loop (step 1): a bare back edge.
// CHECK: ^[[TAIL:bb[0-9]+]](%[[T:[0-9]+]]: i64, %{{[0-9]+}}: i8, %{{[0-9]+}}: i64, %{{[0-9]+}}: i64):
// CHECK: %[[TNEXT:[0-9]+]] = llvm.add %[[T]], %[[C1]] : i64
// CHECK-NEXT: llvm.br ^[[TAIL]](%[[TNEXT]], %{{.*}}){{$}}
// Segments 1 and 2: the same three loops, only the group loop annotated.
// CHECK: ^[[HEAD1:bb[0-9]+]](%{{[0-9]+}}: i64,
// CHECK: llvm.br ^[[HEAD1]](%{{.*}}){{$}}
// CHECK: ^[[GRP1:bb[0-9]+]](%[[J1B:[0-9]+]]: i64,
// CHECK: %[[J1NEXT:[0-9]+]] = llvm.add %[[J1B]], %[[C4]] : i64
// CHECK-NEXT: llvm.br ^[[GRP1]](%[[J1NEXT]], %{{.*}}) {loop_annotation = #[[ANN]]}
// CHECK: ^[[TAIL1:bb[0-9]+]](%{{[0-9]+}}: i64,
// CHECK: llvm.br ^[[TAIL1]](%{{.*}}){{$}}
// CHECK: ^[[HEAD2:bb[0-9]+]](%{{[0-9]+}}: i64,
// CHECK: llvm.br ^[[HEAD2]](%{{.*}}){{$}}
// CHECK: ^[[GRP2:bb[0-9]+]](%[[J2B:[0-9]+]]: i64,
// CHECK: %[[J2NEXT:[0-9]+]] = llvm.add %[[J2B]], %[[C4]] : i64
// CHECK-NEXT: llvm.br ^[[GRP2]](%[[J2NEXT]], %{{.*}}) {loop_annotation = #[[ANN]]}
// CHECK: ^[[TAIL2:bb[0-9]+]](%{{[0-9]+}}: i64,
// CHECK: llvm.br ^[[TAIL2]](%{{.*}}){{$}}
// CHECK: llvm.return{{$}}

// LLVMIR: define void @adamw_step(
// LLVMIR: %[[JN0:[0-9]+]] = add i64 %{{[0-9]+}}, 4
// LLVMIR-NEXT: br label %{{[0-9]+}}, !llvm.loop ![[LOOP:[0-9]+]]
// LLVMIR: %[[JN1:[0-9]+]] = add i64 %{{[0-9]+}}, 4
// LLVMIR-NEXT: br label %{{[0-9]+}}, !llvm.loop !{{[0-9]+}}
// LLVMIR: %[[JN2:[0-9]+]] = add i64 %{{[0-9]+}}, 4
// LLVMIR-NEXT: br label %{{[0-9]+}}, !llvm.loop !{{[0-9]+}}
// LLVMIR: ret void
// LLVMIR: ![[LOOP]] = distinct !{![[LOOP]], ![[ENABLE:[0-9]+]], ![[WIDTH:[0-9]+]]}
// LLVMIR-DAG: ![[ENABLE]] = !{!"llvm.loop.vectorize.enable", i1 true}
// LLVMIR-DAG: ![[WIDTH]] = !{!"llvm.loop.vectorize.width", i32 8}
