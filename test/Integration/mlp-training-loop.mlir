// A complete DQT training loop in MLIR: a 2-layer MLP (4 -> 8 -> 2, ReLU,
// mean squared error) whose weights exist only as 4-bit integers. The
// forward pass, the loss and the backward pass are linalg on tensors; each
// step is the dqt AdamW chain (dequantize, moments, apply, Philox uniform,
// stochastic rounding onto the next delta); @main runs 60 steps in an
// scf.for. dqt-compile-cpu outlines the two steps into kernels (the layers
// differ in length, so two kernels), lowers the rest with upstream passes
// and mlir-runner executes it.
//
// RUN: dqt-opt %s --dqt-compile-cpu \
// RUN:   | mlir-runner -e main -entry-point-result=void \
// RUN:       -shared-libs=%mlir_c_runner_utils -shared-libs=%mlir_runner_utils \
// RUN:   | FileCheck %s
//
// The loss falls to less than a quarter of its start, and every weight
// stays on the 4-bit grid [-8, 7] (stochastic rounding clamps onto it).
// CHECK: loss at step 0: [[L0:[0-9.e+-]+]]
// CHECK: loss at step 10:
// CHECK: loss at step 50:
// CHECK: loss fell to a quarter: 1
// CHECK: layer 1 on the grid: 1
// CHECK: layer 2 on the grid: 1
// CHECK: weights that moved: 1
//
// Compiled by dqt-compile-gpu, the same file gives host code (the forward
// and backward as loops, the loop in @main) with one gpu.launch_func per
// step and a gpu.binary of both kernels, whose PTX ptxas accepts.
// RUN: dqt-opt %s --dqt-compile-gpu="chip=sm_90" \
// RUN:   | FileCheck %s --check-prefix=GPU --implicit-check-not=dqt.
// GPU-DAG: llvm.func @train_step(
// GPU-DAG: llvm.func @main(
// GPU-DAG: gpu.launch_func{{ +}}@dqt_kernels::@train_step_step0 blocks in
// GPU-DAG: gpu.launch_func{{ +}}@dqt_kernels::@train_step_step1 blocks in
// GPU-DAG: gpu.binary @dqt_kernels
// RUN: dqt-opt %s --dqt-compile-gpu="chip=sm_90" \
// RUN:   | mlir-translate --mlir-to-llvmir | FileCheck %s --check-prefix=LLVMIR
// LLVMIR-COUNT-2: call void @mgpuLaunchKernel
// RUN: %if ptxas %{ dqt-opt %s --dqt-compile-gpu="chip=sm_90" | %extract-ptx > %t.ptx %}
// RUN: %if ptxas %{ %ptxas -arch=sm_90 %t.ptx -o %t.cubin %}
// RUN: %if ptxas %{ test -s %t.cubin %}

#map1 = affine_map<(d0) -> (d0)>
#map2 = affine_map<(d0, d1) -> (d0, d1)>
#scalar2 = affine_map<(d0, d1) -> ()>

