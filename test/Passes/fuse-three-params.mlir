// dqt-fuse-step turns the AdamW step of a group of three 8-bit parameters
// (the function at the end of this file) into three dqt.fused_step ops, one
// per parameter, in destination-passing style: the gradient is the one
// `ins` operand; seed, step and tensor id (read by dqt.philox_bits), the old
// grid step, the hyper-parameters and the new grid step are `scalars`; the
// weights and both Adam states are `outs` updated in place; no intermediate
// tensor is left. dqt-lower-to-cpu / dqt-lower-to-gpu make one kernel of the
// three (lower-to-cpu-three-params.mlir, lower-to-gpu.mlir).
//
// RUN: dqt-opt %s --dqt-fuse-step | FileCheck %s --check-prefix=PER
//
// No tensor-level op (hence no intermediate tensor) is left anywhere: the
// only dqt ops are next_delta (scalar), the fused steps and their bodies'
// element_index, philox_bits and yield.
// RUN: dqt-opt %s --dqt-fuse-step | FileCheck %s --check-prefix=GONE \
// RUN:   --implicit-check-not=dqt.dequantize --implicit-check-not=dqt.adam_moments \
// RUN:   --implicit-check-not=dqt.adam_apply --implicit-check-not=dqt.uniform \
// RUN:   --implicit-check-not=dqt.stochastic_round --implicit-check-not=dqt.mask_nonfinite \
// RUN:   --implicit-check-not=dqt.reduce_max --implicit-check-not=dqt.count_changed \
// RUN:   --implicit-check-not=dqt.count_nonfinite --implicit-check-not="dqt.philox key"
//
// Exactly one fused step per parameter: 3 in @adamw_step, 3 in @mixed_bits.
// RUN: dqt-opt %s --dqt-fuse-step | grep "= dqt.fused_step " | count 6

