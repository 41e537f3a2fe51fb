// Every dqt op parses, verifies and prints back to the same IR, in the custom
// assembly format and in the generic one.
//
// RUN: dqt-opt %s | dqt-opt | FileCheck %s
// RUN: dqt-opt %s --mlir-print-op-generic | dqt-opt | FileCheck %s

// CHECK-LABEL: func.func @quantize_bits
// CHECK-SAME: (%[[W:.*]]: tensor<?xf32>)
func.func @quantize_bits(%w: tensor<?xf32>) -> (tensor<?xi8>, f32) {
  // CHECK: %[[Q:.*]], %[[D:.*]] = dqt.quantize %[[W]] grid<8> : tensor<?xf32> -> tensor<?xi8>, f32
  %q, %d = dqt.quantize %w grid<8> : tensor<?xf32> -> tensor<?xi8>, f32
  // CHECK: return %[[Q]], %[[D]] : tensor<?xi8>, f32
  return %q, %d : tensor<?xi8>, f32
}

// CHECK-LABEL: func.func @quantize_ternary_static
// CHECK-SAME: (%[[W:.*]]: tensor<16xf32>)
func.func @quantize_ternary_static(%w: tensor<16xf32>) -> (tensor<16xi8>, f32) {
  // CHECK: dqt.quantize %[[W]] grid<ternary> : tensor<16xf32> -> tensor<16xi8>, f32
  %q, %d = dqt.quantize %w grid<ternary> : tensor<16xf32> -> tensor<16xi8>, f32
  return %q, %d : tensor<16xi8>, f32
}

// CHECK-LABEL: func.func @dequantize
// CHECK-SAME: (%[[Q:.*]]: tensor<?xi8>, %[[D:.*]]: f32)
func.func @dequantize(%q: tensor<?xi8>, %d: f32) -> tensor<?xf32> {
  // CHECK: %[[R:.*]] = dqt.dequantize %[[Q]], %[[D]] : tensor<?xi8>, f32 -> tensor<?xf32>
  %w = dqt.dequantize %q, %d : tensor<?xi8>, f32 -> tensor<?xf32>
  // CHECK: return %[[R]]
  return %w : tensor<?xf32>
}

// Static and dynamic lengths mix: only static lengths are compared.
// CHECK-LABEL: func.func @dequantize_static_to_dynamic
func.func @dequantize_static_to_dynamic(%q: tensor<8xi8>, %d: f32) -> tensor<?xf32> {
  // CHECK: dqt.dequantize %{{.*}}, %{{.*}} : tensor<8xi8>, f32 -> tensor<?xf32>
  %w = dqt.dequantize %q, %d : tensor<8xi8>, f32 -> tensor<?xf32>
  return %w : tensor<?xf32>
}

// CHECK-LABEL: func.func @adam_moments
// CHECK-SAME: (%[[G:.*]]: tensor<?xf32>, %[[M:.*]]: tensor<?xf32>, %[[V:.*]]: tensor<?xf32>, %[[B1:.*]]: f32, %[[B2:.*]]: f32)
func.func @adam_moments(%g: tensor<?xf32>, %m: tensor<?xf32>, %v: tensor<?xf32>,
                        %b1: f32, %b2: f32) -> (tensor<?xf32>, tensor<?xf32>) {
  // CHECK: %[[M1:.*]], %[[V1:.*]] = dqt.adam_moments %[[G]], %[[M]], %[[V]], %[[B1]], %[[B2]] : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %m1, %v1 = dqt.adam_moments %g, %m, %v, %b1, %b2
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  // CHECK: return %[[M1]], %[[V1]]
  return %m1, %v1 : tensor<?xf32>, tensor<?xf32>
}

// CHECK-LABEL: func.func @adam_apply
// CHECK-SAME: (%[[W:.*]]: tensor<32xf32>, %[[M:.*]]: tensor<32xf32>, %[[V:.*]]: tensor<32xf32>, %[[A:.*]]: f32, %[[E:.*]]: f32, %[[L:.*]]: f32)
func.func @adam_apply(%w: tensor<32xf32>, %m: tensor<32xf32>, %v: tensor<32xf32>,
                      %alpha: f32, %eps: f32, %decay: f32) -> tensor<32xf32> {
  // CHECK: %[[R:.*]] = dqt.adam_apply %[[W]], %[[M]], %[[V]], %[[A]], %[[E]], %[[L]] : tensor<32xf32>, tensor<32xf32>, tensor<32xf32> -> tensor<32xf32>
  %w1 = dqt.adam_apply %w, %m, %v, %alpha, %eps, %decay
      : tensor<32xf32>, tensor<32xf32>, tensor<32xf32> -> tensor<32xf32>
  // CHECK: return %[[R]]
  return %w1 : tensor<32xf32>
}

