//===- LoopBody.cpp - one fused step's per-element code -------------------===//

#include "LoopBody.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"

using namespace mlir;
using namespace mlir::dqt;

Value mlir::dqt::buildReductionIdentity(OpBuilder &b, Location loc,
                                        StringRef combiner, Type type) {
  unsigned width = type.getIntOrFloatBitWidth();
  APInt v = combiner == "maxsi" ? APInt::getSignedMinValue(width)
                                : APInt::getZero(width);
  return arith::ConstantOp::create(b, loc, b.getIntegerAttr(type, v));
}

Value mlir::dqt::buildCombine(OpBuilder &b, Location loc, StringRef combiner,
                              Value lhs, Value rhs) {
  if (combiner == "maxsi")
    return arith::MaxSIOp::create(b, loc, lhs, rhs);
  return arith::AddIOp::create(b, loc, lhs, rhs);
}

/// Counter word 1 of a stream: the group index's high word, with bit 31 set
/// for the state stream (dqt.random_bits). Element indices are below 2^63,
/// so group indices are below 2^61 and that bit is never set otherwise: the
/// two streams never share a Philox block, whatever the tensor id and step.
static Value streamWord1(OpBuilder &b, Location loc, Value groupHi,
                         bool stateStream) {
  if (!stateStream)
    return groupHi;
  Type type = groupHi.getType();
  Attribute bit = b.getI32IntegerAttr(int32_t(0x80000000u));
  Value c = isa<VectorType>(type)
                ? arith::ConstantOp::create(
                      b, loc, DenseElementsAttr::get(cast<ShapedType>(type), bit))
                      .getResult()
                : arith::ConstantOp::create(b, loc, cast<TypedAttr>(bit))
                      .getResult();
  return arith::OrIOp::create(b, loc, groupHi, c);
}

/// The 4 Philox words of the element group `group` (i64) in one stream: key
/// (seed lo, seed hi), counter (group lo, group hi word, step, tensor id).
static SmallVector<Value, 4> buildGroupWords(OpBuilder &b, Location loc,
                                             ValueRange rngScalars,
                                             Value group, bool stateStream) {
  Type i32 = b.getI32Type();
  Value c32 = arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(32));
  auto lo = [&](Value v) { return arith::TruncIOp::create(b, loc, i32, v); };
  auto hi = [&](Value v) {
    return arith::TruncIOp::create(b, loc, i32,
                                   arith::ShRUIOp::create(b, loc, v, c32));
  };
  Value seed = rngScalars[0], step = rngScalars[1], tensorId = rngScalars[2];
  SmallVector<Type, 4> words(4, i32);
  auto philox = PhiloxOp::create(
      b, loc, words, lo(seed), hi(seed), lo(group),
      streamWord1(b, loc, hi(group), stateStream), lo(step), lo(tensorId),
      /*rounds=*/10);
  return SmallVector<Value, 4>(philox.getResults());
}

/// The per-element random block arguments of a group of 4: per element, its
/// uniform (if `rng`) then its state-stream word (if `rng_bits`).
static SmallVector<SmallVector<Value, 2>, 4>
buildGroupRandom(OpBuilder &b, Location loc, FusedStepOp op,
                 ValueRange rngScalars, Value group) {
  SmallVector<SmallVector<Value, 2>, 4> perElement(4);
  if (op.getRng()) {
    SmallVector<Value, 4> w =
        buildGroupWords(b, loc, rngScalars, group, /*stateStream=*/false);
    for (unsigned k = 0; k < 4; ++k)
      perElement[k].push_back(buildUniformFromWord(b, loc, w[k]));
  }
  if (op.getRngBits()) {
    SmallVector<Value, 4> w =
        buildGroupWords(b, loc, rngScalars, group, /*stateStream=*/true);
    for (unsigned k = 0; k < 4; ++k)
      perElement[k].push_back(w[k]);
  }
  return perElement;
}

//===----------------------------------------------------------------------===//
// Packed ternary storage: element i is the 2-bit two's-complement code in
// bits 2*(i%4).. of byte i/4 (docs/numerics.md).
//===----------------------------------------------------------------------===//

