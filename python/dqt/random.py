"""The random stream of the numerics contract (docs/numerics.md)."""
import torch

from . import _C


def philox_uniform(seed: int, step: int, tensor_id: int, numel: int) -> torch.Tensor:
    """The `u` stream for elements 0..numel-1 (float32, CPU).

    Element i is (word[i % 4] >> 8) * 2**-24 of Philox4x32-10 with key
    (seed lo, seed hi) and counter (i // 4 lo, i // 4 hi, step, tensor_id).
    """
    return _C.philox_uniform(seed, step, tensor_id, numel)