/// One training step: loss and gradients of the batch, then the DQT AdamW
/// step of both layers. Returns the loss, then per layer q, m, v, the delta
/// of the new q and max(q).
func.func @train_step(%x: tensor<8x4xf32>, %y: tensor<8x2xf32>,
    %q1: tensor<32xi8>, %m1: tensor<32xf32>, %v1: tensor<32xf32>,
    %d1: f32, %mx1: i8,
    %q2: tensor<16xi8>, %m2: tensor<16xf32>, %v2: tensor<16xf32>,
    %d2: f32, %mx2: i8, %alpha: f32, %t: i64)
    -> (f32, tensor<32xi8>, tensor<32xf32>, tensor<32xf32>, f32, i8,
        tensor<16xi8>, tensor<16xf32>, tensor<16xf32>, f32, i8) {
  %zero = arith.constant 0.0 : f32
  %scale = arith.constant 0.125 : f32 // 2 / (8 * 2): d(mean square)/d(out)
  %count = arith.constant 16.0 : f32

  // Forward: w = q * delta (as PyTorch would compute it), z = x w1^T,
  // h = relu(z), out = h w2^T.
  %e32 = tensor.empty() : tensor<32xf32>
  %w1f = linalg.generic {indexing_maps = [#map1, #map1],
                         iterator_types = ["parallel"]}
      ins(%q1 : tensor<32xi8>) outs(%e32 : tensor<32xf32>) {
  ^bb0(%a: i8, %o: f32):
    %f = arith.sitofp %a : i8 to f32
    %w = arith.mulf %f, %d1 : f32
    linalg.yield %w : f32
  } -> tensor<32xf32>
  %w1 = tensor.expand_shape %w1f [[0, 1]] output_shape [8, 4]
      : tensor<32xf32> into tensor<8x4xf32>
  %e16 = tensor.empty() : tensor<16xf32>
  %w2f = linalg.generic {indexing_maps = [#map1, #map1],
                         iterator_types = ["parallel"]}
      ins(%q2 : tensor<16xi8>) outs(%e16 : tensor<16xf32>) {
  ^bb0(%a: i8, %o: f32):
    %f = arith.sitofp %a : i8 to f32
    %w = arith.mulf %f, %d2 : f32
    linalg.yield %w : f32
  } -> tensor<16xf32>
  %w2 = tensor.expand_shape %w2f [[0, 1]] output_shape [2, 8]
      : tensor<16xf32> into tensor<2x8xf32>

  %e48 = tensor.empty() : tensor<4x8xf32>
  %w1t = linalg.transpose ins(%w1 : tensor<8x4xf32>)
      outs(%e48 : tensor<4x8xf32>) permutation = [1, 0]
  %e88 = tensor.empty() : tensor<8x8xf32>
  %z0 = linalg.fill ins(%zero : f32) outs(%e88 : tensor<8x8xf32>) -> tensor<8x8xf32>
  %z = linalg.matmul ins(%x, %w1t : tensor<8x4xf32>, tensor<4x8xf32>)
      outs(%z0 : tensor<8x8xf32>) -> tensor<8x8xf32>
  %h = linalg.generic {indexing_maps = [#map2, #map2],
                       iterator_types = ["parallel", "parallel"]}
      ins(%z : tensor<8x8xf32>) outs(%e88 : tensor<8x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.maximumf %a, %zero : f32
    linalg.yield %r : f32
  } -> tensor<8x8xf32>
  %e82 = tensor.empty() : tensor<8x2xf32>
  %w2t = linalg.transpose ins(%w2 : tensor<2x8xf32>)
      outs(%e82 : tensor<8x2xf32>) permutation = [1, 0]
  %o0 = linalg.fill ins(%zero : f32) outs(%e82 : tensor<8x2xf32>) -> tensor<8x2xf32>
  %out = linalg.matmul ins(%h, %w2t : tensor<8x8xf32>, tensor<8x2xf32>)
      outs(%o0 : tensor<8x2xf32>) -> tensor<8x2xf32>

  // Loss: the mean of (out - y)^2.
  %diff = linalg.generic {indexing_maps = [#map2, #map2, #map2],
                          iterator_types = ["parallel", "parallel"]}
      ins(%out, %y : tensor<8x2xf32>, tensor<8x2xf32>)
      outs(%e82 : tensor<8x2xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.subf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<8x2xf32>
  %es = tensor.empty() : tensor<f32>
  %s0 = linalg.fill ins(%zero : f32) outs(%es : tensor<f32>) -> tensor<f32>
  %sum = linalg.generic {indexing_maps = [#map2, #scalar2],
                         iterator_types = ["reduction", "reduction"]}
      ins(%diff : tensor<8x2xf32>) outs(%s0 : tensor<f32>) {
  ^bb0(%a: f32, %acc: f32):
    %sq = arith.mulf %a, %a : f32
    %r = arith.addf %acc, %sq : f32
    linalg.yield %r : f32
  } -> tensor<f32>
  %sumv = tensor.extract %sum[] : tensor<f32>
  %loss = arith.divf %sumv, %count : f32

  // Backward: dout = 2 (out - y) / 16, dW2 = dout^T h, dh = dout w2,
  // dz = dh where z > 0, dW1 = dz^T x.
  %dout = linalg.generic {indexing_maps = [#map2, #map2],
                          iterator_types = ["parallel", "parallel"]}
      ins(%diff : tensor<8x2xf32>) outs(%e82 : tensor<8x2xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.mulf %a, %scale : f32
    linalg.yield %r : f32
  } -> tensor<8x2xf32>
  %e28 = tensor.empty() : tensor<2x8xf32>
  %doutt = linalg.transpose ins(%dout : tensor<8x2xf32>)
      outs(%e28 : tensor<2x8xf32>) permutation = [1, 0]
  %gw20 = linalg.fill ins(%zero : f32) outs(%e28 : tensor<2x8xf32>) -> tensor<2x8xf32>
  %gw2 = linalg.matmul ins(%doutt, %h : tensor<2x8xf32>, tensor<8x8xf32>)
      outs(%gw20 : tensor<2x8xf32>) -> tensor<2x8xf32>
  %dh = linalg.matmul ins(%dout, %w2 : tensor<8x2xf32>, tensor<2x8xf32>)
      outs(%z0 : tensor<8x8xf32>) -> tensor<8x8xf32>
  %dz = linalg.generic {indexing_maps = [#map2, #map2, #map2],
                        iterator_types = ["parallel", "parallel"]}
      ins(%dh, %z : tensor<8x8xf32>, tensor<8x8xf32>)
      outs(%e88 : tensor<8x8xf32>) {
  ^bb0(%g: f32, %a: f32, %o: f32):
    %pos = arith.cmpf ogt, %a, %zero : f32
    %r = arith.select %pos, %g, %zero : f32
    linalg.yield %r : f32
  } -> tensor<8x8xf32>
  %dzt = linalg.transpose ins(%dz : tensor<8x8xf32>)
      outs(%e88 : tensor<8x8xf32>) permutation = [1, 0]
  %e84 = tensor.empty() : tensor<8x4xf32>
  %gw10 = linalg.fill ins(%zero : f32) outs(%e84 : tensor<8x4xf32>) -> tensor<8x4xf32>
  %gw1 = linalg.matmul ins(%dzt, %x : tensor<8x8xf32>, tensor<8x4xf32>)
      outs(%gw10 : tensor<8x4xf32>) -> tensor<8x4xf32>
  %g1 = tensor.collapse_shape %gw1 [[0, 1]] : tensor<8x4xf32> into tensor<32xf32>
  %g2 = tensor.collapse_shape %gw2 [[0, 1]] : tensor<2x8xf32> into tensor<16xf32>

  // The DQT AdamW step of each layer (as dqt.optim.AdamW runs it).
  %b1 = arith.constant 0.9 : f32
  %b2 = arith.constant 0.999 : f32
  %eps = arith.constant 1.0e-8 : f32
  %decay = arith.constant 0.0 : f32
  %seed = arith.constant 42 : i64
  %tid1 = arith.constant 0 : i64
  %tid2 = arith.constant 1 : i64
  %dn1 = dqt.next_delta %d1, %mx1 grid<4>
  %w1s = dqt.dequantize %q1, %d1 : tensor<32xi8>, f32 -> tensor<32xf32>
  %m1a, %v1a = dqt.adam_moments %g1, %m1, %v1, %b1, %b2
      : tensor<32xf32>, tensor<32xf32>, tensor<32xf32>
  %w1a = dqt.adam_apply %w1s, %m1a, %v1a, %alpha, %eps, %decay
      : tensor<32xf32>, tensor<32xf32>, tensor<32xf32> -> tensor<32xf32>
  %u1 = dqt.uniform %seed, %t, %tid1 like %g1 : tensor<32xf32> -> tensor<32xf32>
  %q1a = dqt.stochastic_round %w1a, %dn1, %u1 grid<4>
      : tensor<32xf32>, f32, tensor<32xf32> -> tensor<32xi8>
  %mx1a = dqt.reduce_max %q1a : tensor<32xi8> -> i8
  %dn2 = dqt.next_delta %d2, %mx2 grid<4>
  %w2s = dqt.dequantize %q2, %d2 : tensor<16xi8>, f32 -> tensor<16xf32>
  %m2a, %v2a = dqt.adam_moments %g2, %m2, %v2, %b1, %b2
      : tensor<16xf32>, tensor<16xf32>, tensor<16xf32>
  %w2a = dqt.adam_apply %w2s, %m2a, %v2a, %alpha, %eps, %decay
      : tensor<16xf32>, tensor<16xf32>, tensor<16xf32> -> tensor<16xf32>
  %u2 = dqt.uniform %seed, %t, %tid2 like %g2 : tensor<16xf32> -> tensor<16xf32>
  %q2a = dqt.stochastic_round %w2a, %dn2, %u2 grid<4>
      : tensor<16xf32>, f32, tensor<16xf32> -> tensor<16xi8>
  %mx2a = dqt.reduce_max %q2a : tensor<16xi8> -> i8
  return %loss, %q1a, %m1a, %v1a, %dn1, %mx1a, %q2a, %m2a, %v2a, %dn2, %mx2a
      : f32, tensor<32xi8>, tensor<32xf32>, tensor<32xf32>, f32, i8,
        tensor<16xi8>, tensor<16xf32>, tensor<16xf32>, f32, i8
}

/// How many elements of `a` and `b` differ.
func.func @count_changed(%a: tensor<?xi8>, %b: tensor<?xi8>) -> index {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = tensor.dim %a, %c0 : tensor<?xi8>
  %count = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %c0) -> (index) {
    %x = tensor.extract %a[%i] : tensor<?xi8>
    %y = tensor.extract %b[%i] : tensor<?xi8>
    %ne = arith.cmpi ne, %x, %y : i8
    %inc = arith.select %ne, %c1, %c0 : index
    %next = arith.addi %acc, %inc : index
    scf.yield %next : index
  }
  return %count : index
}

/// Whether every element of `q` lies in the 4-bit grid [-8, 7].
func.func @on_grid(%q: tensor<?xi8>) -> i1 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = tensor.dim %q, %c0 : tensor<?xi8>
  %lo = arith.constant -8 : i8
  %hi = arith.constant 7 : i8
  %true = arith.constant true
  %ok = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %true) -> (i1) {
    %e = tensor.extract %q[%i] : tensor<?xi8>
    %ge = arith.cmpi sge, %e, %lo : i8
    %le = arith.cmpi sle, %e, %hi : i8
    %in = arith.andi %ge, %le : i1
    %next = arith.andi %acc, %in : i1
    scf.yield %next : i1
  }
  return %ok : i1
}

func.func @main() {
  %x = arith.constant dense<[[-0.352, -0.698, 0.302, -0.855], [0.072, -0.269, -0.884, 0.015], [-0.925, -0.133, -0.860, -0.819], [-0.151, 0.654, -0.752, -0.554], [0.255, 0.895, 0.154, -0.207], [0.953, -0.907, 0.717, -0.421], [-0.711, -0.764, -0.383, 0.632], [-0.639, 0.163, 0.278, -0.255]]> : tensor<8x4xf32>
  %y = arith.constant dense<[[0.067, -0.029], [0.280, 0.845], [0.227, 0.386], [0.355, 0.456], [-0.002, -0.015], [0.838, 0.108], [0.726, -0.052], [-0.474, -0.781]]> : tensor<8x2xf32>
  %q1 = arith.constant dense<[-2, -3, 3, -4, -1, 0, -2, -1, 2, 2, 3, -3, -2, 3, 2, 4, 0, -2, 2, 4, 0, 2, 1, 2, -1, -2, -3, -2, -2, -1, -1, -4]> : tensor<32xi8>
  %q2 = arith.constant dense<[3, -2, 0, 0, -4, -2, 2, 4, 1, 1, -2, 4, -4, 3, 4, 2]> : tensor<16xi8>
  %z32 = arith.constant dense<0.0> : tensor<32xf32>
  %z16 = arith.constant dense<0.0> : tensor<16xf32>
  %d0 = arith.constant 0.1 : f32
  %mx0 = arith.constant 4 : i8
  %lr = arith.constant 0.02 : f32
  %b1 = arith.constant 0.9 : f32
  %b2 = arith.constant 0.999 : f32
  %one = arith.constant 1.0 : f32
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c10 = arith.constant 10 : index
  %steps = arith.constant 60 : index

  %r:14 = scf.for %i = %c0 to %steps step %c1
      iter_args(%q1i = %q1, %m1i = %z32, %v1i = %z32, %d1i = %d0, %mx1i = %mx0,
                %q2i = %q2, %m2i = %z16, %v2i = %z16, %d2i = %d0, %mx2i = %mx0,
                %b1t = %one, %b2t = %one, %first = %one, %last = %one)
      -> (tensor<32xi8>, tensor<32xf32>, tensor<32xf32>, f32, i8,
          tensor<16xi8>, tensor<16xf32>, tensor<16xf32>, f32, i8,
          f32, f32, f32, f32) {
    // Step t = i + 1; alpha = lr sqrt(1 - b2^t) / (1 - b1^t).
    %ii = arith.index_cast %i : index to i64
    %c1i = arith.constant 1 : i64
    %step = arith.addi %ii, %c1i : i64
    %b1n = arith.mulf %b1t, %b1 : f32
    %b2n = arith.mulf %b2t, %b2 : f32
    %c1b2 = arith.subf %one, %b2n : f32
    %c1b1 = arith.subf %one, %b1n : f32
    %sq = math.sqrt %c1b2 : f32
    %lrs = arith.mulf %lr, %sq : f32
    %alpha = arith.divf %lrs, %c1b1 : f32
    %s:11 = func.call @train_step(%x, %y, %q1i, %m1i, %v1i, %d1i, %mx1i,
                                  %q2i, %m2i, %v2i, %d2i, %mx2i, %alpha, %step)
        : (tensor<8x4xf32>, tensor<8x2xf32>, tensor<32xi8>, tensor<32xf32>,
           tensor<32xf32>, f32, i8, tensor<16xi8>, tensor<16xf32>,
           tensor<16xf32>, f32, i8, f32, i64)
        -> (f32, tensor<32xi8>, tensor<32xf32>, tensor<32xf32>, f32, i8,
            tensor<16xi8>, tensor<16xf32>, tensor<16xf32>, f32, i8)
    %rem = arith.remui %i, %c10 : index
    %report = arith.cmpi eq, %rem, %c0 : index
    scf.if %report {
      vector.print str "loss at step "
      vector.print %i : index punctuation <no_punctuation>
      vector.print str ": "
      vector.print %s#0 : f32
    }
    %isFirst = arith.cmpi eq, %i, %c0 : index
    %firstN = arith.select %isFirst, %s#0, %first : f32
    scf.yield %s#1, %s#2, %s#3, %s#4, %s#5, %s#6, %s#7, %s#8, %s#9, %s#10,
              %b1n, %b2n, %firstN, %s#0
        : tensor<32xi8>, tensor<32xf32>, tensor<32xf32>, f32, i8,
          tensor<16xi8>, tensor<16xf32>, tensor<16xf32>, f32, i8,
          f32, f32, f32, f32
  }
  %quarter = arith.constant 0.25 : f32
  %bound = arith.mulf %r#12, %quarter : f32
  %fell = arith.cmpf olt, %r#13, %bound : f32
  vector.print str "final loss: "
  vector.print %r#13 : f32
  vector.print str "loss fell to a quarter: "
  vector.print %fell : i1
  %q1d = tensor.cast %r#0 : tensor<32xi8> to tensor<?xi8>
  %g1 = func.call @on_grid(%q1d) : (tensor<?xi8>) -> i1
  vector.print str "layer 1 on the grid: "
  vector.print %g1 : i1
  %q2d = tensor.cast %r#5 : tensor<16xi8> to tensor<?xi8>
  %g2 = func.call @on_grid(%q2d) : (tensor<?xi8>) -> i1
  vector.print str "layer 2 on the grid: "
  vector.print %g2 : i1
  // Training moved the integers (not a run that left them as they were).
  %q1s = tensor.cast %q1 : tensor<32xi8> to tensor<?xi8>
  %moved = func.call @count_changed(%q1s, %q1d) : (tensor<?xi8>, tensor<?xi8>) -> index
  %some = arith.cmpi ugt, %moved, %c0 : index
  vector.print str "weights that moved: "
  vector.print %some : i1
  return
}
