"""dqt: Direct Quantized Training with compiled kernels.

Weights exist only as n-bit integers; every optimizer step writes them back
to the grid with stochastic rounding, in one JIT-compiled kernel.

- `dqt.QuantizedWeight`: integer storage (q, delta, max_q, bits, grad);
  one delta per tensor or, with scale="row", per output row (delta_rows).
- `dqt.nn.QuantLinear`: a linear layer over a QuantizedWeight.
- `dqt.optim.AdamW`, `dqt.optim.SGD`, `dqt.optim.Adafactor`: torch.optim-style
  optimizers.
- `dqt.convert(model, bits=..., scale=...)`: nn.Linear -> QuantLinear, in place.
- `dqt.functional.adamw_step_`, `dqt.random.philox_uniform`: single kernels.
"""
import torch  # noqa: F401  (loads LibTorch before the extension)

from . import _C  # noqa: F401
from . import functional, nn, optim, random  # noqa: F401
from ._C import QuantizedWeight, load_bundle, WITH_COMPILER
from ._convert import convert

__all__ = ["QuantizedWeight", "WITH_COMPILER", "convert", "load_bundle", "functional", "nn", "optim", "random"]