// PER-LABEL: func.func @adamw_step
// PER-SAME: (%[[Q0:[^:]*]]: tensor<?xi8>, %[[G0:[^:]*]]: tensor<?xf32>, %[[M0:[^:]*]]: tensor<?xf32>, %[[V0:[^:]*]]: tensor<?xf32>, %[[D0:[^:]*]]: f32, %[[MX0:[^:]*]]: i8, %[[T0:[^:]*]]: i64,
// PER-SAME: %[[Q1:[^:]*]]: tensor<?xi8>, %[[G1:[^:]*]]: tensor<?xf32>, %[[M1:[^:]*]]: tensor<?xf32>, %[[V1:[^:]*]]: tensor<?xf32>, %[[D1:[^:]*]]: f32, %[[MX1:[^:]*]]: i8, %[[T1:[^:]*]]: i64,
// PER-SAME: %[[Q2:[^:]*]]: tensor<?xi8>, %[[G2:[^:]*]]: tensor<?xf32>, %[[M2:[^:]*]]: tensor<?xf32>, %[[V2:[^:]*]]: tensor<?xf32>, %[[D2:[^:]*]]: f32, %[[MX2:[^:]*]]: i8, %[[T2:[^:]*]]: i64,
// PER-SAME: %[[B1:[^:]*]]: f32, %[[B2:[^:]*]]: f32, %[[A:[^:]*]]: f32, %[[E:[^:]*]]: f32, %[[L:[^:]*]]: f32, %[[SEED:[^:]*]]: i64, %[[STEP:[^:]*]]: i64)
// Parameter 0. Its next grid step stays a scalar outside the fused step.
// PER: %[[N0:.*]] = dqt.next_delta %[[D0]], %[[MX0]] grid<8>
// PER-NEXT: %[[R0:.*]]:6 = dqt.fused_step ins(%[[G0]] : tensor<?xf32>)
// PER-SAME: scalars(%[[SEED]], %[[STEP]], %[[T0]], %[[D0]], %[[B1]], %[[B2]], %[[A]], %[[E]], %[[L]], %[[N0]] : i64, i64, i64, f32, f32, f32, f32, f32, f32, f32)
// PER-SAME: outs(%[[Q0]], %[[M0]], %[[V0]] : tensor<?xi8>, tensor<?xf32>, tensor<?xf32>)
// PER-SAME: combiners [#dqt.combiner<maxsi>, #dqt.combiner<addi>, #dqt.combiner<addi>]
// PER-SAME: -> tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64 {
// The body: the gradient element (ins), the 10 scalars, then the current
// elements of q, m, v (outs).
// PER-NEXT: ^bb0(%[[GE:[^:]*]]: f32, %[[SEEDA:[^:]*]]: i64, %[[STEPA:[^:]*]]: i64, %[[TIDA:[^:]*]]: i64, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %{{[^:]*}}: f32, %[[QE:[^:]*]]: i8, %[[ME:[^:]*]]: f32, %[[VE:[^:]*]]: f32):
// PER: arith.sitofp %[[QE]] : i8 to f32
// PER: arith.mulf %{{.*}}, %[[ME]] : f32
// PER: arith.mulf %{{.*}}, %[[VE]] : f32
// PER: math.sqrt
// PER: arith.divf
// The weight's 16 random bits of this element, in the body, and its uniform
// (2h + 1) * 2^-17.
// PER: %[[IDX:.*]] = dqt.element_index : index
// PER-NEXT: %[[H:.*]] = dqt.philox_bits weight %[[SEEDA]], %[[STEPA]], %[[TIDA]] at %[[IDX]] : i16
// PER-NEXT: arith.extui %[[H]] : i16 to i32
// PER: math.floor
// PER: arith.fptosi {{.*}} : f32 to i8
// PER: math.absf %[[GE]] : f32
// PER: dqt.yield {{.*}} : i8, f32, f32, i8, i64, i64
// PER-NEXT: }
// Parameters 1 and 2: the same, on their own operands.
// PER: %[[N1:.*]] = dqt.next_delta %[[D1]], %[[MX1]] grid<8>
// PER-NEXT: %[[R1:.*]]:6 = dqt.fused_step ins(%[[G1]] : tensor<?xf32>)
// PER-SAME: scalars(%[[SEED]], %[[STEP]], %[[T1]], %[[D1]], %[[B1]], %[[B2]], %[[A]], %[[E]], %[[L]], %[[N1]] :
// PER-SAME: outs(%[[Q1]], %[[M1]], %[[V1]] :
// PER: dqt.yield
// PER: %[[N2:.*]] = dqt.next_delta %[[D2]], %[[MX2]] grid<8>
// PER-NEXT: %[[R2:.*]]:6 = dqt.fused_step ins(%[[G2]] : tensor<?xf32>)
// PER-SAME: scalars(%[[SEED]], %[[STEP]], %[[T2]], %[[D2]], %[[B1]], %[[B2]], %[[A]], %[[E]], %[[L]], %[[N2]] :
// PER-SAME: outs(%[[Q2]], %[[M2]], %[[V2]] :
// PER: dqt.yield
// PER-NOT: dqt.fused_step
// PER: return %[[R0]]#0, %[[R0]]#1, %[[R0]]#2, %[[R0]]#3, %[[R0]]#4, %[[R0]]#5, %[[R1]]#0, %[[R1]]#1, %[[R1]]#2, %[[R1]]#3, %[[R1]]#4, %[[R1]]#5, %[[R2]]#0, %[[R2]]#1, %[[R2]]#2, %[[R2]]#3, %[[R2]]#4, %[[R2]]#5 :

// GONE-LABEL: func.func @adamw_step
// GONE-COUNT-3: dqt.next_delta
// GONE-NOT: dqt.next_delta
// GONE: return
// GONE-LABEL: func.func @mixed_bits
// GONE: return