/// An i8 constant, or its splat over `like`'s vector shape.
static Value i8Const(OpBuilder &b, Location loc, int8_t v, Type like) {
  Attribute a = b.getI8IntegerAttr(v);
  if (auto vt = dyn_cast<VectorType>(like))
    return arith::ConstantOp::create(b, loc, DenseElementsAttr::get(vt, a));
  return arith::ConstantOp::create(b, loc, cast<TypedAttr>(a));
}

/// The code at bit `2k` of `byte` (k given as the i8 shift 6 - 2k),
/// sign-extended: (byte << (6 - 2k)) >>s 6.
static Value decodeTernary(OpBuilder &b, Location loc, Value byte,
                           Value shiftUp) {
  Value up = arith::ShLIOp::create(b, loc, byte, shiftUp);
  return arith::ShRSIOp::create(b, loc, up,
                                i8Const(b, loc, 6, byte.getType()));
}

/// The code of `q` (its low 2 bits) moved to bit `pos`.
static Value encodeTernary(OpBuilder &b, Location loc, Value q, Value pos) {
  Value code =
      arith::AndIOp::create(b, loc, q, i8Const(b, loc, 3, q.getType()));
  return arith::ShLIOp::create(b, loc, code, pos);
}

/// Byte index of element `i` (index).
static Value byteOf(OpBuilder &b, Location loc, Value i) {
  return arith::ShRUIOp::create(b, loc, i,
                                arith::ConstantIndexOp::create(b, loc, 2));
}

/// 2 * (i % 4) as i8: the bit position of element `i` (index) in its byte.
static Value bitPosOf(OpBuilder &b, Location loc, Value i) {
  Value k = arith::AndIOp::create(b, loc, i,
                                  arith::ConstantIndexOp::create(b, loc, 3));
  Value k8 = arith::IndexCastOp::create(b, loc, b.getI8Type(), k);
  return arith::ShLIOp::create(b, loc, k8, i8Const(b, loc, 1, k8.getType()));
}

static bool isSet(const llvm::SmallBitVector &flags, size_t i) {
  return i < flags.size() && flags[i];
}

