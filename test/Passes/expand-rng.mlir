// dqt-expand-rng turns each dqt.philox into plain arith integer ops: per round
// two arith.mului_extended (the 32x32->64-bit products as high and low
// words), xors with the key, then the Weyl key bump.
//
// RUN: dqt-opt %s --dqt-expand-rng | FileCheck %s --implicit-check-not=dqt.philox
//
// Folding the expansion of constant inputs reproduces the Random123
// known-answer vectors of Philox4x32-10 (kat_vectors: counter, key -> words).
// RUN: dqt-opt %s --dqt-expand-rng --canonicalize | FileCheck %s --check-prefix=KAT

// Philox4x32 multipliers 0xD2511F53, 0xCD9E8D57 and Weyl constants
// 0x9E3779B9, 0xBB67AE85 (as signed i32).
// CHECK-LABEL: func.func @philox_10_rounds
// CHECK-SAME: (%[[K0:[^:]*]]: i32, %[[K1:[^:]*]]: i32, %[[C0:[^:]*]]: i32, %[[C1:[^:]*]]: i32, %[[C2:[^:]*]]: i32, %[[C3:[^:]*]]: i32)
// CHECK-DAG: %[[M0:.*]] = arith.constant -766435501 : i32
// CHECK-DAG: %[[M1:.*]] = arith.constant -845247145 : i32
// CHECK-DAG: %[[W0:.*]] = arith.constant -1640531527 : i32
// CHECK-DAG: %[[W1:.*]] = arith.constant -1150833019 : i32
// Round 1: counter words 0 and 2 are multiplied; 1 and 3 and the key are
// xored into the high words.
// CHECK: %[[LO0:[^,]*]], %[[HI0:[^ ]*]] = arith.mului_extended %[[M0]], %[[C0]] : i32
// CHECK-NEXT: %[[LO1:[^,]*]], %[[HI1:[^ ]*]] = arith.mului_extended %[[M1]], %[[C2]] : i32
// CHECK-NEXT: %[[X0:.*]] = arith.xori %[[HI1]], %[[C1]] : i32
// CHECK-NEXT: %[[R0:.*]] = arith.xori %[[X0]], %[[K0]] : i32
// CHECK-NEXT: %[[X2:.*]] = arith.xori %[[HI0]], %[[C3]] : i32
// CHECK-NEXT: %[[R2:.*]] = arith.xori %[[X2]], %[[K1]] : i32
// CHECK-NEXT: %[[KB0:.*]] = arith.addi %[[K0]], %[[W0]] : i32
// CHECK-NEXT: %[[KB1:.*]] = arith.addi %[[K1]], %[[W1]] : i32
// Round 2 reads round 1's words and the bumped key.
// CHECK-NEXT: arith.mului_extended %[[M0]], %[[R0]] : i32
// CHECK-NEXT: %{{[^,]*}}, %[[HI3:[^ ]*]] = arith.mului_extended %[[M1]], %[[R2]] : i32
// CHECK-NEXT: %[[X4:.*]] = arith.xori %[[HI3]], %[[LO1]] : i32
// CHECK-NEXT: arith.xori %[[X4]], %[[KB0]] : i32
// 2 products per round, 10 rounds: 20 in all (4 checked above).
// CHECK-COUNT-16: arith.mului_extended
// CHECK-NOT: arith.mului_extended
// CHECK: return
func.func @philox_10_rounds(%k0: i32, %k1: i32, %c0: i32, %c1: i32, %c2: i32, %c3: i32)
    -> (i32, i32, i32, i32) {
  %r:4 = dqt.philox key(%k0, %k1) counter(%c0, %c1, %c2, %c3)
  return %r#0, %r#1, %r#2, %r#3 : i32, i32, i32, i32
}

// `rounds` is honoured: 3 rounds, 6 products.
// CHECK-LABEL: func.func @philox_3_rounds
// CHECK-COUNT-6: arith.mului_extended
// CHECK-NOT: arith.mului_extended
// CHECK: return
func.func @philox_3_rounds(%k0: i32, %k1: i32, %c0: i32, %c1: i32, %c2: i32, %c3: i32)
    -> (i32, i32, i32, i32) {
  %r:4 = dqt.philox key(%k0, %k1) counter(%c0, %c1, %c2, %c3) {rounds = 3}
  return %r#0, %r#1, %r#2, %r#3 : i32, i32, i32, i32
}

// Every philox of a function is expanded, also one nested in a region.
// CHECK-LABEL: func.func @philox_in_region
// CHECK: scf.if
// CHECK-COUNT-20: arith.mului_extended
// CHECK-NOT: arith.mului_extended
// CHECK: return
func.func @philox_in_region(%p: i1, %k: i32, %c: i32) -> (i32, i32, i32, i32) {
  %w:4 = scf.if %p -> (i32, i32, i32, i32) {
    %r:4 = dqt.philox key(%k, %k) counter(%c, %c, %c, %c)
    scf.yield %r#0, %r#1, %r#2, %r#3 : i32, i32, i32, i32
  } else {
    scf.yield %c, %c, %c, %c : i32, i32, i32, i32
  }
  return %w#0, %w#1, %w#2, %w#3 : i32, i32, i32, i32
}

