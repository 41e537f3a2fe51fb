// RUN: dqt-opt %s -split-input-file -verify-diagnostics

// One reason per case; each diagnostic is the verifier's exact text at the
// op that is wrong.

//===----------------------------------------------------------------------===//
// Grid: bits in [2, 8] or ternary, exactly one of them.
//===----------------------------------------------------------------------===//

func.func @bits_9_out_of_range(%w: tensor<?xf32>, %d: f32, %u: tensor<?xf32>) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.stochastic_round' op bit width 9 is out of range [2, 8] (use 'ternary' for 1.58 bits)}}
  %q = dqt.stochastic_round %w, %d, %u {bits = 9} : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  return %q : tensor<?xi8>
}

// -----

func.func @bits_1_out_of_range(%w: tensor<?xf32>) -> (tensor<?xi8>, f32) {
  // expected-error @+1 {{'dqt.quantize' op bit width 1 is out of range [2, 8] (use 'ternary' for 1.58 bits)}}
  %q, %d = dqt.quantize %w {bits = 1} : tensor<?xf32> -> tensor<?xi8>, f32
  return %q, %d : tensor<?xi8>, f32
}

// -----

func.func @bits_and_ternary_both(%d: f32, %mx: i8) -> f32 {
  // expected-error @+1 {{'dqt.next_delta' op takes either 'bits' or 'ternary', not both}}
  %d1 = dqt.next_delta %d, %mx {bits = 8, ternary}
  return %d1 : f32
}

// -----

func.func @neither_bits_nor_ternary(%w: tensor<?xf32>, %d: f32, %u: tensor<?xf32>) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.stochastic_round' op requires a grid: 'bits' in [2, 8] or 'ternary'}}
  %q = dqt.stochastic_round %w, %d, %u : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  return %q : tensor<?xi8>
}

// -----

//===----------------------------------------------------------------------===//
// Shapes and element types.
//===----------------------------------------------------------------------===//

func.func @tensor_lengths_differ(%g: tensor<4xf32>, %m: tensor<8xf32>, %v: tensor<4xf32>,
                                 %b1: f32, %b2: f32) -> (tensor<8xf32>, tensor<4xf32>) {
  // expected-error @+1 {{'dqt.adam_moments' op tensor lengths differ: 'tensor<4xf32>' vs 'tensor<8xf32>'}}
  %m1, %v1 = dqt.adam_moments %g, %m, %v, %b1, %b2 : tensor<4xf32>, tensor<8xf32>, tensor<4xf32>
  return %m1, %v1 : tensor<8xf32>, tensor<4xf32>
}

// -----

func.func @count_changed_lengths_differ(%q: tensor<16xi8>, %q1: tensor<15xi8>) -> i64 {
  // expected-error @+1 {{'dqt.count_changed' op tensor lengths differ: 'tensor<16xi8>' vs 'tensor<15xi8>'}}
  %n = dqt.count_changed %q, %q1 : tensor<16xi8>, tensor<15xi8> -> i64
  return %n : i64
}

// -----

func.func @f16_gradient(%g: tensor<?xf16>, %m: tensor<?xf32>, %v: tensor<?xf32>,
                        %b1: f32, %b2: f32) -> (tensor<?xf32>, tensor<?xf32>) {
  // expected-error @+1 {{'dqt.adam_moments' op operand #0 must be 1D tensor of 32-bit float values, but got 'tensor<?xf16>'}}
  %m1, %v1 = dqt.adam_moments %g, %m, %v, %b1, %b2 : tensor<?xf16>, tensor<?xf32>, tensor<?xf32>
  return %m1, %v1 : tensor<?xf32>, tensor<?xf32>
}

// -----

func.func @i32_weights(%q: tensor<?xi32>, %d: f32) -> tensor<?xf32> {
  // expected-error @+1 {{'dqt.dequantize' op operand #0 must be 1D tensor of 8-bit signless integer values, but got 'tensor<?xi32>'}}
  %w = dqt.dequantize %q, %d : tensor<?xi32>, f32 -> tensor<?xf32>
  return %w : tensor<?xf32>
}

// -----

