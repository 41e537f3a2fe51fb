//===- OptimizerFile.h - an optimizer's checkpoint file ---------*- C++ -*-===//
//
// The file every DQT optimizer (AdamW, SGD, Adafactor) saves and loads: the
// integer weights (q, delta, max q, storage) and the optimizer states of each
// parameter, with the optimizer's name, step, seed and lr, in the
// dqt::checkpoint format (safetensors, checksums, atomic writes).
//
//===----------------------------------------------------------------------===//

#ifndef DQT_RUNTIME_OPTIMIZERFILE_H
#define DQT_RUNTIME_OPTIMIZERFILE_H

#include "dqt/Runtime/QuantizedWeight.h"

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace dqt::optim {

/// A file records the numerics contract its states and weights were written
/// under (dqt::kNumericsVersion) as its metadata entry "dqt.numerics". Files
/// without the entry were written under version 1 (24-bit uniforms, four per
/// block).
using ::dqt::kNumericsVersion;

/// The scalars of an optimizer file.
struct OptimizerFileHeader {
  int64_t step = 0;
  uint64_t seed = 0;
  double lr = 0;
};

/// Non-quantized parameters kept in an optimizer file: their f32 values and
/// states, as float.<i>.value and float.<i>.state.<k>.
struct FloatEntries {
  std::vector<at::Tensor> values;
  std::vector<std::vector<at::Tensor>> states;
};

/// Writes `params` and `states[p][k]` under the names
/// param.<p>.{q,delta,max_q,state.<k>} (packed weights: U8 bytes, their
/// storage and shape in the metadata; delta F32 and max_q I8 of shape [1],
/// or [rows] with a per-row scale, "param.<p>.scale" = "row" in the
/// metadata), and `floats`, with `name`, `header` and the numerics version
/// ("dqt.numerics" = kNumericsVersion).
void saveOptimizerFile(const std::string &path, const char *name,
                       const OptimizerFileHeader &header,
                       const std::vector<QuantizedWeight *> &params,
                       const std::vector<std::vector<at::Tensor>> &states,
                       const FloatEntries &floats = {});

/// Reads `path` and validates all of it against the live `params` and
/// `states` (numerics version: a file of another contract, e.g. v1, which has
/// no "dqt.numerics", is refused, since the run could not continue
/// bit-exactly; writer name, grids, storage, scale mode, shapes, dtypes: each
/// state like its live tensor, deltas finite and > 0, per-row max q in the
/// grid, tensor count, step, lr) before changing
/// anything; then copies the weights and states in and returns the header.
/// Throws c10::Error naming `name`, the file and the first mismatch, with
/// nothing changed.
OptimizerFileHeader loadOptimizerFile(const std::string &path,
                                      const char *name,
                                      const std::vector<QuantizedWeight *> &params,
                                      std::vector<std::vector<at::Tensor>> &states,
                                      FloatEntries *floats = nullptr);

} // namespace dqt::optim

#endif // DQT_RUNTIME_OPTIMIZERFILE_H