// CHECK-LABEL: func.func @sgd_momentum
// CHECK-SAME: (%[[W:.*]]: tensor<?xf32>, %[[G:.*]]: tensor<?xf32>, %[[B:.*]]: tensor<?xf32>, %[[LR:.*]]: f32, %[[MU:.*]]: f32, %[[L:.*]]: f32)
func.func @sgd_momentum(%w: tensor<?xf32>, %g: tensor<?xf32>, %buf: tensor<?xf32>,
                        %lr: f32, %mu: f32, %decay: f32) -> (tensor<?xf32>, tensor<?xf32>) {
  // CHECK: %[[W1:.*]], %[[B1:.*]] = dqt.sgd_momentum %[[W]], %[[G]], %[[B]], %[[LR]], %[[MU]], %[[L]] : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  %w1, %b1 = dqt.sgd_momentum %w, %g, %buf, %lr, %mu, %decay
      : tensor<?xf32>, tensor<?xf32>, tensor<?xf32>
  // CHECK: return %[[W1]], %[[B1]]
  return %w1, %b1 : tensor<?xf32>, tensor<?xf32>
}

// `like` may be a float or an integer tensor: it only gives the length.
// CHECK-LABEL: func.func @uniform
// CHECK-SAME: (%[[S:.*]]: i64, %[[T:.*]]: i64, %[[I:.*]]: i64, %[[G:.*]]: tensor<?xf32>, %[[Q:.*]]: tensor<?xi8>)
func.func @uniform(%seed: i64, %step: i64, %tid: i64, %g: tensor<?xf32>,
                   %q: tensor<?xi8>) -> (tensor<?xf32>, tensor<?xf32>) {
  // CHECK: %[[U0:.*]] = dqt.uniform %[[S]], %[[T]], %[[I]] like %[[G]] : tensor<?xf32> -> tensor<?xf32>
  %u0 = dqt.uniform %seed, %step, %tid like %g : tensor<?xf32> -> tensor<?xf32>
  // CHECK: %[[U1:.*]] = dqt.uniform %[[S]], %[[T]], %[[I]] like %[[Q]] : tensor<?xi8> -> tensor<?xf32>
  %u1 = dqt.uniform %seed, %step, %tid like %q : tensor<?xi8> -> tensor<?xf32>
  // CHECK: return %[[U0]], %[[U1]]
  return %u0, %u1 : tensor<?xf32>, tensor<?xf32>
}

// CHECK-LABEL: func.func @stochastic_round_bits
// CHECK-SAME: (%[[W:.*]]: tensor<?xf32>, %[[D:.*]]: f32, %[[U:.*]]: tensor<?xf32>)
func.func @stochastic_round_bits(%w: tensor<?xf32>, %d: f32, %u: tensor<?xf32>)
    -> (tensor<?xi8>, tensor<?xi8>, tensor<?xi8>) {
  // CHECK: dqt.stochastic_round %[[W]], %[[D]], %[[U]] grid<2> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %q2 = dqt.stochastic_round %w, %d, %u grid<2> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  // CHECK: dqt.stochastic_round %[[W]], %[[D]], %[[U]] grid<4> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %q4 = dqt.stochastic_round %w, %d, %u grid<4> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  // CHECK: dqt.stochastic_round %[[W]], %[[D]], %[[U]] grid<8> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %q8 = dqt.stochastic_round %w, %d, %u grid<8> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  return %q2, %q4, %q8 : tensor<?xi8>, tensor<?xi8>, tensor<?xi8>
}

// CHECK-LABEL: func.func @stochastic_round_ternary
// CHECK-SAME: (%[[W:.*]]: tensor<?xf32>, %[[D:.*]]: f32, %[[U:.*]]: tensor<?xf32>)
func.func @stochastic_round_ternary(%w: tensor<?xf32>, %d: f32, %u: tensor<?xf32>) -> tensor<?xi8> {
  // CHECK: %[[R:.*]] = dqt.stochastic_round %[[W]], %[[D]], %[[U]] grid<ternary> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  %q = dqt.stochastic_round %w, %d, %u grid<ternary> : tensor<?xf32>, f32, tensor<?xf32> -> tensor<?xi8>
  // CHECK: return %[[R]]
  return %q : tensor<?xi8>
}

