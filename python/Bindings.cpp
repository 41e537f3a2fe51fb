//===- Bindings.cpp - the dqt Python extension (dqt._C) -------------------===//
//
// Thin pybind11 bindings over the runtime; the Python modules in dqt/ give
// them their public names and signatures.
//
//===----------------------------------------------------------------------===//

#include "dqt/Runtime/Functional.h"

#include <torch/extension.h>

#include <sstream>

namespace py = pybind11;
using namespace dqt;

namespace {
/// What adamw_step_ returns (attributes of the Python object).
struct PyStepResult {
  float delta;
  int64_t maxQ, changed, nonFinite;
};
} // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "dqt: Direct Quantized Training kernels (C++ extension)";
  py::class_<PyStepResult>(m, "StepResult")
      .def_readonly("delta", &PyStepResult::delta,
                    "the new delta (step of the grid)")
      .def_readonly("max_q", &PyStepResult::maxQ, "max of the new q")
      .def_readonly("changed", &PyStepResult::changed,
                    "number of elements whose integer changed")
      .def_readonly("nonfinite", &PyStepResult::nonFinite,
                    "number of non-finite gradient elements (left untouched)")
      .def("__repr__", [](const PyStepResult &r) {
        std::ostringstream os;
        os << "StepResult(delta=" << r.delta << ", max_q=" << r.maxQ
           << ", changed=" << r.changed << ", nonfinite=" << r.nonFinite << ")";
        return os.str();
      });

  m.def("philox_uniform", &functional::philoxUniform, py::arg("seed"),
        py::arg("step"), py::arg("tensor_id"), py::arg("numel"));

  m.def(
      "adamw_step_",
      [](at::Tensor q, double delta, int64_t maxQ, at::Tensor grad,
         at::Tensor expAvg, at::Tensor expAvgSq, int64_t step, double lr,
         double beta1, double beta2, double eps, double weightDecay,
         double bits, uint64_t seed, int64_t tensorId) {
        functional::AdamWStepArgs a{step,        lr,   beta1, beta2,   eps,
                                    weightDecay, bits, seed,  tensorId};
        functional::StepResult r;
        {
          py::gil_scoped_release release;
          r = functional::adamwStep(q, delta, maxQ, grad, expAvg, expAvgSq, a);
        }
        return PyStepResult{r.delta, r.stats.maxQ, r.stats.changed,
                            r.stats.nonFinite};
      },
      py::arg("q"), py::arg("delta"), py::arg("max_q"), py::arg("grad"),
      py::arg("exp_avg"), py::arg("exp_avg_sq"), py::kw_only(), py::arg("step"),
      py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
      py::arg("weight_decay"), py::arg("bits"), py::arg("seed"),
      py::arg("tensor_id"));
}
