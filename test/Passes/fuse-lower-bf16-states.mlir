// bf16 optimizer states through dqt-fuse-step and dqt-lower-to-cpu (the
// function at the end of this file: one ternary AdamW parameter).
//
// Fusion: one fused step whose body asks for all three random streams
// (`dqt.philox_bits weight`: the weight's u; `dqt.philox_bits state0` and
// `state1`: the state streams, 16 bits each), takes the gradient (ins), the scalars, then the current
// elements of q, m, v (outs; the states as bf16), and writes the bf16
// states in place (m and v are `outs`).
// RUN: dqt-opt %s --dqt-fuse-step \
// RUN:   | FileCheck %s --check-prefix=FUSE --implicit-check-not=dqt.random_bits \
// RUN:   --implicit-check-not=dqt.uniform --implicit-check-not=dqt.stochastic_round_bf16
// FUSE-LABEL: func.func @adamw_bf16_step
// FUSE-SAME: (%[[Q:[^:]*]]: tensor<?xi8>, %[[G:[^:]*]]: tensor<?xf32>, %[[MT:[^:]*]]: tensor<?xbf16>, %[[VT:[^:]*]]: tensor<?xbf16>,
// FUSE: dqt.fused_step ins(%[[G]] : tensor<?xf32>) scalars(%{{[^:]*}} : i64, i64, i64, {{[^)]*}})
// FUSE-SAME: outs(%[[Q]], %[[MT]], %[[VT]] : tensor<?xi8>, tensor<?xbf16>, tensor<?xbf16>)
// FUSE-SAME: combiners [#dqt.combiner<maxsi>, #dqt.combiner<addi>, #dqt.combiner<addi>] -> tensor<?xi8>, tensor<?xbf16>, tensor<?xbf16>, i8, i64, i64 {
// FUSE-NEXT: ^bb0(%{{[^:]*}}: f32, %[[SEED:[^:]*]]: i64, %[[STEP:[^:]*]]: i64, %[[TID:[^:]*]]: i64, {{.*}}, %{{[^:]*}}: i8, %[[M:[^:]*]]: bf16, %[[V:[^:]*]]: bf16):
// Exact widening: the bf16 bits become the high half of an f32.
// FUSE: %[[MI:.*]] = arith.bitcast %[[M]] : bf16 to i16
// FUSE-NEXT: %[[MW:.*]] = arith.extui %[[MI]] : i16 to i32
// FUSE: arith.shli %[[MW]], %{{.*}} : i32
// The weight's uniform, then the state streams' bits of the same element,
// zext(state0) | zext(state1) << 16: m rounds with the low 16 bits (state0),
// v with the high 16 bits (state1).
// FUSE: %[[IDX:.*]] = dqt.element_index : index
// FUSE-NEXT: dqt.philox_bits weight %[[SEED]], %[[STEP]], %[[TID]] at %[[IDX]] : i16
// FUSE: %[[S0:.*]] = dqt.philox_bits state0 %[[SEED]], %[[STEP]], %[[TID]] at %[[IDX]] : i16
// FUSE-NEXT: %[[S0W:.*]] = arith.extui %[[S0]] : i16 to i32
// FUSE-NEXT: %[[S1:.*]] = dqt.philox_bits state1 %[[SEED]], %[[STEP]], %[[TID]] at %[[IDX]] : i16
// FUSE-NEXT: %[[S1W:.*]] = arith.extui %[[S1]] : i16 to i32
// FUSE: %[[S1H:.*]] = arith.shli %[[S1W]], %{{.*}} : i32
// FUSE-NEXT: %[[BITS:.*]] = arith.ori %[[S0W]], %[[S1H]] : i32
// FUSE: %[[LOW:.*]] = arith.andi %[[BITS]], %c65535_i32 : i32
// FUSE: %[[MB:.*]] = arith.bitcast %[[M1:.*]] : f32 to i32
// FUSE-NEXT: %[[SUM:.*]] = arith.addi %[[MB]], %[[LOW]] : i32
// FUSE: %[[NAN:.*]] = arith.cmpf uno, %[[M1]], %[[M1]] : f32
// FUSE: arith.bitcast %{{.*}} : i16 to bf16
// FUSE: %[[HIGH:.*]] = arith.shrui %[[BITS]], %{{.*}} : i32
// FUSE: arith.bitcast %{{.*}} : i16 to bf16
// FUSE: dqt.yield {{.*}} : i8, bf16, bf16, i8, i64, i64
//
// CPU lowering: bf16 memrefs, and in the vector loop (4 groups of 8) two
// more Philox calls, one per state stream, whose second counter word is
// j hi | 2^31 (state0) and j hi | 2^31 | 2^30 (state1); each stream's words
// paired in 64-bit lanes, interleaved and read as vector<32xi16> (the halves
// in element order); contiguous bf16 vector loads/stores.
// RUN: dqt-opt %s --dqt-fuse-step \
// RUN:   --dqt-lower-to-cpu | FileCheck %s --check-prefix=CPU \
// RUN:   --implicit-check-not="tensor<" --implicit-check-not=dqt.fused_step
// CPU-LABEL: func.func @adamw_bf16_step
// CPU-SAME: (%{{[^:]*}}: memref<?xi8> {llvm.noalias}, %{{[^:]*}}: memref<?xf32> {llvm.noalias}, %[[M:[^:]*]]: memref<?xbf16> {llvm.noalias}, %[[V:[^:]*]]: memref<?xbf16> {llvm.noalias},
// CPU-DAG: %[[BIT31:.*]] = arith.constant dense<-2147483648> : vector<4xi32>
// CPU-DAG: %[[BIT3130:.*]] = arith.constant dense<-1073741824> : vector<4xi32>
// CPU-DAG: %[[C32:.*]] = arith.constant dense<32> : vector<4xi64>
// CPU: scf.for
// CPU: scf.for
// CPU: dqt.philox key({{.*}}) : vector<4xi32>
// CPU: %[[GHI:.*]] = arith.trunci %{{.*}} : vector<4xi64> to vector<4xi32>
// CPU-NEXT: %[[W1:.*]] = arith.ori %[[GHI]], %[[BIT31]] : vector<4xi32>
// CPU: %[[R0:[^,]*]], %[[R1:[^,]*]], %[[R2:[^,]*]], %[[R3:[^ ]*]] = dqt.philox key({{.*}}) counter(%{{.*}}, %[[W1]], %{{.*}}, %{{.*}}) : vector<4xi32>
// CPU: %[[GHIB:.*]] = arith.trunci %{{.*}} : vector<4xi64> to vector<4xi32>
// CPU-NEXT: %[[W1B:.*]] = arith.ori %[[GHIB]], %[[BIT3130]] : vector<4xi32>
// CPU: %[[T0:[^,]*]], %[[T1:[^,]*]], %[[T2:[^,]*]], %[[T3:[^ ]*]] = dqt.philox key({{.*}}) counter(%{{.*}}, %[[W1B]], %{{.*}}, %{{.*}}) : vector<4xi32>
// The weight stream's words are paired first (lower-to-cpu.mlir), then
// state0's, then state1's (the pair of words 2 and 3 formed first).
// CPU: %[[L2:.*]] = arith.extui %[[R2]] : vector<4xi32> to vector<4xi64>
// CPU-NEXT: %[[L3:.*]] = arith.extui %[[R3]] : vector<4xi32> to vector<4xi64>
// CPU-NEXT: %[[H3:.*]] = arith.shli %[[L3]], %[[C32]] : vector<4xi64>
// CPU-NEXT: %[[P23:.*]] = arith.ori %[[L2]], %[[H3]] : vector<4xi64>
// CPU-NEXT: %[[L0:.*]] = arith.extui %[[R0]] : vector<4xi32> to vector<4xi64>
// CPU-NEXT: %[[L1:.*]] = arith.extui %[[R1]] : vector<4xi32> to vector<4xi64>
// CPU-NEXT: %[[H1:.*]] = arith.shli %[[L1]], %[[C32]] : vector<4xi64>
// CPU-NEXT: %[[P01:.*]] = arith.ori %[[L0]], %[[H1]] : vector<4xi64>
// CPU-NEXT: %[[I:.*]] = vector.interleave %[[P01]], %[[P23]] : vector<4xi64> -> vector<8xi64>
// CPU-NEXT: %[[B0:.*]] = vector.bitcast %[[I]] : vector<8xi64> to vector<32xi16>
// CPU: %[[I1:.*]] = vector.interleave %{{.*}}, %{{.*}} : vector<4xi64> -> vector<8xi64>
// CPU-NEXT: %[[B1:.*]] = vector.bitcast %[[I1]] : vector<8xi64> to vector<32xi16>
// CPU: vector.load %[[M]][%{{.*}}] : memref<?xbf16>, vector<32xbf16>
// CPU: vector.load %[[V]][%{{.*}}] : memref<?xbf16>, vector<32xbf16>
// In the body: state0's halves low, state1's high.
// CPU: %[[Z0:.*]] = arith.extui %[[B0]] : vector<32xi16> to vector<32xi32>
// CPU-NEXT: %[[Z1:.*]] = arith.extui %[[B1]] : vector<32xi16> to vector<32xi32>
// CPU-NEXT: %[[Z1H:.*]] = arith.shli %[[Z1]], %{{.*}} : vector<32xi32>
// CPU-NEXT: arith.ori %[[Z0]], %[[Z1H]] : vector<32xi32>
// CPU: vector.store %{{.*}}, %[[M]][%{{.*}}] : memref<?xbf16>, vector<32xbf16>
// CPU: vector.store %{{.*}}, %[[V]][%{{.*}}] : memref<?xbf16>, vector<32xbf16>
//
// The whole CPU pipeline reaches the LLVM dialect (bf16 stays bf16 in memory;
// no libcall for conversions).
// RUN: dqt-opt %s --dqt-compile-cpu \
// RUN:   | FileCheck %s --check-prefix=LLVM --implicit-check-not="dqt.philox" \
// RUN:   --implicit-check-not=llvm.call
// LLVM-LABEL: llvm.func @adamw_bf16_step
// LLVM: llvm.load %{{.*}} : !llvm.ptr -> vector<32xbf16>
// LLVM: llvm.store %{{.*}}, %{{.*}} : vector<32xbf16>, !llvm.ptr

