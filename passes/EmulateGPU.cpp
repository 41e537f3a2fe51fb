//===- EmulateGPU.cpp - dqt-emulate-gpu -----------------------------------===//
//
// Each gpu.func becomes a host function that the emulator runtime
// (lib/GpuEmulator.cpp) calls once per GPU thread, so that the tests execute
// the very kernel dqt-lower-to-gpu emits on a machine without a GPU (as
// Triton's interpreter and Numba's CUDA simulator run kernels).
//
// What a GPU lowering expands inside the GPU dialect is expanded here by the
// same upstream patterns convert-gpu-to-nvvm runs first
// (populateGpuRewritePatterns: gpu.all_reduce into warp shuffles, a
// workgroup buffer and barriers), so the emulation executes those shuffles,
// that shared memory and those barriers as a GPU would. Only what needs the
// hardware becomes a call into the runtime (dqt/Passes/GpuEmulationAbi.h):
// thread and block indices and sizes, gpu.barrier and gpu.shuffle. Workgroup
// attributions become views of the block's workgroup buffer, an argument
// appended to the function. NVVM intrinsics become their exact CPU
// equivalents; anything without one is refused. Atomics (memref.atomic_rmw)
// stay as they are: the CPU lowering makes them real atomics.
//
//===----------------------------------------------------------------------===//

#include "dqt/Passes/GpuEmulationAbi.h"
#include "dqt/Passes/Passes.h"

#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/ADT/TypeSwitch.h"

namespace mlir::dqt {
#define GEN_PASS_DEF_DQTEMULATEGPU
#include "dqt/Passes/Passes.h.inc"
} // namespace mlir::dqt

using namespace mlir;
using namespace mlir::dqt;
namespace emu = ::dqt::emu;

namespace {

/// Whether `call` is an NVVM intrinsic with an exact CPU equivalent (the
/// ones the GPU lowering emits, populateGpuNativeMathPatterns): sqrt.rn is
/// the IEEE square root rounded to nearest, as math.sqrt lowers on the CPU
/// (llvm.sqrt: sqrtss, sqrtsd).
bool isExactSqrt(LLVM::CallIntrinsicOp call) {
  StringRef name = call.getIntrin();
  return (name == "llvm.nvvm.sqrt.rn.f" || name == "llvm.nvvm.sqrt.rn.d") &&
         call.getArgs().size() == 1;
}

/// Whether `op` in a gpu.func cannot be emulated; emits why.
LogicalResult checkEmulable(Operation *op) {
  if (auto shuffle = dyn_cast<gpu::ShuffleOp>(op)) {
    Type t = shuffle.getValue().getType();
    if (!t.isIntOrFloat() || t.getIntOrFloatBitWidth() != 32)
      return shuffle.emitOpError("of ")
             << t << " is not emulated: 32-bit values only (as NVVM's shfl)";
    return success();
  }
  if (isa<gpu::ThreadIdOp, gpu::BlockIdOp, gpu::BlockDimOp, gpu::GridDimOp,
          gpu::BarrierOp, gpu::ReturnOp, gpu::GPUFuncOp, gpu::GPUModuleOp>(op))
    return success();
  if (auto reduce = dyn_cast<gpu::AllReduceOp>(op);
      reduce && !reduce.getUniform())
    return op->emitOpError("is not emulated: upstream lowers uniform "
                           "all-reductions only (convert-gpu-to-nvvm "
                           "refuses it too)");
  if (isa<gpu::GPUDialect>(op->getDialect()))
    return op->emitOpError("is not emulated");
  if (op->getDialect() && op->getDialect()->getNamespace() == "nvvm")
    return op->emitOpError("is not emulated: NVVM ops have no CPU lowering");
  if (auto call = dyn_cast<LLVM::CallIntrinsicOp>(op)) {
    if (!call.getIntrin().starts_with("llvm.nvvm."))
      return success();
    if (!isExactSqrt(call))
      return call.emitOpError("'")
             << call.getIntrin() << "' has no exact CPU equivalent";
  }
  return success();
}

/// The layout of a kernel's workgroup attributions in the block's workgroup
/// buffer: one byte offset each.
FailureOr<SmallVector<int64_t>> layoutWorkgroup(gpu::GPUFuncOp func) {
  SmallVector<int64_t> offsets;
  int64_t bytes = 0;
  for (auto [i, arg] : llvm::enumerate(func.getWorkgroupAttributions())) {
    auto type = dyn_cast<MemRefType>(arg.getType());
    if (!type || !type.hasStaticShape() || !type.getLayout().isIdentity() ||
        !type.getElementType().isIntOrFloat())
      return func.emitOpError("workgroup attribution #")
             << i << " of type " << arg.getType()
             << " is not emulated: static, contiguous memrefs of integers or "
                "floats only";
    bytes = llvm::alignTo(bytes, emu::kWorkgroupAlign);
    offsets.push_back(bytes);
    bytes += type.getNumElements() *
             llvm::divideCeil(type.getElementTypeBitWidth(), 8);
  }
  if (bytes > emu::kWorkgroupBytes)
    return func.emitOpError("needs ")
           << bytes << " bytes of workgroup memory; the emulator has "
           << emu::kWorkgroupBytes
           << " per block (CUDA's static shared memory limit)";
  return offsets;
}

/// The emulator runtime's functions, declared in the module on first use.
class Runtime {
public:
  explicit Runtime(ModuleOp module) : module(module) {}