// Three parameters: 8-bit, 4-bit, 8-bit. Each gets its own fused step with
// its own grid constants in its body (the lowerings reject a function whose
// fused steps differ in configuration: lower-errors.mlir). Nothing of the
// three is updated in place here (the steps return new weights only), so
// each q' gets a tensor.empty destination; q, g, m, v are all `ins`.
// PER-LABEL: func.func @mixed_bits
// PER-SAME: (%[[QA:[^:]*]]: tensor<?xi8>, %{{[^:]*}}: tensor<?xf32>, %{{[^:]*}}: tensor<?xf32>, %{{[^:]*}}: tensor<?xf32>, %{{[^:]*}}: f32, %{{[^:]*}}: f32,
// PER-SAME: %[[QB:[^:]*]]: tensor<?xi8>, %{{[^:]*}}: tensor<?xf32>, %{{[^:]*}}: tensor<?xf32>, %{{[^:]*}}: tensor<?xf32>, %{{[^:]*}}: f32, %{{[^:]*}}: f32,
// PER-SAME: %[[QC:[^:]*]]: tensor<?xi8>,
// PER: %[[EA:.*]] = tensor.empty
// PER-NEXT: %[[RA:.*]]:2 = dqt.fused_step ins(%[[QA]], {{.*}}) outs(%[[EA]] : tensor<?xi8>) combiners [#dqt.combiner<maxsi>]
// PER: arith.constant -1.280000e+02 : f32
// PER: arith.constant 1.270000e+02 : f32
// PER: dqt.yield
// PER: %[[EB:.*]] = tensor.empty
// PER-NEXT: %[[RB:.*]]:2 = dqt.fused_step ins(%[[QB]], {{.*}}) outs(%[[EB]] : tensor<?xi8>) combiners [#dqt.combiner<maxsi>]
// PER: arith.constant -8.000000e+00 : f32
// PER: arith.constant 7.000000e+00 : f32
// PER: dqt.yield
// PER: %[[EC:.*]] = tensor.empty
// PER-NEXT: %[[RC:.*]]:2 = dqt.fused_step ins(%[[QC]], {{.*}}) outs(%[[EC]] : tensor<?xi8>) combiners [#dqt.combiner<maxsi>]
// PER: arith.constant -1.280000e+02 : f32
// PER: arith.constant 1.270000e+02 : f32
// PER: dqt.yield
// PER-NOT: dqt.fused_step
// PER: return %[[RA]]#0, %[[RA]]#1, %[[RB]]#0, %[[RB]]#1, %[[RC]]#0, %[[RC]]#1

