//===- ElementCodegen.cpp - a fused step's code for some elements ---------===//
//
// The body of a fused step for 1 element or a group of 8, or a vector block of
// groups: loads (packed codes decoded), one Philox block per group and stream,
// the cloned body, stores (packed codes encoded) and the reductions'
// contributions.
//
//===----------------------------------------------------------------------===//

#include "ElementCodegen.h"

#include "Combiners.h"

#include <algorithm>

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"

using namespace mlir;
using namespace mlir::dqt;

namespace {

/// The random blocks a body draws for a group of elements: per
/// dqt.philox_bits, the 4 words of its stream's block (scalars for a group
/// of 8, vectors of one lane per group for a vector block).
struct GroupWords {
  SmallVector<std::pair<PhiloxBitsOp, SmallVector<Value, 4>>, 3> streams;
};

/// Draws the Philox blocks of the group `group` (an i64, or a vector of i64
/// group indices) for every dqt.philox_bits of the body. Their seed, step
/// and tensor id are scalar arguments of the body (the op's verifier), so
/// they are the same for every element.
GroupWords drawWords(OpBuilder &b, Location loc, const SegmentBuffers &buf,
                     Value group) {
  GroupWords words;
  FusedStepOp op = buf.op;
  auto scalar = [&](Value arg) {
    unsigned first = op.getScalarArgs().front().getArgNumber();
    return buf.scalars[cast<BlockArgument>(arg).getArgNumber() - first];
  };
  for (PhiloxBitsOp w : op.getBodyBlock().getOps<PhiloxBitsOp>())
    words.streams.push_back(
        {w, buildStreamWords(b, loc, w.getStream(), scalar(w.getSeed()),
                             scalar(w.getStep()), scalar(w.getTensorId()),
                             group)});
  return words;
}

/// Maps the body arguments that are the same for every element: the row
/// values and the scalars (splat to `vectorType`'s shape when given).
void mapUniformArgs(OpBuilder &b, Location loc, const SegmentBuffers &buf,
                    IRMapping &map, unsigned width = 0) {
  FusedStepOp op = buf.op;
  auto bind = [&](BlockArgument arg, Value v) {
    if (arg.use_empty())
      return;
    if (width)
      v = vector::BroadcastOp::create(b, loc,
                                      VectorType::get({width}, v.getType()), v);
    map.map(arg, v);
  };
  for (auto [arg, v] : llvm::zip(op.getRowArgs(), buf.rowValues))
    bind(arg, v);
  for (auto [arg, v] : llvm::zip(op.getScalarArgs(), buf.scalars))
    bind(arg, v);
}

/// Clones the body ops that are not the element index or random bits.
bool isClonedPerElement(Operation &op) {
  return !isa<ElementIndexOp, PhiloxBitsOp>(op);
}

} // namespace

