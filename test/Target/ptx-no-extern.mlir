// The PTX of a kernel must be self-contained whatever the environment:
// ptxas (and the CUDA driver's JIT) cannot resolve calls to libdevice.
//
// dqt-lower-to-gpu emits floor, fabs and sqrt as LLVM/NVVM intrinsics
// (cvt.rmi.f32.f32, and.b32 on the sign bit, sqrt.rn.f32), so no libdevice
// call remains even without CUDA_ROOT/CUDA_HOME/CUDA_PATH, which the NVVM
// target needs to find and link libdevice.
//
// RUN: env -u CUDA_ROOT -u CUDA_HOME -u CUDA_PATH dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-compile-gpu="chip=sm_90" | %extract-ptx | FileCheck %s --implicit-check-not=.extern --implicit-check-not=__nv_

// CHECK: .entry adamw_step(
// CHECK: cvt.rmi.f32.f32
