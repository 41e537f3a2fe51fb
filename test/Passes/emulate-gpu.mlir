// dqt-emulate-gpu turns a gpu.func into a host function that the GPU
// emulator runs once per GPU thread: the same arguments plus the block's
// workgroup buffer (memref<?xi8>, carved into the workgroup attributions by
// memref.view), thread/block indices, barriers and shuffles as calls into the
// emulator runtime, gpu.all_reduce expanded first by upstream's own patterns
// (shuffles, a workgroup buffer, barriers: what convert-gpu-to-nvvm runs),
// llvm.nvvm.sqrt.rn.f as math.sqrt (both IEEE), atomics kept. The kernel's
// dqt attributes (the kernel ABI's dqt.arg_origins) carry over.
//
// RUN: dqt-opt %s --dqt-emulate-gpu | FileCheck %s \
// RUN:   --implicit-check-not=gpu. --implicit-check-not=llvm.nvvm \
// RUN:   --implicit-check-not="address_space<workgroup>"
//
// dqt-compile-gpu-emulated goes on to the LLVM dialect (the host lowering of
// dqt-compile-cpu): what the emulator JIT-compiles.
// RUN: dqt-opt %s --dqt-compile-gpu-emulated | FileCheck %s --check-prefix=LLVM \
// RUN:   --implicit-check-not=gpu. --implicit-check-not=memref. \
// RUN:   --implicit-check-not=func.func

// CHECK-NOT: gpu.container_module
// CHECK-DAG: func.func private @__dqt_emu_thread_id(i32) -> index
// CHECK-DAG: func.func private @__dqt_emu_block_id(i32) -> index
// CHECK-DAG: func.func private @__dqt_emu_block_dim(i32) -> index
// CHECK-DAG: func.func private @__dqt_emu_grid_dim(i32) -> index
// CHECK-DAG: func.func private @__dqt_emu_barrier()
// CHECK-DAG: func.func private @__dqt_emu_shuffle(i32, i32, i32, i32) -> i64
// CHECK-LABEL: func.func @step(
// CHECK-SAME: %[[X:[^:]*]]: memref<?xf32>, %[[PART:[^:]*]]: memref<?xi64>, %[[WG:[^:]*]]: memref<?xi8>)
// CHECK-SAME: attributes {dqt.arg_origins = array<i64: 0>}
// The attribution first, then all_reduce's buffer, 16-byte aligned.
// CHECK: %[[TILE:.*]] = memref.view %[[WG]][%{{.*}}][] : memref<?xi8> to memref<4xf32>
// CHECK: %[[RED:.*]] = memref.view %[[WG]][%c16][] : memref<?xi8> to memref<32xi32>
// CHECK: %[[TID:.*]] = call @__dqt_emu_thread_id(%{{.*}}) : (i32) -> index
// CHECK: call @__dqt_emu_block_id(
// CHECK: call @__dqt_emu_block_dim(
// CHECK: call @__dqt_emu_grid_dim(
// CHECK: %[[V:.*]] = memref.load %[[X]]
// CHECK: %[[R:.*]] = math.sqrt %[[V]] : f32
// Target-independent intrinsics are the CPU's too.
// CHECK: %[[F:.*]] = llvm.call_intrinsic "llvm.floor.f32"(%[[R]])
// CHECK: memref.store %[[F]], %[[TILE]]
// CHECK: call @__dqt_emu_barrier() : () -> ()
// CHECK: memref.load %[[TILE]]
// The all-reduce: a 32-bit shuffle (value, offset, width, mode 0 = xor),
// its value the low and `valid` bit 32 of the i64 result.
// CHECK: %[[S:.*]] = call @__dqt_emu_shuffle(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (i32, i32, i32, i32) -> i64
// CHECK-NEXT: arith.trunci %[[S]] : i64 to i32
// CHECK: %[[HI:.*]] = arith.shrui %[[S]], %{{.*}} : i64
// CHECK-NEXT: arith.trunci %[[HI]] : i64 to i1
// CHECK: memref.store %{{.*}}, %[[RED]]
// CHECK: call @__dqt_emu_barrier() : () -> ()
// CHECK: memref.load %[[RED]]
// Atomics stay atomics; gpu.return is a return.
// CHECK: memref.atomic_rmw maxs %{{.*}}, %[[PART]]
// CHECK: return

// LLVM-DAG: llvm.func @__dqt_emu_shuffle(i32, i32, i32, i32) -> i64
// LLVM-DAG: llvm.func @__dqt_emu_barrier()
// LLVM-LABEL: llvm.func @step(
// LLVM: llvm.call @__dqt_emu_thread_id
// LLVM: llvm.intr.sqrt
// LLVM: llvm.call @__dqt_emu_barrier()
// LLVM: llvm.call @__dqt_emu_shuffle
// LLVM: llvm.atomicrmw max

module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @step(%x: memref<?xf32>, %partials: memref<?xi64>)
        workgroup(%tile: memref<4xf32, #gpu.address_space<workgroup>>)
        kernel attributes {dqt.arg_origins = array<i64: 0>} {
      %tid = gpu.thread_id x
      %bid = gpu.block_id x
      %bdim = gpu.block_dim x
      %gdim = gpu.grid_dim x
      %t = arith.muli %bid, %bdim : index
      %gtid = arith.addi %t, %tid : index
      %stride = arith.muli %bdim, %gdim : index
      %end = arith.addi %gtid, %stride : index
      %v = memref.load %x[%gtid] : memref<?xf32>
      %r = llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"(%v) : (f32) -> f32
      %f = llvm.call_intrinsic "llvm.floor.f32"(%r) : (f32) -> f32
      %c0 = arith.constant 0 : index
      memref.store %f, %tile[%c0] : memref<4xf32, #gpu.address_space<workgroup>>
      gpu.barrier
      %w = memref.load %tile[%c0] : memref<4xf32, #gpu.address_space<workgroup>>
      memref.store %w, %x[%end] : memref<?xf32>
      %i = arith.fptosi %f : f32 to i32
      %m = gpu.all_reduce maxsi %i uniform {} : (i32) -> i32
      %m64 = arith.extsi %m : i32 to i64
      %old = memref.atomic_rmw maxs %m64, %partials[%c0] : (i64, memref<?xi64>) -> i64
      gpu.return
    }
  }
}
