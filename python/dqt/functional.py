"""Single-tensor DQT steps running the JIT-compiled kernels."""
import torch

from . import _C


def adamw_step_(q: torch.Tensor, delta: float, max_q: int, grad: torch.Tensor,
                exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, *, step: int,
                lr: float, beta1: float, beta2: float, eps: float,
                weight_decay: float, bits: float, seed: int, tensor_id: int):
    """One in-place DQT AdamW step.

    `q` is a 1-D int8 tensor on the grid of `bits` (1.58 means ternary, else
    2..8) with step `delta`; `max_q` is the max of `q` before the step;
    `grad`, `exp_avg` and `exp_avg_sq` are float32 of q's shape. Non-finite
    gradient elements leave their weight and states untouched. Returns an
    object with `delta` (the new delta), `max_q` (max of the new q),
    `changed` and `nonfinite`. Bad arguments raise RuntimeError naming the
    argument, and nothing is modified. CUDA tensors are stepped on their GPU
    (torch's current stream), bit for bit as on the CPU; returning the
    statistics waits for the GPU.
    """
    return _C.adamw_step_(q, delta, max_q, grad, exp_avg, exp_avg_sq,
                          step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                          weight_decay=weight_decay, bits=bits, seed=seed,
                          tensor_id=tensor_id)
