// The CPU pipeline (what the JIT runs) takes the three-parameter AdamW group
// to one LLVM-dialect chunk function: nothing of dqt, scf, memref, vector,
// arith, math or func is left, the f32 math has no fast-math flags (no
// contraction), and sqrt/division stay the IEEE ones.
//
// RUN: dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-compile-cpu | FileCheck %s \
// RUN:   --implicit-check-not=dqt. --implicit-check-not=scf. --implicit-check-not=cf. \
// RUN:   --implicit-check-not=memref. --implicit-check-not=vector. \
// RUN:   --implicit-check-not=arith. --implicit-check-not=math. \
// RUN:   --implicit-check-not=func.func --implicit-check-not=func.return \
// RUN:   --implicit-check-not=unrealized_conversion_cast \
// RUN:   --implicit-check-not=fastmath --implicit-check-not=llvm.intr.fma \
// RUN:   --implicit-check-not=llvm.intr.fmuladd --implicit-check-not=llvm.func
//
// 39 IEEE divisions: 3 next-delta steps in the prologue, and per segment 2 in
// each of the 4 lanes of the vector loop plus 2 in each scalar loop.
// RUN: dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-compile-cpu | grep "llvm.fdiv" | count 39

// Memrefs are expanded to (allocated, aligned, offset, size, stride); the
// last ones are begin, end and the partials buffer. Nothing is returned.
// CHECK: llvm.func @adamw_step(%{{[^:]*}}: !llvm.ptr, %{{[^:]*}}: !llvm.ptr, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: i64,
// CHECK-SAME: %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: !llvm.ptr, %{{[^:]*}}: !llvm.ptr, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: i64){{.*}}{
// Philox multipliers 0xD2511F53 and 0xCD9E8D57, as 64-bit products.
// CHECK-DAG: llvm.mlir.constant(3528531795 : i64) : i64
// CHECK-DAG: llvm.mlir.constant(3449720151 : i64) : i64
// The vector loop: 4-wide loads of int8 weights and f32 gradient and states.
// CHECK: llvm.load %{{.*}} {alignment = 1 : i64} : !llvm.ptr -> vector<4xi8>
// CHECK-COUNT-3: llvm.load %{{.*}} {alignment = 4 : i64} : !llvm.ptr -> vector<4xf32>
// CHECK: llvm.intr.sqrt(%{{.*}}) : (f32) -> f32
// CHECK: llvm.fdiv %{{.*}}, %{{.*}} : f32
// CHECK: llvm.intr.floor(%{{.*}}) : (f32) -> f32
// CHECK: llvm.fptosi %{{.*}} : f32 to i8
// CHECK: llvm.store %{{.*}}, %{{.*}} {alignment = 1 : i64} : vector<4xi8>, !llvm.ptr
// CHECK-COUNT-2: llvm.store %{{.*}}, %{{.*}} {alignment = 4 : i64} : vector<4xf32>, !llvm.ptr
// CHECK: llvm.return{{$}}