SmallVector<Value> mlir::dqt::emitElements(OpBuilder &b, Location loc,
                                           FusedStepOp op,
                                           const SegmentBuffers &buffers,
                                           Value first, unsigned width,
                                           GroupAccess access) {
  assert((width == 1 || width == 4) && "1 or 4 elements at a time");
  Type i64 = b.getI64Type();
  Value first64 = arith::IndexCastOp::create(b, loc, i64, first);
  Value two = arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(2));
  Value group = arith::ShRUIOp::create(b, loc, first64, two);

  // Per element: its uniform (if any), then its tensor values.
  SmallVector<SmallVector<Value>> lanes(width);
  if (op.hasRandomScalars()) {
    ValueRange rngScalars = ArrayRef<Value>(buffers.scalars).take_front(3);
    SmallVector<SmallVector<Value, 2>, 4> random =
        buildGroupRandom(b, loc, op, rngScalars, group);
    if (width == 4) {
      for (unsigned k = 0; k < 4; ++k)
        lanes[k].append(random[k].begin(), random[k].end());
    } else {
      // Element i takes word i mod 4 of its group's blocks.
      Value three = arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(3));
      Value k = arith::AndIOp::create(b, loc, first64, three);
      for (unsigned a = 0; a < random[0].size(); ++a) {
        Value r = random[3][a];
        for (int w = 2; w >= 0; --w) {
          Value isW = arith::CmpIOp::create(
              b, loc, arith::CmpIPredicate::eq, k,
              arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(w)));
          r = arith::SelectOp::create(b, loc, isW, random[w][a], r);
        }
        lanes[0].push_back(r);
      }
    }
  }
  auto vecAlign = [&](Type elem) {
    return llvm::MaybeAlign(elem.getIntOrFloatBitWidth() / 2); // 4 elements
  };
  bool scalarAccess = width == 1 || access == GroupAccess::Scalar;
  // Index of element k of the group.
  SmallVector<Value, 4> indices = {first};
  for (unsigned k = 1; k < width && scalarAccess; ++k)
    indices.push_back(arith::AddIOp::create(
        b, loc, first, arith::ConstantIndexOp::create(b, loc, k)));
  for (auto [n, mem] : llvm::enumerate(buffers.inputs)) {
    Type elem = cast<MemRefType>(mem.getType()).getElementType();
    if (isSet(buffers.packedInputs, n)) {
      // One byte: the whole group, or the element's code.
      Value byte = memref::LoadOp::create(b, loc, mem, byteOf(b, loc, first));
      if (width == 1) {
        Value up = arith::SubIOp::create(b, loc, i8Const(b, loc, 6, elem),
                                         bitPosOf(b, loc, first));
        lanes[0].push_back(decodeTernary(b, loc, byte, up));
        continue;
      }
      for (unsigned k = 0; k < 4; ++k)
        lanes[k].push_back(
            decodeTernary(b, loc, byte, i8Const(b, loc, 6 - 2 * k, elem)));
      continue;
    }
    if (scalarAccess) {
      for (unsigned k = 0; k < width; ++k)
        lanes[k].push_back(memref::LoadOp::create(b, loc, mem, indices[k]));
      continue;
    }
    Value vec =
        vector::LoadOp::create(b, loc, VectorType::get({4}, elem), mem, first,
                               /*nontemporal=*/false, vecAlign(elem));
    for (unsigned k = 0; k < 4; ++k)
      lanes[k].push_back(vector::ExtractOp::create(b, loc, vec, k));
  }

  // Clone the scalar body once per element.
  Block &body = op.getBodyBlock();
  auto yield = cast<YieldOp>(body.getTerminator());
  unsigned numOutputs = op.getNumOutputs();
  SmallVector<SmallVector<Value>> outs(numOutputs);
  SmallVector<Value> reds;
  for (unsigned k = 0; k < width; ++k) {
    IRMapping map;
    SmallVector<Value> args(lanes[k]);
    args.append(buffers.scalars.begin(), buffers.scalars.end());
    map.map(body.getArguments(), args);
    for (Operation &inner : body.without_terminator())
      b.clone(inner, map);
    for (auto [idx, v] : llvm::enumerate(yield.getValues())) {
      Value mapped = map.lookupOrDefault(v);
      if (idx < numOutputs) {
        outs[idx].push_back(mapped);
        continue;
      }
      unsigned r = idx - numOutputs;
      StringRef combiner = cast<StringAttr>(op.getReductions()[r]).getValue();
      if (k == 0)
        reds.push_back(mapped);
      else
        reds[r] = buildCombine(b, loc, combiner, reds[r], mapped);
    }
  }

  for (auto [idx, mem] : llvm::enumerate(buffers.outputs)) {
    if (isSet(buffers.packedOutputs, idx)) {
      Type i8 = b.getI8Type();
      Value at = byteOf(b, loc, first);
      Value byte;
      if (width == 1) {
        // Read-modify-write of the element's 2 bits: its chunk owns the
        // byte (the runtime aligns chunks of packed weights to 4 elements).
        Value pos = bitPosOf(b, loc, first);
        Value keep = arith::XOrIOp::create(
            b, loc, arith::ShLIOp::create(b, loc, i8Const(b, loc, 3, i8), pos),
            i8Const(b, loc, -1, i8));
        Value old = memref::LoadOp::create(b, loc, mem, at);
        byte = arith::OrIOp::create(
            b, loc, arith::AndIOp::create(b, loc, old, keep),
            encodeTernary(b, loc, outs[idx][0], pos));
      } else {
        for (unsigned k = 0; k < 4; ++k) {
          Value code = encodeTernary(b, loc, outs[idx][k],
                                     i8Const(b, loc, 2 * k, i8));
          byte = k ? arith::OrIOp::create(b, loc, byte, code).getResult()
                   : code;
        }
      }
      memref::StoreOp::create(b, loc, byte, mem, at);
      continue;
    }
    if (scalarAccess) {
      for (unsigned k = 0; k < width; ++k)
        memref::StoreOp::create(b, loc, outs[idx][k], mem, indices[k]);
      continue;
    }
    Type elem = cast<MemRefType>(mem.getType()).getElementType();
    Value vec = vector::FromElementsOp::create(
        b, loc, VectorType::get({4}, elem), outs[idx]);
    vector::StoreOp::create(b, loc, vec, mem, first, /*nontemporal=*/false,
                            vecAlign(elem));
  }
  return reds;
}

