"""The random stream of the numerics contract (docs/numerics.md)."""
import torch

from . import _C


def philox_uniform(seed: int, step: int, tensor_id: int, numel: int, *,
                   device=None) -> torch.Tensor:
    """The `u` stream for elements 0..numel-1 (float32, on `device`, the
    CPU by default). The values are computed by the CPU kernel and copied
    to `device`: they are the same bits on every device, those the GPU
    kernels draw.

    Numerics v2: element i is (h_i + 0.5) * 2**-16, where h_i is the low
    (even i) or high (odd i) 16 bits of word (i % 8) // 2 of Philox4x32-10
    with key (seed lo, seed hi) and counter (i // 8 lo, i // 8 hi, step,
    tensor_id).
    """
    u = _C.philox_uniform(seed, step, tensor_id, numel)
    return u if device is None else u.to(device)
