"""Data-parallel DQT on torch.distributed.

`dqt.nn` models train under `torch.nn.parallel.DistributedDataParallel`
unchanged: a quantized weight is a parameter whose gradient is an ordinary
float32 tensor, so DDP's buckets all-reduce it with the float gradients.
Stochastic rounding depends only on (seed, step, tensor id, element)
(docs/numerics.md), so replicas that start identical, all-reduce their
gradients and step with the same seed stay bit-identical without any
weight broadcast. DDP's initial broadcast (`init_sync=True`, its default)
works when every rank built the model under the same seed: the values it
writes lie on each weight's own grid. With `init_sync=False` nothing is
broadcast at all, and `verify_replicas` checks what a broadcast would have
ensured.
"""
import hashlib

import torch
import torch.distributed as dist

from .tensor import QuantizedTensor, weight_state

__all__ = ["replica_hash", "verify_replicas"]


def _tensor_bytes(t):
    t = t.detach()
    if isinstance(t, QuantizedTensor):
        return b"".join(_tensor_bytes(v) for _, v in sorted(weight_state(t.quantized).items()))
    return t.to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def replica_hash(model, optimizer=None) -> int:
    """A 64-bit hash (signed, to travel as int64) of every parameter and
    buffer of `model` (a quantized weight by its integers, scales and
    abs_max) and, given an `optimizer`, of its state_dict's tensors, step
    counts and hyper-parameters, in a fixed order."""
    h = hashlib.blake2b(digest_size=8)
    for kind, items in (("param", model.named_parameters()), ("buffer", model.named_buffers())):
        for name, t in items:
            h.update(f"{kind}:{name}:{tuple(t.shape)}".encode())
            h.update(_tensor_bytes(t))
    if optimizer is not None:
        sd = optimizer.state_dict()
        for idx in sorted(sd["state"]):
            for key in sorted(sd["state"][idx]):
                v = sd["state"][idx][key]
                h.update(f"state:{idx}:{key}".encode())
                h.update(_tensor_bytes(v) if isinstance(v, torch.Tensor) else repr(v).encode())
        for i, g in enumerate(sd["param_groups"]):
            h.update(f"group:{i}:{sorted((k, repr(v)) for k, v in g.items())}".encode())
    return int.from_bytes(h.digest(), "little", signed=True)


def verify_replicas(model, optimizer=None, *, group=None) -> int:
    """All-gathers every rank's `replica_hash(model, optimizer)` and returns
    the common hash; raises RuntimeError naming the ranks whose weights or
    states differ from rank 0's. A collective: every rank must call it."""
    if not dist.is_initialized():
        raise RuntimeError("dqt.distributed.verify_replicas: torch.distributed is not "
                           "initialized (init_process_group first)")
    mine = torch.tensor([replica_hash(model, optimizer)], dtype=torch.int64)
    if dist.get_backend(group) == "nccl":
        mine = mine.cuda()
    world = dist.get_world_size(group)
    hashes = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(hashes, mine, group=group)
    values = [int(h.item()) for h in hashes]
    differ = [r for r, v in enumerate(values) if v != values[0]]
    if differ:
        raise RuntimeError(f"dqt.distributed.verify_replicas: rank(s) {differ} hold "
                           f"weights or optimizer states that differ from rank 0's "
                           f"(hashes {[hex(v & (2**64 - 1)) for v in values]})")
    return values[0]