  func::CallOp call(OpBuilder &b, Location loc, StringRef name,
                    TypeRange results, ValueRange args) {
    auto decl = module.lookupSymbol<func::FuncOp>(name);
    if (!decl) {
      OpBuilder db = OpBuilder::atBlockBegin(module.getBody());
      decl = func::FuncOp::create(db, module.getLoc(), name,
                                  db.getFunctionType(TypeRange(args), results));
      decl.setPrivate();
    }
    return func::CallOp::create(b, loc, decl, args);
  }

private:
  ModuleOp module;
};

/// Replaces the GPU-only ops of `host` (the former body of a gpu.func) by
/// calls into the emulator runtime and NVVM intrinsics by CPU math.
void lowerGpuOps(func::FuncOp host, Runtime &runtime) {
  SmallVector<Operation *> ops;
  host.walk([&](Operation *op) {
    if (isa<gpu::GPUDialect>(op->getDialect()) ||
        isa<LLVM::CallIntrinsicOp>(op))
      ops.push_back(op);
  });
  IRRewriter rewriter(host.getContext());
  Type i32 = rewriter.getI32Type(), i64 = rewriter.getI64Type();
  Type index = rewriter.getIndexType();
  auto indexQuery = [&](Operation *op, StringRef fn, gpu::Dimension dim) {
    Value d = arith::ConstantIntOp::create(rewriter, op->getLoc(), i32,
                                           static_cast<int64_t>(dim));
    rewriter.replaceOp(op, runtime.call(rewriter, op->getLoc(), fn, index, d));
  };
  for (Operation *op : ops) {
    rewriter.setInsertionPoint(op);
    Location loc = op->getLoc();
    llvm::TypeSwitch<Operation *>(op)
        .Case([&](gpu::ThreadIdOp o) {
          indexQuery(o, emu::kThreadIdFn, o.getDimension());
        })
        .Case([&](gpu::BlockIdOp o) {
          indexQuery(o, emu::kBlockIdFn, o.getDimension());
        })
        .Case([&](gpu::BlockDimOp o) {
          indexQuery(o, emu::kBlockDimFn, o.getDimension());
        })
        .Case([&](gpu::GridDimOp o) {
          indexQuery(o, emu::kGridDimFn, o.getDimension());
        })
        .Case([&](gpu::BarrierOp o) {
          runtime.call(rewriter, loc, emu::kBarrierFn, {}, {});
          rewriter.eraseOp(o);
        })
        .Case([&](gpu::ShuffleOp o) {
          Type t = o.getValue().getType();
          Value v = o.getValue();
          if (!t.isInteger())
            v = arith::BitcastOp::create(rewriter, loc, i32, v);
          emu::ShuffleMode mode = emu::ShuffleMode::Xor;
          switch (o.getMode()) {
          case gpu::ShuffleMode::XOR:
            mode = emu::ShuffleMode::Xor;
            break;
          case gpu::ShuffleMode::UP:
            mode = emu::ShuffleMode::Up;
            break;
          case gpu::ShuffleMode::DOWN:
            mode = emu::ShuffleMode::Down;
            break;
          case gpu::ShuffleMode::IDX:
            mode = emu::ShuffleMode::Idx;
            break;
          }
          Value m = arith::ConstantIntOp::create(rewriter, loc, i32,
                                                 static_cast<int64_t>(mode));
          Value r = runtime
                        .call(rewriter, loc, emu::kShuffleFn, i64,
                              {v, o.getOffset(), o.getWidth(), m})
                        .getResult(0);
          Value value = arith::TruncIOp::create(rewriter, loc, i32, r);
          if (!t.isInteger())
            value = arith::BitcastOp::create(rewriter, loc, t, value);
          Value hi = arith::ShRUIOp::create(
              rewriter, loc, r,
              arith::ConstantIntOp::create(rewriter, loc, i64, 32));
          Value valid =
              arith::TruncIOp::create(rewriter, loc, rewriter.getI1Type(), hi);
          rewriter.replaceOp(o, {value, valid});
        })
        .Case([&](gpu::ReturnOp o) {
          rewriter.replaceOpWithNewOp<func::ReturnOp>(o, o.getOperands());
        })
        .Case([&](LLVM::CallIntrinsicOp o) {
          // Other intrinsics (llvm.floor, llvm.fabs) are the CPU's too.
          if (isExactSqrt(o))
            rewriter.replaceOpWithNewOp<math::SqrtOp>(o, o.getArgs()[0]);
        })
        .Default([](Operation *) {});
  }
}

/// Moves `func` out of its gpu.module into `module` as a host function:
/// the same arguments, then the block's workgroup buffer (memref<?xi8>);
/// the workgroup attributions become views of that buffer, the private ones
/// stack allocations.
void emulateFunc(gpu::GPUFuncOp func, ArrayRef<int64_t> workgroupOffsets,
                 ModuleOp module, Runtime &runtime) {
  MLIRContext *ctx = func.getContext();
  OpBuilder b(ctx);
  b.setInsertionPoint(func->getParentOp());
  Location loc = func.getLoc();
  unsigned numInputs = func.getFunctionType().getNumInputs();
  unsigned numWorkgroup = func.getNumWorkgroupAttributions();
  unsigned numPrivate = func.getNumPrivateAttributions();

  auto bufferType = MemRefType::get({ShapedType::kDynamic}, b.getI8Type());
  SmallVector<Type> inputs(func.getArgumentTypes());
  inputs.push_back(bufferType);
  auto host = func::FuncOp::create(
      b, loc, func.getName(),
      FunctionType::get(ctx, inputs, func.getResultTypes()));
  for (unsigned i = 0; i < numInputs; ++i)
    if (DictionaryAttr attrs = func.getArgAttrDict(i))
      host.setArgAttrs(i, attrs);
  // The kernel's dqt attributes (dqt.arg_origins: the kernel ABI) carry
  // over; the GPU dialect's (gpu.kernel, launch bounds) do not apply.
  for (NamedAttribute a : func->getDiscardableAttrs())
    if (a.getName().getValue().starts_with("dqt."))
      host->setAttr(a.getName(), a.getValue());
  if (!func.isKernel())
    host.setPrivate();

  host.getBody().takeBody(func.getBody());
  Block &entry = host.front();
  Value buffer = entry.addArgument(bufferType, loc);
  b.setInsertionPointToStart(&entry);
  for (unsigned i = 0; i < numWorkgroup + numPrivate; ++i) {
    BlockArgument arg = entry.getArgument(numInputs + i);
    auto type = cast<MemRefType>(arg.getType());
    // The same buffer in the host's (default) memory space.
    auto plain = MemRefType::get(type.getShape(), type.getElementType());
    Value replacement;
    if (i < numWorkgroup) {
      Value offset =
          arith::ConstantIndexOp::create(b, arg.getLoc(), workgroupOffsets[i]);
      replacement = memref::ViewOp::create(b, arg.getLoc(), plain, buffer,
                                           offset, ValueRange{});
    } else {
      replacement = memref::AllocaOp::create(b, arg.getLoc(), plain);
    }
    arg.replaceAllUsesWith(replacement);
  }
  entry.eraseArguments(numInputs, numWorkgroup + numPrivate);
  func.erase();
  lowerGpuOps(host, runtime);
}

struct EmulateGPUPass
    : public mlir::dqt::impl::DQTEmulateGPUBase<EmulateGPUPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<gpu::GPUModuleOp> gpuModules(module.getOps<gpu::GPUModuleOp>());
    // The emulator launches kernels itself; host code that launches them
    // would need the GPU runtime.
    WalkResult launches = module.walk([](gpu::LaunchFuncOp launch) {
      launch.emitOpError("is not emulated: the emulator runtime launches "
                         "kernels (dqt::emulateGpuKernel)");
      return WalkResult::interrupt();
    });
    if (launches.wasInterrupted())
      return signalPassFailure();