// One DQT AdamW step for a group of three 8-bit parameters (f32 gradients
// and states), as a trainer emits it (a copy of examples/adamw_step.mlir).
func.func @adamw_step(
    %q0: tensor<?xi8>,
    %g0: tensor<?xf32>,
    %m0: tensor<?xf32>,
    %v0: tensor<?xf32>,
    %delta0: f32,
    %maxq0: i8,
    %tid0: i64,
    %q1: tensor<?xi8>,
    %g1: tensor<?xf32>,
    %m1: tensor<?xf32>,
    %v1: tensor<?xf32>,
    %delta1: f32,
    %maxq1: i8,
    %tid1: i64,
    %q2: tensor<?xi8>,
    %g2: tensor<?xf32>,
    %m2: tensor<?xf32>,
    %v2: tensor<?xf32>,
    %delta2: f32,
    %maxq2: i8,
    %tid2: i64,
    %beta1: f32,
    %beta2: f32,
    %alpha: f32,
    %eps: f32,
    %decay: f32,
    %seed: i64,
    %step: i64)
    -> (tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64, tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64, tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64) {
  %d0 = dqt.next_delta %delta0, %maxq0 grid<8>
  %w0 = dqt.dequantize %q0, %delta0 : tensor<?xi8>, f32 -> tensor<?xf32>
  %m0a, %v0a = dqt.adam_moments %g0, %m0, %v0, %beta1, %beta2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %w0a = dqt.adam_apply %w0, %m0a, %v0a, %alpha, %eps, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %u0 = dqt.uniform %seed, %step, %tid0 like %g0 : tensor<?xf32> -> tensor<?xf32>
  %q0a = dqt.stochastic_round %w0a, %d0, %u0 grid<8>
      : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %q0b = dqt.mask_nonfinite %g0, %q0a, %q0 : tensor<?xf32>, tensor<?xi8>
  %m0b = dqt.mask_nonfinite %g0, %m0a, %m0 : tensor<?xf32>, tensor<?xf32>
  %v0b = dqt.mask_nonfinite %g0, %v0a, %v0 : tensor<?xf32>, tensor<?xf32>
  %mx0 = dqt.reduce_max %q0b : tensor<?xi8> -> i8
  %ch0 = dqt.count_changed %q0, %q0b : tensor<?xi8>, tensor<?xi8> -> i64
  %nf0 = dqt.count_nonfinite %g0 : tensor<?xf32> -> i64
  %d1 = dqt.next_delta %delta1, %maxq1 grid<8>
  %w1 = dqt.dequantize %q1, %delta1 : tensor<?xi8>, f32 -> tensor<?xf32>
  %m1a, %v1a = dqt.adam_moments %g1, %m1, %v1, %beta1, %beta2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %w1a = dqt.adam_apply %w1, %m1a, %v1a, %alpha, %eps, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %u1 = dqt.uniform %seed, %step, %tid1 like %g1 : tensor<?xf32> -> tensor<?xf32>
  %q1a = dqt.stochastic_round %w1a, %d1, %u1 grid<8>
      : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %q1b = dqt.mask_nonfinite %g1, %q1a, %q1 : tensor<?xf32>, tensor<?xi8>
  %m1b = dqt.mask_nonfinite %g1, %m1a, %m1 : tensor<?xf32>, tensor<?xf32>
  %v1b = dqt.mask_nonfinite %g1, %v1a, %v1 : tensor<?xf32>, tensor<?xf32>
  %mx1 = dqt.reduce_max %q1b : tensor<?xi8> -> i8
  %ch1 = dqt.count_changed %q1, %q1b : tensor<?xi8>, tensor<?xi8> -> i64
  %nf1 = dqt.count_nonfinite %g1 : tensor<?xf32> -> i64
  %d2 = dqt.next_delta %delta2, %maxq2 grid<8>
  %w2 = dqt.dequantize %q2, %delta2 : tensor<?xi8>, f32 -> tensor<?xf32>
  %m2a, %v2a = dqt.adam_moments %g2, %m2, %v2, %beta1, %beta2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %w2a = dqt.adam_apply %w2, %m2a, %v2a, %alpha, %eps, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %u2 = dqt.uniform %seed, %step, %tid2 like %g2 : tensor<?xf32> -> tensor<?xf32>
  %q2a = dqt.stochastic_round %w2a, %d2, %u2 grid<8>
      : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %q2b = dqt.mask_nonfinite %g2, %q2a, %q2 : tensor<?xf32>, tensor<?xi8>
  %m2b = dqt.mask_nonfinite %g2, %m2a, %m2 : tensor<?xf32>, tensor<?xf32>
  %v2b = dqt.mask_nonfinite %g2, %v2a, %v2 : tensor<?xf32>, tensor<?xf32>
  %mx2 = dqt.reduce_max %q2b : tensor<?xi8> -> i8
  %ch2 = dqt.count_changed %q2, %q2b : tensor<?xi8>, tensor<?xi8> -> i64
  %nf2 = dqt.count_nonfinite %g2 : tensor<?xf32> -> i64
  return %q0b, %m0b, %v0b, %mx0, %ch0, %nf0, %q1b, %m1b, %v1b, %mx1, %ch1, %nf1, %q2b, %m2b, %v2b, %mx2, %ch2, %nf2
      : tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64, tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64, tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, i64, i64
}

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
  %qa1 = dqt.stochastic_round %wa1, %dna, %ua grid<8> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %mxa = dqt.reduce_max %qa1 : tensor<?xi8> -> i8

  %wb = dqt.dequantize %qb, %db : tensor<?xi8>, f32 -> tensor<?xf32>
  %mb1, %vb1 = dqt.adam_moments %gb, %mb, %vb, %b1, %b2 : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %wb1 = dqt.adam_apply %wb, %mb1, %vb1, %alpha, %eps, %decay : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %ub = dqt.uniform %seed, %step, %tb like %gb : tensor<?xf32> -> tensor<?xf32>
  %qb1 = dqt.stochastic_round %wb1, %dnb, %ub grid<4> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %mxb = dqt.reduce_max %qb1 : tensor<?xi8> -> i8

  %wc = dqt.dequantize %qc, %dc : tensor<?xi8>, f32 -> tensor<?xf32>
  %mc1, %vc1 = dqt.adam_moments %gc, %mc, %vc, %b1, %b2 : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %wc1 = dqt.adam_apply %wc, %mc1, %vc1, %alpha, %eps, %decay : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %uc = dqt.uniform %seed, %step, %tc like %gc : tensor<?xf32> -> tensor<?xf32>
  %qc1 = dqt.stochastic_round %wc1, %dnc, %uc grid<8> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %mxc = dqt.reduce_max %qc1 : tensor<?xi8> -> i8
  return %qa1, %mxa, %qb1, %mxb, %qc1, %mxc : tensor<?xi8>, i8, tensor<?xi8>, i8, tensor<?xi8>, i8
}
