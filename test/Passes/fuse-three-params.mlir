// dqt-fuse-step turns the AdamW step of a group of three 8-bit parameters
// (examples/adamw_step.mlir) into ONE multi-tensor dqt.fused_step: three
// segments with the same signature, the random stream, the weights and both
// Adam states written in place, and no intermediate tensor left.
//
// RUN: dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-fuse-step | FileCheck %s --check-prefix=GROUP
//
// No tensor-level op (hence no intermediate tensor) is left anywhere: the
// only dqt ops are next_delta (scalar), the fused step and its yield.
// RUN: dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-fuse-step | FileCheck %s --check-prefix=GONE \
// RUN:   --implicit-check-not=dqt.dequantize --implicit-check-not=dqt.adam_moments \
// RUN:   --implicit-check-not=dqt.adam_apply --implicit-check-not=dqt.uniform \
// RUN:   --implicit-check-not=dqt.stochastic_round --implicit-check-not=dqt.mask_nonfinite \
// RUN:   --implicit-check-not=dqt.reduce_max --implicit-check-not=dqt.count_changed \
// RUN:   --implicit-check-not=dqt.count_nonfinite --implicit-check-not=dqt.philox
//
// Without `group`, each parameter's chain is still fused, into its own op.
// RUN: dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-fuse-step=group=false | grep "dqt.fused_step(" | count 3
// RUN: dqt-opt %dqt_src/examples/adamw_step.mlir --dqt-fuse-step=group=false | FileCheck %s --check-prefix=SPLIT
//
// Parameters with different configurations are never merged.
// RUN: dqt-opt %s --dqt-fuse-step | FileCheck %s --check-prefix=MIXED

// GROUP-LABEL: func.func @adamw_step
// GROUP-SAME: (%[[Q0:[^:]*]]: tensor<?xi8>, %[[G0:[^:]*]]: tensor<?xf32>, %[[M0:[^:]*]]: tensor<?xf32>, %[[V0:[^:]*]]: tensor<?xf32>, %[[D0:[^:]*]]: f32, %[[MX0:[^:]*]]: i8, %[[T0:[^:]*]]: i64,
// GROUP-SAME: %[[Q1:[^:]*]]: tensor<?xi8>, %[[G1:[^:]*]]: tensor<?xf32>, %[[M1:[^:]*]]: tensor<?xf32>, %[[V1:[^:]*]]: tensor<?xf32>, %[[D1:[^:]*]]: f32, %[[MX1:[^:]*]]: i8, %[[T1:[^:]*]]: i64,
// GROUP-SAME: %[[Q2:[^:]*]]: tensor<?xi8>, %[[G2:[^:]*]]: tensor<?xf32>, %[[M2:[^:]*]]: tensor<?xf32>, %[[V2:[^:]*]]: tensor<?xf32>, %[[D2:[^:]*]]: f32, %[[MX2:[^:]*]]: i8, %[[T2:[^:]*]]: i64,
// GROUP-SAME: %[[B1:[^:]*]]: f32, %[[B2:[^:]*]]: f32, %[[A:[^:]*]]: f32, %[[E:[^:]*]]: f32, %[[L:[^:]*]]: f32, %[[SEED:[^:]*]]: i64, %[[STEP:[^:]*]]: i64)
// The next grid step of each parameter stays a scalar outside the kernel.
// GROUP: %[[N0:.*]] = dqt.next_delta %[[D0]], %[[MX0]] {bits = 8 : i64}
// GROUP: %[[N1:.*]] = dqt.next_delta %[[D1]], %[[MX1]] {bits = 8 : i64}
// GROUP: %[[N2:.*]] = dqt.next_delta %[[D2]], %[[MX2]] {bits = 8 : i64}
// GROUP-NOT: dqt.fused_step
// Per segment: 4 tensors (q, g, m, v), then seed, step, tensor id, then the
// other scalars (the old step for dequantize, the hyper-parameters, the new
// step).
// GROUP: %[[R:.*]]:18 = dqt.fused_step(
// GROUP-SAME: %[[Q0]], %[[G0]], %[[M0]], %[[V0]], %[[SEED]], %[[STEP]], %[[T0]], %[[D0]], %[[B1]], %[[B2]], %[[A]], %[[E]], %[[L]], %[[N0]],
// GROUP-SAME: %[[Q1]], %[[G1]], %[[M1]], %[[V1]], %[[SEED]], %[[STEP]], %[[T1]], %[[D1]], %[[B1]], %[[B2]], %[[A]], %[[E]], %[[L]], %[[N1]],
// GROUP-SAME: %[[Q2]], %[[G2]], %[[M2]], %[[V2]], %[[SEED]], %[[STEP]], %[[T2]], %[[D2]], %[[B1]], %[[B2]], %[[A]], %[[E]], %[[L]], %[[N2]] :
// GROUP-SAME: {reductions = ["maxsi", "addi", "addi"], rng, segments = 3 : i64, tensors = 4 : i64, tied = array<i64: 0, 2, 3>}
// GROUP-SAME: -> (tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64, tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64, tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64)
// The body: uniform, the 4 elements, the 3 rng scalars, the 7 other scalars.
// GROUP-NEXT: ^bb0(%{{[^:]*}}: f32, %{{[^:]*}}: i8, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: i64, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32):
// GROUP: math.sqrt
// GROUP: arith.divf
// GROUP: math.floor
// GROUP: arith.fptosi {{.*}} : f32 to i8
// GROUP: dqt.yield {{.*}} : i8, f32, f32, i8, i64, i64
// GROUP-NEXT: }
// GROUP-NOT: dqt.fused_step
// GROUP: return %[[R]]#0, %[[R]]#1, %[[R]]#2, %[[R]]#3, %[[R]]#4, %[[R]]#5, %[[R]]#6, %[[R]]#7, %[[R]]#8, %[[R]]#9, %[[R]]#10, %[[R]]#11, %[[R]]#12, %[[R]]#13, %[[R]]#14, %[[R]]#15, %[[R]]#16, %[[R]]#17 :

