// dqt-fuse-step refuses packed weights it cannot write in place.
//
// RUN: dqt-opt %s -split-input-file -verify-diagnostics --dqt-fuse-step

// The packed result is not the new value of unpacked weights.
func.func @pack_of_other(%p: tensor<?xi8>, %g: tensor<?xf32>, %r: tensor<?xi8>)
    -> tensor<?xi8> {
  %q = dqt.unpack_ternary %p like %g : tensor<?xi8>, tensor<?xf32> -> tensor<?xi8>
  %q1 = dqt.mask_nonfinite %g, %r, %r : tensor<?xf32>, tensor<?xi8>
  // expected-error @+1 {{'dqt.pack_ternary' op cannot be fused: a packed result must be the new value of weights unpacked by dqt.unpack_ternary in the same step}}
  %p1 = dqt.pack_ternary %q1 : tensor<?xi8> -> tensor<?xi8>
  return %p1 : tensor<?xi8>
}

// -----

// The old packed weights are still read after the step.
func.func @packed_escapes(%p: tensor<?xi8>, %g: tensor<?xf32>, %r: tensor<?xi8>)
    -> (tensor<?xi8>, tensor<?xi8>) {
  %q = dqt.unpack_ternary %p like %g : tensor<?xi8>, tensor<?xf32> -> tensor<?xi8>
  %q1 = dqt.mask_nonfinite %g, %r, %q : tensor<?xf32>, tensor<?xi8>
  // expected-error @+1 {{'dqt.pack_ternary' op cannot be fused: its packed weights are read outside the step, so they cannot be overwritten in place}}
  %p1 = dqt.pack_ternary %q1 : tensor<?xi8> -> tensor<?xi8>
  return %p1, %p : tensor<?xi8>, tensor<?xi8>
}
