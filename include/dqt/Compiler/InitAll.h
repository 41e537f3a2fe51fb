//===- InitAll.h - everything dqt tools register ----------------*- C++ -*-===//
//
// One place registers every dialect, pass, pipeline and translation dqt uses,
// so dqt-opt and the JIT see the same world.
//
//===----------------------------------------------------------------------===//

#ifndef DQT_COMPILER_INITALL_H
#define DQT_COMPILER_INITALL_H

#include "mlir/IR/DialectRegistry.h"

namespace mlir::dqt {

/// Registers the dqt dialect, the upstream dialects its pipelines produce,
/// and their LLVM translations and conversion interfaces.
void registerAllDialects(DialectRegistry &registry);

/// Registers the dqt passes and the two named pipelines.
void registerAllPasses();

} // namespace mlir::dqt

#endif // DQT_COMPILER_INITALL_H
