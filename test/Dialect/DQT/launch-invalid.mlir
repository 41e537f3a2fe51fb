// dqt.launch: one diagnostic per broken rule.
//
// RUN: dqt-opt %s -split-input-file -verify-diagnostics

func.func private @kernel(tensor<?xf32>, tensor<?xf32>) -> (tensor<?xf32>, i64)

func.func @result_type(%g: tensor<?xf32>, %m: tensor<?xf32>) {
  // expected-error @+1 {{'dqt.launch' op result #0 must have the type of destination #0, got 'tensor<4xf32>'}}
  %r:2 = dqt.launch @kernel(%g : tensor<?xf32>) outs(%m : tensor<?xf32>)
      combiners [#dqt.combiner<addi>] -> tensor<4xf32>, i64
  return
}

// -----

func.func private @kernel(tensor<?xf32>, tensor<?xf32>) -> (tensor<?xf32>, i64, i8)

func.func @reduction_count(%g: tensor<?xf32>, %m: tensor<?xf32>) {
  // expected-error @+1 {{'dqt.launch' op has 3 reductions, not a multiple of its 2 combiners (one per tensor reduction of each step)}}
  %r:4 = dqt.launch @kernel(%g : tensor<?xf32>) outs(%m : tensor<?xf32>)
      combiners [#dqt.combiner<addi>, #dqt.combiner<maxsi>]
      -> tensor<?xf32>, i64, i8, i8
  return
}

// -----

func.func private @kernel(tensor<?xf32>, tensor<?xf32>) -> (tensor<?xf32>, f32)

func.func @float_reduction(%g: tensor<?xf32>, %m: tensor<?xf32>) {
  // expected-error @+1 {{'dqt.launch' op reductions must be integers, got 'f32'}}
  %r:2 = dqt.launch @kernel(%g : tensor<?xf32>) outs(%m : tensor<?xf32>)
      combiners [#dqt.combiner<addi>] -> tensor<?xf32>, f32
  return
}

// -----

func.func private @kernel(tensor<?xf32>, memref<?xf32>) -> ()

func.func @mixed(%g: tensor<?xf32>, %m: memref<?xf32>) {
  // expected-error @+1 {{'dqt.launch' op destination #0 must be a 1-D tensor like the others, got 'memref<?xf32>'}}
  dqt.launch @kernel(%g : tensor<?xf32>) outs(%m : memref<?xf32>) combiners []
  return
}

// -----

func.func @no_kernel(%g: tensor<?xf32>, %m: tensor<?xf32>) {
  // expected-error @+1 {{'dqt.launch' op kernel '@missing' is not a function}}
  %r = dqt.launch @missing(%g : tensor<?xf32>) outs(%m : tensor<?xf32>)
      combiners [] -> tensor<?xf32>
  return
}

// -----

func.func private @kernel(tensor<?xf32>) -> tensor<?xf32>

func.func @too_many_operands(%g: tensor<?xf32>, %m: tensor<?xf32>) {
  // expected-error @+1 {{'dqt.launch' op passes 2 operands to '@kernel', which takes 1}}
  %r = dqt.launch @kernel(%g : tensor<?xf32>) outs(%m : tensor<?xf32>)
      combiners [] -> tensor<?xf32>
  return
}