SmallVector<Value> mlir::dqt::emitElements(OpBuilder &b, Location loc,
                                           const SegmentBuffers &buffers,
                                           Value first, unsigned width,
                                           GroupAccess access) {
  assert((width == 1 || width == kGroupElements) &&
         "1 element or a whole group at a time");
  FusedStepOp op = buffers.op;
  Block &body = op.getBodyBlock();
  Type i64 = b.getI64Type();
  Value first64 = arith::IndexCastOp::create(b, loc, i64, first);
  Value group = arith::ShRUIOp::create(
      b, loc, first64,
      arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(3)));
  GroupWords words = drawWords(b, loc, buffers, group);
  // Per element of the group, per stream: its 16 bits.
  SmallVector<SmallVector<Value, 3>> laneBits(width);
  Value k = arith::AndIOp::create(
      b, loc, first64,
      arith::ConstantOp::create(b, loc,
                                b.getI64IntegerAttr(kGroupElements - 1)));
  for (auto &[w, block] : words.streams)
    for (unsigned e = 0; e < width; ++e)
      laneBits[e].push_back(width == 1 ? buildElementBits(b, loc, block, k)
                                       : buildElementBits(b, loc, block, e));

  // A group's accesses are aligned to the group (8 elements), but no
  // wider than the 128 bits a GPU thread loads at once.
  auto vecAlign = [&](Type elem) {
    return llvm::MaybeAlign(std::min<uint64_t>(
        16, kGroupElements * elem.getIntOrFloatBitWidth() / 8));
  };
  bool scalarAccess = width == 1 || access == GroupAccess::Scalar;
  // Index of element k of the group.
  SmallVector<Value, 8> indices = {first};
  for (unsigned k = 1; k < width; ++k)
    indices.push_back(arith::AddIOp::create(
        b, loc, first, arith::ConstantIndexOp::create(b, loc, k)));

  // Per element: the body's element arguments (`ins`, then the current
  // elements of `outs` the body reads).
  SmallVector<IRMapping, 8> lanes(width);
  auto load = [&](BlockArgument arg, Value mem, bool packed) {
    if (arg.use_empty())
      return;
    Type elem = cast<MemRefType>(mem.getType()).getElementType();
    if (packed) {
      // The element's code, or the group's two bytes.
      Value at = buildTernaryByteIndex(b, loc, first);
      if (width == 1) {
        Value byte = memref::LoadOp::create(b, loc, mem, at);
        Value up =
            arith::SubIOp::create(b, loc, buildI8Constant(b, loc, 6, elem),
                                  buildTernaryBitPosition(b, loc, first));
        lanes[0].map(arg, buildDecodeTernary(b, loc, byte, up));
        return;
      }
      for (unsigned half = 0; half < kGroupElements / 4; ++half) {
        Value byte = memref::LoadOp::create(
            b, loc, mem,
            half ? arith::AddIOp::create(
                       b, loc, at, arith::ConstantIndexOp::create(b, loc, half))
                       .getResult()
                 : at);
        for (unsigned c = 0; c < 4; ++c)
          lanes[4 * half + c].map(
              arg, buildDecodeTernary(
                       b, loc, byte, buildI8Constant(b, loc, 6 - 2 * c, elem)));
      }
      return;
    }
    if (scalarAccess) {
      for (unsigned k = 0; k < width; ++k)
        lanes[k].map(arg, memref::LoadOp::create(b, loc, mem, indices[k]));
      return;
    }
    Value vec = vector::LoadOp::create(
        b, loc, VectorType::get({kGroupElements}, elem), mem, first,
        /*nontemporal=*/false, vecAlign(elem));
    for (unsigned e = 0; e < kGroupElements; ++e)
      lanes[e].map(arg, vector::ExtractOp::create(b, loc, vec, e));
  };
  for (auto [arg, mem] : llvm::zip(op.getInArgs(), buffers.ins))
    load(arg, mem, false);
  for (auto [k, arg, mem] : llvm::enumerate(op.getOutArgs(), buffers.outs))
    load(arg, mem, op.isPackedOut(k));

  // Clone the scalar body once per element.
  auto yield = cast<YieldOp>(body.getTerminator());
  unsigned numOuts = op.getOuts().size();
  SmallVector<SmallVector<Value>> outs(numOuts);
  SmallVector<Value> reds;
  for (unsigned k = 0; k < width; ++k) {
    IRMapping &map = lanes[k];
    mapUniformArgs(b, loc, buffers, map);
    for (ElementIndexOp i : body.getOps<ElementIndexOp>())
      map.map(i.getResult(), indices[k]);
    for (auto [s, stream] : llvm::enumerate(words.streams))
      map.map(stream.first.getBits(), laneBits[k][s]);
    for (Operation &inner : body.without_terminator())
      if (isClonedPerElement(inner))
        b.clone(inner, map);
    for (auto [idx, v] : llvm::enumerate(yield.getValues())) {
      Value mapped = map.lookupOrDefault(v);
      if (idx < numOuts) {
        outs[idx].push_back(mapped);
        continue;
      }
      unsigned r = idx - numOuts;
      if (k == 0)
        reds.push_back(mapped);
      else
        reds[r] = buildCombine(b, loc, op.getCombiner(r), reds[r], mapped);
    }
  }

  for (auto [idx, mem] : llvm::enumerate(buffers.outs)) {
    if (op.isPackedOut(idx)) {
      Type i8 = b.getI8Type();
      Value at = buildTernaryByteIndex(b, loc, first);
      Value byte;
      if (width == 1) {
        // Read-modify-write of the element's 2 bits: its chunk owns the
        // byte (the runtime aligns chunks of packed weights to 4 elements).
        Value pos = buildTernaryBitPosition(b, loc, first);
        Value keep = arith::XOrIOp::create(
            b, loc,
            arith::ShLIOp::create(b, loc, buildI8Constant(b, loc, 3, i8), pos),
            buildI8Constant(b, loc, -1, i8));
        Value old = memref::LoadOp::create(b, loc, mem, at);
        byte = arith::OrIOp::create(
            b, loc, arith::AndIOp::create(b, loc, old, keep),
            buildEncodeTernary(b, loc, outs[idx][0], pos));
        memref::StoreOp::create(b, loc, byte, mem, at);
        continue;
      }
      for (unsigned half = 0; half < kGroupElements / 4; ++half) {
        for (unsigned c = 0; c < 4; ++c) {
          Value code = buildEncodeTernary(b, loc, outs[idx][4 * half + c],
                                          buildI8Constant(b, loc, 2 * c, i8));
          byte =
              c ? arith::OrIOp::create(b, loc, byte, code).getResult() : code;
        }
        memref::StoreOp::create(
            b, loc, byte, mem,
            half ? arith::AddIOp::create(
                       b, loc, at, arith::ConstantIndexOp::create(b, loc, half))
                       .getResult()
                 : at);
      }
      continue;
    }
    if (scalarAccess) {
      for (unsigned k = 0; k < width; ++k)
        memref::StoreOp::create(b, loc, outs[idx][k], mem, indices[k]);
      continue;
    }
    Type elem = cast<MemRefType>(mem.getType()).getElementType();
    Value vec = vector::FromElementsOp::create(
        b, loc, VectorType::get({kGroupElements}, elem), outs[idx]);
    vector::StoreOp::create(b, loc, vec, mem, first, /*nontemporal=*/false,
                            vecAlign(elem));
  }
  return reds;
}

