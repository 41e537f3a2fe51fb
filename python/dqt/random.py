"""The random stream of the numerics contract (docs/numerics.md)."""
import torch

from . import _C


def philox_uniform(seed: int, step: int, tensor_id: int, numel: int) -> torch.Tensor:
    """The `u` stream for elements 0..numel-1 (float32, CPU).

    Element i is (h + 0.5) * 2**-16 (numerics contract v2), where h is the
    low (even i) or high (odd i) 16 bits of word (i % 8) // 2 of
    Philox4x32-10 with key (seed lo, seed hi) and counter (i // 8 lo,
    i // 8 hi, step, tensor_id): the generated kernel's own stream.
    """
    return _C.philox_uniform(seed, step, tensor_id, numel)
