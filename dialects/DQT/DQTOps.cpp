//===- DQTOps.cpp - verifiers and builders of the dqt ops -----------------===//
//
// Verifiers of the dqt ops. Each names what is wrong at the op's location;
// test/Dialect/DQT/*invalid.mlir holds one case per diagnostic.
//
//===----------------------------------------------------------------------===//

#include "dqt/Dialect/DQT.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
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

/// `: i32` after dqt.next_delta with the absmax rule, nothing for i8.
static ParseResult parseMaxQType(OpAsmParser &parser, Type &type) {
  type = parser.getBuilder().getI8Type();
  if (succeeded(parser.parseOptionalColon()))
    return parser.parseType(type);
  return success();
}

static void printMaxQType(OpAsmPrinter &printer, Operation *, Type type) {
  if (!type.isInteger(8))
    printer << " : " << type;
}

#define GET_OP_CLASSES
#include "dqt/Dialect/DQTOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Shared checks
//===----------------------------------------------------------------------===//

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
           << r.getDimSize(0) << " elements has "
           << packedBytes(r.getDimSize(0)) << " bytes, got " << p.getDimSize(0);
  return success();
}

LogicalResult PackTernaryOp::verify() {
  auto q = cast<RankedTensorType>(getQ().getType());
  auto r = cast<RankedTensorType>(getResult().getType());
  if (!q.isDynamicDim(0) && !r.isDynamicDim(0) &&
      r.getDimSize(0) != packedBytes(q.getDimSize(0)))
    return emitOpError("packed storage of ")
           << q.getDimSize(0) << " elements has "
           << packedBytes(q.getDimSize(0)) << " bytes, got " << r.getDimSize(0);
  return success();
}

LogicalResult MaskNonFiniteOp::verify() {
  return verifySameLength(*this, {getGrad(), getNewValue(), getOldValue()});
}

LogicalResult PhiloxOp::verify() {
  if (getRounds() < 1 || getRounds() > 16)
    return emitOpError("rounds must be in [1, 16], got ") << getRounds();
  return success();
}

LogicalResult NextDeltaOp::verify() {
  bool absMax = getRule() == ScaleRule::absmax;
  if (getMaxQ().getType().isInteger(absMax ? 32 : 8) == false)
    return emitOpError("rule ")
           << stringifyScaleRule(getRule()) << " takes "
           << (absMax ? "the bits of max|w2| as i32" : "max q as i8")
           << ", got " << getMaxQ().getType();
  if (absMax && getGrid().getTernary())
    return emitOpError("rule absmax is for 2..8-bit grids; ternary weights "
                       "keep the paper's rule (maxq)");
  return success();
}

LogicalResult CountChangedOp::verify() {
  return verifySameLength(*this, {getBefore(), getAfter()});
}

//===----------------------------------------------------------------------===//
// FusedStepOp
//===----------------------------------------------------------------------===//

Value FusedStepOp::getCountTensor() {
  for (Value v : getIns())
    return v;
  for (auto [k, v] : llvm::enumerate(getOuts()))
    if (!isPackedOut(k))
      return v;
  return {};
}

/// The static length of a 1-D tensor, or nullopt.
static std::optional<int64_t> staticLength(Value v) {
  auto t = cast<RankedTensorType>(v.getType());
  if (t.isDynamicDim(0))
    return std::nullopt;
  return t.getDimSize(0);
}

