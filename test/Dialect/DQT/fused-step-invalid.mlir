// RUN: dqt-opt %s -split-input-file -verify-diagnostics

// The verifiers of dqt.fused_step and of the ops of its body, one reason per
// case; each diagnostic is the verifier's exact text at the op that is wrong.

//===----------------------------------------------------------------------===//
// Operand groups, results and combiners.
//===----------------------------------------------------------------------===//

func.func @no_results(%q: tensor<?xi8>) {
  // expected-error @+1 {{'dqt.fused_step' op must produce at least one output or reduction}}
  "dqt.fused_step"(%q) <{combiners = [], operandSegmentSizes = array<i32: 1, 0, 0, 0, 0, 0>}> ({
  ^bb0(%a: i8):
    dqt.yield
  }) : (tensor<?xi8>) -> ()
  return
}

// -----

func.func @reduction_without_combiner(%q: tensor<?xi8>) -> (tensor<?xi8>, i8) {
  // expected-error @+1 {{'dqt.fused_step' op has 2 results, expected 1 outputs + 0 reductions (one per combiner)}}
  %r:2 = dqt.fused_step outs(%q : tensor<?xi8>) combiners [] -> tensor<?xi8>, i8 {
  ^bb0(%qe: i8):
    dqt.yield %qe, %qe : i8, i8
  }
  return %r#0, %r#1 : tensor<?xi8>, i8
}

// -----

func.func @combiner_is_a_string(%q: tensor<?xi8>) -> (tensor<?xi8>, i8) {
  // expected-error @+1 {{'dqt.fused_step' op attribute 'combiners' failed to satisfy constraint: combining kinds}}
  %r:2 = dqt.fused_step outs(%q : tensor<?xi8>) combiners ["maxsi"] -> tensor<?xi8>, i8 {
  ^bb0(%qe: i8):
    dqt.yield %qe, %qe : i8, i8
  }
  return %r#0, %r#1 : tensor<?xi8>, i8
}

// -----

func.func @unknown_combiner(%q: tensor<?xi8>) -> (tensor<?xi8>, i8) {
  // expected-error @+2 {{expected ::mlir::dqt::CombiningKind to be one of: maxsi, addi}}
  // expected-error @+1 {{failed to parse DQT_CombiningKindAttr parameter 'value' which is to be a `::mlir::dqt::CombiningKind`}}
  %r:2 = dqt.fused_step outs(%q : tensor<?xi8>) combiners [#dqt.combiner<minsi>] -> tensor<?xi8>, i8 {
  ^bb0(%qe: i8):
    dqt.yield %qe, %qe : i8, i8
  }
  return %r#0, %r#1 : tensor<?xi8>, i8
}

// -----

func.func @reduction_not_integer(%w: tensor<?xf32>) -> f32 {
  // expected-error @+1 {{'dqt.fused_step' op reduction #0 must produce an integer, got 'f32'}}
  %r = dqt.fused_step ins(%w : tensor<?xf32>) combiners [#dqt.combiner<addi>] -> f32 {
  ^bb0(%we: f32):
    dqt.yield %we : f32
  }
  return %r : f32
}

// -----

func.func @result_not_its_destination(%q: tensor<?xi8>) -> tensor<?xi16> {
  // expected-error @+1 {{'dqt.fused_step' op expected type of operand #0 ('tensor<?xi8>') to match type of corresponding result ('tensor<?xi16>')}}
  %r = dqt.fused_step outs(%q : tensor<?xi8>) combiners [] -> tensor<?xi16> {
  ^bb0(%qe: i8):
    %w = arith.extsi %qe : i8 to i16
    dqt.yield %w : i16
  }
  return %r : tensor<?xi16>
}

// -----

func.func @two_dimensional(%q: tensor<4x4xi8>) -> i8 {
  // expected-error @+1 {{'dqt.fused_step' op operand #0 must be variadic of 1D tensor of any type values, but got 'tensor<4x4xi8>'}}
  %r = dqt.fused_step ins(%q : tensor<4x4xi8>) combiners [#dqt.combiner<maxsi>] -> i8 {
  ^bb0(%qe: i8):
    dqt.yield %qe : i8
  }
  return %r : i8
}