// On vector<8xi32> words (the CPU's vector blocks) the expansion runs in
// 64-bit lanes: each word is zero-extended into the low half of an i64 lane,
// a product is one `(x & 0xffffffff) * M` (x86's vpmuludq), its high word a
// shift, and the words are truncated back once at the end. 20 products, no
// mului_extended, no i32 op before the final truncations.
// CHECK-LABEL: func.func @philox_vector
// CHECK-SAME: (%[[K0:[^:]*]]: vector<8xi32>, %[[K1:[^:]*]]: vector<8xi32>, %[[C0:[^:]*]]: vector<8xi32>, %[[C1:[^:]*]]: vector<8xi32>, %[[C2:[^:]*]]: vector<8xi32>, %[[C3:[^:]*]]: vector<8xi32>)
// CHECK-DAG: %[[LOW:.*]] = arith.constant dense<4294967295> : vector<8xi64>
// CHECK-DAG: %[[S32:.*]] = arith.constant dense<32> : vector<8xi64>
// CHECK-DAG: %[[M0:.*]] = arith.constant dense<3528531795> : vector<8xi64>
// CHECK-DAG: %[[M1:.*]] = arith.constant dense<3449720151> : vector<8xi64>
// CHECK-DAG: %[[WK0:.*]] = arith.constant dense<2654435769> : vector<8xi64>
// CHECK-DAG: %[[WK1:.*]] = arith.constant dense<3144134277> : vector<8xi64>
// CHECK: %[[EK0:.*]] = arith.extui %[[K0]] : vector<8xi32> to vector<8xi64>
// CHECK-NEXT: %[[EK1:.*]] = arith.extui %[[K1]]
// CHECK-NEXT: %[[EC0:.*]] = arith.extui %[[C0]]
// CHECK-NEXT: %[[EC1:.*]] = arith.extui %[[C1]]
// CHECK-NEXT: %[[EC2:.*]] = arith.extui %[[C2]]
// CHECK-NEXT: %[[EC3:.*]] = arith.extui %[[C3]]
// CHECK-NEXT: %[[A0:.*]] = arith.andi %[[EC0]], %[[LOW]] : vector<8xi64>
// CHECK-NEXT: %[[P0:.*]] = arith.muli %[[A0]], %[[M0]] : vector<8xi64>
// CHECK-NEXT: %[[A2:.*]] = arith.andi %[[EC2]], %[[LOW]] : vector<8xi64>
// CHECK-NEXT: %[[P1:.*]] = arith.muli %[[A2]], %[[M1]] : vector<8xi64>
// CHECK-NEXT: %[[H1:.*]] = arith.shrui %[[P1]], %[[S32]] : vector<8xi64>
// CHECK-NEXT: %[[X0:.*]] = arith.xori %[[H1]], %[[EC1]] : vector<8xi64>
// CHECK-NEXT: %[[R0:.*]] = arith.xori %[[X0]], %[[EK0]] : vector<8xi64>
// CHECK-NEXT: %[[H0:.*]] = arith.shrui %[[P0]], %[[S32]] : vector<8xi64>
// CHECK-NEXT: %[[X2:.*]] = arith.xori %[[H0]], %[[EC3]] : vector<8xi64>
// CHECK-NEXT: %[[R2:.*]] = arith.xori %[[X2]], %[[EK1]] : vector<8xi64>
// CHECK-NEXT: %[[KB0:.*]] = arith.addi %[[EK0]], %[[WK0]] : vector<8xi64>
// CHECK-NEXT: %[[KB1:.*]] = arith.addi %[[EK1]], %[[WK1]] : vector<8xi64>
// CHECK-NEXT: %[[B0:.*]] = arith.andi %[[R0]], %[[LOW]] : vector<8xi64>
// CHECK-NEXT: arith.muli %[[B0]], %[[M0]] : vector<8xi64>
// CHECK-NEXT: %[[B2:.*]] = arith.andi %[[R2]], %[[LOW]] : vector<8xi64>
// CHECK-NEXT: arith.muli %[[B2]], %[[M1]] : vector<8xi64>
// CHECK-COUNT-16: arith.muli {{.*}} : vector<8xi64>
// CHECK-NOT: arith.muli
// CHECK-NOT: arith.mului_extended
// CHECK-NOT: : vector<8xi32>{{$}}
// CHECK-COUNT-4: arith.trunci %{{.*}} : vector<8xi64> to vector<8xi32>
// CHECK-NEXT: return %{{.*}} : vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>{{$}}
func.func @philox_vector(%k0: vector<8xi32>, %k1: vector<8xi32>, %c0: vector<8xi32>,
                         %c1: vector<8xi32>, %c2: vector<8xi32>, %c3: vector<8xi32>)
    -> (vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>) {
  %r:4 = dqt.philox key(%k0, %k1) counter(%c0, %c1, %c2, %c3) : vector<8xi32>
  return %r#0, %r#1, %r#2, %r#3 : vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>
}