LogicalResult FusedStepOp::verify() {
  unsigned numOuts = getOuts().size(), numRowOuts = getRowOuts().size();
  if (getResults().empty())
    return emitOpError("must produce at least one output or reduction");
  if (getNumReductions() < numRowOuts)
    return emitOpError("has ") << numRowOuts << " per-row destinations but "
                               << getNumReductions() << " combiners";
  if (getResults().size() != numOuts + getNumReductions())
    return emitOpError("has ")
           << getResults().size() << " results, expected " << numOuts
           << " outputs + " << getNumReductions() << " reductions (one per "
           << "combiner)";
  for (unsigned k = numRowOuts; k < getNumReductions(); ++k)
    if (!getReductionResult(k).getType().isSignlessInteger())
      return emitOpError("reduction #") << k << " must produce an integer, got "
                                        << getReductionResult(k).getType();
  if ((!getRows().empty() || numRowOuts) && !getRowLength())
    return emitOpError("has per-row operands or destinations but no "
                       "'row_length'");
  if (getRowLength() && getRows().empty() && !numRowOuts)
    return emitOpError("has a 'row_length' but nothing per row");

  ArrayRef<int64_t> packed = getPacked().value_or(ArrayRef<int64_t>());
  for (int64_t p : packed) {
    if (p < 0 || p >= int64_t(numOuts))
      return emitOpError("packed output ")
             << p << " is not one of the " << numOuts << " outs";
    if (llvm::count(packed, p) > 1)
      return emitOpError("packed output ") << p << " is listed twice";
    Type t = getOuts()[p].getType();
    if (!cast<ShapedType>(t).getElementType().isInteger(8))
      return emitOpError("packed output #")
             << p << " must be an i8 tensor (4 ternary codes per byte), got "
             << t;
  }
  Value count = getCountTensor();
  if (!count)
    return emitOpError("needs an element tensor that is not packed (it "
                       "gives the element count)");

  // One element count: `ins` and `outs`; packed ones hold ceil(n/4) bytes.
  std::optional<int64_t> n = staticLength(count);
  auto checkLength = [&](Value v, bool isPacked) -> LogicalResult {
    std::optional<int64_t> len = staticLength(v);
    if (!n || !len)
      return success();
    int64_t want = isPacked ? (*n + 3) / 4 : *n;
    if (*len == want)
      return success();
    if (isPacked)
      return emitOpError("packed storage of ")
             << *n << " elements has " << want << " bytes, got " << v.getType();
    return emitOpError("tensor lengths differ: ")
           << count.getType() << " vs " << v.getType();
  };
  for (Value v : getIns())
    if (failed(checkLength(v, false)))
      return failure();
  for (auto [k, v] : llvm::enumerate(getOuts()))
    if (failed(checkLength(v, isPackedOut(k))))
      return failure();
  // One row count: `rows` and `row_outs`.
  SmallVector<Value> perRow(getRows());
  llvm::append_range(perRow, getRowOuts());
  for (Value v : perRow)
    if (staticLength(v) && staticLength(perRow.front()) &&
        staticLength(v) != staticLength(perRow.front()))
      return emitOpError("per-row tensor lengths differ: ")
             << perRow.front().getType() << " vs " << v.getType();
  return success();
}

LogicalResult FusedStepOp::verifyRegions() {
  Block &body = getBodyBlock();
  SmallVector<Type> expected;
  for (Value v : llvm::concat<Value>(getIns(), getRows()))
    expected.push_back(getElementTypeOrSelf(v.getType()));
  llvm::append_range(expected, getScalars().getTypes());
  for (Value v : getOuts())
    expected.push_back(getElementTypeOrSelf(v.getType()));
  if (body.getArgumentTypes() != ArrayRef<Type>(expected))
    return emitOpError("body arguments must be the element types of 'ins' "
                       "and 'rows', the types of 'scalars', then the element "
                       "types of 'outs'");
  auto yield = cast<YieldOp>(body.getTerminator());
  SmallVector<Type> yielded;
  for (Value v : getOuts())
    yielded.push_back(getElementTypeOrSelf(v.getType()));
  for (unsigned k = 0; k < getNumReductions(); ++k)
    yielded.push_back(getReductionElementType(k));
  if (yield.getValues().size() != yielded.size())
    return yield.emitOpError("yields ")
           << yield.getValues().size() << " values, expected " << yielded.size()
           << " (one per output, then one per reduction)";
  for (auto [k, v] : llvm::enumerate(yield.getValues()))
    if (v.getType() != yielded[k])
      return yield.emitOpError("value #")
             << k << " has type " << v.getType() << ", expected " << yielded[k];
  // One random word per stream: the lowerings draw each once per group.
  SmallVector<PhiloxBitsOp, 2> words(body.getOps<PhiloxBitsOp>());
  for (auto [i, w] : llvm::enumerate(words))
    for (PhiloxBitsOp other : ArrayRef(words).drop_front(i + 1))
      if (other.getStream() == w.getStream())
        return other.emitOpError("draws twice from the '")
               << stringifyRandomStream(w.getStream())
               << "' stream of this body";
  return success();
}

