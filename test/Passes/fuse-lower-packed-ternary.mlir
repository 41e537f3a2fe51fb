// Packed ternary weights (examples/adamw_packed_ternary.mlir) through
// dqt-fuse-step and the lowerings.
//
// Fusion: the unpack/pack pair disappears into `packed = [0]`; the body sees
// one i8 per element; the packed output overwrites the packed operand.
// RUN: dqt-opt %dqt_src/examples/adamw_packed_ternary.mlir --dqt-fuse-step \
// RUN:   | FileCheck %s --check-prefix=FUSE --implicit-check-not=dqt.unpack_ternary \
// RUN:   --implicit-check-not=dqt.pack_ternary
// FUSE: dqt.fused_step({{.*}}) {packed = array<i64: 0>, reductions = ["maxsi", "addi", "addi"], rng, segments = 1 : i64, tensors = 4 : i64, tied = array<i64: 0, 2, 3>} -> (tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64)
// FUSE-NEXT: ^bb0(%{{.*}}: f32, %{{.*}}: i8, %{{.*}}: f32,
//
// CPU lowering: the element count is the gradient's length; vector blocks load 8
// bytes, spread each byte over 4 lanes, sign-extend the 2-bit codes, and
// store 8 bytes gathered from the lanes; the scalar tail reads, modifies and
// writes its byte.
// RUN: dqt-opt %dqt_src/examples/adamw_packed_ternary.mlir --dqt-fuse-step \
// RUN:   --dqt-lower-to-cpu | FileCheck %s --check-prefix=CPU
// CPU: func.func @adamw_packed_step(%[[P:[^:]*]]: memref<?xi8> {llvm.noalias}, %[[G:[^:]*]]: memref<?xf32>
// CPU: memref.dim %[[G]], %{{.*}} : memref<?xf32>
// CPU: vector.load %[[P]][%{{.*}}] : memref<?xi8>, vector<8xi8>
// CPU-NEXT: vector.shuffle %{{.*}} [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7] : vector<8xi8>, vector<8xi8>
// CPU: arith.shrsi %{{.*}} : vector<32xi8>
// CPU: vector.shuffle %{{.*}} [0, 4, 8, 12, 16, 20, 24, 28] : vector<32xi8>, vector<32xi8>
// CPU: vector.store %{{.*}}, %[[P]][%{{.*}}] : memref<?xi8>, vector<8xi8>
//
// GPU lowering: one byte per thread's group of 4; thread 0 does the n % 4 tail.
// RUN: dqt-opt %dqt_src/examples/adamw_packed_ternary.mlir --dqt-fuse-step \
// RUN:   --dqt-lower-to-gpu | FileCheck %s --check-prefix=GPU
// GPU: gpu.func @adamw_packed_step(%[[P:[^:]*]]: memref<?xi8>, %[[G:[^:]*]]: memref<?xf32>
// GPU: memref.dim %[[G]]
// GPU: scf.for
// GPU: memref.load %[[P]]
// GPU: memref.store %{{.*}}, %[[P]]
// GPU: arith.cmpi eq, %{{.*}}, %c0
// GPU: scf.for
//
// The whole pipelines reach LLVM / PTX.
// RUN: dqt-opt %dqt_src/examples/adamw_packed_ternary.mlir --dqt-compile-cpu | FileCheck %s --check-prefix=LLVM
// LLVM: llvm.load %{{.*}} : !llvm.ptr -> vector<8xi8>
// LLVM: llvm.store %{{.*}}, %{{.*}} : vector<8xi8>, !llvm.ptr
