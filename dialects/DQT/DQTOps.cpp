//===- DQTOps.cpp - verifiers and builders of the dqt ops -----------------===//

#include "dqt/Dialect/DQT.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace mlir::dqt;

/// `: vector<Nxi32>` after dqt.philox, nothing for i32.
static ParseResult parseWordType(OpAsmParser &parser, Type &type) {
  type = parser.getBuilder().getI32Type();
  if (succeeded(parser.parseOptionalColon()))
    return parser.parseType(type);
  return success();
}

static void printWordType(OpAsmPrinter &printer, Operation *, Type type) {
  if (!type.isInteger(32))
    printer << " : " << type;
}

#define GET_OP_CLASSES
#include "dialects/DQT/DQTOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Shared checks
//===----------------------------------------------------------------------===//

GridBounds mlir::dqt::getGridBounds(std::optional<int64_t> bits, bool ternary) {
  if (ternary || !bits)
    return {-1, 1};
  return {-(int64_t(1) << (*bits - 1)), (int64_t(1) << (*bits - 1)) - 1};
}

LogicalResult mlir::dqt::verifyGrid(Operation *op, std::optional<int64_t> bits,
                                    bool ternary) {
  if (ternary && bits)
    return op->emitOpError("takes either 'bits' or 'ternary', not both");
  if (!ternary && !bits)
    return op->emitOpError("requires a grid: 'bits' in [2, 8] or 'ternary'");
  if (bits && (*bits < 2 || *bits > 8))
    return op->emitOpError("bit width ")
           << *bits << " is out of range [2, 8] (use 'ternary' for 1.58 bits)";
  return success();
}

Type mlir::dqt::asF32Tensor(Type tensor) {
  return RankedTensorType::get(cast<ShapedType>(tensor).getShape(),
                               Float32Type::get(tensor.getContext()));
}

