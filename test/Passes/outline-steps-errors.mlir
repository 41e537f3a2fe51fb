// dqt-outline-steps refuses steps whose kernel arguments would alias, and
// steps outside a func.func, with a diagnostic at the step.
//
// RUN: dqt-opt %s -split-input-file -verify-diagnostics --dqt-outline-steps

// One tensor written through two destinations.
func.func @two_destinations(%n: index) -> (tensor<?xf32>, tensor<?xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty(%n) : tensor<?xf32>
  %x = linalg.fill ins(%zero : f32) outs(%e : tensor<?xf32>) -> tensor<?xf32>
  // expected-error @+1 {{'dqt.fused_step' op writes the same tensor through two destinations (#0 and another); give each output its own tensor}}
  %r:2 = dqt.fused_step outs(%x, %x : tensor<?xf32>, tensor<?xf32>)
      combiners [] -> tensor<?xf32>, tensor<?xf32> {
  ^bb0(%a: f32, %b: f32):
    dqt.yield %a, %b : f32, f32
  }
  return %r#0, %r#1 : tensor<?xf32>, tensor<?xf32>
}

// -----

// A tensor read element by element and overwritten in place.
func.func @read_and_overwritten(%n: index) -> tensor<?xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty(%n) : tensor<?xf32>
  %x = linalg.fill ins(%zero : f32) outs(%e : tensor<?xf32>) -> tensor<?xf32>
  // expected-error @+1 {{'dqt.fused_step' op reads operand #0, which destination #0 overwrites in place; pass a copy to one of them}}
  %r = dqt.fused_step ins(%x : tensor<?xf32>) outs(%x : tensor<?xf32>)
      combiners [] -> tensor<?xf32> {
  ^bb0(%a: f32, %b: f32):
    dqt.yield %a : f32
  }
  return %r : tensor<?xf32>
}

// -----

// Host code is a func.func: a step elsewhere has no host lowering.
llvm.func @not_func() {
  %t = tensor.empty() : tensor<4xf32>
  // expected-error @+1 {{'dqt.fused_step' op must be in a func.func to be compiled}}
  %r = dqt.fused_step outs(%t : tensor<4xf32>) combiners [] -> tensor<4xf32> {
  ^bb0(%b: f32):
    dqt.yield %b : f32
  }
  llvm.return
}