/// Philox of `groups` consecutive groups from `group0` as vectors, in one
/// stream: the four word vectors, lane l holding the words of group
/// group0 + l.
static SmallVector<Value, 4> buildVectorWords(OpBuilder &b, Location loc,
                                              ValueRange rngScalars,
                                              Value group0, unsigned groups,
                                              bool stateStream) {
  auto i64v = VectorType::get({groups}, b.getI64Type());
  auto i32v = VectorType::get({groups}, b.getI32Type());
  SmallVector<int64_t> lanes(groups);
  for (unsigned l = 0; l < groups; ++l)
    lanes[l] = l;
  Value group = arith::AddIOp::create(
      b, loc, vector::BroadcastOp::create(b, loc, i64v, group0),
      arith::ConstantOp::create(b, loc, b.getI64VectorAttr(lanes)));
  Value c32 = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(i64v, b.getI64IntegerAttr(32)));
  auto lo = [&](Value v) { return arith::TruncIOp::create(b, loc, i32v, v); };
  auto hi = [&](Value v) {
    return arith::TruncIOp::create(b, loc, i32v,
                                   arith::ShRUIOp::create(b, loc, v, c32));
  };
  auto splat = [&](Value scalar64, bool high) -> Value {
    Value s = arith::TruncIOp::create(
        b, loc, b.getI32Type(),
        high ? arith::ShRUIOp::create(
                   b, loc, scalar64,
                   arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(32)))
                   .getResult()
             : scalar64);
    return vector::BroadcastOp::create(b, loc, i32v, s);
  };
  Value seed = rngScalars[0], step = rngScalars[1], tensorId = rngScalars[2];
  SmallVector<Type, 4> words(4, i32v);
  auto philox = PhiloxOp::create(
      b, loc, words, splat(seed, false), splat(seed, true), lo(group),
      streamWord1(b, loc, hi(group), stateStream), splat(step, false),
      splat(tensorId, false), /*rounds=*/10);
  return SmallVector<Value, 4>(philox.getResults());
}

/// Element 4l + k takes word k of group l. The words are paired in 64-bit
/// lanes, (w0 | w1 << 32) and (w2 | w3 << 32), whose 64-bit interleaving read
/// as i32 (little-endian: the low half first) is the element order. On x86
/// that is two shift+blend pairs and two two-source permutes per 8 groups;
/// interleaving the i32 words directly made LLVM shuffle 64-bit lanes before
/// truncating (about 20 instructions more per block).
static Value interleaveWords(OpBuilder &b, Location loc, ArrayRef<Value> w) {
  auto wordType = cast<VectorType>(w[0].getType());
  auto laneType = wordType.clone(b.getI64Type());
  Value c32 = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(laneType, b.getI64IntegerAttr(32)));
  auto pair = [&](Value lo, Value hi) -> Value {
    Value l = arith::ExtUIOp::create(b, loc, laneType, lo);
    Value h = arith::ShLIOp::create(
        b, loc, arith::ExtUIOp::create(b, loc, laneType, hi), c32);
    return arith::OrIOp::create(b, loc, l, h);
  };
  Value w01 = pair(w[0], w[1]);
  Value w23 = pair(w[2], w[3]);
  Value lanes = vector::InterleaveOp::create(b, loc, w01, w23);
  return vector::BitCastOp::create(
      b, loc, VectorType::get({4 * wordType.getNumElements()}, b.getI32Type()),
      lanes);
}

