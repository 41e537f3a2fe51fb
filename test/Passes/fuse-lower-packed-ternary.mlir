// Packed ternary weights (the function at the end of this file) through
// dqt-fuse-step and the lowerings.
//
// Fusion: the unpack/pack pair disappears into `packed = [0]` (output 0 of
// `outs`, the packed operand itself, overwritten in place); the body sees
// one i8 per element.
// RUN: dqt-opt %s --dqt-fuse-step \
// RUN:   | FileCheck %s --check-prefix=FUSE --implicit-check-not=dqt.unpack_ternary \
// RUN:   --implicit-check-not=dqt.pack_ternary
// FUSE-LABEL: func.func @adamw_packed_step
// FUSE-SAME: (%[[P:[^:]*]]: tensor<?xi8>, %[[G:[^:]*]]: tensor<?xf32>,
// FUSE: dqt.fused_step ins(%[[G]] : tensor<?xf32>) scalars(%{{[^:]*}} : {{[^)]*}})
// FUSE-SAME: outs(%[[P]], %{{[^,]*}}, %{{[^ ]*}} : tensor<?xi8>, tensor<?xf32>, tensor<?xf32>)
// FUSE-SAME: combiners [#dqt.combiner<maxsi>, #dqt.combiner<addi>, #dqt.combiner<addi>] attributes {packed = array<i64: 0>}
// FUSE-SAME: -> tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64 {
// FUSE-NEXT: ^bb0(%{{[^:]*}}: f32, {{.*}}, %{{[^:]*}}: i8, %{{[^:]*}}: f32, %{{[^:]*}}: f32):
//
// CPU lowering: the element count is the gradient's length; vector blocks load 8
// bytes, spread each byte over 4 lanes, sign-extend the 2-bit codes, and
// store 8 bytes gathered from the lanes; the scalar tail reads, modifies and
// writes its byte.
// RUN: dqt-opt %s --dqt-fuse-step \
// RUN:   --dqt-lower-to-cpu | FileCheck %s --check-prefix=CPU
// CPU-LABEL: func.func @adamw_packed_step
// CPU-SAME: (%[[P:[^:]*]]: memref<?xi8> {llvm.noalias}, %[[G:[^:]*]]: memref<?xf32>
// CPU: memref.dim %[[G]], %{{.*}} : memref<?xf32>
// CPU: vector.load %[[P]][%{{.*}}] : memref<?xi8>, vector<8xi8>
// CPU-NEXT: vector.shuffle %{{.*}} [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7] : vector<8xi8>, vector<8xi8>
// CPU: arith.shrsi %{{.*}} : vector<32xi8>
// CPU: vector.shuffle %{{.*}} [0, 4, 8, 12, 16, 20, 24, 28] : vector<32xi8>, vector<32xi8>
// CPU: vector.store %{{.*}}, %[[P]][%{{.*}}] : memref<?xi8>, vector<8xi8>
//
// GPU lowering: one byte per thread's group of 4; thread 0 does the n % 4 tail.
// RUN: dqt-opt %s --dqt-fuse-step \
// RUN:   --dqt-lower-to-gpu | FileCheck %s --check-prefix=GPU
// GPU-LABEL: gpu.func @adamw_packed_step
// GPU-SAME: (%[[P:[^:]*]]: memref<?xi8>, %[[G:[^:]*]]: memref<?xf32>
// GPU: memref.dim %[[G]]
// GPU: scf.for
// GPU: memref.load %[[P]]
// GPU: memref.store %{{.*}}, %[[P]]
// GPU: arith.cmpi eq, %{{.*}}, %c0
// GPU: scf.for
//
// The whole CPU pipeline reaches LLVM.
// RUN: dqt-opt %s --dqt-compile-cpu | FileCheck %s --check-prefix=LLVM
// LLVM-LABEL: llvm.func @adamw_packed_step
// LLVM: llvm.load %{{.*}} : !llvm.ptr -> vector<8xi8>
// LLVM: llvm.store %{{.*}}, %{{.*}} : vector<8xi8>, !llvm.ptr

// One DQT AdamW step of a ternary parameter stored packed, 4 two-bit codes
// per byte (a copy of examples/adamw_packed_ternary.mlir).
func.func @adamw_packed_step(
    %p: tensor<?xi8>,
    %g: tensor<?xf32>,
    %m: tensor<?xf32>,
    %v: tensor<?xf32>,
    %delta: f32,
    %maxq: i8,
    %tid: i64,
    %beta1: f32,
    %beta2: f32,
    %alpha: f32,
    %eps: f32,
    %decay: f32,
    %seed: i64,
    %step: i64)
    -> (tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64) {
  %d1 = dqt.next_delta %delta, %maxq grid<ternary>
  %q = dqt.unpack_ternary %p like %g
      : tensor<?xi8>, tensor<?xf32> -> tensor<?xi8>
  %w = dqt.dequantize %q, %delta : tensor<?xi8>, f32 -> tensor<?xf32>
  %m1, %v1 = dqt.adam_moments %g, %m, %v, %beta1, %beta2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %w1 = dqt.adam_apply %w, %m1, %v1, %alpha, %eps, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %u = dqt.uniform %seed, %step, %tid like %g : tensor<?xf32> -> tensor<?xf32>
  %q1 = dqt.stochastic_round %w1, %d1, %u grid<ternary>
      : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %q2 = dqt.mask_nonfinite %g, %q1, %q : tensor<?xf32>, tensor<?xi8>
  %p2 = dqt.pack_ternary %q2 : tensor<?xi8> -> tensor<?xi8>
  %m2 = dqt.mask_nonfinite %g, %m1, %m : tensor<?xf32>, tensor<?xf32>
  %v2 = dqt.mask_nonfinite %g, %v1, %v : tensor<?xf32>, tensor<?xf32>
  %mx = dqt.reduce_max %q2 : tensor<?xi8> -> i8
  %ch = dqt.count_changed %q, %q2 : tensor<?xi8>, tensor<?xi8> -> i64
  %nf = dqt.count_nonfinite %g : tensor<?xf32> -> i64
  return %p2, %m2, %v2, %mx, %ch, %nf
      : tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64
}
