//===- BufferizableOpInterfaceImpl.cpp - dqt.launch on buffers ------------===//
//
// dqt.launch is destination-passing style: its destinations are read (the
// weights and states a step updates in place) and written, and each tensor
// result is its destination's buffer. Upstream's DPS model says exactly that;
// bufferize() only rebuilds the op on buffers, with the reductions as its
// results.
//
//===----------------------------------------------------------------------===//

#include "dqt/Dialect/BufferizableOpInterfaceImpl.h"

#include "dqt/Dialect/DQT.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Bufferization/IR/DstBufferizableOpInterfaceImpl.h"

using namespace mlir;
using namespace mlir::dqt;
using namespace mlir::bufferization;

namespace {

struct LaunchOpInterface
    : public DstBufferizableOpInterfaceExternalModel<LaunchOpInterface,
                                                     LaunchOp> {
  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    auto launch = cast<LaunchOp>(op);
    auto buffers = [&](ValueRange values) -> FailureOr<SmallVector<Value>> {
      SmallVector<Value> out;
      for (Value v : values) {
        if (!isa<TensorType>(v.getType())) {
          out.push_back(v);
          continue;
        }
        FailureOr<Value> buffer = getBuffer(rewriter, v, options, state);
        if (failed(buffer))
          return failure();
        out.push_back(*buffer);
      }
      return out;
    };
    FailureOr<SmallVector<Value>> args = buffers(launch.getArgs());
    FailureOr<SmallVector<Value>> outs = buffers(launch.getOuts());
    if (failed(args) || failed(outs))
      return failure();
    rewriter.setInsertionPoint(launch);
    auto onBuffers = LaunchOp::create(
        rewriter, launch.getLoc(), launch.getReductions().getTypes(),
        launch.getKernel(), *args, *outs, launch.getCombiners());
    SmallVector<Value> replacements(*outs);
    llvm::append_range(replacements, onBuffers.getResults());
    replaceOpWithBufferizedValues(rewriter, op, replacements);
    return success();
  }
};

} // namespace

void mlir::dqt::registerBufferizableOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, DQTDialect *) {
    LaunchOp::attachInterface<LaunchOpInterface>(*ctx);
  });
}
