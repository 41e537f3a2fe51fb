// RUN: dqt-opt %s -split-input-file -verify-diagnostics

// The verifiers of packed ternary storage: one reason per case.

func.func @unpack_wrong_bytes(%p: tensor<2xi8>, %g: tensor<10xf32>) -> tensor<10xi8> {
  // expected-error @+1 {{'dqt.unpack_ternary' op packed storage of 10 elements has 3 bytes, got 2}}
  %q = dqt.unpack_ternary %p like %g : tensor<2xi8>, tensor<10xf32> -> tensor<10xi8>
  return %q : tensor<10xi8>
}

// -----

func.func @pack_wrong_bytes(%q: tensor<8xi8>) -> tensor<3xi8> {
  // expected-error @+1 {{'dqt.pack_ternary' op packed storage of 8 elements has 2 bytes, got 3}}
  %p = dqt.pack_ternary %q : tensor<8xi8> -> tensor<3xi8>
  return %p : tensor<3xi8>
}

