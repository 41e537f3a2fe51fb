//===- LowerLaunch.cpp - dqt-lower-launch-to-cpu / -gpu -------------------===//
//
// A bufferized dqt.launch becomes the target's call of its kernel: the CPU
// chunk function over all elements (one chunk), or a gpu.launch_func of the
// gpu.func; the reductions are read back from the partials buffer. Host code
// keeps dqt.next_delta (the delta of the next step), expanded here as the
// kernels' prologue expands it.
//
//===----------------------------------------------------------------------===//

#include "dqt/Passes/Passes.h"

#include "Combiners.h"
#include "ExpandPatterns.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::dqt {
#define GEN_PASS_DEF_DQTLOWERLAUNCHTOCPU
#define GEN_PASS_DEF_DQTLOWERLAUNCHTOGPU
#include "dqt/Passes/Passes.h.inc"
} // namespace mlir::dqt

using namespace mlir;
using namespace mlir::dqt;

namespace {

/// The launch's buffers as the kernel's argument types. A buffer of another
/// layout (a strided view) goes through a contiguous copy, copied back after
/// the call (finishCopies) when it is a destination.
SmallVector<Value> adaptOperands(OpBuilder &b, LaunchOp op,
                                 ArrayRef<Type> kernelTypes,
                                 SmallVector<std::pair<Value, Value>> &copies) {
  Location loc = op.getLoc();
  SmallVector<Value> out;
  for (auto [k, v] : llvm::enumerate(op->getOperands())) {
    Type want = kernelTypes[k];
    if (v.getType() == want) {
      out.push_back(v);
      continue;
    }
    auto have = dyn_cast<MemRefType>(v.getType());
    auto target = dyn_cast<MemRefType>(want);
    if (have && target && memref::CastOp::areCastCompatible(have, target)) {
      out.push_back(memref::CastOp::create(b, loc, target, v));
      continue;
    }
    // Another layout: a contiguous buffer of the same length.
    SmallVector<Value> dims;
    if (target.isDynamicDim(0))
      dims.push_back(memref::DimOp::create(b, loc, v, 0));
    Value copy = memref::AllocOp::create(b, loc, target, dims);
    memref::CopyOp::create(b, loc, v, copy);
    copies.push_back({copy, v});
    out.push_back(copy);
  }
  return out;
}

/// After the call: the contiguous copies of destinations go back to their
/// buffers, and every copy is freed (the deallocation pipeline ran before).
void finishCopies(OpBuilder &b, Location loc,
                  ArrayRef<std::pair<Value, Value>> copies, LaunchOp op) {
  for (auto [copy, original] : copies) {
    if (llvm::is_contained(op.getOuts(), original))
      memref::CopyOp::create(b, loc, copy, original);
    memref::DeallocOp::create(b, loc, copy);
  }
}

/// Reduction `k` from its i64 partial.
Value readReduction(OpBuilder &b, Location loc, Value partials, unsigned k,
                    Type type) {
  Value slot = arith::ConstantIndexOp::create(b, loc, k);
  Value v = memref::LoadOp::create(b, loc, partials, slot);
  if (type.getIntOrFloatBitWidth() < 64)
    v = arith::TruncIOp::create(b, loc, type, v);
  return v;
}

/// The memref<?xi64> partials buffer of `op`'s reductions: on the stack for
/// the CPU chunk, which stores its partials; on the heap and set to each
/// combiner's identity for a GPU kernel, whose blocks combine into it with
/// atomics.
Value allocPartials(OpBuilder &b, LaunchOp op, bool device) {
  Location loc = op.getLoc();
  unsigned n = op.getReductions().size();
  auto type = MemRefType::get({int64_t(n)}, b.getI64Type());
  Value buf = device ? Value(memref::AllocOp::create(b, loc, type))
                     : Value(memref::AllocaOp::create(b, loc, type));
  buf = memref::CastOp::create(
      b, loc, MemRefType::get({ShapedType::kDynamic}, b.getI64Type()), buf);
  if (device)
    for (unsigned k = 0; k < n; ++k)
      memref::StoreOp::create(
          b, loc,
          buildReductionIdentity(b, loc, op.getReductionCombiner(k),
                                 b.getI64Type()),
          buf, ValueRange{arith::ConstantIndexOp::create(b, loc, k)});
  return buf;
}

/// The lowered kernel `op` launches, if it takes `args`, `outs` and
/// `targetArgs` more.
FunctionOpInterface loweredKernel(LaunchOp op, unsigned targetArgs) {
  auto fn = dyn_cast_or_null<FunctionOpInterface>(
      SymbolTable::lookupNearestSymbolFrom(op, op.getKernel()));
  if (!fn || fn.getNumArguments() != op->getNumOperands() + targetArgs)
    return {};
  return fn;
}

/// Replaces `op` by the call `emitCall` makes of kernel `fn`, with what both
/// targets put around it: the operands adapted to the kernel, the partials
/// buffer, the copies back, the reductions read.
void replaceLaunch(LaunchOp op, PatternRewriter &rewriter,
                   FunctionOpInterface fn, bool device,
                   function_ref<void(ValueRange operands, Value partials)>
                       emitCall) {
  Location loc = op.getLoc();
  SmallVector<std::pair<Value, Value>> copies;
  SmallVector<Value> operands =
      adaptOperands(rewriter, op, fn.getArgumentTypes(), copies);
  Value partials = allocPartials(rewriter, op, device);
  emitCall(operands, partials);
  finishCopies(rewriter, loc, copies, op);
  SmallVector<Value> results;
  for (auto [k, r] : llvm::enumerate(op.getReductions()))
    results.push_back(readReduction(rewriter, loc, partials, k, r.getType()));
  if (device)
    memref::DeallocOp::create(rewriter, loc, partials);
  rewriter.replaceOp(op, results);
}

struct LaunchToCall : public OpRewritePattern<LaunchOp> {
  using OpRewritePattern::OpRewritePattern;
  /// begin, end, partials (dqt-lower-to-cpu).
  static constexpr unsigned kTargetArgs = 3;
  LogicalResult matchAndRewrite(LaunchOp op,
                                PatternRewriter &rewriter) const override {
    FunctionOpInterface fn = loweredKernel(op, kTargetArgs);
    if (!fn)
      return rewriter.notifyMatchFailure(op, "kernel not lowered");
    Location loc = op.getLoc();
    replaceLaunch(op, rewriter, fn, /*device=*/false,
                  [&](ValueRange operands, Value partials) {
                    // One chunk over every segment: each clamps [0, end) to
                    // its length.
                    SmallVector<Value> args(operands);
                    args.push_back(
                        arith::ConstantIndexOp::create(rewriter, loc, 0));
                    args.push_back(arith::ConstantIndexOp::create(
                        rewriter, loc, std::numeric_limits<int64_t>::max()));
                    args.push_back(partials);
                    func::CallOp::create(
                        rewriter, loc,
                        cast<FlatSymbolRefAttr>(op.getKernel()).getValue(),
                        TypeRange{}, args);
                  });
    return success();
  }
};

struct LaunchToGPU : public OpRewritePattern<LaunchOp> {
  using OpRewritePattern::OpRewritePattern;
  /// partials (dqt-lower-to-gpu).
  static constexpr unsigned kTargetArgs = 1;
  LogicalResult matchAndRewrite(LaunchOp op,
                                PatternRewriter &rewriter) const override {
    auto fn = dyn_cast_or_null<gpu::GPUFuncOp>(
        loweredKernel(op, kTargetArgs).getOperation());
    if (!fn)
      return rewriter.notifyMatchFailure(op, "kernel not a lowered gpu.func");
    Location loc = op.getLoc();
    auto cst = [&](int64_t c) {
      return arith::ConstantIndexOp::create(rewriter, loc, c);
    };
    replaceLaunch(
        op, rewriter, fn, /*device=*/true,
        [&](ValueRange operands, Value partials) {
          // Grid-stride kernels are correct for any grid: one thread per
          // group of 8 elements of the longest operand, 256 threads per
          // block (the runtime's launch, docs/design.md), at most 65535
          // blocks.
          Value longest = cst(1);
          for (Value v : operands)
            if (isa<MemRefType>(v.getType()))
              longest = arith::MaxUIOp::create(
                  rewriter, loc, longest,
                  memref::DimOp::create(rewriter, loc, v, 0));
          Value blocks =
              arith::CeilDivUIOp::create(rewriter, loc, longest, cst(8 * 256));
          blocks = arith::MinUIOp::create(rewriter, loc, blocks, cst(65535));
          SmallVector<Value> args(operands);
          args.push_back(partials);
          gpu::LaunchFuncOp::create(rewriter, loc, fn,
                                    gpu::KernelDim3{blocks, cst(1), cst(1)},
                                    gpu::KernelDim3{cst(256), cst(1), cst(1)},
                                    /*dynamicSharedMemorySize=*/Value(), args);
        });
    return success();
  }
};

/// Lowers every launch of `module` with `Pattern` (and the host's
/// dqt.next_delta); a launch left on tensors or unlowered is an error.
template <typename Pattern>
LogicalResult lowerLaunches(ModuleOp module) {
  WalkResult invalid = module.walk([](LaunchOp op) {
    if (op.isTensorForm()) {
      op.emitOpError("still has tensor operands; bufferize it first "
                     "(one-shot-bufferize)");
      return WalkResult::interrupt();
    }
    if (!loweredKernel(op, Pattern::kTargetArgs)) {
      op.emitOpError("kernel '")
          << op.getKernel() << "' must be a lowered step kernel taking "
          << op->getNumOperands() + Pattern::kTargetArgs
          << " arguments; run the kernel lowering first";
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (invalid.wasInterrupted())
    return failure();
  RewritePatternSet patterns(module.getContext());
  patterns.add<Pattern>(module.getContext());
  populateExpandNextDeltaPatterns(patterns);
  GreedyRewriteConfig config;
  config.enableFolding(false);
  if (failed(applyPatternsGreedily(module, std::move(patterns), config)))
    return failure();
  WalkResult left = module.walk([](LaunchOp op) {
    op.emitOpError("could not be lowered");
    return WalkResult::interrupt();
  });
  return failure(left.wasInterrupted());
}

struct LowerLaunchToCPUPass
    : public mlir::dqt::impl::DQTLowerLaunchToCPUBase<LowerLaunchToCPUPass> {
  void runOnOperation() override {
    if (failed(lowerLaunches<LaunchToCall>(getOperation())))
      signalPassFailure();
  }
};

struct LowerLaunchToGPUPass
    : public mlir::dqt::impl::DQTLowerLaunchToGPUBase<LowerLaunchToGPUPass> {
  void runOnOperation() override {
    if (failed(lowerLaunches<LaunchToGPU>(getOperation())))
      signalPassFailure();
  }
};

} // namespace