LogicalResult PhiloxBitsOp::verify() {
  auto step = cast<FusedStepOp>((*this)->getParentOp());
  auto isScalarArg = [&](Value v) {
    auto arg = dyn_cast<BlockArgument>(v);
    return arg && arg.getOwner() == &step.getBodyBlock() &&
           llvm::is_contained(step.getScalarArgs(), arg);
  };
  for (auto [name, v] : {std::pair<StringRef, Value>{"seed", getSeed()},
                         {"step", getStep()},
                         {"tensor id", getTensorId()}})
    if (!isScalarArg(v))
      return emitOpError("takes its ")
             << name << " from a scalar argument of the fused step's body";
  if (!getIndex().getDefiningOp<ElementIndexOp>())
    return emitOpError("draws for the body's own element: its index must be "
                       "'dqt.element_index'");
  return success();
}

LogicalResult LaunchOp::verify() {
  bool tensors = isTensorForm();
  auto check = [&](StringRef what, unsigned k, Type t) -> LogicalResult {
    auto shaped = dyn_cast<ShapedType>(t);
    if (!shaped)
      return success();
    if (isa<TensorType>(t) == tensors && shaped.getRank() == 1 &&
        (tensors || isa<MemRefType>(t)))
      return success();
    return emitOpError(what) << " #" << k << " must be a 1-D "
                             << (tensors ? "tensor" : "memref")
                             << " like the others, got " << t;
  };
  for (auto [k, t] : llvm::enumerate(getArgs().getTypes()))
    if (failed(check("argument", k, t)))
      return failure();
  for (auto [k, t] : llvm::enumerate(getOuts().getTypes()))
    if (failed(check("destination", k, t)))
      return failure();
  unsigned tied = tensors ? getOuts().size() : 0;
  if (getResults().size() < tied)
    return emitOpError("has ") << getResults().size()
                               << " results, fewer than its " << tied
                               << " tensor destinations";
  for (unsigned k = 0; k < tied; ++k)
    if (getResult(k).getType() != getOuts()[k].getType())
      return emitOpError("result #")
             << k << " must have the type of destination #" << k << ", got "
             << getResult(k).getType();
  unsigned reds = getResults().size() - tied, perStep = getCombiners().size();
  if (perStep ? reds % perStep != 0 : reds != 0)
    return emitOpError("has ")
           << reds << " reductions, not a multiple of its " << perStep
           << " combiners (one per tensor reduction of each step)";
  for (Value r : getReductions())
    if (!r.getType().isSignlessInteger())
      return emitOpError("reductions must be integers, got ") << r.getType();
  return success();
}

void LaunchOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  // On memrefs the kernel reads its arguments' buffers and reads and writes
  // its destinations (the weights and states it updates in place). On
  // tensors it has no effect: its results are values.
  for (OpOperand &use : getArgsMutable())
    if (isa<MemRefType>(use.get().getType()))
      effects.emplace_back(MemoryEffects::Read::get(), &use,
                           SideEffects::DefaultResource::get());
  for (OpOperand &use : getOutsMutable())
    if (isa<MemRefType>(use.get().getType())) {
      effects.emplace_back(MemoryEffects::Read::get(), &use,
                           SideEffects::DefaultResource::get());
      effects.emplace_back(MemoryEffects::Write::get(), &use,
                           SideEffects::DefaultResource::get());
    }
}

LogicalResult LaunchOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  Operation *kernel = symbolTable.lookupNearestSymbolFrom(*this, getKernel());
  auto fn = dyn_cast_or_null<FunctionOpInterface>(kernel);
  if (!fn)
    return emitOpError("kernel '") << getKernel() << "' is not a function";
  // The tensor-level kernel takes exactly `args` and `outs`; its lowerings
  // append target arguments (chunk bounds, partials).
  if (fn.getNumArguments() < getArgs().size() + getOuts().size())
    return emitOpError("passes ")
           << getArgs().size() + getOuts().size() << " operands to '"
           << getKernel() << "', which takes " << fn.getNumArguments();
  return success();
}
