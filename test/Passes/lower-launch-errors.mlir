// dqt-lower-launch-to-cpu / -gpu need bufferized launches of lowered
// kernels, and say which is missing.
//
// RUN: dqt-opt %s -split-input-file -verify-diagnostics --dqt-lower-launch-to-cpu

func.func private @kernel(tensor<?xf32>, tensor<?xf32>) -> tensor<?xf32>

func.func @not_bufferized(%g: tensor<?xf32>, %m: tensor<?xf32>) -> tensor<?xf32> {
  // expected-error @+1 {{'dqt.launch' op still has tensor operands; bufferize it first (one-shot-bufferize)}}
  %r = dqt.launch @kernel(%g : tensor<?xf32>) outs(%m : tensor<?xf32>)
      combiners [] -> tensor<?xf32>
  return %r : tensor<?xf32>
}

// -----

// The tensor-level kernel (two arguments), not the chunk function (five).
func.func private @kernel(memref<?xf32>, memref<?xf32>)

func.func @kernel_not_lowered(%g: memref<?xf32>, %m: memref<?xf32>) {
  // expected-error @+1 {{'dqt.launch' op kernel '@kernel' must be a lowered step kernel taking 5 arguments; run the kernel lowering first}}
  dqt.launch @kernel(%g : memref<?xf32>) outs(%m : memref<?xf32>) combiners []
  return
}