/// A clone of the elementwise scalar op `op` on vectors of `width` lanes.
static Value vectorizeClone(OpBuilder &b, Operation *op, IRMapping &map,
                            unsigned width) {
  if (auto c = dyn_cast<arith::ConstantOp>(op)) {
    auto type = VectorType::get({width}, c.getType());
    Value v = arith::ConstantOp::create(
        b, c.getLoc(), DenseElementsAttr::get(type, c.getValue()));
    map.map(c.getResult(), v);
    return v;
  }
  OperationState state(op->getLoc(), op->getName());
  for (Value v : op->getOperands())
    state.addOperands(map.lookup(v));
  state.addAttributes(op->getAttrs());
  for (Type t : op->getResultTypes())
    state.addTypes(VectorType::get({width}, t));
  Operation *clone = b.create(state);
  map.map(op->getResults(), clone->getResults());
  return clone->getResult(0);
}

SmallVector<Value> mlir::dqt::emitVectorBlock(OpBuilder &b, Location loc,
                                              FusedStepOp op,
                                              const SegmentBuffers &buffers,
                                              Value first, unsigned groups) {
  unsigned width = 4 * groups;
  Block &body = op.getBodyBlock();
  IRMapping map;
  unsigned arg = 0;
  if (op.hasRandomScalars()) {
    Value group0 = arith::ShRUIOp::create(
        b, loc, arith::IndexCastOp::create(b, loc, b.getI64Type(), first),
        arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(2)));
    ValueRange rngScalars = ArrayRef<Value>(buffers.scalars).take_front(3);
    if (op.getRng()) {
      SmallVector<Value, 4> w = buildVectorWords(b, loc, rngScalars, group0,
                                                 groups, /*stateStream=*/false);
      map.map(body.getArgument(arg++),
              buildUniformFromWord(b, loc, interleaveWords(b, loc, w)));
    }
    if (op.getRngBits()) {
      SmallVector<Value, 4> w = buildVectorWords(b, loc, rngScalars, group0,
                                                 groups, /*stateStream=*/true);
      map.map(body.getArgument(arg++), interleaveWords(b, loc, w));
    }
  }
  // Packed codes: `groups` bytes; lane l is byte l/4's code at 2*(l%4).
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
  for (auto [n, mem] : llvm::enumerate(buffers.inputs)) {
    Type elem = cast<MemRefType>(mem.getType()).getElementType();
    if (isSet(buffers.packedInputs, n)) {
      Value bytes = vector::LoadOp::create(
          b, loc, VectorType::get({groups}, elem), mem, byteOf(b, loc, first));
      Value lanes = vector::ShuffleOp::create(b, loc, bytes, bytes, spread);
      map.map(body.getArgument(arg++),
              decodeTernary(b, loc, lanes, i8Vector(up)));
      continue;
    }
    map.map(body.getArgument(arg++),
            vector::LoadOp::create(b, loc, VectorType::get({width}, elem), mem,
                                   first));
  }
  for (Value s : buffers.scalars) {
    BlockArgument a = body.getArgument(arg++);
    if (!a.use_empty())
      map.map(a, vector::BroadcastOp::create(
                     b, loc, VectorType::get({width}, s.getType()), s));
  }
  for (Operation &inner : body.without_terminator())
    vectorizeClone(b, &inner, map, width);

  auto yield = cast<YieldOp>(body.getTerminator());
  unsigned numOutputs = op.getNumOutputs();
  SmallVector<Value> reds;
  for (auto [idx, v] : llvm::enumerate(yield.getValues())) {
    Value vec = map.lookup(v);
    if (idx < numOutputs && isSet(buffers.packedOutputs, idx)) {
      // Codes to their bit positions, then byte j = OR of lanes 4j..4j+3.
      Value codes = encodeTernary(b, loc, vec, i8Vector(pos));
      Value bytes;
      for (unsigned k = 0; k < 4; ++k) {
        SmallVector<int64_t> gather;
        for (unsigned j = 0; j < groups; ++j)
          gather.push_back(4 * j + k);
        Value part = vector::ShuffleOp::create(b, loc, codes, codes, gather);
        bytes = k ? arith::OrIOp::create(b, loc, bytes, part).getResult()
                  : part;
      }
      vector::StoreOp::create(b, loc, bytes, buffers.outputs[idx],
                              byteOf(b, loc, first));
      continue;
    }
    if (idx < numOutputs) {
      vector::StoreOp::create(b, loc, vec, buffers.outputs[idx], first);
      continue;
    }
    StringRef combiner =
        cast<StringAttr>(op.getReductions()[idx - numOutputs]).getValue();
    if (isLaneWise(combiner)) {
      reds.push_back(vec); // reduced once after the loop
      continue;
    }
    reds.push_back(
        vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD, vec));
  }
  return reds;
}

