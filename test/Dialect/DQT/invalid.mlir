// RUN: dqt-opt %s -split-input-file -verify-diagnostics

// One reason per case; each diagnostic is the verifier's exact text at the
// op that is wrong.

//===----------------------------------------------------------------------===//
// Grid: #dqt.grid<b> with b in [2, 8], or #dqt.grid<ternary>.
//===----------------------------------------------------------------------===//

func.func @bits_9_out_of_range(%w: tensor<?xf32>, %d: f32, %u: tensor<?xf32>) -> tensor<?xi8> {
  // expected-error @+1 {{bit width 9 is out of range [2, 8] (use 'ternary' for 1.58 bits)}}
  %q = dqt.stochastic_round %w, %d, %u grid<9> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  return %q : tensor<?xi8>
}

// -----

func.func @bits_1_out_of_range(%w: tensor<?xf32>) -> (tensor<?xi8>, f32) {
  // expected-error @+1 {{bit width 1 is out of range [2, 8] (use 'ternary' for 1.58 bits)}}
  %q, %d = dqt.quantize %w grid<1> : tensor<?xf32> -> tensor<?xi8>, f32
  return %q, %d : tensor<?xi8>, f32
}

// -----

func.func @grid_not_a_width(%d: f32, %mx: i8) -> f32 {
  // expected-error @+1 {{expected a bit width in [2, 8] or 'ternary'}}
  %d1 = dqt.next_delta %d, %mx grid<eight>
  return %d1 : f32
}

// -----

func.func @grid_missing(%w: tensor<?xf32>, %d: f32, %u: tensor<?xf32>) -> tensor<?xi8> {
  // expected-error @+1 {{expected 'grid'}}
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

