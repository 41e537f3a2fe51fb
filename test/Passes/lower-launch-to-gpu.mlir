// dqt-lower-launch-to-gpu: a bufferized dqt.launch becomes a
// gpu.launch_func of its gpu.func.
//
// RUN: dqt-opt %s --dqt-lower-launch-to-gpu | FileCheck %s --check-prefix=GPU

// A gpu.launch_func of the gpu.func, 256 threads per block, a heap
// partials buffer set to each combiner's identity first (0, INT64_MIN).
// GPU-LABEL: func.func @device_host(
// GPU-DAG: %[[ZERO:.*]] = arith.constant 0 : i64
// GPU-DAG: %[[MIN:.*]] = arith.constant -9223372036854775808 : i64
// GPU: %[[P:.*]] = memref.alloc() : memref<2xi64>
// GPU: %[[PD:.*]] = memref.cast %[[P]]
// GPU: memref.store %[[ZERO]], %[[PD]]
// GPU: memref.store %[[MIN]], %[[PD]]
// GPU: gpu.launch_func  @kernels::@step blocks in (%{{.*}}, %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}})  args(%arg0 : memref<?xf32>, %arg2 : memref<?xf32>, %[[PD]] : memref<?xi64>)
// GPU: memref.dealloc %[[PD]]
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @step(%g: memref<?xf32>, %m: memref<?xf32>, %p: memref<?xi64>) kernel {
      gpu.return
    }
  }
  func.func @device_host(%g: memref<?xf32>, %unused: memref<?xf32>, %m: memref<?xf32>) -> (i64, i8) {
    %r:2 = dqt.launch @kernels::@step(%g : memref<?xf32>) outs(%m : memref<?xf32>)
        combiners [#dqt.combiner<addi>, #dqt.combiner<maxsi>] -> i64, i8
    return %r#0, %r#1 : i64, i8
  }
}