// The kept value may be an integer weight or a float state.
// CHECK-LABEL: func.func @mask_nonfinite
// CHECK-SAME: (%[[G:.*]]: tensor<?xf32>, %[[Q1:.*]]: tensor<?xi8>, %[[Q:.*]]: tensor<?xi8>, %[[M1:.*]]: tensor<?xf32>, %[[M:.*]]: tensor<?xf32>)
func.func @mask_nonfinite(%g: tensor<?xf32>, %q1: tensor<?xi8>, %q: tensor<?xi8>,
                          %m1: tensor<?xf32>, %m: tensor<?xf32>) -> (tensor<?xi8>, tensor<?xf32>) {
  // CHECK: %[[RQ:.*]] = dqt.mask_nonfinite %[[G]], %[[Q1]], %[[Q]] : tensor<?xf32>, tensor<?xi8>
  %rq = dqt.mask_nonfinite %g, %q1, %q : tensor<?xf32>, tensor<?xi8>
  // CHECK: %[[RM:.*]] = dqt.mask_nonfinite %[[G]], %[[M1]], %[[M]] : tensor<?xf32>, tensor<?xf32>
  %rm = dqt.mask_nonfinite %g, %m1, %m : tensor<?xf32>, tensor<?xf32>
  // CHECK: return %[[RQ]], %[[RM]]
  return %rq, %rm : tensor<?xi8>, tensor<?xf32>
}

// CHECK-LABEL: func.func @next_delta
// CHECK-SAME: (%[[D:.*]]: f32, %[[MX:.*]]: i8)
func.func @next_delta(%d: f32, %mx: i8) -> (f32, f32) {
  // CHECK: %[[R8:.*]] = dqt.next_delta %[[D]], %[[MX]] grid<8>
  %d8 = dqt.next_delta %d, %mx grid<8>
  // CHECK: %[[RT:.*]] = dqt.next_delta %[[D]], %[[MX]] grid<ternary>
  %dt = dqt.next_delta %d, %mx grid<ternary>
  // CHECK: return %[[R8]], %[[RT]] : f32, f32
  return %d8, %dt : f32, f32
}

// `rounds` defaults to 10 and is then not printed.
// CHECK-LABEL: func.func @philox
// CHECK-SAME: (%[[K0:.*]]: i32, %[[K1:.*]]: i32, %[[C0:.*]]: i32, %[[C1:.*]]: i32, %[[C2:.*]]: i32, %[[C3:.*]]: i32)
func.func @philox(%k0: i32, %k1: i32, %c0: i32, %c1: i32, %c2: i32, %c3: i32)
    -> (i32, i32, i32, i32, i32) {
  // CHECK: %[[A0:[^,]*]], %[[A1:[^,]*]], %[[A2:[^,]*]], %[[A3:[^ ]*]] = dqt.philox key(%[[K0]], %[[K1]]) counter(%[[C0]], %[[C1]], %[[C2]], %[[C3]]){{$}}
  %r:4 = dqt.philox key(%k0, %k1) counter(%c0, %c1, %c2, %c3)
  // CHECK: %{{[^,]*}}, %{{[^,]*}}, %{{[^,]*}}, %[[B3:[^ ]*]] = dqt.philox key(%[[K0]], %[[K1]]) counter(%[[C0]], %[[C1]], %[[C2]], %[[C3]]) {rounds = 7 : i64}
  %s:4 = dqt.philox key(%k0, %k1) counter(%c0, %c1, %c2, %c3) {rounds = 7}
  // CHECK: return %[[A0]], %[[A1]], %[[A2]], %[[A3]], %[[B3]]
  return %r#0, %r#1, %r#2, %r#3, %s#3 : i32, i32, i32, i32, i32
}