bool mlir::dqt::isVectorizable(FusedStepOp op) {
  return llvm::all_of(op.getBodyBlock().without_terminator(),
                      [](Operation &inner) {
                        if (auto i = dyn_cast<ElementIndexOp>(inner))
                          return llvm::all_of(i->getUsers(), [](Operation *u) {
                            return isa<PhiloxBitsOp>(u);
                          });
                        return isa<arith::ConstantOp, PhiloxBitsOp>(inner) ||
                               inner.hasTrait<OpTrait::Elementwise>();
                      });
}

/// A clone of the elementwise scalar op `op` on vectors of `width` lanes.
static void vectorizeClone(OpBuilder &b, Operation *op, IRMapping &map,
                           unsigned width) {
  if (auto c = dyn_cast<arith::ConstantOp>(op)) {
    auto type = VectorType::get({width}, c.getType());
    map.map(c.getResult(),
            arith::ConstantOp::create(
                b, c.getLoc(), DenseElementsAttr::get(type, c.getValue())));
    return;
  }
  OperationState state(op->getLoc(), op->getName());
  for (Value v : op->getOperands())
    state.addOperands(map.lookup(v));
  state.addAttributes(op->getAttrs());
  for (Type t : op->getResultTypes())
    state.addTypes(VectorType::get({width}, t));
  Operation *clone = b.create(state);
  map.map(op->getResults(), clone->getResults());
}

