// One DQT AdamW step for a group of three 8-bit parameters (f32 gradients and
// states), as a trainer emits it. `dqt-opt --dqt-compile-cpu` makes one chunk
// function of it; `--dqt-compile-gpu="chip=sm_90"` one PTX kernel.
//
// Per parameter p: q (int8 weights), g (gradient), m, v (Adam states), delta
// (step of the grid), maxq (max of q before the step), tensor id p.
// Shared: beta1, beta2, alpha = lr*sqrt(1-beta2^t)/(1-beta1^t) and
// decay = lr*lambda (computed on the host), eps, seed and step t.
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