bool mlir::dqt::isLaneWise(StringRef combiner) { return combiner == "maxsi"; }

unsigned mlir::dqt::tensorReductionSlot(FusedStepOp op, unsigned k) {
  unsigned slot = 0;
  for (unsigned j = 0; j < k; ++j)
    slot += !op.isRowReduction(j);
  return slot;
}

unsigned mlir::dqt::numTensorReductions(FusedStepOp op) {
  return tensorReductionSlot(op, op.getNumReductions());
}

SegmentBuffers SegmentBuffers::atRow(OpBuilder &b, Location loc,
                                     Value row) const {
  SegmentBuffers r = *this;
  for (auto [pos, mem] : rowInputs)
    r.scalars[pos] = memref::LoadOp::create(b, loc, mem, row);
  return r;
}

Value SegmentBuffers::rowLengthIndex(OpBuilder &b, Location loc) const {
  Value len =
      arith::IndexCastOp::create(b, loc, b.getIndexType(), scalars[*rowLength]);
  return arith::MaxSIOp::create(b, loc, len,
                                arith::ConstantIndexOp::create(b, loc, 1));
}

Value mlir::dqt::buildLaneReduction(OpBuilder &b, Location loc,
                                    StringRef combiner, Value vector) {
  assert(isLaneWise(combiner) && "only lane-wise reductions are carried");
  return vector::ReductionOp::create(b, loc, vector::CombiningKind::MAXSI,
                                     vector);
}

//===----------------------------------------------------------------------===//
// Kernel signature
//===----------------------------------------------------------------------===//

static MemRefType memrefFor(Type tensor) {
  auto t = cast<RankedTensorType>(tensor);
  return MemRefType::get(t.getShape(), t.getElementType());
}

