//===- Pipelines.cpp - the dqt-compile-* pipelines ------------------------===//
//
// The one definition of each pipeline: dqt-opt registers these builders and
// the JIT (lib/) calls them, so the lit tests cover what the runtime runs.
//
//===----------------------------------------------------------------------===//

#include "dqt/Passes/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/GPU/Pipelines/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

/// Inlines calls (a training graph calls its step functions) without the
/// inliner's default canonicalization: the step IR reaches dqt-fuse-step as
/// written.
static void addInliner(OpPassManager &pm) {
  pm.addPass(createInlinerPass(/*opPipelines=*/{},
                               /*defaultPipelineBuilder=*/[](OpPassManager &) {}));
}

void mlir::dqt::buildCompileCPUPipeline(OpPassManager &pm) {
  // 1. One fused op per configuration: no intermediate tensors. Steps
  //    inside larger functions move into kernel functions of their own.
  addInliner(pm);
  pm.addPass(createDQTFuseStep());
  pm.addPass(createDQTOutlineSteps());
  // 2. A chunk function [begin, end) over memrefs, 4-element groups.
  pm.addPass(createDQTLowerToCPU());
  // 3. Philox as integer arithmetic, then tidy up.
  pm.addPass(createDQTExpandRng());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  // 4. Host code around the launches (none in a module of step kernels).
  buildLowerHostPipeline(pm, /*gpu=*/false);
  // 5. To the LLVM dialect.
  buildLowerToLLVMPipeline(pm);
}

void mlir::dqt::buildLowerHostPipeline(OpPassManager &pm, bool gpu) {
  // One-shot bufferization of the whole module, function boundaries
  // included; the kernels take identity-layout memrefs, so the host
  // functions do too.
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  // A training loop carries new weights and states in scf.for (the buffer
  // deallocation pipeline frees the old ones).
  bufferize.allowReturnAllocsFromLoops = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  // Deallocation before the launches become calls: it knows dqt.launch's
  // memory effects, not gpu.launch_func's.
  bufferization::buildBufferDeallocationPipeline(pm);
  if (gpu)
    pm.addPass(createDQTLowerLaunchToGPU());
  else
    pm.addPass(createDQTLowerLaunchToCPU());
  // The forward and backward pass: linalg as loops over memrefs.
  pm.addPass(createConvertLinalgToLoopsPass());
  pm.addPass(createConvertBufferizationToMemRefPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
}

void mlir::dqt::buildLowerToLLVMPipeline(OpPassManager &pm) {
  // Upstream conversions to the LLVM dialect. Nothing here sets fast-math
  // flags, so LLVM neither contracts nor reassociates f32 math. scf has
  // no direct LLVM lowering (it goes through cf first), and the vector
  // ops (interleave, reductions) are lowered by their own pass before
  // convert-to-llvm converts what is left (arith, math, memref, cf,
  // func, index) through the dialects' conversion interfaces.
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertVectorToLLVMPass());
  pm.addPass(createConvertToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createCanonicalizerPass());
}

void mlir::dqt::buildGPUKernelPipeline(OpPassManager &pm) {
  // As on the CPU, with the GPU loop skeleton (one gpu.func).
  addInliner(pm);
  pm.addPass(createDQTFuseStep());
  pm.addPass(createDQTOutlineSteps());
  pm.addPass(createDQTLowerToGPU());
  pm.addPass(createDQTExpandRng());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void mlir::dqt::buildCompileGPUPipeline(OpPassManager &pm,
                                        const CompileGPUOptions &options) {
  // 1-3. The kernel stages (one gpu.func).
  buildGPUKernelPipeline(pm);
  // 4. Host code around the launches: gpu.launch_func.
  buildLowerHostPipeline(pm, /*gpu=*/true);
  // 5. Upstream NVVM lowering and serialization to PTX text (format isa).
  //    NVPTX emits mul.rn/add.rn (never contracted by ptxas) when the IR has
  //    no contraction flags, and div.rn.f32 for IEEE division.
  gpu::GPUToNVVMPipelineOptions nvvm;
  nvvm.cubinChip = options.chip.getValue();
  nvvm.cubinFeatures = "+ptx80";
  nvvm.cubinFormat = "isa";
  nvvm.optLevel = options.optLevel.getValue();
  gpu::buildLowerToNVVMPassPipeline(pm, nvvm);
}

void mlir::dqt::buildCompileGPUEmulatedPipeline(OpPassManager &pm) {
  // 1-3. The same kernel stages as dqt-compile-gpu.
  buildGPUKernelPipeline(pm);
  // 4. The gpu.func as a host function run once per GPU thread by the
  //    emulator runtime (all_reduce expanded by upstream's patterns first).
  pm.addPass(createDQTEmulateGPU());
  // 5. The host lowering of dqt-compile-cpu.
  buildLowerToLLVMPipeline(pm);
}

void mlir::dqt::registerPipelines() {
  static bool once = [] {
    PassPipelineRegistration<>(
        "dqt-compile-cpu",
        "Fuse DQT steps and lower them to LLVM-dialect chunk functions",
        buildCompileCPUPipeline);
    PassPipelineRegistration<CompileGPUOptions>(
        "dqt-compile-gpu",
        "Fuse DQT steps and compile them to one PTX kernel per group",
        buildCompileGPUPipeline);
    PassPipelineRegistration<>(
        "dqt-compile-gpu-emulated",
        "Fuse DQT steps, make one GPU kernel and lower it to an LLVM-dialect "
        "host function for the GPU emulator",
        buildCompileGPUEmulatedPipeline);
    return true;
  }();
  (void)once;
}
