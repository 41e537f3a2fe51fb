//===- Passes.td - dqt passes -------------------------------*- tablegen -*-===//

#ifndef DQT_PASSES
#define DQT_PASSES

include "mlir/Pass/PassBase.td"

def DQTFuseStep : Pass<"dqt-fuse-step", "ModuleOp"> {
  let summary = "Fuse a parameter's step (and a group's) into one dqt.fused_step";
  let description = [{
    Finds each connected chain of elementwise dqt ops, `dqt.uniform` and
    by-product reductions over tensors of one length and replaces it by a
    single `dqt.fused_step` whose body is the per-element scalar code (from
    `ElementwiseOpInterface`). No intermediate tensor survives: each input is
    read once, each output written once. With `group` (the default), fused
    steps of one function with identical bodies and signatures are then merged
    into one multi-segment op: a multi-tensor step, one kernel per
    configuration.

    ```mlir
    %w = dqt.dequantize %q, %d : tensor<?xi8>, f32 -> tensor<?xf32>
    %m1, %v1 = dqt.adam_moments %g, %m, %v, %b1, %b2 : ...
    %w1 = dqt.adam_apply %w, %m1, %v1, %a, %e, %wd : ...
    %q1 = dqt.stochastic_round %w1, %d1, %u {bits = 8} : ...
    // becomes
    %r:4 = dqt.fused_step(%q, %g, %m, %v, ... ) {segments = 1, tensors = 4,
        rng, tied = array<i64: 0, 2, 3>, reductions = [...]} -> (...) {...}
    ```
  }];
  let options = [
    Option<"group", "group", "bool", /*default=*/"true",
           "Merge fused steps with identical bodies into one multi-tensor op">
  ];
  let dependentDialects = ["arith::ArithDialect", "math::MathDialect"];
}

def DQTExpandRng : Pass<"dqt-expand-rng"> {
  let summary = "Expand dqt.philox into arith integer ops";
  let description = [{
    Each `dqt.philox` becomes its rounds of `arith.mului_extended` (high and
    low words of the 32x32-bit products), `arith.xori` and key bumps, so the
    generator needs no runtime library on any target.
  }];
  let dependentDialects = ["arith::ArithDialect"];
}

def DQTLowerToCPU : Pass<"dqt-lower-to-cpu", "ModuleOp"> {
  let summary = "Lower dqt.fused_step to a chunk function over memrefs";
  let description = [{
    Rewrites every function whose body is a `dqt.fused_step` (plus scalar
    prologue) into a function over memrefs that processes the global element
    chunk `[begin, end)` of the concatenated segments: arguments are, per
    segment, one memref per tensor operand and per untied output, then the
    scalars; then `begin`, `end` (index) and a `memref<?xi64>` that receives
    the chunk's partial reductions (segment-major). Groups of 4 elements share
    one Philox call. The main loop is explicit vector code over
    `vector-width` groups (4 x vector-width contiguous elements): one Philox
    call on vector<vector-width x i32> whose words are interleaved into
    element order, contiguous vector loads and stores, and the body cloned on
    vectors; remaining groups, and the elements before the first and after
    the last whole group, run as scalar code. Memref arguments are
    `llvm.noalias` (buffers of different arguments never overlap; an in-place
    output shares its input's argument). Results are identical for any
    chunking and any vector width.
  }];
  let options = [
    Option<"vectorWidth", "vector-width", "unsigned", /*default=*/"8",
           "Groups of 4 elements per vector iteration (0: scalar groups)">
  ];
  let dependentDialects = ["arith::ArithDialect", "math::MathDialect",
                           "memref::MemRefDialect", "scf::SCFDialect",
                           "vector::VectorDialect", "func::FuncDialect",
                           "LLVM::LLVMDialect"];
}

def DQTLowerToGPU : Pass<"dqt-lower-to-gpu", "ModuleOp"> {
  let summary = "Lower dqt.fused_step to one GPU kernel";
  let description = [{
    Outlines every fused step into a `gpu.func` kernel in a `gpu.module`: a
    grid-stride loop where each thread handles 4 consecutive elements (one
    Philox call, 128-bit vector loads of f32 data), per-thread partial
    reductions combined with `gpu.all_reduce` and one global atomic per block.
    `math.sqrt` becomes `llvm.nvvm.sqrt.rn.f` (the IEEE square root required
    by the numerics contract; the libdevice default is approximate).
  }];
  let dependentDialects = ["arith::ArithDialect", "math::MathDialect",
                           "memref::MemRefDialect", "scf::SCFDialect",
                           "vector::VectorDialect", "gpu::GPUDialect",
                           "LLVM::LLVMDialect", "func::FuncDialect"];
}

#endif // DQT_PASSES