// GONE-COUNT-3: dqt.next_delta
// GONE: dqt.fused_step
// GONE: dqt.yield
// GONE: return

// SPLIT-LABEL: func.func @adamw_step
// SPLIT-COUNT-3: dqt.fused_step({{.*}}) {reductions = ["maxsi", "addi", "addi"], rng, segments = 1 : i64, tensors = 4 : i64, tied = array<i64: 0, 2, 3>}
// SPLIT-NOT: dqt.fused_step
// SPLIT-NOT: dqt.dequantize
// SPLIT-NOT: dqt.stochastic_round
// SPLIT: return

// Three parameters: 8-bit, 4-bit, 8-bit. The two 8-bit ones become one
// two-segment op; the 4-bit one (other grid constants in its body) stays
// alone.
// MIXED-LABEL: func.func @mixed_bits
// MIXED-SAME: (%[[QA:[^:]*]]: tensor<?xi8>, %{{[^:]*}}: tensor<?xf32>, %{{[^:]*}}: tensor<?xf32>, %{{[^:]*}}: tensor<?xf32>, %{{[^:]*}}: f32, %{{[^:]*}}: f32,
// MIXED-SAME: %[[QB:[^:]*]]: tensor<?xi8>, %{{[^:]*}}: tensor<?xf32>, %{{[^:]*}}: tensor<?xf32>, %{{[^:]*}}: tensor<?xf32>, %{{[^:]*}}: f32, %{{[^:]*}}: f32,
// MIXED-SAME: %[[QC:[^:]*]]: tensor<?xi8>,
// MIXED: %[[B4:.*]]:2 = dqt.fused_step(%[[QB]],
// MIXED-SAME: segments = 1 : i64
// MIXED: arith.constant -8.000000e+00 : f32
// MIXED: arith.constant 7.000000e+00 : f32
// MIXED: dqt.yield
// MIXED-NOT: dqt.fused_step
// MIXED: %[[B8:.*]]:4 = dqt.fused_step(%[[QA]], {{.*}}, %[[QC]],
// MIXED-SAME: segments = 2 : i64
// MIXED: arith.constant -1.280000e+02 : f32
// MIXED: arith.constant 1.270000e+02 : f32
// MIXED: dqt.yield
// MIXED-NOT: dqt.fused_step
// MIXED: return %[[B8]]#0, %[[B8]]#1, %[[B4]]#0, %[[B4]]#1, %[[B8]]#2, %[[B8]]#3
func.func @mixed_bits(
    %qa: tensor<?xi8>, %ga: tensor<?xf32>, %ma: tensor<?xf32>, %va: tensor<?xf32>, %da: f32, %dna: f32,
    %qb: tensor<?xi8>, %gb: tensor<?xf32>, %mb: tensor<?xf32>, %vb: tensor<?xf32>, %db: f32, %dnb: f32,
    %qc: tensor<?xi8>, %gc: tensor<?xf32>, %mc: tensor<?xf32>, %vc: tensor<?xf32>, %dc: f32, %dnc: f32,
    %b1: f32, %b2: f32, %alpha: f32, %eps: f32, %decay: f32,
    %seed: i64, %step: i64, %ta: i64, %tb: i64, %tc: i64)
    -> (tensor<?xi8>, i8, tensor<?xi8>, i8, tensor<?xi8>, i8) {
  %wa = dqt.dequantize %qa, %da : tensor<?xi8>, f32 -> tensor<?xf32>
  %ma1, %va1 = dqt.adam_moments %ga, %ma, %va, %b1, %b2 : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %wa1 = dqt.adam_apply %wa, %ma1, %va1, %alpha, %eps, %decay : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %ua = dqt.uniform %seed, %step, %ta like %ga : tensor<?xf32> -> tensor<?xf32>
  %qa1 = dqt.stochastic_round %wa1, %dna, %ua {bits = 8} : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %mxa = dqt.reduce_max %qa1 : tensor<?xi8> -> i8

  %wb = dqt.dequantize %qb, %db : tensor<?xi8>, f32 -> tensor<?xf32>
  %mb1, %vb1 = dqt.adam_moments %gb, %mb, %vb, %b1, %b2 : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %wb1 = dqt.adam_apply %wb, %mb1, %vb1, %alpha, %eps, %decay : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %ub = dqt.uniform %seed, %step, %tb like %gb : tensor<?xf32> -> tensor<?xf32>
  %qb1 = dqt.stochastic_round %wb1, %dnb, %ub {bits = 4} : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %mxb = dqt.reduce_max %qb1 : tensor<?xi8> -> i8

  %wc = dqt.dequantize %qc, %dc : tensor<?xi8>, f32 -> tensor<?xf32>
  %mc1, %vc1 = dqt.adam_moments %gc, %mc, %vc, %b1, %b2 : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %wc1 = dqt.adam_apply %wc, %mc1, %vc1, %alpha, %eps, %decay : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %uc = dqt.uniform %seed, %step, %tc like %gc : tensor<?xf32> -> tensor<?xf32>
  %qc1 = dqt.stochastic_round %wc1, %dnc, %uc {bits = 8} : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %mxc = dqt.reduce_max %qc1 : tensor<?xi8> -> i8
  return %qa1, %mxa, %qb1, %mxb, %qc1, %mxc : tensor<?xi8>, i8, tensor<?xi8>, i8, tensor<?xi8>, i8
}
