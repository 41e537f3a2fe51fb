// Both lowerings need a function of fused steps over its arguments (plus a
// pure scalar prologue) that share one configuration; anything else gets a
// located diagnostic.
//
// RUN: dqt-opt %s -split-input-file -verify-diagnostics --dqt-lower-to-cpu
// RUN: dqt-opt %s -split-input-file -verify-diagnostics --dqt-lower-to-gpu

func.func @not_fused(%q: tensor<?xi8>, %d: f32) -> tensor<?xf32> {
  // expected-error @+1 {{'dqt.dequantize' op was not fused; run dqt-fuse-step first}}
  %w = dqt.dequantize %q, %d : tensor<?xi8>, f32 -> tensor<?xf32>
  return %w : tensor<?xf32>
}

// -----

func.func @two_configurations(%q0: tensor<?xi8>, %q1: tensor<?xi16>) -> (i8, i8) {
  %a = dqt.fused_step ins(%q0 : tensor<?xi8>) combiners [#dqt.combiner<maxsi>] -> i8 {
  ^bb0(%e: i8):
    dqt.yield %e : i8
  }
  // expected-error @+1 {{'dqt.fused_step' op differs in configuration from the first fused step of @two_configurations; one kernel runs steps that share one (lower the others from a function of their own)}}
  %b = dqt.fused_step ins(%q1 : tensor<?xi16>) combiners [#dqt.combiner<maxsi>] -> i8 {
  ^bb0(%e: i16):
    %t = arith.trunci %e : i16 to i8
    dqt.yield %t : i8
  }
  return %a, %b : i8, i8
}

// -----

func.func @tensor_operand_not_argument(%d: f32) -> i8 {
  %q = arith.constant dense<1> : tensor<4xi8>
  // expected-error @+1 {{'dqt.fused_step' op operand of 'ins' must be an argument of the function}}
  %r = dqt.fused_step ins(%q : tensor<4xi8>) scalars(%d : f32) combiners [#dqt.combiner<maxsi>] -> i8 {
  ^bb0(%e: i8, %de: f32):
    dqt.yield %e : i8
  }
  return %r : i8
}

// -----

func.func private @host_scalar() -> f32
func.func @scalar_not_computable_in_kernel(%q: tensor<?xi8>) -> i8 {
  // expected-error @+1 {{'func.call' op cannot be computed inside the kernel}}
  %d = func.call @host_scalar() : () -> f32
  %r = dqt.fused_step ins(%q : tensor<?xi8>) scalars(%d : f32) combiners [#dqt.combiner<maxsi>] -> i8 {
  ^bb0(%e: i8, %de: f32):
    dqt.yield %e : i8
  }
  return %r : i8
}

// -----

// A row operand (per-row delta) is read from a kernel buffer: it must be an
// argument of the function, not computed in it.
func.func @row_operand_computed(%q: tensor<?xi8>, %len: i64) -> tensor<?xi8> {
  %d = arith.constant dense<0.5> : tensor<4xf32>
  // expected-error @+1 {{'dqt.fused_step' op operand of 'rows' must be an argument of the function}}
  %r = dqt.fused_step rows(%d : tensor<4xf32>) row_length(%len) outs(%q : tensor<?xi8>) combiners [] -> tensor<?xi8> {
  ^bb0(%de: f32, %qe: i8):
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}

// -----

// A destination is a function argument (updated in place) or a new tensor.
func.func @destination_computed(%g: tensor<4xf32>) -> tensor<4xf32> {
  %d = arith.constant dense<0.5> : tensor<4xf32>
  // expected-error @+1 {{'dqt.fused_step' op destination #0 must be an argument of the function or a tensor.empty}}
  %r = dqt.fused_step ins(%g : tensor<4xf32>) outs(%d : tensor<4xf32>) combiners [] -> tensor<4xf32> {
  ^bb0(%ge: f32, %de: f32):
    dqt.yield %ge : f32
  }
  return %r : tensor<4xf32>
}

// -----

// Writing an argument in place while it is read elsewhere would change what
// the other reader sees.
func.func @destination_read_elsewhere(%q: tensor<?xi8>) -> (tensor<?xi8>, i8) {
  %c0 = arith.constant 0 : index
  %mx = tensor.extract %q[%c0] : tensor<?xi8>
  // expected-error @+1 {{'dqt.fused_step' op overwrites argument #0 of @destination_read_elsewhere in place, but it is also read elsewhere}}
  %r = dqt.fused_step outs(%q : tensor<?xi8>) combiners [] -> tensor<?xi8> {
  ^bb0(%e: i8):
    dqt.yield %e : i8
  }
  return %r, %mx : tensor<?xi8>, i8
}

// -----

// A new tensor's buffer comes from the caller: the function must return it.
func.func @new_tensor_not_returned(%g: tensor<?xf32>) -> i64 {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %g, %c0 : tensor<?xf32>
  %e = tensor.empty(%n) : tensor<?xf32>
  // expected-error @+1 {{'dqt.fused_step' op result #0 must be returned by @new_tensor_not_returned (the caller passes its buffer)}}
  %r:2 = dqt.fused_step ins(%g : tensor<?xf32>) outs(%e : tensor<?xf32>) combiners [#dqt.combiner<addi>] -> tensor<?xf32>, i64 {
  ^bb0(%ge: f32, %ee: f32):
    %one = arith.constant 1 : i64
    dqt.yield %ge, %one : f32, i64
  }
  return %r#1 : i64
}

// -----

// expected-error @+1 {{'func.func' op argument #0 must be a 1-D tensor or a scalar to be a kernel argument, got 'tensor<2x2xf32>'}}
func.func @argument_not_a_vector(%g: tensor<2x2xf32>, %q: tensor<?xi8>) -> tensor<?xi8> {
  %r = dqt.fused_step outs(%q : tensor<?xi8>) combiners [] -> tensor<?xi8> {
  ^bb0(%e: i8):
    dqt.yield %e : i8
  }
  return %r : tensor<?xi8>
}
