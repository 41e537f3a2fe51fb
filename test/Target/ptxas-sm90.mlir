// ptxas (CUDA toolkit; no GPU needed) accepts the sm_90 PTX kernel of the
// three-parameter AdamW group, with no register spills to local memory.
//
// REQUIRES: ptxas
// RUN: dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-compile-gpu="chip=sm_90" | %extract-ptx > %t.ptx
// RUN: %ptxas -arch=sm_90 -v %t.ptx -o %t.cubin 2>&1 | FileCheck %s
// RUN: test -s %t.cubin

// CHECK: ptxas info    : Compiling entry function 'adamw_step' for 'sm_90'
// CHECK: ptxas info    : Function properties for adamw_step
// CHECK-NEXT: 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
// CHECK-NOT: ptxas {{(warning|error|fatal)}}