// -----

func.func @scalar_is_a_tensor(%q: tensor<?xi8>, %d: tensor<?xf32>) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op operand #0 must be variadic of signless integer or floating-point or index, but got 'tensor<?xf32>'}}
  %r = dqt.fused_step scalars(%d : tensor<?xf32>) outs(%q : tensor<?xi8>) combiners [] -> tensor<?xi8> {
  ^bb0(%de: f32, %qe: i8):
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @tensor_lengths_differ(%q: tensor<4xi8>, %g: tensor<8xf32>) -> tensor<4xi8> {
  // expected-error @+1 {{'dqt.fused_step' op tensor lengths differ: 'tensor<8xf32>' vs 'tensor<4xi8>'}}
  %r = dqt.fused_step ins(%g : tensor<8xf32>) outs(%q : tensor<4xi8>) combiners [] -> tensor<4xi8> {
  ^bb0(%ge: f32, %qe: i8):
    dqt.yield %qe : i8
  }
  return %r : tensor<4xi8>
}

// -----

//===----------------------------------------------------------------------===//
// Per row.
//===----------------------------------------------------------------------===//

func.func @rows_without_row_length(%q: tensor<?xi8>, %rows: tensor<?xf32>) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op has per-row operands or destinations but no 'row_length'}}
  %r = dqt.fused_step rows(%rows : tensor<?xf32>) outs(%q : tensor<?xi8>) combiners [] -> tensor<?xi8> {
  ^bb0(%de: f32, %qe: i8):
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @row_length_for_nothing(%q: tensor<?xi8>, %len: i64) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op has a 'row_length' but nothing per row}}
  %r = dqt.fused_step row_length(%len) outs(%q : tensor<?xi8>) combiners [] -> tensor<?xi8> {
  ^bb0(%qe: i8):
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @row_length_not_i64(%q: tensor<?xi8>, %rows: tensor<?xf32>, %len: i32) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op operand #1 must be 64-bit signless integer, but got 'i32'}}
  %r = "dqt.fused_step"(%rows, %len, %q) <{combiners = [], operandSegmentSizes = array<i32: 0, 1, 0, 1, 1, 0>}> ({
  ^bb0(%de: f32, %qe: i8):
    dqt.yield %qe : i8
  }) : (tensor<?xf32>, i32, tensor<?xi8>) -> tensor<?xi8>
  return %r : tensor<?xi8>
}

// -----

func.func @row_destination_without_combiner(%q: tensor<?xi8>, %len: i64, %rm: tensor<?xi32>) -> (tensor<?xi8>, tensor<?xi32>) {
  // expected-error @+1 {{'dqt.fused_step' op has 1 per-row destinations but 0 combiners}}
  %r:2 = dqt.fused_step row_length(%len) outs(%q : tensor<?xi8>) row_outs(%rm : tensor<?xi32>) combiners [] -> tensor<?xi8>, tensor<?xi32> {
  ^bb0(%qe: i8):
    dqt.yield %qe : i8
  }
  return %r#0, %r#1 : tensor<?xi8>, tensor<?xi32>
}

// -----

func.func @row_destination_i8(%q: tensor<?xi8>, %len: i64, %rm: tensor<?xi8>) -> (tensor<?xi8>, tensor<?xi8>) {
  // expected-error @+1 {{'dqt.fused_step' op operand #2 must be variadic of 1D tensor of 32-bit signless integer values, but got 'tensor<?xi8>'}}
  %r:2 = dqt.fused_step row_length(%len) outs(%q : tensor<?xi8>) row_outs(%rm : tensor<?xi8>) combiners [#dqt.combiner<maxsi>] -> tensor<?xi8>, tensor<?xi8> {
  ^bb0(%qe: i8):
    dqt.yield %qe, %qe : i8, i8
  }
  return %r#0, %r#1 : tensor<?xi8>, tensor<?xi8>
}

// -----

