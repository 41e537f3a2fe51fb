//===- DQTAttrs.cpp - #dqt.grid, #dqt.combiner, #dqt.stream ---------------===//
//
// The parser, printer and verifier of #dqt.grid, and the registration of the
// dialect's attributes (the enums' code is generated).
//
//===----------------------------------------------------------------------===//

#include "dqt/Dialect/DQT.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::dqt;

#include "dqt/Dialect/DQTEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dqt/Dialect/DQTAttrs.cpp.inc"

void DQTDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dqt/Dialect/DQTAttrs.cpp.inc"
      >();
}

/// `<b>` or `<ternary>`.
Attribute GridAttr::parse(AsmParser &parser, Type) {
  if (parser.parseLess())
    return {};
  SMLoc loc = parser.getCurrentLocation();
  int64_t bits = 2;
  bool ternary = succeeded(parser.parseOptionalKeyword("ternary"));
  if (!ternary) {
    OptionalParseResult width = parser.parseOptionalInteger(bits);
    if (!width.has_value()) {
      parser.emitError(loc, "expected a bit width in [")
          << ::dqt::kMinGridBits << ", " << ::dqt::kMaxGridBits
          << "] or 'ternary'";
      return {};
    }
    if (failed(*width))
      return {};
  }
  if (parser.parseGreater())
    return {};
  return parser.getChecked<GridAttr>(loc, parser.getContext(), bits, ternary);
}

void GridAttr::print(AsmPrinter &printer) const {
  printer << '<';
  if (getTernary())
    printer << "ternary";
  else
    printer << getBits();
  printer << '>';
}

LogicalResult GridAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               int64_t bits, bool ternary) {
  if (ternary && bits != 2)
    return emitError() << "a ternary grid is stored in 2 bits, got " << bits;
  if (bits < ::dqt::kMinGridBits || bits > ::dqt::kMaxGridBits)
    return emitError() << "bit width " << bits << " is out of range ["
                       << ::dqt::kMinGridBits << ", " << ::dqt::kMaxGridBits
                       << "] (use 'ternary' for 1.58 bits)";
  return success();
}