    // 1. Upstream's in-dialect rewrites, as convert-gpu-to-nvvm runs them.
    RewritePatternSet patterns(&getContext());
    populateGpuRewritePatterns(patterns);
    FrozenRewritePatternSet frozen(std::move(patterns));
    for (gpu::GPUModuleOp gm : gpuModules)
      if (failed(applyPatternsGreedily(gm, frozen)))
        return signalPassFailure();

    // 2. Everything must be emulable before anything moves.
    DenseMap<Operation *, SmallVector<int64_t>> layouts;
    for (gpu::GPUModuleOp gm : gpuModules) {
      WalkResult r = gm.walk([](Operation *op) {
        return failed(checkEmulable(op)) ? WalkResult::interrupt()
                                         : WalkResult::advance();
      });
      if (r.wasInterrupted())
        return signalPassFailure();
      for (auto func : gm.getOps<gpu::GPUFuncOp>()) {
        FailureOr<SmallVector<int64_t>> layout = layoutWorkgroup(func);
        if (failed(layout))
          return signalPassFailure();
        layouts[func] = std::move(*layout);
        if (Operation *clash = module.lookupSymbol(func.getName())) {
          clash->emitOpError("has the name of GPU function @")
              << func.getName() << ", which becomes a host function";
          return signalPassFailure();
        }
      }
    }

    // 3. Host functions in place of the GPU functions; whatever else the
    //    GPU modules hold moves to the host module.
    Runtime runtime(module);
    for (gpu::GPUModuleOp gm : gpuModules) {
      for (auto func : llvm::make_early_inc_range(gm.getOps<gpu::GPUFuncOp>()))
        emulateFunc(func, layouts.lookup(func), module, runtime);
      for (Operation &op :
           llvm::make_early_inc_range(gm.getBody()->without_terminator()))
        op.moveBefore(gm);
      gm.erase();
    }
    module->removeAttr(gpu::GPUDialect::getContainerModuleAttrName());
  }
};

} // namespace
