// One DQT AdamW step of an 8-bit parameter with one delta per output row
// (docs/numerics.md, "Per-row scale"): the weight is flattened
// row by row, %delta and %delta_next hold one value per row of %len
// elements, and dqt.expand_rows spreads them over their rows.
// dqt-fuse-step makes them row operands of the fused step (read once per
// row, not per element) and dqt.reduce_max_rows a per-row reduction: each
// row's max(q'), the next step's per-row maxq. `dqt-opt --dqt-compile-cpu` /
// `--dqt-compile-gpu` make one kernel of it.
func.func @adamw_per_row_step(
    %q: tensor<?xi8>,
    %g: tensor<?xf32>,
    %m: tensor<?xf32>,
    %v: tensor<?xf32>,
    %delta: tensor<?xf32>,
    %delta_next: tensor<?xf32>,
    %seed: i64,
    %step: i64,
    %tid: i64,
    %len: i64,
    %beta1: f32,
    %beta2: f32,
    %alpha: f32,
    %eps: f32,
    %decay: f32)
    -> (tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, tensor<?xi32>, i64,
        i64) {
  %d = dqt.expand_rows %delta, %len like %q
      : tensor<?xf32>, tensor<?xi8> -> tensor<?xf32>
  %w = dqt.dequantize %q, %d : tensor<?xi8>, tensor<?xf32> -> tensor<?xf32>
  %m1, %v1 = dqt.adam_moments %g, %m, %v, %beta1, %beta2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %w1 = dqt.adam_apply %w, %m1, %v1, %alpha, %eps, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xf32>
  %u = dqt.uniform %seed, %step, %tid like %g : tensor<?xf32> -> tensor<?xf32>
  %d1 = dqt.expand_rows %delta_next, %len like %q
      : tensor<?xf32>, tensor<?xi8> -> tensor<?xf32>
  %q1 = dqt.stochastic_round %w1, %d1, %u grid<8>
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32> -> tensor<?xi8>
  %q2 = dqt.mask_nonfinite %g, %q1, %q : tensor<?xf32>, tensor<?xi8>
  %m2 = dqt.mask_nonfinite %g, %m1, %m : tensor<?xf32>, tensor<?xf32>
  %v2 = dqt.mask_nonfinite %g, %v1, %v : tensor<?xf32>, tensor<?xf32>
  %mx = dqt.reduce_max %q2 : tensor<?xi8> -> i8
  %rmx = dqt.reduce_max_rows %q2, %len : tensor<?xi8> -> tensor<?xi32>
  %ch = dqt.count_changed %q, %q2 : tensor<?xi8>, tensor<?xi8> -> i64
  %nf = dqt.count_nonfinite %g : tensor<?xf32> -> i64
  return %q2, %m2, %v2, %mx, %rmx, %ch, %nf
      : tensor<?xi8>, tensor<?xf32>, tensor<?xf32>, i8, tensor<?xi32>, i64, i64
}
