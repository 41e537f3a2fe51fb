// dqt-lower-launch-to-cpu: a bufferized dqt.launch becomes a call of its
// CPU chunk function.
//
// RUN: dqt-opt %s --dqt-lower-launch-to-cpu | FileCheck %s --check-prefix=CPU

// The chunk function runs once over all elements ([0, INT64_MAX) clamped by
// each segment), the reductions read from a stack partials buffer; a
// strided destination goes through a contiguous copy and back.
// CPU-LABEL: func.func @host(
// CPU-DAG: %[[C0:.*]] = arith.constant 0 : index
// CPU-DAG: %[[END:.*]] = arith.constant 9223372036854775807 : index
// CPU: %[[COPY:.*]] = memref.alloc(%{{.*}}) : memref<?xf32>
// CPU: memref.copy %arg1, %[[COPY]]
// CPU: %[[P:.*]] = memref.alloca() : memref<2xi64>
// CPU: %[[PD:.*]] = memref.cast %[[P]] : memref<2xi64> to memref<?xi64>
// CPU: call @chunk(%arg0, %[[COPY]], %[[C0]], %[[END]], %[[PD]])
// CPU: memref.copy %[[COPY]], %arg1
// CPU: memref.dealloc %[[COPY]]
// CPU: %[[R0:.*]] = memref.load %[[PD]][%[[C0]]] : memref<?xi64>
// CPU: %[[R1:.*]] = memref.load %[[PD]][%{{.*}}] : memref<?xi64>
// CPU: %[[T1:.*]] = arith.trunci %[[R1]] : i64 to i8
// CPU: return %[[R0]], %[[T1]] : i64, i8
func.func private @chunk(memref<?xf32>, memref<?xf32>, index, index, memref<?xi64>)

func.func @host(%g: memref<?xf32>, %m: memref<?xf32, strided<[2]>>) -> (i64, i8) {
  %r:2 = dqt.launch @chunk(%g : memref<?xf32>) outs(%m : memref<?xf32, strided<[2]>>)
      combiners [#dqt.combiner<addi>, #dqt.combiner<maxsi>] -> i64, i8
  return %r#0, %r#1 : i64, i8
}