// counter 0, key 0 -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8
// KAT-LABEL: func.func @kat_zero
// KAT-DAG: %[[A:.*]] = arith.constant 1713891541 : i32
// KAT-DAG: %[[B:.*]] = arith.constant -513161843 : i32
// KAT-DAG: %[[C:.*]] = arith.constant -1135104948 : i32
// KAT-DAG: %[[D:.*]] = arith.constant -1694442536 : i32
// KAT: return %[[A]], %[[B]], %[[C]], %[[D]] : i32, i32, i32, i32
func.func @kat_zero() -> (i32, i32, i32, i32) {
  %z = arith.constant 0 : i32
  %r:4 = dqt.philox key(%z, %z) counter(%z, %z, %z, %z)
  return %r#0, %r#1, %r#2, %r#3 : i32, i32, i32, i32
}

// counter ffffffff x4, key ffffffff x2 -> 408f276d 41c83b0e a20bc7c6 6d5451fd
// KAT-LABEL: func.func @kat_ones
// KAT-DAG: %[[A:.*]] = arith.constant 1083123565 : i32
// KAT-DAG: %[[B:.*]] = arith.constant 1103641358 : i32
// KAT-DAG: %[[C:.*]] = arith.constant -1576286266 : i32
// KAT-DAG: %[[D:.*]] = arith.constant 1834242557 : i32
// KAT: return %[[A]], %[[B]], %[[C]], %[[D]] : i32, i32, i32, i32
func.func @kat_ones() -> (i32, i32, i32, i32) {
  %f = arith.constant -1 : i32
  %r:4 = dqt.philox key(%f, %f) counter(%f, %f, %f, %f)
  return %r#0, %r#1, %r#2, %r#3 : i32, i32, i32, i32
}

// counter 243f6a88 85a308d3 13198a2e 03707344, key a4093822 299f31d0 (digits
// of pi) -> d16cfe09 94fdcceb 5001e420 24126ea1
// KAT-LABEL: func.func @kat_pi
// KAT-DAG: %[[A:.*]] = arith.constant -781386231 : i32
// KAT-DAG: %[[B:.*]] = arith.constant -1795306261 : i32
// KAT-DAG: %[[C:.*]] = arith.constant 1342301216 : i32
// KAT-DAG: %[[D:.*]] = arith.constant 605187745 : i32
// KAT: return %[[A]], %[[B]], %[[C]], %[[D]] : i32, i32, i32, i32
func.func @kat_pi() -> (i32, i32, i32, i32) {
  %c0 = arith.constant 0x243f6a88 : i32
  %c1 = arith.constant 0x85a308d3 : i32
  %c2 = arith.constant 0x13198a2e : i32
  %c3 = arith.constant 0x03707344 : i32
  %k0 = arith.constant 0xa4093822 : i32
  %k1 = arith.constant 0x299f31d0 : i32
  %r:4 = dqt.philox key(%k0, %k1) counter(%c0, %c1, %c2, %c3)
  return %r#0, %r#1, %r#2, %r#3 : i32, i32, i32, i32
}

// The lanes of a vector Philox are independent blocks: lanes 0, 1 and 2 carry
// the three known-answer inputs above and fold to their three answers.
// KAT-LABEL: func.func @kat_vector
// KAT-DAG: %[[A:.*]] = arith.constant dense<[1713891541, 1083123565, -781386231]> : vector<3xi32>
// KAT-DAG: %[[B:.*]] = arith.constant dense<[-513161843, 1103641358, -1795306261]> : vector<3xi32>
// KAT-DAG: %[[C:.*]] = arith.constant dense<[-1135104948, -1576286266, 1342301216]> : vector<3xi32>
// KAT-DAG: %[[D:.*]] = arith.constant dense<[-1694442536, 1834242557, 605187745]> : vector<3xi32>
// KAT: return %[[A]], %[[B]], %[[C]], %[[D]] : vector<3xi32>, vector<3xi32>, vector<3xi32>, vector<3xi32>
func.func @kat_vector() -> (vector<3xi32>, vector<3xi32>, vector<3xi32>, vector<3xi32>) {
  %c0 = arith.constant dense<[0, -1, 0x243f6a88]> : vector<3xi32>
  %c1 = arith.constant dense<[0, -1, 0x85a308d3]> : vector<3xi32>
  %c2 = arith.constant dense<[0, -1, 0x13198a2e]> : vector<3xi32>
  %c3 = arith.constant dense<[0, -1, 0x03707344]> : vector<3xi32>
  %k0 = arith.constant dense<[0, -1, 0xa4093822]> : vector<3xi32>
  %k1 = arith.constant dense<[0, -1, 0x299f31d0]> : vector<3xi32>
  %r:4 = dqt.philox key(%k0, %k1) counter(%c0, %c1, %c2, %c3) : vector<3xi32>
  return %r#0, %r#1, %r#2, %r#3 : vector<3xi32>, vector<3xi32>, vector<3xi32>, vector<3xi32>
}
