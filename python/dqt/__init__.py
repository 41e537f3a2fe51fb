"""dqt: Direct Quantized Training with compiled kernels.

Weights exist only as n-bit integers; every optimizer step writes them back
to the grid with stochastic rounding, in one JIT-compiled kernel.
"""
import torch  # noqa: F401  (loads LibTorch before the extension)

from . import _C  # noqa: F401
from . import functional, random  # noqa: F401

__all__ = ["functional", "random"]