// One DQT AdamW step of a ternary parameter with bf16 Adam states (a copy
// of examples/adamw_bf16_states.mlir).
func.func @adamw_bf16_step(
    %q: tensor<?xi8>,
    %g: tensor<?xf32>,
    %m: tensor<?xbf16>,
    %v: tensor<?xbf16>,
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
    -> (tensor<?xi8>, tensor<?xbf16>, tensor<?xbf16>, i8, i64, i64) {
  %d1 = dqt.next_delta %delta, %maxq grid<ternary>
  %w = dqt.dequantize %q, %delta : tensor<?xi8>, f32 -> tensor<?xf32>
  %m1, %v1 = dqt.adam_moments %g, %m, %v, %beta1, %beta2
      : tensor<?xf32>, tensor<?xbf16>, tensor<?xbf16>
  %w1 = dqt.adam_apply %w, %m1, %v1, %alpha, %eps, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %u = dqt.uniform %seed, %step, %tid like %g : tensor<?xf32> -> tensor<?xf32>
  %q1 = dqt.stochastic_round %w1, %d1, %u grid<ternary>
      : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %r = dqt.random_bits %seed, %step, %tid like %g : tensor<?xf32> -> tensor<?xi32>
  %mb = dqt.stochastic_round_bf16 %m1, %r {shift = 0}
      : tensor<?xf32>, tensor<?xi32> -> tensor<?xbf16>
  %vb = dqt.stochastic_round_bf16 %v1, %r {shift = 16}
      : tensor<?xf32>, tensor<?xi32> -> tensor<?xbf16>
  %q2 = dqt.mask_nonfinite %g, %q1, %q : tensor<?xf32>, tensor<?xi8>
  %m2 = dqt.mask_nonfinite %g, %mb, %m : tensor<?xf32>, tensor<?xbf16>
  %v2 = dqt.mask_nonfinite %g, %vb, %v : tensor<?xf32>, tensor<?xbf16>
  %mx = dqt.reduce_max %q2 : tensor<?xi8> -> i8
  %ch = dqt.count_changed %q, %q2 : tensor<?xi8>, tensor<?xi8> -> i64
  %nf = dqt.count_nonfinite %g : tensor<?xf32> -> i64
  return %q2, %m2, %v2, %mx, %ch, %nf
      : tensor<?xi8>, tensor<?xbf16>, tensor<?xbf16>, i8, i64, i64
}
