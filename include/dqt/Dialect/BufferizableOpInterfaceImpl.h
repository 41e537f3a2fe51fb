//===- BufferizableOpInterfaceImpl.h - dqt ops in bufferization -*- C++ -*-===//
//
// One-shot bufferization of the dqt ops that host code keeps (dqt.launch).
//
//===----------------------------------------------------------------------===//

#ifndef DQT_DIALECT_BUFFERIZABLEOPINTERFACEIMPL_H
#define DQT_DIALECT_BUFFERIZABLEOPINTERFACEIMPL_H

namespace mlir {
class DialectRegistry;
namespace dqt {

/// Attaches BufferizableOpInterface to dqt.launch (upstream's
/// registerBufferizableOpInterfaceExternalModels for each dialect).
void registerBufferizableOpInterfaceExternalModels(DialectRegistry &registry);

} // namespace dqt
} // namespace mlir

#endif // DQT_DIALECT_BUFFERIZABLEOPINTERFACEIMPL_H
