// RUN: dqt-opt %s -split-input-file -verify-diagnostics

// The absmax rule's refusals, one per case.

func.func @absmax_takes_bits(%d: f32, %mx: i8) -> f32 {
  // expected-error @+1 {{'dqt.next_delta' op rule absmax takes the bits of max|w2| as i32, got 'i8'}}
  %d1 = dqt.next_delta %d, %mx grid<8> rule<absmax>
  return %d1 : f32
}

// -----

func.func @maxq_takes_i8(%d: f32, %a: i32) -> f32 {
  // expected-error @+1 {{'dqt.next_delta' op rule maxq takes max q as i8, got 'i32'}}
  %d1 = dqt.next_delta %d, %a grid<8> : i32
  return %d1 : f32
}

// -----

func.func @absmax_not_ternary(%d: f32, %a: i32) -> f32 {
  // expected-error @+1 {{'dqt.next_delta' op rule absmax is for 2..8-bit grids; ternary weights keep the paper's rule (maxq)}}
  %d1 = dqt.next_delta %d, %a grid<ternary> rule<absmax> : i32
  return %d1 : f32
}

// -----

func.func @absmax_of_integers(%q: tensor<4xi8>) -> i32 {
  // expected-error @+1 {{'dqt.reduce_absmax' op operand #0 must be 1D tensor of 32-bit float values}}
  %a = dqt.reduce_absmax %q : tensor<4xi8> -> i32
  return %a : i32
}
