// One DQT AdamW step of a ternary parameter stored packed: 4 two-bit codes
// per byte (%p holds ceil(n/4) bytes; docs/numerics.md). The step is the
// int8 chain on the unpacked view; dqt-fuse-step turns the unpack/pack pair
// into the fused step's `packed` operand, so the kernel reads and writes
// each byte once. `dqt-opt --dqt-compile-cpu` / `--dqt-compile-gpu` make one
// kernel of it.
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
