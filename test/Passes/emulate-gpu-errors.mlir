// dqt-emulate-gpu refuses, with a located diagnostic, what it cannot execute
// with GPU semantics on the CPU.
//
// RUN: dqt-opt %s -split-input-file -verify-diagnostics --dqt-emulate-gpu

gpu.module @kernels {
  gpu.func @non_uniform(%x: i32) kernel {
    // expected-error @+1 {{'gpu.all_reduce' op is not emulated: upstream lowers uniform all-reductions only}}
    %r = gpu.all_reduce add %x {} : (i32) -> i32
    gpu.return
  }
}

// -----

gpu.module @kernels {
  gpu.func @approximate(%x: f32) kernel {
    // expected-error @+1 {{'llvm.call_intrinsic' op 'llvm.nvvm.rsqrt.approx.f' has no exact CPU equivalent}}
    %r = llvm.call_intrinsic "llvm.nvvm.rsqrt.approx.f"(%x) : (f32) -> f32
    gpu.return
  }
}

// -----

gpu.module @kernels {
  gpu.func @narrow_shuffle(%x: f16, %out: memref<?xf16>) kernel {
    %c1 = arith.constant 1 : i32
    %c32 = arith.constant 32 : i32
    // expected-error @+1 {{'gpu.shuffle' op of 'f16' is not emulated: 32-bit values only (as NVVM's shfl)}}
    %r, %valid = gpu.shuffle xor %x, %c1, %c32 : f16
    %c0 = arith.constant 0 : index
    memref.store %r, %out[%c0] : memref<?xf16>
    gpu.return
  }
}

// -----

gpu.module @kernels {
  gpu.func @lane(%out: memref<?xindex>) kernel {
    // expected-error @+1 {{'gpu.lane_id' op is not emulated}}
    %l = gpu.lane_id
    %c0 = arith.constant 0 : index
    memref.store %l, %out[%c0] : memref<?xindex>
    gpu.return
  }
}

// -----

gpu.module @kernels {
  // expected-error @+1 {{'gpu.func' op needs 65536 bytes of workgroup memory; the emulator has 49152 per block (CUDA's static shared memory limit)}}
  gpu.func @too_much_shared(%x: f32)
      workgroup(%tile: memref<16384xf32, #gpu.address_space<workgroup>>) kernel {
    %c0 = arith.constant 0 : index
    memref.store %x, %tile[%c0] : memref<16384xf32, #gpu.address_space<workgroup>>
    gpu.return
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @k() kernel {
      gpu.return
    }
  }
  func.func @host() {
    %c1 = arith.constant 1 : index
    // expected-error @+1 {{'gpu.launch_func' op is not emulated: the emulator runtime launches kernels (dqt::emulateGpuKernel)}}
    gpu.launch_func @kernels::@k blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    return
  }
}
