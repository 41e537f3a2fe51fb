// One DQT AdamW step of a ternary parameter whose Adam states are stored as
// bf16 (half the state memory). The states are widened exactly to f32, the
// moment math is f32, and the new moments go back to bf16 with stochastic
// rounding from the state stream (dqt.random_bits: m takes the low, v the
// high 16 bits of each word), independent of the weight's uniform u.
// `dqt-opt --dqt-compile-cpu` / `--dqt-compile-gpu="chip=sm_90"` make one
// kernel of it.
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