// On vector<Nxi32> words (N independent blocks, one per lane) the type is
// printed after the counter list (and after the attributes); a redundant
// `: i32` on the scalar form is accepted and dropped.
// CHECK-LABEL: func.func @philox_vector
// CHECK-SAME: (%[[K0:.*]]: vector<8xi32>, %[[K1:.*]]: vector<8xi32>, %[[C0:.*]]: vector<8xi32>, %[[C1:.*]]: vector<8xi32>, %[[C2:.*]]: vector<8xi32>, %[[C3:.*]]: vector<8xi32>, %[[S:.*]]: i32)
func.func @philox_vector(%k0: vector<8xi32>, %k1: vector<8xi32>, %c0: vector<8xi32>,
                         %c1: vector<8xi32>, %c2: vector<8xi32>, %c3: vector<8xi32>, %s: i32)
    -> (vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>, i32) {
  // CHECK: %[[A0:[^,]*]], %[[A1:[^,]*]], %[[A2:[^,]*]], %[[A3:[^ ]*]] = dqt.philox key(%[[K0]], %[[K1]]) counter(%[[C0]], %[[C1]], %[[C2]], %[[C3]]) : vector<8xi32>{{$}}
  %r:4 = dqt.philox key(%k0, %k1) counter(%c0, %c1, %c2, %c3) : vector<8xi32>
  // CHECK: %{{[^,]*}}, %{{[^,]*}}, %{{[^,]*}}, %[[B3:[^ ]*]] = dqt.philox key(%[[K0]], %[[K1]]) counter(%[[C0]], %[[C1]], %[[C2]], %[[C3]]) {rounds = 7 : i64} : vector<8xi32>{{$}}
  %v:4 = dqt.philox key(%k0, %k1) counter(%c0, %c1, %c2, %c3) {rounds = 7} : vector<8xi32>
  // CHECK: %{{[^,]*}}, %[[D1:[^,]*]], %{{[^,]*}}, %{{[^ ]*}} = dqt.philox key(%[[S]], %[[S]]) counter(%[[S]], %[[S]], %[[S]], %[[S]]){{$}}
  %d:4 = dqt.philox key(%s, %s) counter(%s, %s, %s, %s) : i32
  // CHECK: return %[[A0]], %[[A1]], %[[A2]], %[[A3]], %[[B3]], %[[D1]] : vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>, i32
  return %r#0, %r#1, %r#2, %r#3, %v#3, %d#1
      : vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>, i32
}

// CHECK-LABEL: func.func @reductions
// CHECK-SAME: (%[[Q:.*]]: tensor<?xi8>, %[[Q1:.*]]: tensor<?xi8>, %[[G:.*]]: tensor<?xf32>)
func.func @reductions(%q: tensor<?xi8>, %q1: tensor<?xi8>, %g: tensor<?xf32>) -> (i8, i64, i64) {
  // CHECK: %[[MX:.*]] = dqt.reduce_max %[[Q1]] : tensor<?xi8> -> i8
  %mx = dqt.reduce_max %q1 : tensor<?xi8> -> i8
  // CHECK: %[[CH:.*]] = dqt.count_changed %[[Q]], %[[Q1]] : tensor<?xi8>, tensor<?xi8> -> i64
  %ch = dqt.count_changed %q, %q1 : tensor<?xi8>, tensor<?xi8> -> i64
  // CHECK: %[[NF:.*]] = dqt.count_nonfinite %[[G]] : tensor<?xf32> -> i64
  %nf = dqt.count_nonfinite %g : tensor<?xf32> -> i64
  // CHECK: return %[[MX]], %[[CH]], %[[NF]] : i8, i64, i64
  return %mx, %ch, %nf : i8, i64, i64
}

// The doc example of dqt.fused_step: the weights as their own destination,
// one reduction.
// CHECK-LABEL: func.func @fused_step_minimal
// CHECK-SAME: (%[[Q:.*]]: tensor<?xi8>)
func.func @fused_step_minimal(%q: tensor<?xi8>) -> (tensor<?xi8>, i8) {
  // CHECK: %[[R:.*]]:2 = dqt.fused_step outs(%[[Q]] : tensor<?xi8>)
  // CHECK-SAME: combiners [#dqt.combiner<maxsi>] -> tensor<?xi8>, i8 {
  // CHECK-NEXT: ^bb0(%[[QE:.*]]: i8):
  // CHECK-NEXT: dqt.yield %[[QE]], %[[QE]] : i8, i8
  // CHECK-NEXT: }
  %q1, %mx = dqt.fused_step outs(%q : tensor<?xi8>)
      combiners [#dqt.combiner<maxsi>] -> tensor<?xi8>, i8 {
  ^bb0(%qe: i8):
    dqt.yield %qe, %qe : i8, i8
  }
  // CHECK: return %[[R]]#0, %[[R]]#1
  return %q1, %mx : tensor<?xi8>, i8
}