func.func @scalar_where_tensor_belongs(%q: i8, %d: f32) -> tensor<?xf32> {
  // expected-error @+1 {{'dqt.dequantize' op operand #0 must be 1D tensor of 8-bit signless integer values, but got 'i8'}}
  %w = "dqt.dequantize"(%q, %d) : (i8, f32) -> tensor<?xf32>
  return %w : tensor<?xf32>
}

// -----

// A delta is one f32 or one per element (per-row delta), nothing else.
func.func @delta_of_another_type(%q: tensor<?xi8>, %d: tensor<?xf16>) -> tensor<?xf32> {
  // expected-error @+1 {{'dqt.dequantize' op operand #1 must be 32-bit float or 1D tensor of 32-bit float values, but got 'tensor<?xf16>'}}
  %w = "dqt.dequantize"(%q, %d) : (tensor<?xi8>, tensor<?xf16>) -> tensor<?xf32>
  return %w : tensor<?xf32>
}

// -----

func.func @two_d_tensor(%g: tensor<4x4xf32>) -> i64 {
  // expected-error @+1 {{'dqt.count_nonfinite' op operand #0 must be 1D tensor of 32-bit float values, but got 'tensor<4x4xf32>'}}
  %n = dqt.count_nonfinite %g : tensor<4x4xf32> -> i64
  return %n : i64
}

// -----

func.func @reduce_max_not_i8(%q: tensor<?xi8>) -> i32 {
  // expected-error @+1 {{'dqt.reduce_max' op result #0 must be 8-bit signless integer, but got 'i32'}}
  %mx = dqt.reduce_max %q : tensor<?xi8> -> i32
  return %mx : i32
}

// -----

func.func @uniform_seed_not_i64(%seed: i32, %step: i64, %tid: i64, %g: tensor<?xf32>) -> tensor<?xf32> {
  // expected-error @+1 {{'dqt.uniform' op operand #0 must be 64-bit signless integer, but got 'i32'}}
  %u = "dqt.uniform"(%seed, %step, %tid, %g) : (i32, i64, i64, tensor<?xf32>) -> tensor<?xf32>
  return %u : tensor<?xf32>
}

// -----

func.func @mask_nonfinite_types_differ(%g: tensor<?xf32>, %q1: tensor<?xi8>, %m: tensor<?xf32>) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.mask_nonfinite' op failed to verify that all of {new_value, old_value, result} have same type}}
  %r = "dqt.mask_nonfinite"(%g, %q1, %m) : (tensor<?xf32>, tensor<?xi8>, tensor<?xf32>) -> tensor<?xi8>
  return %r : tensor<?xi8>
}

// -----

//===----------------------------------------------------------------------===//
// Philox.
//===----------------------------------------------------------------------===//

func.func @philox_rounds_0(%k: i32, %c: i32) -> i32 {
  // expected-error @+1 {{'dqt.philox' op rounds must be in [1, 16], got 0}}
  %r:4 = dqt.philox key(%k, %k) counter(%c, %c, %c, %c) {rounds = 0}
  return %r#0 : i32
}

// -----

func.func @philox_rounds_17(%k: i32, %c: i32) -> i32 {
  // expected-error @+1 {{'dqt.philox' op rounds must be in [1, 16], got 17}}
  %r:4 = dqt.philox key(%k, %k) counter(%c, %c, %c, %c) {rounds = 17}
  return %r#0 : i32
}

// -----

// Words are all i32 or all the same vector<Nxi32>: a scalar key with vector
// counters is rejected (only the generic form can even spell it).
func.func @philox_scalar_key_vector_counter(%k: i32, %c: vector<8xi32>) -> vector<8xi32> {
  // expected-error @+1 {{'dqt.philox' op failed to verify that all of {key0, key1, ctr0, ctr1, ctr2, ctr3, r0, r1, r2, r3} have same type}}
  %r:4 = "dqt.philox"(%k, %k, %c, %c, %c, %c) : (i32, i32, vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>) -> (vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>)
  return %r#0 : vector<8xi32>
}

// -----