SmallVector<Value> mlir::dqt::emitVectorBlock(OpBuilder &b, Location loc,
                                              const SegmentBuffers &buffers,
                                              Value first, unsigned groups) {
  FusedStepOp op = buffers.op;
  unsigned width = kGroupElements * groups;
  Block &body = op.getBodyBlock();
  IRMapping map;
  // Lane l of the words is group group0 + l.
  Value group0 = arith::ShRUIOp::create(
      b, loc, arith::IndexCastOp::create(b, loc, b.getI64Type(), first),
      arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(3)));
  auto i64v = VectorType::get({groups}, b.getI64Type());
  SmallVector<int64_t> laneIds(groups);
  for (unsigned l = 0; l < groups; ++l)
    laneIds[l] = l;
  Value group = arith::AddIOp::create(
      b, loc, vector::BroadcastOp::create(b, loc, i64v, group0),
      arith::ConstantOp::create(b, loc, b.getI64VectorAttr(laneIds)));
  for (auto &[w, block] : drawWords(b, loc, buffers, group).streams)
    map.map(w.getBits(), buildInterleavedBits(b, loc, block));

  // Packed codes: 2 bytes a group; lane l is byte l/4's code at 2*(l%4).
  SmallVector<int64_t> spread, up, pos;
  for (unsigned l = 0; l < width; ++l) {
    spread.push_back(l / 4);
    up.push_back(6 - 2 * (l % 4));
    pos.push_back(2 * (l % 4));
  }
  auto i8Vector = [&](ArrayRef<int64_t> v) -> Value {
    SmallVector<int8_t> e(v.begin(), v.end());
    auto t = VectorType::get({int64_t(e.size())}, b.getI8Type());
    return arith::ConstantOp::create(b, loc,
                                     DenseElementsAttr::get(t, ArrayRef(e)));
  };
  auto load = [&](BlockArgument arg, Value mem, bool packed) {
    if (arg.use_empty())
      return;
    Type elem = cast<MemRefType>(mem.getType()).getElementType();
    if (packed) {
      Value bytes =
          vector::LoadOp::create(b, loc, VectorType::get({width / 4}, elem),
                                 mem, buildTernaryByteIndex(b, loc, first));
      Value lanes = vector::ShuffleOp::create(b, loc, bytes, bytes, spread);
      map.map(arg, buildDecodeTernary(b, loc, lanes, i8Vector(up)));
      return;
    }
    map.map(arg, vector::LoadOp::create(b, loc, VectorType::get({width}, elem),
                                        mem, first));
  };
  for (auto [arg, mem] : llvm::zip(op.getInArgs(), buffers.ins))
    load(arg, mem, false);
  for (auto [k, arg, mem] : llvm::enumerate(op.getOutArgs(), buffers.outs))
    load(arg, mem, op.isPackedOut(k));
  mapUniformArgs(b, loc, buffers, map, width);
  for (Operation &inner : body.without_terminator())
    if (isClonedPerElement(inner))
      vectorizeClone(b, &inner, map, width);

  auto yield = cast<YieldOp>(body.getTerminator());
  unsigned numOuts = op.getOuts().size();
  SmallVector<Value> reds;
  for (auto [idx, v] : llvm::enumerate(yield.getValues())) {
    Value vec = map.lookup(v);
    if (idx < numOuts && op.isPackedOut(idx)) {
      // Codes to their bit positions, then byte j = OR of lanes 4j..4j+3.
      Value codes = buildEncodeTernary(b, loc, vec, i8Vector(pos));
      Value bytes;
      for (unsigned k = 0; k < 4; ++k) {
        SmallVector<int64_t> gather;
        for (unsigned j = 0; j < width / 4; ++j)
          gather.push_back(4 * j + k);
        Value part = vector::ShuffleOp::create(b, loc, codes, codes, gather);
        bytes =
            k ? arith::OrIOp::create(b, loc, bytes, part).getResult() : part;
      }
      vector::StoreOp::create(b, loc, bytes, buffers.outs[idx],
                              buildTernaryByteIndex(b, loc, first));
      continue;
    }
    if (idx < numOuts) {
      vector::StoreOp::create(b, loc, vec, buffers.outs[idx], first);
      continue;
    }
    CombiningKind kind = op.getCombiner(idx - numOuts);
    reds.push_back(isLaneWise(kind) ? vec // reduced once after the loop
                                    : buildLaneReduction(b, loc, kind, vec));
  }
  return reds;
}
