// bf16 optimizer states through dqt-fuse-step and dqt-lower-to-cpu
// (examples/adamw_bf16_states.mlir: one ternary AdamW parameter).
//
// Fusion: one fused step with both random streams (`rng`: the weight's u,
// `rng_bits`: the state stream), the body taking u (f32) then the bits (i32)
// then the element types (the states as bf16), and the bf16 outputs written
// in place (tied to m and v).
// RUN: dqt-opt %dqt_src/examples/adamw_bf16_states.mlir --dqt-fuse-step \
// RUN:   | FileCheck %s --check-prefix=FUSE --implicit-check-not=dqt.random_bits \
// RUN:   --implicit-check-not=dqt.uniform --implicit-check-not=dqt.stochastic_round_bf16
// FUSE: dqt.fused_step({{.*}} : tensor<?xi8>, tensor<?xf32>, tensor<?xbf16>, tensor<?xbf16>, i64, i64, i64, {{.*}}) {reductions = ["maxsi", "addi", "addi"], rng, rng_bits, segments = 1 : i64, tensors = 4 : i64, tied = array<i64: 0, 2, 3>} -> (tensor<?xi8>, tensor<?xbf16>, tensor<?xbf16>, i8, i64, i64)
// FUSE-NEXT: ^bb0(%{{.*}}: f32, %[[BITS:.*]]: i32, %{{.*}}: i8, %{{.*}}: f32, %[[M:.*]]: bf16, %[[V:.*]]: bf16,
// Exact widening: the bf16 bits become the high half of an f32.
// FUSE: %[[MI:.*]] = arith.bitcast %[[M]] : bf16 to i16
// FUSE-NEXT: %[[MW:.*]] = arith.extui %[[MI]] : i16 to i32
// FUSE: arith.shli %[[MW]], %{{.*}} : i32
// m rounds with the low 16 bits, v with the high 16 bits.
// FUSE: %[[LOW:.*]] = arith.andi %[[BITS]], %c65535_i32 : i32
// FUSE: %[[MB:.*]] = arith.bitcast %[[M1:.*]] : f32 to i32
// FUSE-NEXT: %[[SUM:.*]] = arith.addi %[[MB]], %[[LOW]] : i32
// FUSE: %[[NAN:.*]] = arith.cmpf uno, %[[M1]], %[[M1]] : f32
// FUSE: arith.bitcast %{{.*}} : i16 to bf16
// FUSE: %[[HIGH:.*]] = arith.shrui %[[BITS]], %{{.*}} : i32
// FUSE: arith.bitcast %{{.*}} : i16 to bf16
// FUSE: dqt.yield {{.*}} : i8, bf16, bf16, i8, i64, i64
//
// CPU lowering: bf16 memrefs, and in the vector loop a second Philox call
// for the state stream whose second counter word is j hi | 2^31, its raw
// words paired in 64-bit lanes and interleaved into element order, contiguous bf16 vector loads/stores.
// RUN: dqt-opt %dqt_src/examples/adamw_bf16_states.mlir --dqt-fuse-step \
// RUN:   --dqt-lower-to-cpu | FileCheck %s --check-prefix=CPU \
// RUN:   --implicit-check-not="tensor<" --implicit-check-not=dqt.fused_step
// CPU: func.func @adamw_bf16_step(%{{.*}}: memref<?xi8> {llvm.noalias}, %{{.*}}: memref<?xf32> {llvm.noalias}, %[[M:.*]]: memref<?xbf16> {llvm.noalias}, %[[V:.*]]: memref<?xbf16> {llvm.noalias},
// CPU: scf.for
// CPU: scf.for
// CPU: dqt.philox key({{.*}}) : vector<8xi32>
// CPU: %[[GHI:.*]] = arith.trunci %{{.*}} : vector<8xi64> to vector<8xi32>
// CPU-NEXT: %[[BIT31:.*]] = arith.constant dense<-2147483648> : vector<8xi32>
// CPU-NEXT: %[[W1:.*]] = arith.ori %[[GHI]], %[[BIT31]] : vector<8xi32>
// CPU: %[[R0:[^,]*]], %[[R1:[^,]*]], %[[R2:[^,]*]], %[[R3:[^ ]*]] = dqt.philox key({{.*}}) counter(%{{.*}}, %[[W1]], %{{.*}}, %{{.*}}) : vector<8xi32>
// CPU-NEXT: %[[C32:.*]] = arith.constant dense<32> : vector<8xi64>
// CPU-NEXT: %[[L0:.*]] = arith.extui %[[R0]] : vector<8xi32> to vector<8xi64>
// CPU-NEXT: %[[L1:.*]] = arith.extui %[[R1]] : vector<8xi32> to vector<8xi64>
// CPU-NEXT: %[[H1:.*]] = arith.shli %[[L1]], %[[C32]] : vector<8xi64>
// CPU-NEXT: %[[P01:.*]] = arith.ori %[[L0]], %[[H1]] : vector<8xi64>
// CPU-NEXT: %[[L2:.*]] = arith.extui %[[R2]] : vector<8xi32> to vector<8xi64>
// CPU-NEXT: %[[L3:.*]] = arith.extui %[[R3]] : vector<8xi32> to vector<8xi64>
// CPU-NEXT: %[[H3:.*]] = arith.shli %[[L3]], %[[C32]] : vector<8xi64>
// CPU-NEXT: %[[P23:.*]] = arith.ori %[[L2]], %[[H3]] : vector<8xi64>
// CPU-NEXT: %[[I:.*]] = vector.interleave %[[P01]], %[[P23]] : vector<8xi64> -> vector<16xi64>
// CPU-NEXT: vector.bitcast %[[I]] : vector<16xi64> to vector<32xi32>
// CPU: vector.load %[[M]][%{{.*}}] : memref<?xbf16>, vector<32xbf16>
// CPU: vector.load %[[V]][%{{.*}}] : memref<?xbf16>, vector<32xbf16>
// CPU: vector.store %{{.*}}, %[[M]][%{{.*}}] : memref<?xbf16>, vector<32xbf16>
// CPU: vector.store %{{.*}}, %[[V]][%{{.*}}] : memref<?xbf16>, vector<32xbf16>
//
// The whole CPU pipeline reaches the LLVM dialect (bf16 stays bf16 in memory;
// no libcall for conversions).
// RUN: dqt-opt %dqt_src/examples/adamw_bf16_states.mlir --dqt-compile-cpu \
// RUN:   | FileCheck %s --check-prefix=LLVM --implicit-check-not="dqt.philox" \
// RUN:   --implicit-check-not=llvm.call
// LLVM: llvm.load %{{.*}} : !llvm.ptr -> vector<32xbf16>
// LLVM: llvm.store %{{.*}}, %{{.*}} : vector<32xbf16>, !llvm.ptr