FailureOr<KernelPlan> mlir::dqt::planKernel(func::FuncOp func) {
  KernelPlan plan;
  for (Operation &op : func.getBody().front()) {
    if (auto step = dyn_cast<FusedStepOp>(op)) {
      if (plan.op)
        return step.emitOpError("is the second fused step of @")
               << func.getSymName()
               << "; a kernel is made of one (run dqt-fuse-step with group)";
      plan.op = step;
      continue;
    }
    // Scalar dqt ops (next_delta, philox) are fine; tensor-level ones must
    // have been fused.
    if (isa<ElementwiseOpInterface, ReductionOpInterface, UniformOp,
            RandomBitsOp, UnpackTernaryOp, PackTernaryOp>(op))
      return op.emitOpError("was not fused; run dqt-fuse-step first");
    if (isa<QuantizeOp>(op))
      return op.emitOpError("has no kernel lowering (initialization runs in "
                            "the runtime)");
  }
  if (!plan.op)
    return plan; // nothing to lower here
  FusedStepOp step = plan.op;

  llvm::SetVector<Operation *> slice;
  llvm::SetVector<Value> leaves;
  for (unsigned s = 0, e = step.getSegments(); s < e; ++s) {
    OperandRange ins = step.getSegmentInputs(s);
    auto addBuffer = [&](Value v, unsigned i) -> LogicalResult {
      if (!isa<BlockArgument>(v))
        return step.emitOpError(i < step.getTensors() ? "tensor operand #"
                                                      : "row operand #")
               << (s * ins.size() + i)
               << " must be an argument of the function";
      plan.argTypes.push_back(memrefFor(v.getType()));
      plan.origins.push_back(cast<BlockArgument>(v).getArgNumber());
      return success();
    };
    auto addResultBuffer = [&](OpResult r) {
      plan.argTypes.push_back(memrefFor(r.getType()));
      plan.origins.push_back(-1 - int64_t(r.getResultNumber()));
    };
    for (unsigned i = 0, t = step.getTensors(); i < t; ++i)
      if (failed(addBuffer(ins[i], i)))
        return failure();
    for (auto [k, tiedIdx] : llvm::enumerate(step.getTied()))
      if (tiedIdx < 0)
        addResultBuffer(step.getSegmentResults(s)[k]);
    for (unsigned i = step.getTensors(); i < ins.size(); ++i)
      if (step.isRowOperand(i) && failed(addBuffer(ins[i], i)))
        return failure();
    for (unsigned k = 0; k < step.getNumReductions(); ++k)
      if (step.isRowReduction(k))
        addResultBuffer(step.getSegmentResults(s)[step.getNumOutputs() + k]);
    for (unsigned i = step.getTensors(); i < ins.size(); ++i) {
      Value v = ins[i];
      if (step.isRowOperand(i))
        continue;
      if (isa<BlockArgument>(v)) {
        leaves.insert(v);
        continue;
      }
      BackwardSliceOptions opts;
      opts.inclusive = true;
      opts.omitBlockArguments = false;
      (void)getBackwardSlice(v, &slice, opts);
    }
  }
  // Slices reach the function arguments through pure scalar ops only.
  for (Operation *op : slice) {
    if (!isPure(op) || op->getNumRegions())
      return op->emitOpError("cannot be computed inside the kernel");
    for (Value v : op->getOperands())
      if (isa<BlockArgument>(v))
        leaves.insert(v);
  }
  plan.prologue.assign(slice.begin(), slice.end());
  llvm::sort(plan.prologue,
             [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  for (Value v : leaves) {
    plan.scalarLeaves.push_back(v);
    plan.argTypes.push_back(v.getType());
    plan.origins.push_back(cast<BlockArgument>(v).getArgNumber());
  }
  return plan;
}

SmallVector<SegmentBuffers, 1>
mlir::dqt::materializeSegments(OpBuilder &b, const KernelPlan &plan,
                               ValueRange args) {
  FusedStepOp step = plan.op;
  IRMapping map;
  unsigned next = 0;
  SmallVector<SegmentBuffers, 1> segs(step.getSegments());
  unsigned tensors = step.getTensors();
  for (unsigned s = 0; s < segs.size(); ++s) {
    for (unsigned i = 0; i < tensors; ++i) {
      segs[s].inputs.push_back(args[next++]);
      segs[s].packedInputs.push_back(step.isPackedTensor(i));
    }
    for (int64_t tiedIdx : step.getTied()) {
      segs[s].outputs.push_back(tiedIdx >= 0 ? segs[s].inputs[tiedIdx]
                                             : args[next++]);
      segs[s].packedOutputs.push_back(tiedIdx >= 0 &&
                                      step.isPackedTensor(tiedIdx));
    }
    segs[s].countInput = step.getCountTensor();
    OperandRange ins = step.getSegmentInputs(s);
    for (unsigned i = tensors; i < ins.size(); ++i)
      if (step.isRowOperand(i))
        segs[s].rowInputs.push_back({i - tensors, args[next++]});
    for (unsigned k = 0; k < step.getNumReductions(); ++k)
      segs[s].rowOutputs.push_back(step.isRowReduction(k) ? args[next++]
                                                          : Value());
    if (std::optional<int64_t> rl = step.getRowLength())
      segs[s].rowLength = *rl - tensors;
  }
  for (Value leaf : plan.scalarLeaves)
    map.map(leaf, args[next++]);
  for (Operation *op : plan.prologue) {
    if (auto nd = dyn_cast<NextDeltaOp>(op)) {
      Value v = buildNextDelta(b, nd.getLoc(), map.lookup(nd.getDelta()),
                               map.lookup(nd.getMaxQ()),
                               getGridBounds(nd.getBits(), nd.getTernary()));
      map.map(nd.getResult(), v);
      continue;
    }
    b.clone(*op, map);
  }
  for (unsigned s = 0; s < segs.size(); ++s)
    for (auto [i, v] :
         llvm::enumerate(step.getSegmentInputs(s).drop_front(tensors)))
      segs[s].scalars.push_back(step.isRowOperand(tensors + i) ? Value()
                                                               : map.lookup(v));
  return segs;
}