// Every operand group: elements read (`ins`), per-row values (`rows`),
// scalars, the row length, a new tensor as destination and a per-row
// destination. The body asks for its element's index and random word.
// CHECK-LABEL: func.func @fused_step_all_groups
func.func @fused_step_all_groups(
    %w: tensor<12xf32>, %d: tensor<3xf32>, %seed: i64, %step: i64,
    %tid: i64, %len: i64) -> (tensor<12xi8>, tensor<3xi32>, i64) {
  // CHECK: %[[E:.*]] = tensor.empty() : tensor<12xi8>
  // CHECK: %[[RM:.*]] = tensor.empty() : tensor<3xi32>
  // CHECK: %[[R:.*]]:3 = dqt.fused_step ins(%{{.*}} : tensor<12xf32>)
  // CHECK-SAME: rows(%{{.*}} : tensor<3xf32>) scalars(%{{.*}}, %{{.*}}, %{{.*}} : i64, i64, i64)
  // CHECK-SAME: row_length(%{{.*}}) outs(%[[E]] : tensor<12xi8>)
  // CHECK-SAME: row_outs(%[[RM]] : tensor<3xi32>)
  // CHECK-SAME: combiners [#dqt.combiner<maxsi>, #dqt.combiner<addi>] -> tensor<12xi8>, tensor<3xi32>, i64 {
  // CHECK-NEXT: ^bb0(%[[WE:.*]]: f32, %[[DE:.*]]: f32, %[[S:.*]]: i64, %[[T:.*]]: i64, %[[ID:.*]]: i64, %{{.*}}: i8):
  // CHECK-NEXT: %[[I:.*]] = dqt.element_index : index
  // CHECK-NEXT: %[[H:.*]] = dqt.philox_bits weight %[[S]], %[[T]], %[[ID]] at %[[I]] : i16
  // CHECK: arith.divf %[[WE]], %[[DE]] : f32
  // CHECK: dqt.yield %{{.*}}, %{{.*}}, %{{.*}} : i8, i32, i64
  // CHECK-NEXT: }
  %e = tensor.empty() : tensor<12xi8>
  %rm = tensor.empty() : tensor<3xi32>
  %r:3 = dqt.fused_step ins(%w : tensor<12xf32>) rows(%d : tensor<3xf32>)
      scalars(%seed, %step, %tid : i64, i64, i64) row_length(%len)
      outs(%e : tensor<12xi8>) row_outs(%rm : tensor<3xi32>)
      combiners [#dqt.combiner<maxsi>, #dqt.combiner<addi>]
      -> tensor<12xi8>, tensor<3xi32>, i64 {
  ^bb0(%we: f32, %de: f32, %s: i64, %t: i64, %id: i64, %old: i8):
    %i = dqt.element_index : index
    %h = dqt.philox_bits weight %s, %t, %id at %i : i16
    %h32 = arith.extui %h : i16 to i32
    %c1 = arith.constant 1 : i32
    %h2 = arith.shli %h32, %c1 : i32
    %odd = arith.ori %h2, %c1 : i32
    %u0 = arith.uitofp %odd : i32 to f32
    %scale = arith.constant 7.62939453E-6 : f32
    %u = arith.mulf %u0, %scale : f32
    %x = arith.divf %we, %de : f32
    %fl = math.floor %x : f32
    %fr = arith.subf %x, %fl : f32
    %up = arith.cmpf olt, %u, %fr : f32
    %one = arith.constant 1.0 : f32
    %fl1 = arith.addf %fl, %one : f32
    %y = arith.select %up, %fl1, %fl : f32
    %q = arith.fptosi %y : f32 to i8
    %qr = arith.extsi %q : i8 to i32
    %c = arith.extui %up : i1 to i64
    dqt.yield %q, %qr, %c : i8, i32, i64
  }
  // CHECK: return %[[R]]#0, %[[R]]#1, %[[R]]#2
  return %r#0, %r#1, %r#2 : tensor<12xi8>, tensor<3xi32>, i64
}

// The state streams, as the rounding of two bf16 states draws them.
// CHECK-LABEL: func.func @philox_bits_state_stream
// CHECK: dqt.philox_bits state0 %{{.*}} : i16
// CHECK: dqt.philox_bits state1 %{{.*}} : i16
func.func @philox_bits_state_stream(%g: tensor<?xf32>, %seed: i64, %step: i64,
                                    %tid: i64) -> i64 {
  %r = dqt.fused_step ins(%g : tensor<?xf32>)
      scalars(%seed, %step, %tid : i64, i64, i64)
      combiners [#dqt.combiner<addi>] -> i64 {
  ^bb0(%ge: f32, %s: i64, %t: i64, %id: i64):
    %i = dqt.element_index : index
    %lo = dqt.philox_bits state0 %s, %t, %id at %i : i16
    %hi = dqt.philox_bits state1 %s, %t, %id at %i : i16
    %lo64 = arith.extui %lo : i16 to i64
    %hi64 = arith.extui %hi : i16 to i64
    %w64 = arith.addi %lo64, %hi64 : i64
    dqt.yield %w64 : i64
  }
  return %r : i64
}
