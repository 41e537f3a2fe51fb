"""dqt: Direct Quantized Training with compiled kernels.

Weights exist only as n-bit integers; every optimizer step writes them back
to the grid with stochastic rounding, in one JIT-compiled kernel.

- `dqt.QuantizedWeight`: integer storage (q, delta, max_q, bits, grad);
  one delta per tensor or, with scale="row", per output row (delta_rows).
- `dqt.QuantizedTensor`: the torch.Tensor subclass that makes a
  QuantizedWeight a parameter PyTorch sees (shape, numel, .grad).
- `dqt.nn.QuantLinear`: a linear layer whose weight is a QuantizedTensor.
- `dqt.optim.AdamW`, `dqt.optim.SGD`, `dqt.optim.Adafactor`: torch.optim-style
  optimizers.
- `dqt.convert(model, bits=..., scale=...)`: nn.Linear -> QuantLinear, in place.
- `dqt.from_pretrained(path)`: a converted transformers model saved with
  `save_pretrained`, rebuilt exactly.
- `dqt.distributed.verify_replicas(model, optimizer)`: data-parallel
  replicas checked bit for bit (DistributedDataParallel works unchanged).
- `dqt.functional.adamw_step_`, `dqt.random.philox_uniform`: single kernels.
"""
import sys

import torch  # noqa: F401  (loads LibTorch before the extension)

from . import _C  # noqa: F401
from . import distributed, functional, nn, optim, pretrained, random, tensor  # noqa: F401
from ._C import QuantizedWeight, load_bundle, WITH_COMPILER
from .tensor import QuantizedTensor
from ._convert import convert
from .pretrained import from_pretrained
from .training_graph import export_training_graph

if "transformers" in sys.modules:  # else on first convert or from_pretrained
    pretrained._register_with_transformers()

__all__ = ["QuantizedTensor", "QuantizedWeight", "WITH_COMPILER", "convert", "export_training_graph", "from_pretrained", "load_bundle", "distributed", "functional", "nn", "optim", "random"]
