//===- Passes.td - dqt passes -------------------------------*- tablegen -*-===//
//
// The dqt passes: flags, summaries, descriptions with IR examples and options.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_PASSES
#define DQT_PASSES

include "mlir/Pass/PassBase.td"

def DQTFuseStep : Pass<"dqt-fuse-step", "ModuleOp"> {
  let summary = "Fuse each parameter's step into one dqt.fused_step";
  let description = [{
    Finds each connected chain of elementwise dqt ops, random streams
    (`dqt.uniform`, `dqt.random_bits`) and by-product reductions over tensors
    of one length and replaces it by a single `dqt.fused_step` whose body is
    the per-element scalar code (from `ElementwiseOpInterface`). No
    intermediate tensor survives: each input is read once, each output
    written once. An output that is the new value of an operand the chain
    reads only itself (the weights, the states) takes that operand as its
    destination (`outs`), so the kernel updates it in place; other outputs
    get a `tensor.empty` destination. The streams become `dqt.philox_bits`
    (weight, state0, state1) of the body's `dqt.element_index`.

    The lowerings make one kernel of the fused steps of a function; steps
    with the same configuration run in it as a multi-tensor step.

    ```mlir
    %w = dqt.dequantize %q, %d : tensor<?xi8>, f32 -> tensor<?xf32>
    %m1, %v1 = dqt.adam_moments %g, %m, %v, %b1, %b2 : ...
    %w1 = dqt.adam_apply %w, %m1, %v1, %a, %e, %wd : ...
    %q1 = dqt.stochastic_round %w1, %d1, %u grid<8> : ...
    // becomes
    %r:4 = dqt.fused_step ins(%g : tensor<?xf32>)
        scalars(%seed, %step, %tid, %d, ... : i64, i64, i64, f32, ...)
        outs(%q, %m, %v : tensor<?xi8>, tensor<?xf32>, tensor<?xf32>)
        combiners [#dqt.combiner<maxsi>] -> ... {...}
    ```
  }];
  let dependentDialects = ["arith::ArithDialect", "math::MathDialect",
                           "tensor::TensorDialect"];
}

def DQTExpandRng : Pass<"dqt-expand-rng"> {
  let summary = "Expand dqt.philox into arith integer ops";
  let description = [{
    Each `dqt.philox` becomes its rounds of `arith.mului_extended` (high and
    low words of the 32x32-bit products), `arith.xori` and key bumps, so the
    generator needs no runtime library on any target. A pattern set
    (`populateExpandRngPatterns`) run by the greedy driver, without folding.
  }];
  let dependentDialects = ["arith::ArithDialect"];
}

def DQTOutlineSteps : Pass<"dqt-outline-steps", "ModuleOp"> {
  let summary = "Move fused steps out of larger functions into kernels";
  let description = [{
    A function that is more than fused steps over its arguments (a training
    graph: forward, loss and backward in linalg around the step, `scf.for`
    over the steps) keeps a `dqt.launch` where its steps stood; the steps
    move into a private kernel function (`@<function>_step<k>`) of the form
    `dqt-lower-to-cpu` and `dqt-lower-to-gpu` compile. Steps of one block
    that share a configuration run as one multi-tensor kernel, launched
    where the last of them stood, when none reads another's result, no
    result is used before that point, and none writes in place a tensor
    another reads. Functions that already are kernels are left alone.

    The kernel takes what the steps read (each value once), then each
    destination as its own argument. Per-row destinations start from the
    combiner's identity (`linalg.fill`). Element tensors of dynamic length
    get a `cf.assert` that their lengths agree. A step that writes one
    tensor through two destinations, or writes in place a tensor it also
    reads, is an error: its kernel arguments would alias.

    ```mlir
    %g = tensor.collapse_shape %gw [[0, 1]] : tensor<2x8xf32> into tensor<16xf32>
    %r:4 = dqt.fused_step ins(%g : tensor<16xf32>) scalars(...)
        outs(%q, %m, %v : ...) combiners [#dqt.combiner<maxsi>] -> ... {...}
    // becomes
    %r:4 = dqt.launch @train_step_step0(%g, ... : tensor<16xf32>, ...)
        outs(%q, %m, %v : ...) combiners [#dqt.combiner<maxsi>] -> ...
    func.func private @train_step_step0(%g: tensor<16xf32>, ...) -> ... {
      %r:4 = dqt.fused_step ins(%g : tensor<16xf32>) ...
      return %r#0, %r#1, %r#2, %r#3 : ...
    }
    ```
  }];
  let dependentDialects = ["arith::ArithDialect", "cf::ControlFlowDialect",
                           "linalg::LinalgDialect", "tensor::TensorDialect",
                           "func::FuncDialect"];
}