func.func @row_lengths_differ(%q: tensor<12xi8>, %rows: tensor<3xf32>, %len: i64, %rm: tensor<4xi32>) -> (tensor<12xi8>, tensor<4xi32>) {
  // expected-error @+1 {{'dqt.fused_step' op per-row tensor lengths differ: 'tensor<3xf32>' vs 'tensor<4xi32>'}}
  %r:2 = dqt.fused_step rows(%rows : tensor<3xf32>) row_length(%len) outs(%q : tensor<12xi8>) row_outs(%rm : tensor<4xi32>) combiners [#dqt.combiner<maxsi>] -> tensor<12xi8>, tensor<4xi32> {
  ^bb0(%de: f32, %qe: i8):
    %w = arith.extsi %qe : i8 to i32
    dqt.yield %qe, %w : i8, i32
  }
  return %r#0, %r#1 : tensor<12xi8>, tensor<4xi32>
}

// -----

//===----------------------------------------------------------------------===//
// Packed ternary destinations.
//===----------------------------------------------------------------------===//

func.func @packed_not_an_output(%p: tensor<?xi8>, %g: tensor<?xf32>) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op packed output 1 is not one of the 1 outs}}
  %r = dqt.fused_step ins(%g : tensor<?xf32>) outs(%p : tensor<?xi8>) combiners [] attributes {packed = array<i64: 1>} -> tensor<?xi8> {
  ^bb0(%ge: f32, %q: i8):
    dqt.yield %q : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @packed_twice(%p: tensor<?xi8>, %g: tensor<?xf32>) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op packed output 0 is listed twice}}
  %r = dqt.fused_step ins(%g : tensor<?xf32>) outs(%p : tensor<?xi8>) combiners [] attributes {packed = array<i64: 0, 0>} -> tensor<?xi8> {
  ^bb0(%ge: f32, %q: i8):
    dqt.yield %q : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @packed_float(%w: tensor<?xf32>) -> tensor<?xf32> {
  // expected-error @+1 {{'dqt.fused_step' op packed output #0 must be an i8 tensor (4 ternary codes per byte), got 'tensor<?xf32>'}}
  %r = dqt.fused_step outs(%w : tensor<?xf32>) combiners [] attributes {packed = array<i64: 0>} -> tensor<?xf32> {
  ^bb0(%we: f32):
    dqt.yield %we : f32
  }
  return %r : tensor<?xf32>
}

// -----

func.func @all_packed(%p: tensor<?xi8>) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op needs an element tensor that is not packed (it gives the element count)}}
  %r = dqt.fused_step outs(%p : tensor<?xi8>) combiners [] attributes {packed = array<i64: 0>} -> tensor<?xi8> {
  ^bb0(%q: i8):
    dqt.yield %q : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @packed_length(%p: tensor<3xi8>, %g: tensor<7xf32>) -> tensor<3xi8> {
  // expected-error @+1 {{'dqt.fused_step' op packed storage of 7 elements has 2 bytes, got 'tensor<3xi8>'}}
  %r = dqt.fused_step ins(%g : tensor<7xf32>) outs(%p : tensor<3xi8>) combiners [] attributes {packed = array<i64: 0>} -> tensor<3xi8> {
  ^bb0(%ge: f32, %q: i8):
    dqt.yield %q : i8
  }
  return %r : tensor<3xi8>
}

// -----

//===----------------------------------------------------------------------===//
// The body.
//===----------------------------------------------------------------------===//

func.func @body_arguments_out_of_order(%q: tensor<?xi8>, %d: f32) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op body arguments must be the element types of 'ins' and 'rows', the types of 'scalars', then the element types of 'outs'}}
  %r = dqt.fused_step scalars(%d : f32) outs(%q : tensor<?xi8>) combiners [] -> tensor<?xi8> {
  ^bb0(%qe: i8, %de: f32):
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @body_reads_from_above(%q: tensor<?xi8>, %x: i8) -> tensor<?xi8> {
  // expected-note @+1 {{required by region isolation constraints}}
  %r = dqt.fused_step outs(%q : tensor<?xi8>) combiners [] -> tensor<?xi8> {
  ^bb0(%qe: i8):
    // expected-error @+1 {{'arith.addi' op using value defined outside the region}}
    %y = arith.addi %qe, %x : i8
    dqt.yield %y : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @yields_too_few(%q: tensor<?xi8>) -> (tensor<?xi8>, i8) {
  %r:2 = dqt.fused_step outs(%q : tensor<?xi8>) combiners [#dqt.combiner<maxsi>] -> tensor<?xi8>, i8 {
  ^bb0(%qe: i8):
    // expected-error @+1 {{'dqt.yield' op yields 1 values, expected 2 (one per output, then one per reduction)}}
    dqt.yield %qe : i8
  }
  return %r#0, %r#1 : tensor<?xi8>, i8
}

// -----

func.func @yield_type(%q: tensor<?xi8>) -> i64 {
  %r = dqt.fused_step ins(%q : tensor<?xi8>) combiners [#dqt.combiner<addi>] -> i64 {
  ^bb0(%qe: i8):
    // expected-error @+1 {{'dqt.yield' op value #0 has type 'i8', expected 'i64'}}
    dqt.yield %qe : i8
  }
  return %r : i64
}

// -----

func.func @yield_outside(%x: i8) {
  // expected-error @+1 {{'dqt.yield' op expects parent op 'dqt.fused_step'}}
  dqt.yield %x : i8
  return
}

// -----

func.func @element_index_outside() -> index {
  // expected-error @+1 {{'dqt.element_index' op expects parent op 'dqt.fused_step'}}
  %i = dqt.element_index : index
  return %i : index
}

// -----

func.func @two_words_of_one_stream(%q: tensor<?xi8>, %s: i64) -> tensor<?xi8> {
  %r = dqt.fused_step scalars(%s : i64) outs(%q : tensor<?xi8>) combiners [] -> tensor<?xi8> {
  ^bb0(%se: i64, %qe: i8):
    %i = dqt.element_index : index
    %a = dqt.philox_bits weight %se, %se, %se at %i : i16
    // expected-error @+1 {{'dqt.philox_bits' op draws twice from the 'weight' stream of this body}}
    %b = dqt.philox_bits weight %se, %se, %se at %i : i16
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @word_seed_per_element(%g: tensor<?xi64>, %s: i64) -> i64 {
  %r = dqt.fused_step ins(%g : tensor<?xi64>) scalars(%s : i64) combiners [#dqt.combiner<addi>] -> i64 {
  ^bb0(%ge: i64, %se: i64):
    %i = dqt.element_index : index
    // expected-error @+1 {{'dqt.philox_bits' op takes its seed from a scalar argument of the fused step's body}}
    %w = dqt.philox_bits weight %ge, %se, %se at %i : i16
    %w64 = arith.extui %w : i16 to i64
    dqt.yield %w64 : i64
  }
  return %r : i64
}

// -----

func.func @word_of_another_element(%q: tensor<?xi8>, %s: i64) -> tensor<?xi8> {
  %r = dqt.fused_step scalars(%s : i64) outs(%q : tensor<?xi8>) combiners [] -> tensor<?xi8> {
  ^bb0(%se: i64, %qe: i8):
    %i = arith.constant 0 : index
    // expected-error @+1 {{'dqt.philox_bits' op draws for the body's own element: its index must be 'dqt.element_index'}}
    %w = dqt.philox_bits weight %se, %se, %se at %i : i16
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @unknown_stream(%q: tensor<?xi8>, %s: i64) -> tensor<?xi8> {
  %r = dqt.fused_step scalars(%s : i64) outs(%q : tensor<?xi8>) combiners [] -> tensor<?xi8> {
  ^bb0(%se: i64, %qe: i8):
    %i = dqt.element_index : index
    // expected-error @+1 {{custom op 'dqt.philox_bits' expected string or keyword containing one of the following enum values for attribute 'stream' [weight, state0, state1]}}
    %w = dqt.philox_bits bias %se, %se, %se at %i : i16
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}
