//===- Passes.h - dqt passes and pipelines ----------------------*- C++ -*-===//
//
// The dqt passes (generated declarations) and the named pipelines, whose
// builders dqt-opt and the JIT share.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_PASSES_PASSES_H
#define DQT_PASSES_PASSES_H

#include "dqt/Dialect/DQT.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir::dqt {

#define GEN_PASS_DECL
#include "dqt/Passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "dqt/Passes/Passes.h.inc"

/// Options of the `dqt-compile-gpu` pipeline.
struct CompileGPUOptions : public PassPipelineOptions<CompileGPUOptions> {
  PassOptions::Option<std::string> chip{
      *this, "chip", llvm::cl::desc("Target SM: sm_80 or sm_90"),
      llvm::cl::init("sm_90")};
  PassOptions::Option<int> optLevel{*this, "opt-level",
                                    llvm::cl::desc("NVPTX optimization level"),
                                    llvm::cl::init(3)};
};

/// The host code around `dqt.launch` (training graphs): one-shot
/// bufferization, the launches as calls of CPU chunk functions or as
/// gpu.launch_func, buffer deallocation, linalg as loops.
void buildLowerHostPipeline(OpPassManager &pm, bool gpu);

/// `dqt-compile-cpu`: fuse, lower to chunk loops, expand Philox, lower to the
/// LLVM dialect. The JIT runs exactly this pipeline.
void buildCompileCPUPipeline(OpPassManager &pm);

/// The GPU kernel stages: fuse, lower to one gpu.func, expand Philox, tidy
/// up. dqt-compile-gpu serializes their result, dqt-compile-gpu-emulated
/// runs it on the CPU: one builder, so the two cannot drift.
void buildGPUKernelPipeline(OpPassManager &pm);

/// The host lowering of dqt-compile-cpu after its kernel stages: upstream
/// conversions of scf, vector, arith, math, memref, cf, func and index to the
/// LLVM dialect (shared with dqt-compile-gpu-emulated).
void buildLowerToLLVMPipeline(OpPassManager &pm);

/// `dqt-compile-gpu`: the GPU kernel stages, then lower to NVVM and
/// serialize the gpu.module to PTX (`gpu.binary`, format isa).
void buildCompileGPUPipeline(OpPassManager &pm,
                             const CompileGPUOptions &options);

/// `dqt-compile-gpu-emulated`: the GPU kernel stages, dqt-emulate-gpu, and the
/// host lowering to the LLVM dialect; the GPU emulator JITs exactly this.
void buildCompileGPUEmulatedPipeline(OpPassManager &pm);

/// Registers the named pipelines (once per process).
void registerPipelines();

} // namespace mlir::dqt

#endif // DQT_PASSES_PASSES_H