def DQTLowerLaunchToCPU : Pass<"dqt-lower-launch-to-cpu", "ModuleOp"> {
  let summary = "Lower bufferized dqt.launch to calls of CPU chunk functions";
  let description = [{
    Each `dqt.launch` on memrefs calls its chunk function
    (`dqt-lower-to-cpu`) once, over all elements of all segments, with an
    `memref.alloca` partials buffer from which the reductions are read. A
    buffer of another layout than the kernel's goes through a contiguous
    copy. Host code's `dqt.next_delta` becomes arith.
  }];
  let dependentDialects = ["arith::ArithDialect", "memref::MemRefDialect",
                           "func::FuncDialect"];
}

def DQTLowerLaunchToGPU : Pass<"dqt-lower-launch-to-gpu", "ModuleOp"> {
  let summary = "Lower bufferized dqt.launch to gpu.launch_func";
  let description = [{
    Each `dqt.launch` on memrefs becomes a `gpu.launch_func` of its
    `gpu.func` (`dqt-lower-to-gpu`): 256 threads per block, one thread per
    group of 8 elements of the longest operand (at most 65535 blocks; the
    kernels loop over the grid), and a partials buffer set to each
    combiner's identity first. The host passes its buffers as they are:
    they must be memory the device can address (unified memory). Host
    code's `dqt.next_delta` becomes arith.
  }];
  let dependentDialects = ["arith::ArithDialect", "memref::MemRefDialect",
                           "gpu::GPUDialect"];
}

def DQTLowerToCPU : Pass<"dqt-lower-to-cpu", "ModuleOp"> {
  let summary = "Lower dqt.fused_step to a chunk function over memrefs";
  let description = [{
    Rewrites every function of `dqt.fused_step`s (plus a scalar prologue)
    into a function over memrefs that processes the global element chunk
    `[begin, end)` of its steps' elements, concatenated (the steps share one
    configuration; each is a segment). Its arguments are the kernel ABI
    (docs/design.md): the function's arguments in order, tensors as memrefs;
    one buffer per `tensor.empty` destination; then `begin`, `end` (index)
    and a `memref<?xi64>` that receives the chunk's partial reductions
    (segment-major; per-row reductions go to their destinations). The kernel
    carries `dqt.arg_origins`. Groups of 8 elements share
    one Philox block per stream (numerics contract v2). The main loop is
    explicit vector code over `vector-width` groups (8 x vector-width
    contiguous elements): one Philox call per stream on vector<vector-width x
    i32> whose words' 16-bit halves are interleaved into element order,
    contiguous vector loads and stores, and the body cloned on
    vectors; remaining groups, and the elements before the first and after
    the last whole group, run as scalar code. Memref arguments are
    `llvm.noalias` (buffers of different arguments never overlap; an in-place
    output shares its input's argument). Results are identical for any
    chunking and any vector width.
  }];
  let options = [
    Option<"vectorWidth", "vector-width", "unsigned", /*default=*/"4",
           "Groups of 8 elements per vector iteration (0: scalar groups)">
  ];
  let dependentDialects = ["arith::ArithDialect", "math::MathDialect",
                           "memref::MemRefDialect", "scf::SCFDialect",
                           "vector::VectorDialect", "func::FuncDialect",
                           "LLVM::LLVMDialect"];
}