/// All `values` (1-D tensors) must have the same length where it is static.
static LogicalResult verifySameLength(Operation *op, ValueRange values) {
  std::optional<int64_t> len;
  Value first;
  for (Value v : values) {
    auto t = cast<RankedTensorType>(v.getType());
    if (t.isDynamicDim(0))
      continue;
    if (!len) {
      len = t.getDimSize(0);
      first = v;
      continue;
    }
    if (*len != t.getDimSize(0))
      return op->emitOpError("tensor lengths differ: ")
             << first.getType() << " vs " << v.getType();
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Tensor-level ops
//===----------------------------------------------------------------------===//

LogicalResult QuantizeOp::verify() {
  if (failed(verifyGrid(*this, getBits(), getTernary())))
    return failure();
  return verifySameLength(*this, {getWeight(), getQ()});
}

/// `values` plus `delta` where it is a tensor (one delta per element).
static SmallVector<Value> withDelta(ValueRange values, Value delta) {
  SmallVector<Value> all(values);
  if (isa<ShapedType>(delta.getType()))
    all.push_back(delta);
  return all;
}

LogicalResult DequantizeOp::verify() {
  return verifySameLength(*this, withDelta({getQ(), getResult()}, getDelta()));
}

LogicalResult AdamMomentsOp::verify() {
  return verifySameLength(*this, {getGrad(), getExpAvg(), getExpAvgSq(),
                                  getNewExpAvg(), getNewExpAvgSq()});
}

LogicalResult AdamApplyOp::verify() {
  return verifySameLength(
      *this, {getWeight(), getExpAvg(), getExpAvgSq(), getResult()});
}

LogicalResult SgdMomentumOp::verify() {
  return verifySameLength(*this, {getWeight(), getGrad(), getMomentumBuffer(),
                                  getResult(), getNewMomentumBuffer()});
}

LogicalResult UniformOp::verify() {
  return verifySameLength(*this, {getLike(), getResult()});
}

LogicalResult StochasticRoundOp::verify() {
  if (failed(verifyGrid(*this, getBits(), getTernary())))
    return failure();
  return verifySameLength(
      *this, withDelta({getValue(), getUniform(), getResult()}, getDelta()));
}

LogicalResult ExpandRowsOp::verify() {
  return verifySameLength(*this, {getLike(), getResult()});
}

LogicalResult RandomBitsOp::verify() {
  return verifySameLength(*this, {getLike(), getResult()});
}

LogicalResult StochasticRoundBF16Op::verify() {
  if (getShift() != 0 && getShift() != 16)
    return emitOpError("shift must be 0 or 16 (the low or high half of the "
                       "random word), got ")
           << getShift();
  return verifySameLength(*this, {getValue(), getRandom(), getResult()});
}

/// ceil(n / 4): the bytes of n packed ternary weights.
static int64_t packedBytes(int64_t n) { return (n + 3) / 4; }

LogicalResult UnpackTernaryOp::verify() {
  if (failed(verifySameLength(*this, {getLike(), getResult()})))
    return failure();
  auto p = cast<RankedTensorType>(getPacked().getType());
  auto r = cast<RankedTensorType>(getResult().getType());
  if (!p.isDynamicDim(0) && !r.isDynamicDim(0) &&
      p.getDimSize(0) != packedBytes(r.getDimSize(0)))
    return emitOpError("packed storage of ")
           << r.getDimSize(0) << " elements has " << packedBytes(r.getDimSize(0))
           << " bytes, got " << p.getDimSize(0);
  return success();
}

LogicalResult PackTernaryOp::verify() {
  auto q = cast<RankedTensorType>(getQ().getType());
  auto r = cast<RankedTensorType>(getResult().getType());
  if (!q.isDynamicDim(0) && !r.isDynamicDim(0) &&
      r.getDimSize(0) != packedBytes(q.getDimSize(0)))
    return emitOpError("packed storage of ")
           << q.getDimSize(0) << " elements has " << packedBytes(q.getDimSize(0))
           << " bytes, got " << r.getDimSize(0);
  return success();
}

LogicalResult MaskNonFiniteOp::verify() {
  return verifySameLength(*this, {getGrad(), getNewValue(), getOldValue()});
}

LogicalResult NextDeltaOp::verify() {
  return verifyGrid(*this, getBits(), getTernary());
}

LogicalResult PhiloxOp::verify() {
  if (getRounds() < 1 || getRounds() > 16)
    return emitOpError("rounds must be in [1, 16], got ") << getRounds();
  return success();
}

LogicalResult CountChangedOp::verify() {
  return verifySameLength(*this, {getBefore(), getAfter()});
}

//===----------------------------------------------------------------------===//
// FusedStepOp
//===----------------------------------------------------------------------===//

void FusedStepOp::build(OpBuilder &b, OperationState &state,
                        TypeRange resultTypes, ValueRange inputs,
                        int64_t segments, int64_t tensors, bool rng,
                        bool rngBits, ArrayRef<int64_t> tied,
                        ArrayRef<StringRef> reductions,
                        ArrayRef<int64_t> packed,
                        std::optional<int64_t> rowLength) {
  state.addOperands(inputs);
  if (rowLength)
    state.addAttribute(getRowLengthAttrName(state.name),
                       b.getI64IntegerAttr(*rowLength));
  if (!packed.empty())
    state.addAttribute(getPackedAttrName(state.name),
                       b.getDenseI64ArrayAttr(packed));
  state.addTypes(resultTypes);
  state.addAttribute(getSegmentsAttrName(state.name),
                     b.getI64IntegerAttr(segments));
  state.addAttribute(getTensorsAttrName(state.name),
                     b.getI64IntegerAttr(tensors));
  if (rng)
    state.addAttribute(getRngAttrName(state.name), b.getUnitAttr());
  if (rngBits)
    state.addAttribute(getRngBitsAttrName(state.name), b.getUnitAttr());
  state.addAttribute(getTiedAttrName(state.name), b.getDenseI64ArrayAttr(tied));
  state.addAttribute(getReductionsAttrName(state.name),
                     b.getStrArrayAttr(reductions));
  state.addRegion();
}

LogicalResult FusedStepOp::verify() {
  int64_t segments = getSegments();
  if (segments < 1)
    return emitOpError("needs at least one segment, got ") << segments;
  if (getInputs().size() % segments)
    return emitOpError("has ")
           << getInputs().size() << " operands, not a multiple of " << segments
           << " segments";
  if (getResults().empty())
    return emitOpError("must produce at least one output or reduction");
  if (getResults().size() % segments)
    return emitOpError("has ")
           << getResults().size() << " results, not a multiple of " << segments
           << " segments";
  int64_t perSeg = getOperandsPerSegment();
  int64_t tensors = getTensors();
  if (tensors < 1 || tensors > perSeg)
    return emitOpError("'tensors' = ")
           << tensors << " must be in [1, " << perSeg << "]";
  if (getResultsPerSegment() != getNumOutputs() + getNumReductions())
    return emitOpError("has ")
           << getResultsPerSegment() << " results per segment, expected "
           << getNumOutputs() << " outputs + " << getNumReductions()
           << " reductions";

  // Every segment has segment 0's signature.
  for (int64_t s = 1; s < segments; ++s) {
    if (getSegmentInputs(s).getTypes() != getSegmentInputs(0).getTypes())
      return emitOpError("segment ")
             << s << " operand types differ from segment 0's";
    if (getSegmentResults(s).getTypes() != getSegmentResults(0).getTypes())
      return emitOpError("segment ")
             << s << " result types differ from segment 0's";
  }

  // Tensor operands and outputs: 1-D; scalars: not shaped.
  OperandRange ins = getSegmentInputs(0);
  for (auto [i, v] : llvm::enumerate(ins)) {
    bool isTensor = int64_t(i) < tensors;
    auto t = dyn_cast<RankedTensorType>(v.getType());
    if (isTensor && (!t || t.getRank() != 1))
      return emitOpError("operand #")
             << i << " must be a 1-D tensor (one of the first " << tensors
             << "), got " << v.getType();
    if (!isTensor && isa<ShapedType>(v.getType()) &&
        (!getRowLength() || !t || t.getRank() != 1))
      return emitOpError("operand #")
             << i << " must be a scalar (after the " << tensors << " tensors)"
             << (getRowLength() ? " or a 1-D tensor of one value per row" : "")
             << ", got " << v.getType();
  }
  if (std::optional<int64_t> rl = getRowLength()) {
    if (*rl < tensors || *rl >= perSeg)
      return emitOpError("'row_length' = ")
             << *rl << " is not a scalar operand (in [" << tensors << ", "
             << perSeg << "))";
    if (!ins[*rl].getType().isInteger(64))
      return emitOpError("row length operand #")
             << *rl << " must be i64, got " << ins[*rl].getType();
  }
  if (hasRandomScalars()) {
    StringRef attr = getRng() ? "rng" : "rng_bits";
    if (perSeg < tensors + 3)
      return emitOpError("with '")
             << attr << "' needs seed, step and tensor id scalars";
    for (int i = 0; i < 3; ++i)
      if (!ins[tensors + i].getType().isInteger(64))
        return emitOpError("with '")
               << attr << "': scalar #"
               << i << " (seed, step, tensor id) must be i64, got "
               << ins[tensors + i].getType();
  }
  ResultRange res = getSegmentResults(0);
  for (auto [k, tiedIdx] : llvm::enumerate(getTied())) {
    auto t = dyn_cast<RankedTensorType>(res[k].getType());
    if (!t || t.getRank() != 1)
      return emitOpError("output #")
             << k << " must be a 1-D tensor, got " << res[k].getType();
    if (tiedIdx < -1 || tiedIdx >= tensors)
      return emitOpError("tied[")
             << k << "] = " << tiedIdx << " is not a tensor operand or -1";
    if (tiedIdx >= 0 && ins[tiedIdx].getType() != t)
      return emitOpError("output #")
             << k << " of type " << t << " cannot overwrite operand #"
             << tiedIdx << " of type " << ins[tiedIdx].getType();
    if (tiedIdx >= 0 && llvm::count(getTied(), tiedIdx) > 1)
      return emitOpError("outputs overwrite operand #")
             << tiedIdx << " more than once";
  }
  ArrayRef<int64_t> packed = getPacked().value_or(ArrayRef<int64_t>());
  for (int64_t p : packed) {
    if (p < 0 || p >= tensors)
      return emitOpError("packed operand ")
             << p << " is not a tensor operand (in [0, " << tensors << "))";
    if (llvm::count(packed, p) > 1)
      return emitOpError("packed operand ") << p << " is listed twice";
    if (!cast<ShapedType>(ins[p].getType()).getElementType().isInteger(8))
      return emitOpError("packed operand #")
             << p << " must be an i8 tensor (4 ternary codes per byte), got "
             << ins[p].getType();
  }
  if (int64_t(packed.size()) >= tensors)
    return emitOpError("needs a tensor operand that is not packed (it gives "
                       "the element count)");
  // One length per segment: its tensor operands and outputs; packed ones
  // hold ceil(n/4) bytes.
  auto isPackedOutput = [&](unsigned k) {
    return getTied()[k] >= 0 && isPackedTensor(getTied()[k]);
  };
  for (int64_t s = 0; s < segments; ++s) {
    SmallVector<Value> plain, packedOfSeg;
    for (auto [i, v] : llvm::enumerate(getSegmentInputs(s).take_front(tensors)))
      (isPackedTensor(i) ? packedOfSeg : plain).push_back(v);
    for (auto [k, r] :
         llvm::enumerate(getSegmentResults(s).take_front(getNumOutputs())))
      (isPackedOutput(k) ? packedOfSeg : plain).push_back(r);
    if (failed(verifySameLength(*this, plain)) ||
        failed(verifySameLength(*this, packedOfSeg)))
      return failure();
    auto n = cast<RankedTensorType>(plain.front().getType());
    for (Value v : packedOfSeg) {
      auto t = cast<RankedTensorType>(v.getType());
      if (!n.isDynamicDim(0) && !t.isDynamicDim(0) &&
          t.getDimSize(0) != (n.getDimSize(0) + 3) / 4)
        return emitOpError("packed storage of ")
               << n.getDimSize(0) << " elements has "
               << (n.getDimSize(0) + 3) / 4 << " bytes, got " << t;
    }
  }
  for (auto [k, kind] : llvm::enumerate(getReductions())) {
    StringRef name = cast<StringAttr>(kind).getValue();
    if (name != "maxsi" && name != "addi")
      return emitOpError("reduction #")
             << k << " is '" << name << "', expected 'maxsi' or 'addi'";
    Type type = res[getNumOutputs() + k].getType();
    auto rows = dyn_cast<RankedTensorType>(type);
    if (rows && !getRowLength())
      return emitOpError("reduction #")
             << k
             << " is per row (a tensor result) but 'row_length' is not set";
    if (rows && rows.getRank() != 1)
      return emitOpError("per-row reduction #")
             << k << " must produce a 1-D tensor, got " << type;
    if (!getElementTypeOrSelf(type).isSignlessInteger())
      return emitOpError("reduction #") << k << " must produce an integer";
  }
  return success();
}

LogicalResult FusedStepOp::verifyRegions() {
  Block &body = getBodyBlock();
  unsigned tensors = getTensors();
  SmallVector<Type> expected;
  if (getRng())
    expected.push_back(Float32Type::get(getContext()));
  if (getRngBits())
    expected.push_back(IntegerType::get(getContext(), 32));
  // Tensors and row operands give one element per body run.
  for (Value v : getSegmentInputs(0))
    expected.push_back(getElementTypeOrSelf(v.getType()));
  if (body.getArgumentTypes() != ArrayRef<Type>(expected)) {
    auto diag = emitOpError("body arguments must be ");
    if (getRng())
      diag << "the uniform (f32), then ";
    if (getRngBits())
      diag << "the random bits (i32), then ";
    diag << "the element types of the " << tensors
         << " tensors, then the scalars"
         << (getRowLength() ? " (a row operand's element type)" : "");
    return diag;
  }
  auto yield = cast<YieldOp>(body.getTerminator());
  ResultRange res = getSegmentResults(0);
  if (yield.getValues().size() != res.size())
    return yield.emitOpError("yields ")
           << yield.getValues().size() << " values, expected " << res.size();
  for (auto [k, v] : llvm::enumerate(yield.getValues())) {
    Type want = res[k].getType();
    if (auto t = dyn_cast<ShapedType>(want))
      want = t.getElementType();
    if (v.getType() != want)
      return yield.emitOpError("value #")
             << k << " has type " << v.getType() << ", expected " << want;
  }
  return success();
}
