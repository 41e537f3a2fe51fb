//===- DQT.h - the dqt dialect and its ops ----------------------*- C++ -*-===//
//
// The dqt dialect, its attributes and ops, and the emitters of the per-element
// math (ScalarMath.h).
//
//===----------------------------------------------------------------------===//

#ifndef DQT_DIALECT_DQT_H
#define DQT_DIALECT_DQT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dqt/Support/Grid.h"

#include "dqt/Dialect/DQTDialect.h.inc"
#include "dqt/Dialect/DQTEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dqt/Dialect/DQTAttrs.h.inc"

#include "dqt/Dialect/DQTInterfaces.h.inc"

#define GET_OP_CLASSES
#include "dqt/Dialect/DQTOps.h.inc"

namespace mlir::dqt {

using ::dqt::GridBounds;

/// The f32 tensor type of the shape of `tensor` (a state's f32 value).
Type asF32Tensor(Type tensor);

} // namespace mlir::dqt

#include "dqt/Dialect/ScalarMath.h"

#endif // DQT_DIALECT_DQT_H
