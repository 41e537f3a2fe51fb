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

`ZeroRedundancyOptimizer` shards the optimizer states (ZeRO-1): each rank
keeps the states of about 1/world of the parameters, steps those, and the
ranks all-gather the updated parameters (one buffer per rank); a quantized
weight travels as its integers (1 byte a weight, a quarter byte packed) and
its scales.
"""
import hashlib
import os

import torch
import torch.distributed as dist

from .tensor import QuantizedTensor, _set_weight_state, weight_state

__all__ = ["ZeroRedundancyOptimizer", "replica_hash", "save", "verify_replicas"]


def save(obj, path):
    """`torch.save(obj, path)` that never leaves a half-written file: it
    writes a temporary file beside `path`, flushes it to disk and renames it
    over `path` (atomic on POSIX). On any error, including a process killed
    while writing, `path` keeps its previous contents and the temporary file
    is removed (or, after a kill, left under a name no loader looks for).
    For per-rank checkpoints: `save(opt.state_dict(), f"opt.rank{r}.pt")`."""
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


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


class ZeroRedundancyOptimizer(torch.optim.Optimizer):
    """ZeRO-1 for dqt.optim, in the manner of
    `torch.distributed.optim.ZeroRedundancyOptimizer`: the parameters are
    split over the ranks (in order, each to the rank holding the fewest
    elements so far: the states are per element), each rank builds
    `optimizer_class` over its own part only, so it keeps about 1/world of
    the states, and after its step the ranks all-gather the updated
    parameters in one buffer. A quantized weight travels as its integers
    (int8, or packed bytes) and scales, not as float values. The quantized weights keep the Philox tensor ids they
    have in an unsharded optimizer over the same list, so a sharded run
    equals an unsharded one bit for bit.

    Use it with gradients that are already the same on every rank (after
    DistributedDataParallel's all-reduce). `param_groups` are the local
    optimizer's (LR schedulers work); `state_dict()` is this rank's shard
    with the partition (save it with `dqt.distributed.save`, atomically, one
    file per rank), and `load_state_dict` refuses a shard saved by another
    rank or world size (ValueError): resuming at another world size needs
    the unsharded states, which this class does not gather.

    Args:
        params: an iterable of parameters (one param group).
        optimizer_class: dqt.optim.AdamW, SGD or Adafactor.
        group: the process group (default: the world).
        **defaults: the optimizer's arguments (lr, seed, ...).
    """

    def __init__(self, params, optimizer_class, *, group=None, **defaults):
        if not dist.is_initialized():
            raise RuntimeError("dqt.distributed.ZeroRedundancyOptimizer: torch.distributed "
                               "is not initialized (init_process_group first)")
        from .optim import _DQTOptimizer
        if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, _DQTOptimizer)):
            raise TypeError("dqt.distributed.ZeroRedundancyOptimizer: optimizer_class must "
                            "be dqt.optim.AdamW, SGD or Adafactor, got "
                            f"{optimizer_class!r}")
        self._all = list(params)
        if not self._all or any(isinstance(p, dict) for p in self._all):
            raise ValueError("dqt.distributed.ZeroRedundancyOptimizer: params must be a "
                             "non-empty list of parameters (one param group)")
        self._group = group
        self.rank, self.world = dist.get_rank(group), dist.get_world_size(group)
        loads = [0] * self.world
        self.owners = []
        for p in self._all:
            r = min(range(self.world), key=lambda r: (loads[r], r))
            self.owners.append(r)
            loads[r] += p.numel()  # the states are per element
        local = [i for i, o in enumerate(self.owners) if o == self.rank]
        # A rank without parameters still runs the collectives.
        self.local = optimizer_class([self._all[i] for i in local] or
                                     [torch.zeros(1, requires_grad=True)], **defaults)
        if local:
            self.local._tensor_ids = local
        # torch.optim.Optimizer.__init__ is not called: it would build param
        # groups of its own. The wrapper shows the local optimizer's (so LR
        # schedulers set their lr) and sets up the hook tables torch reads.
        self.defaults = self.local.defaults
        self.param_groups = self.local.param_groups
        self.state = self.local.state
        self._optimizer_step_pre_hooks = {}
        self._optimizer_step_post_hooks = {}
        self._optimizer_state_dict_pre_hooks = {}
        self._optimizer_state_dict_post_hooks = {}
        self._optimizer_load_state_dict_pre_hooks = {}
        self._optimizer_load_state_dict_post_hooks = {}

    @torch.no_grad()
    def step(self, closure=None):
        """The local optimizer's step over this rank's parameters, then one
        all-gather of every rank's updated parameters. Returns the local
        step's statistics (or the closure's loss)."""
        out = self.local.step(closure)
        self._all_gather_parameters()
        return out

    def _carriers(self, p):
        """The tensors that carry parameter `p` between ranks: a quantized
        weight's integers (int8 or packed bytes) and scales by key, a float
        parameter's values."""
        if isinstance(p, QuantizedTensor):
            state = weight_state(p.quantized)
            return [(k, state[k]) for k in sorted(state)]
        return [(None, p.data)]

    def _all_gather_parameters(self):
        # Every rank's parameters as raw bytes in one buffer, in parameter
        # order; the layout follows from the shapes, which every rank
        # knows, so one all-gather (each buffer padded to the longest)
        # replaces a broadcast per tensor.
        carriers = [self._carriers(p) for p in self._all]
        nbytes = [sum(t.numel() * t.element_size() for _, t in c) for c in carriers]
        sizes = [0] * self.world
        for n, owner in zip(nbytes, self.owners):
            sizes[owner] += n
        device = self._all[0].device
        mine = torch.zeros(max(sizes), dtype=torch.uint8, device=device)
        offset = 0
        for c, owner in zip(carriers, self.owners):
            if owner != self.rank:
                continue
            for _, t in c:
                n = t.numel() * t.element_size()
                mine[offset:offset + n] = t.reshape(-1).view(torch.uint8)
                offset += n
        gathered = [torch.empty_like(mine) for _ in range(self.world)]
        dist.all_gather(gathered, mine, group=self._group)
        offsets = [0] * self.world  # in each other rank's buffer
        for p, c, owner in zip(self._all, carriers, self.owners):
            if owner == self.rank:
                continue
            received = {}
            for k, t in c:
                n = t.numel() * t.element_size()
                raw = gathered[owner][offsets[owner]:offsets[owner] + n]
                # Copied first: a view as a wider dtype needs an aligned
                # offset, and the byte layout packs int8 next to f32.
                received[k] = raw.clone().view(t.dtype).reshape(t.shape)
                offsets[owner] += n
            if isinstance(p, QuantizedTensor):
                _set_weight_state(p.quantized, received)
            else:
                p.data.copy_(received[None])

    def zero_grad(self, set_to_none: bool = True):
        """Clears every parameter's gradient, not only this rank's."""
        for p in self._all:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def local_state_bytes(self) -> int:
        """Bytes of optimizer state this rank holds."""
        return sum(t.numel() * t.element_size() for st in self.local.state.values()
                   for k, t in st.items() if k != "step" and isinstance(t, torch.Tensor))

    def state_dict(self):
        """This rank's shard: the local optimizer's state_dict with the rank,
        world size and owners."""
        return {"local": self.local.state_dict(), "rank": self.rank, "world": self.world,
                "owners": list(self.owners)}

    def load_state_dict(self, state_dict):
        who = "dqt.distributed.ZeroRedundancyOptimizer.load_state_dict"
        if not isinstance(state_dict, dict) or "local" not in state_dict:
            raise ValueError(f"{who}: expected a shard saved by state_dict()")
        if (state_dict.get("world"), state_dict.get("rank")) != (self.world, self.rank) or \
                state_dict.get("owners") != self.owners:
            raise ValueError(
                f"{who}: the shard was saved by rank {state_dict.get('rank')} of "
                f"{state_dict.get('world')} processes, this is rank {self.rank} of "
                f"{self.world} (or the parameters differ); a sharded checkpoint resumes "
                "at the world size it was saved at")
        self.local.load_state_dict(state_dict["local"])