def DQTLowerToGPU : Pass<"dqt-lower-to-gpu", "ModuleOp"> {
  let summary = "Lower dqt.fused_step to one GPU kernel";
  let description = [{
    Outlines every function of fused steps into a `gpu.func` kernel in a
    `gpu.module`, with the CPU kernel's arguments (the kernel ABI) minus
    `begin` and `end`: per step, a grid-stride loop where each thread handles
    a group of 8 consecutive elements (one Philox call per stream, two
    128-bit vector loads of f32 data), per-thread partial reductions combined with `gpu.all_reduce` and
    one global atomic per block. `math.sqrt` becomes `llvm.nvvm.sqrt.rn.f`
    (the IEEE square root required by the numerics contract; the libdevice
    default is approximate), by `populateGpuNativeMathPatterns`.
  }];
  let dependentDialects = ["arith::ArithDialect", "math::MathDialect",
                           "memref::MemRefDialect", "scf::SCFDialect",
                           "vector::VectorDialect", "gpu::GPUDialect",
                           "LLVM::LLVMDialect", "func::FuncDialect"];
}

def DQTEmulateGPU : Pass<"dqt-emulate-gpu", "ModuleOp"> {
  let summary = "Turn GPU kernels into host functions for the GPU emulator";
  let description = [{
    Makes the kernels of `dqt-lower-to-gpu` executable on the CPU with GPU
    semantics, so tests run the very `gpu.func` a GPU would (as Triton's
    interpreter and Numba's CUDA simulator do). The emulator runtime
    (`dqt::emulateGpuKernel`, lib/GpuEmulator.cpp) calls the resulting host
    function once per GPU thread, every thread of a block concurrently.

    First the in-dialect rewrites `convert-gpu-to-nvvm` runs
    (`populateGpuRewritePatterns`): `gpu.all_reduce` becomes upstream's warp
    shuffles, a workgroup buffer and barriers, so those are what executes.
    Then each `gpu.func` of each `gpu.module` becomes a `func.func` of the
    same name in the host module, with the same arguments (its `dqt.*`
    attributes, such as the kernel ABI's `dqt.arg_origins`, carry over) and
    one more: the block's workgroup memory, a `memref<?xi8>` of 48 KiB (CUDA's
    static shared memory limit). Workgroup attributions become `memref.view`s
    of it, private attributions `memref.alloca`s. `gpu.thread_id`,
    `gpu.block_id`, `gpu.block_dim`, `gpu.grid_dim`, `gpu.barrier` and
    `gpu.shuffle` (32-bit values; result and `valid` packed in an i64)
    become calls of the runtime's functions (dqt/Passes/GpuEmulationAbi.h);
    `llvm.nvvm.sqrt.rn.f` becomes `math.sqrt` (both IEEE, rounded to
    nearest). Atomics stay atomics.

    Refused with a diagnostic, before anything changes: other GPU and NVVM
    ops (non-uniform `gpu.all_reduce`, `gpu.subgroup_reduce`, ...), NVVM
    intrinsics without an exact CPU equivalent, shuffles of other widths,
    more workgroup memory than 48 KiB, and `gpu.launch_func` (the runtime
    launches kernels).

    ```mlir
    gpu.module @dqt_kernels {
      gpu.func @k(%out: memref<?xi32>) kernel {
        %t = gpu.thread_id x
        gpu.barrier
        gpu.return
      }
    }
    // becomes
    func.func private @__dqt_emu_barrier()
    func.func private @__dqt_emu_thread_id(i32) -> index
    func.func @k(%out: memref<?xi32>, %workgroup: memref<?xi8>) {
      %c0_i32 = arith.constant 0 : i32
      %t = call @__dqt_emu_thread_id(%c0_i32) : (i32) -> index
      call @__dqt_emu_barrier() : () -> ()
      return
    }
    ```
  }];
  let dependentDialects = ["arith::ArithDialect", "cf::ControlFlowDialect",
                           "func::FuncDialect", "math::MathDialect",
                           "memref::MemRefDialect"];
}

#endif // DQT_PASSES