// The results follow the operands too.
func.func @philox_vector_result_of_scalar(%k: i32) -> vector<8xi32> {
  // expected-error @+1 {{'dqt.philox' op failed to verify that all of {key0, key1, ctr0, ctr1, ctr2, ctr3, r0, r1, r2, r3} have same type}}
  %r:4 = "dqt.philox"(%k, %k, %k, %k, %k, %k) : (i32, i32, i32, i32, i32, i32) -> (vector<8xi32>, i32, i32, i32)
  return %r#0 : vector<8xi32>
}

// -----

// Lane counts must agree.
func.func @philox_vector_widths_differ(%k: vector<4xi32>, %c: vector<8xi32>) -> vector<8xi32> {
  // expected-error @+1 {{'dqt.philox' op failed to verify that all of {key0, key1, ctr0, ctr1, ctr2, ctr3, r0, r1, r2, r3} have same type}}
  %r:4 = "dqt.philox"(%k, %k, %c, %c, %c, %c) : (vector<4xi32>, vector<4xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>) -> (vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>)
  return %r#0 : vector<8xi32>
}

// -----

// Words are 32-bit, also in vectors.
func.func @philox_vector_of_i64(%k: vector<8xi64>) -> vector<8xi64> {
  // expected-error @+1 {{'dqt.philox' op operand #0 must be 32-bit signless integer or vector of 32-bit signless integer values of ranks 1, but got 'vector<8xi64>'}}
  %r:4 = dqt.philox key(%k, %k) counter(%k, %k, %k, %k) : vector<8xi64>
  return %r#0 : vector<8xi64>
}

// -----

// Only 1-D vectors.
func.func @philox_vector_2d(%k: vector<2x4xi32>) -> vector<2x4xi32> {
  // expected-error @+1 {{'dqt.philox' op operand #0 must be 32-bit signless integer or vector of 32-bit signless integer values of ranks 1, but got 'vector<2x4xi32>'}}
  %r:4 = dqt.philox key(%k, %k) counter(%k, %k, %k, %k) : vector<2x4xi32>
  return %r#0 : vector<2x4xi32>
}

// -----

// The rounds range holds for vectors as well.
func.func @philox_vector_rounds_0(%k: vector<8xi32>) -> vector<8xi32> {
  // expected-error @+1 {{'dqt.philox' op rounds must be in [1, 16], got 0}}
  %r:4 = dqt.philox key(%k, %k) counter(%k, %k, %k, %k) {rounds = 0} : vector<8xi32>
  return %r#0 : vector<8xi32>
}

// -----

// Without the trailing type the custom form means i32 words: vector values
// then do not parse.
// expected-note @+1 {{prior use here}}
func.func @philox_vector_without_type(%k: vector<8xi32>) -> vector<8xi32> {
  // expected-error @+1 {{use of value '%k' expects different type than prior uses: 'i32' vs 'vector<8xi32>'}}
  %r:4 = dqt.philox key(%k, %k) counter(%k, %k, %k, %k)
  return %r#0 : vector<8xi32>
}

// -----

//===----------------------------------------------------------------------===//
// dqt.fused_step and dqt.yield.
//===----------------------------------------------------------------------===//

