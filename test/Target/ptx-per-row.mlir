// The per-row delta kernel (examples/adamw_per_row.mlir) for sm_90: each
// thread reads its group's row delta and delta' from their per-row buffers
// and max-combines its row's max(q') with a 32-bit global atomic (the
// narrowest PTX atom.max); the per-tensor by-products keep one block
// reduction and one 64-bit atomic per block. ptxas (no GPU needed) accepts
// it with no register spills.
//
// REQUIRES: ptxas
// RUN: dqt-opt %dqt_src/examples/adamw_per_row.mlir --dqt-compile-gpu="chip=sm_90" | %extract-ptx > %t.ptx
// RUN: FileCheck %s --check-prefix=PTX < %t.ptx
// RUN: %ptxas -arch=sm_90 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s
// RUN: test -s %t.cubin

// PTX: .entry adamw_per_row_step(
// PTX-DAG: atom.global.max.s32
// PTX-DAG: atom.global.max.s64
// PTX-DAG: atom.global.add.u64
// PTX-DAG: div.rn.f32
// PTX-DAG: sqrt.rn.f32
// PTX-NOT: fma.rn.f32

// CHECK: ptxas info    : Compiling entry function 'adamw_per_row_step' for 'sm_90'
// CHECK: ptxas info    : Function properties for adamw_per_row_step
// CHECK-NEXT: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-NOT: ptxas {{(warning|error|fatal)}}