func.func @fused_zero_segments(%q: tensor<?xi8>) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op needs at least one segment, got 0}}
  %r = dqt.fused_step(%q : tensor<?xi8>) {segments = 0, tensors = 1,
      tied = array<i64: 0>, reductions = []} -> (tensor<?xi8>) {
  ^bb0(%qe: i8):
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @fused_operands_not_multiple_of_segments(%q0: tensor<?xi8>, %q1: tensor<?xi8>, %d: f32) -> (tensor<?xi8>, tensor<?xi8>) {
  // expected-error @+1 {{'dqt.fused_step' op has 3 operands, not a multiple of 2 segments}}
  %r:2 = dqt.fused_step(%q0, %q1, %d : tensor<?xi8>, tensor<?xi8>, f32) {segments = 2,
      tensors = 1, tied = array<i64: 0>, reductions = []} -> (tensor<?xi8>, tensor<?xi8>) {
  ^bb0(%qe: i8, %de: f32):
    dqt.yield %qe : i8
  }
  return %r#0, %r#1 : tensor<?xi8>, tensor<?xi8>
}

// -----

func.func @fused_results_not_multiple_of_segments(%q0: tensor<?xi8>, %q1: tensor<?xi8>) -> (tensor<?xi8>, tensor<?xi8>, i8) {
  // expected-error @+1 {{'dqt.fused_step' op has 3 results, not a multiple of 2 segments}}
  %r:3 = dqt.fused_step(%q0, %q1 : tensor<?xi8>, tensor<?xi8>) {segments = 2,
      tensors = 1, tied = array<i64: 0>, reductions = []} -> (tensor<?xi8>, tensor<?xi8>, i8) {
  ^bb0(%qe: i8):
    dqt.yield %qe : i8
  }
  return %r#0, %r#1, %r#2 : tensor<?xi8>, tensor<?xi8>, i8
}

// -----

func.func @fused_tensors_out_of_range(%q: tensor<?xi8>, %d: f32) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op 'tensors' = 3 must be in [1, 2]}}
  %r = dqt.fused_step(%q, %d : tensor<?xi8>, f32) {segments = 1, tensors = 3,
      tied = array<i64: 0>, reductions = []} -> (tensor<?xi8>) {
  ^bb0(%qe: i8, %de: f32):
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @fused_results_not_outputs_plus_reductions(%q: tensor<?xi8>) -> (tensor<?xi8>, i8) {
  // expected-error @+1 {{'dqt.fused_step' op has 2 results per segment, expected 1 outputs + 0 reductions}}
  %r:2 = dqt.fused_step(%q : tensor<?xi8>) {segments = 1, tensors = 1,
      tied = array<i64: 0>, reductions = []} -> (tensor<?xi8>, i8) {
  ^bb0(%qe: i8):
    dqt.yield %qe, %qe : i8, i8
  }
  return %r#0, %r#1 : tensor<?xi8>, i8
}

// -----

func.func @fused_segment_operand_signature_mismatch(%q: tensor<?xi8>, %w: tensor<?xf32>) -> (tensor<?xi8>, tensor<?xi8>) {
  // expected-error @+1 {{'dqt.fused_step' op segment 1 operand types differ from segment 0's}}
  %r:2 = dqt.fused_step(%q, %w : tensor<?xi8>, tensor<?xf32>) {segments = 2,
      tensors = 1, tied = array<i64: -1>, reductions = []} -> (tensor<?xi8>, tensor<?xi8>) {
  ^bb0(%qe: i8):
    dqt.yield %qe : i8
  }
  return %r#0, %r#1 : tensor<?xi8>, tensor<?xi8>
}

// -----

func.func @fused_segment_result_signature_mismatch(%q0: tensor<?xi8>, %q1: tensor<?xi8>) -> (tensor<?xi8>, tensor<?xf32>) {
  // expected-error @+1 {{'dqt.fused_step' op segment 1 result types differ from segment 0's}}
  %r:2 = dqt.fused_step(%q0, %q1 : tensor<?xi8>, tensor<?xi8>) {segments = 2,
      tensors = 1, tied = array<i64: -1>, reductions = []} -> (tensor<?xi8>, tensor<?xf32>) {
  ^bb0(%qe: i8):
    dqt.yield %qe : i8
  }
  return %r#0, %r#1 : tensor<?xi8>, tensor<?xf32>
}

// -----

func.func @fused_tensor_operand_not_1d(%q: tensor<4x4xi8>) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op operand #0 must be a 1-D tensor (one of the first 1), got 'tensor<4x4xi8>'}}
  %r = dqt.fused_step(%q : tensor<4x4xi8>) {segments = 1, tensors = 1,
      tied = array<i64: -1>, reductions = []} -> (tensor<?xi8>) {
  ^bb0(%qe: i8):
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @fused_scalar_operand_is_tensor(%q: tensor<?xi8>, %d: tensor<?xf32>) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op operand #1 must be a scalar (after the 1 tensors), got 'tensor<?xf32>'}}
  %r = dqt.fused_step(%q, %d : tensor<?xi8>, tensor<?xf32>) {segments = 1, tensors = 1,
      tied = array<i64: 0>, reductions = []} -> (tensor<?xi8>) {
  ^bb0(%qe: i8, %de: f32):
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @fused_rng_without_i64_scalars(%w: tensor<?xf32>, %seed: i32, %step: i64, %tid: i64) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op with 'rng': scalar #0 (seed, step, tensor id) must be i64, got 'i32'}}
  %r = dqt.fused_step(%w, %seed, %step, %tid : tensor<?xf32>, i32, i64, i64) {segments = 1,
      tensors = 1, rng, tied = array<i64: -1>, reductions = []} -> (tensor<?xi8>) {
  ^bb0(%u: f32, %we: f32, %s: i32, %t: i64, %id: i64):
    %q = arith.fptosi %we : f32 to i8
    dqt.yield %q : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @fused_rng_too_few_scalars(%w: tensor<?xf32>, %seed: i64, %step: i64) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op with 'rng' needs seed, step and tensor id scalars}}
  %r = dqt.fused_step(%w, %seed, %step : tensor<?xf32>, i64, i64) {segments = 1,
      tensors = 1, rng, tied = array<i64: -1>, reductions = []} -> (tensor<?xi8>) {
  ^bb0(%u: f32, %we: f32, %s: i64, %t: i64):
    %q = arith.fptosi %we : f32 to i8
    dqt.yield %q : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @fused_output_not_tensor(%q: tensor<?xi8>) -> i8 {
  // expected-error @+1 {{'dqt.fused_step' op output #0 must be a 1-D tensor, got 'i8'}}
  %r = dqt.fused_step(%q : tensor<?xi8>) {segments = 1, tensors = 1,
      tied = array<i64: -1>, reductions = []} -> (i8) {
  ^bb0(%qe: i8):
    dqt.yield %qe : i8
  }
  return %r : i8
}

// -----

func.func @fused_tied_index_out_of_range(%q: tensor<?xi8>, %d: f32) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op tied[0] = 1 is not a tensor operand or -1}}
  %r = dqt.fused_step(%q, %d : tensor<?xi8>, f32) {segments = 1, tensors = 1,
      tied = array<i64: 1>, reductions = []} -> (tensor<?xi8>) {
  ^bb0(%qe: i8, %de: f32):
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @fused_tied_index_below_minus_one(%q: tensor<?xi8>) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op tied[0] = -2 is not a tensor operand or -1}}
  %r = dqt.fused_step(%q : tensor<?xi8>) {segments = 1, tensors = 1,
      tied = array<i64: -2>, reductions = []} -> (tensor<?xi8>) {
  ^bb0(%qe: i8):
    dqt.yield %qe : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @fused_tied_type_mismatch(%w: tensor<?xf32>) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op output #0 of type 'tensor<?xi8>' cannot overwrite operand #0 of type 'tensor<?xf32>'}}
  %r = dqt.fused_step(%w : tensor<?xf32>) {segments = 1, tensors = 1,
      tied = array<i64: 0>, reductions = []} -> (tensor<?xi8>) {
  ^bb0(%we: f32):
    %q = arith.fptosi %we : f32 to i8
    dqt.yield %q : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @fused_bad_reduction_kind(%q: tensor<?xi8>) -> i8 {
  // expected-error @+1 {{'dqt.fused_step' op reduction #0 is 'minsi', expected 'maxsi' or 'addi'}}
  %r = dqt.fused_step(%q : tensor<?xi8>) {segments = 1, tensors = 1,
      tied = array<i64>, reductions = ["minsi"]} -> (i8) {
  ^bb0(%qe: i8):
    dqt.yield %qe : i8
  }
  return %r : i8
}

// -----

func.func @fused_reduction_not_integer(%w: tensor<?xf32>) -> f32 {
  // expected-error @+1 {{'dqt.fused_step' op reduction #0 must produce an integer}}
  %r = dqt.fused_step(%w : tensor<?xf32>) {segments = 1, tensors = 1,
      tied = array<i64>, reductions = ["addi"]} -> (f32) {
  ^bb0(%we: f32):
    dqt.yield %we : f32
  }
  return %r : f32
}

// -----

func.func @fused_body_argument_types_wrong(%q: tensor<?xi8>, %d: f32) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op body arguments must be the element types of the 1 tensors, then the scalars}}
  %r = dqt.fused_step(%q, %d : tensor<?xi8>, f32) {segments = 1, tensors = 1,
      tied = array<i64: 0>, reductions = []} -> (tensor<?xi8>) {
  ^bb0(%qe: tensor<?xi8>, %de: f32):
    %c = arith.constant 0 : i8
    dqt.yield %c : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @fused_body_missing_uniform(%w: tensor<?xf32>, %seed: i64, %step: i64, %tid: i64) -> tensor<?xi8> {
  // expected-error @+1 {{'dqt.fused_step' op body arguments must be the uniform (f32), then the element types of the 1 tensors, then the scalars}}
  %r = dqt.fused_step(%w, %seed, %step, %tid : tensor<?xf32>, i64, i64, i64) {segments = 1,
      tensors = 1, rng, tied = array<i64: -1>, reductions = []} -> (tensor<?xi8>) {
  ^bb0(%we: f32, %s: i64, %t: i64, %id: i64):
    %q = arith.fptosi %we : f32 to i8
    dqt.yield %q : i8
  }
  return %r : tensor<?xi8>
}

// -----

func.func @fused_yield_count_wrong(%q: tensor<?xi8>) -> (tensor<?xi8>, i8) {
  %r:2 = dqt.fused_step(%q : tensor<?xi8>) {segments = 1, tensors = 1,
      tied = array<i64: 0>, reductions = ["maxsi"]} -> (tensor<?xi8>, i8) {
  ^bb0(%qe: i8):
    // expected-error @+1 {{'dqt.yield' op yields 1 values, expected 2}}
    dqt.yield %qe : i8
  }
  return %r#0, %r#1 : tensor<?xi8>, i8
}

// -----

func.func @fused_yield_type_wrong(%q: tensor<?xi8>) -> i64 {
  %r = dqt.fused_step(%q : tensor<?xi8>) {segments = 1, tensors = 1,
      tied = array<i64>, reductions = ["addi"]} -> (i64) {
  ^bb0(%qe: i8):
    // expected-error @+1 {{'dqt.yield' op value #0 has type 'i8', expected 'i64'}}
    dqt.yield %qe : i8
  }
  return %r : i64
}

// -----

func.func @yield_outside_fused_step(%x: i8) {
  // expected-error @+1 {{'dqt.yield' op expects parent op 'dqt.fused_step'}}
  dqt.yield %x : i8
}

// -----

func.func @tied_twice(%q: tensor<?xi8>, %p: tensor<?xi8>) -> (tensor<?xi8>, tensor<?xi8>) {
  // expected-error @+1 {{'dqt.fused_step' op outputs overwrite operand #0 more than once}}
  %r:2 = dqt.fused_step(%q, %p : tensor<?xi8>, tensor<?xi8>) {segments = 1, tensors = 2,
      tied = array<i64: 0, 0>, reductions = []} -> (tensor<?xi8>, tensor<?xi8>) {
  ^bb0(%a: i8, %b: i8):
    dqt.yield %a, %b : i8, i8
  }
  return %r#0, %r#1 : tensor<?xi8>, tensor<?xi8>
}

// -----

func.func @lengths_differ(%q: tensor<4xi8>, %p: tensor<8xi8>) -> tensor<16xi8> {
  // expected-error @+1 {{'dqt.fused_step' op tensor lengths differ: 'tensor<4xi8>' vs 'tensor<8xi8>'}}
  %r = dqt.fused_step(%q, %p : tensor<4xi8>, tensor<8xi8>) {segments = 1, tensors = 2,
      tied = array<i64: -1>, reductions = []} -> (tensor<16xi8>) {
  ^bb0(%a: i8, %b: i8):
    dqt.yield %a : i8
  }
  return %r : tensor<16xi8>
}

// -----

func.func @no_results(%q: tensor<?xi8>) {
  // expected-error @+1 {{'dqt.fused_step' op must produce at least one output or reduction}}
  "dqt.fused_step"(%q) <{segments = 1, tensors = 1, tied = array<i64>, reductions = []}> ({
  ^bb0(%a: i8):
    dqt.yield
  }) : (tensor<?xi8>) -> ()
  return
}
