"""`dqt.QuantizedTensor`: a weight held only as n-bit integers that PyTorch
sees as an ordinary float32 parameter.

The design is torchao's for its int8 quantized-training and NF4 weights: a
wrapper subclass (`torch.Tensor._make_wrapper_subclass`) with the weight's
logical shape, dtype float32 and device, and no float storage. The integers,
deltas and max q live in the C++ `dqt.QuantizedWeight` it wraps
(`t.quantized`). What PyTorch's own code does with parameters then works on
it unchanged: `Module.zero_grad()`, `clip_grad_norm_` (its `.grad` is an
ordinary float32 tensor that autograd fills), `requires_grad_`, `numel()`,
`named_parameters()`, pickling, `torch.save`, `copy.deepcopy`, `.to(...)`.

Under `__torch_dispatch__` (below autograd):

* reads see the value q * delta: any op that only reads the tensor gets its
  dequantized float32 copy (`t.abs().max()`, `F.linear(x, t)`, printing a
  slice), and autograd routes gradients to `t.grad` as for any parameter;
* `detach`/`alias` give a tensor sharing the integers, `clone` and a device
  `_to_copy` give a copy (a dtype conversion is a read: a plain tensor);
* `copy_` takes another quantized weight's integers, or float values
  exactly on the weight's own grid (what DistributedDataParallel's initial
  broadcast writes into identical replicas); other writes (`mul_`, `add_`,
  out= arguments, off-grid copies ...) raise: the integers change only
  through a `dqt.optim` optimizer's step, which writes them back to the grid
  with stochastic rounding (docs/numerics.md). torch.optim
  optimizers refuse quantized parameters before they touch anything (a
  global step pre-hook, installed on import).
"""
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils._pytree import tree_map_only

from . import _C

QuantizedWeight = _C.QuantizedWeight
aten = torch.ops.aten

__all__ = ["QuantizedTensor", "weight_state", "weight_from_state"]


def weight_state(w: QuantizedWeight) -> dict:
    """The tensors that define `w` (on its device, live where the weight has
    them): "q" (int8 in the weight's shape, or a packed weight's uint8
    bytes), "delta" (float32: 0-dim per tensor, [rows] per row), "max_q"
    (int8, shaped as delta), "bits" (float32 0-dim, 1.58 for ternary) and,
    under scale_rule="absmax", "abs_max" (float32, shaped as delta). The
    entries of a QuantLinear's state_dict ("weight_" + key)."""
    row = w.scale == "row"
    state = {
        "q": w.packed_bytes if w.packed else w.q,
        "delta": w.delta_rows if row else torch.tensor(w.delta, dtype=torch.float32),
        "max_q": w.max_q_rows if row else torch.tensor(w.max_q, dtype=torch.int8),
        "bits": torch.tensor(float(w.bits), dtype=torch.float32),
    }
    if w.scale_rule == "absmax":
        a = w.abs_max
        state["abs_max"] = a if row else a[0]
    return state


def weight_from_state(state: dict, shape, *, packed: bool, scale_rule: str,
                      device=None) -> QuantizedWeight:
    """A new QuantizedWeight of `shape` from `weight_state`'s tensors
    (copied; validated by the weight's loaders), on `device` (default CPU)."""
    delta = state["delta"]
    scale = "row" if delta.dim() == 1 else "tensor"
    bits = float(state["bits"])
    # An empty weight of the right configuration, then the state: the
    # loaders validate it (a grid, finite deltas, max q on the grid).
    w = QuantizedWeight.from_float(torch.zeros(tuple(shape)), 1.58 if bits < 2 else int(bits),
                                   packed=packed, scale=scale, scale_rule=scale_rule)
    _set_weight_state(w, state)
    if device is not None and torch.device(device) != w.device:
        w._move_to(torch.device(device))
    return w


def _set_weight_state(w, state):
    """Replaces `w`'s integers and scales by `weight_state`-style tensors
    (validated by the weight's loaders: on error nothing changes)."""
    cpu = {k: v.detach().to("cpu") for k, v in state.items()}
    if w.scale == "row":
        w._set_state_rows(cpu["q"], cpu["delta"], cpu["max_q"])
    else:
        w._set_state(cpu["q"], float(cpu["delta"]), int(cpu["max_q"]))
    if "abs_max" in cpu:
        w._set_abs_max(cpu["abs_max"].reshape(w.rows))


def _copy_into(w, src):
    """`copy_` into a quantized weight: the integers of another quantized
    weight of the same configuration, or float values that lie on `w`'s own
    grid (each exactly q * delta with `w`'s delta, q on the grid), which is
    what a broadcast of identical replicas (DistributedDataParallel's
    initial sync) writes. Anything else would need rounding: refused."""
    who = "dqt.QuantizedTensor.copy_"
    if isinstance(src, QuantizedTensor):
        o = src._weight
        same = (tuple(o.shape), o.bits, o.packed, o.scale, o.scale_rule) == \
            (tuple(w.shape), w.bits, w.packed, w.scale, w.scale_rule)
        if not same:
            raise RuntimeError(f"{who}: the source is {o!r}, the destination {w!r}; "
                               "a copy needs the same shape, grid, storage and scale")
        _set_weight_state(w, weight_state(o))
        return
    v = src.detach().to("cpu", torch.float32).expand(tuple(w.shape)).contiguous()
    rows = w.rows
    delta = (w.delta_rows if w.scale == "row" else torch.tensor([w.delta]))
    q = (v.reshape(rows, -1) / delta[:, None]).round()
    on_grid = bool(((q >= w.qn) & (q <= w.qp)).all())
    q8 = q.clamp(w.qn, w.qp).to(torch.int8)
    if not on_grid or not torch.equal(q8.float() * delta[:, None], v.reshape(rows, -1)):
        raise RuntimeError(
            f"{who}: the values are not on this weight's grid (q * delta with its own "
            "delta): writing them would need rounding, and the integers change only "
            "through a dqt.optim step. Replicas under DistributedDataParallel must "
            "start identical: build the model under the same seed on every rank "
            "(or pass init_sync=False and check with "
            "dqt.distributed.verify_replicas)")
    q8 = q8.reshape(tuple(w.shape))
    if w.scale == "row":
        w._set_state_rows(q8, delta, q8.reshape(rows, -1).amax(1))
    else:
        w._set_state(q8, float(delta[0]), int(q8.max()))


def _copy_weight(w: QuantizedWeight, device=None) -> QuantizedWeight:
    return weight_from_state(weight_state(w), w.shape, packed=w.packed,
                             scale_rule=w.scale_rule,
                             device=w.device if device is None else device)


def _rebuild(state, shape, packed, scale_rule, device, requires_grad, is_param):
    """Unpickles a QuantizedTensor (see __reduce_ex__)."""
    t = QuantizedTensor(weight_from_state(state, shape, packed=packed,
                                          scale_rule=scale_rule, device=device))
    return t._as_parameter(requires_grad) if is_param else t.requires_grad_(requires_grad)


class QuantizedTensor(torch.Tensor):
    """A float32 tensor of the weight's shape whose value is q * delta and
    whose only storage is the integers of a `dqt.QuantizedWeight`.

    `dqt.nn.QuantLinear.weight` is one (an `nn.Parameter`), so it appears in
    `parameters()` with its true shape and element count, and its gradient
    is `weight.grad`, a float32 tensor. The weight's integer view is
    forwarded: `q`, `delta`, `max_q`, `bits`, `packed`, `scale`,
    `scale_rule`, `delta_rows`, `max_q_rows`, `abs_max`, `rows`, `qn`, `qp`,
    `packed_bytes`, `persistent_bytes`, `dequantize()`.
    """

    @staticmethod
    def __new__(cls, weight: QuantizedWeight, requires_grad: bool = False):
        if not isinstance(weight, QuantizedWeight):
            raise TypeError("dqt.QuantizedTensor: expected a dqt.QuantizedWeight, "
                            f"got {type(weight).__name__}")
        t = torch.Tensor._make_wrapper_subclass(
            cls, tuple(weight.shape), dtype=torch.float32, device=weight.device,
            requires_grad=requires_grad)
        t._weight = weight
        return t

    def __init__(self, weight, requires_grad=False):
        pass

    @staticmethod
    def of(weight: QuantizedWeight) -> "QuantizedTensor":
        """The tensor standing for `weight` where an optimizer takes tensors:
        the parameter of the layer that owns it, else one created on first
        use (requires_grad; its gradient is the weight's `grad` buffer unless
        autograd gives it one)."""
        if not isinstance(weight, QuantizedWeight):
            raise TypeError("dqt.QuantizedTensor.of: expected a dqt.QuantizedWeight, "
                            f"got {type(weight).__name__}")
        t = getattr(weight, "_dqt_tensor", None)
        if t is None:
            t = QuantizedTensor(weight, requires_grad=True)
            weight._dqt_tensor = t
        return t

    def _as_parameter(self, requires_grad=True) -> "QuantizedTensor":
        """An nn.Parameter of this weight, registered as the tensor that
        stands for it (`of`)."""
        p = torch.nn.Parameter(self, requires_grad=requires_grad)
        self._weight._dqt_tensor = p
        return p

    @property
    def quantized(self) -> QuantizedWeight:
        """The C++ weight: integers, deltas, max q (shared, not a copy)."""
        return self._weight

    def dequantize(self) -> torch.Tensor:
        """q * delta as a new plain float32 tensor."""
        return self._weight.dequantize()

    def __repr__(self, *, tensor_contents=None):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"QuantizedTensor({self._weight!r}{grad})"

    # -- pickle, deepcopy, torch.compile's flattening ---------------------
    def __reduce_ex__(self, protocol):
        w = self._weight
        state = {k: v.detach().to("cpu").clone() for k, v in weight_state(w).items()}
        return (_rebuild, (state, tuple(w.shape), w.packed, w.scale_rule,
                           str(w.device), self.requires_grad,
                           bool(getattr(self, "_is_param", False))))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        t = QuantizedTensor(_copy_weight(self._weight))
        t = (t._as_parameter(self.requires_grad) if getattr(self, "_is_param", False)
             else t.requires_grad_(self.requires_grad))
        memo[id(self)] = t
        if self.grad is not None:
            t.grad = self.grad.clone()
        return t

    def __tensor_flatten__(self):
        w = self._weight
        names = ["_q", "_delta", "_max_q", "_bits"]
        if w.scale_rule == "absmax":
            names.append("_abs_max")
        return names, (tuple(w.shape), w.packed, w.scale_rule)

    @staticmethod
    def __tensor_unflatten__(inner, ctx, outer_size, outer_stride):
        shape, packed, scale_rule = ctx
        state = {k[1:]: v for k, v in inner.items()}
        return QuantizedTensor(weight_from_state(state, shape, packed=packed,
                                                 scale_rule=scale_rule,
                                                 device=state["q"].device))

    _q = property(lambda self: weight_state(self._weight)["q"])
    _delta = property(lambda self: weight_state(self._weight)["delta"])
    _max_q = property(lambda self: weight_state(self._weight)["max_q"])
    _bits = property(lambda self: weight_state(self._weight)["bits"])
    _abs_max = property(lambda self: weight_state(self._weight)["abs_max"])

    # -- dispatch ---------------------------------------------------------
    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (aten.detach.default, aten.alias.default):
            return QuantizedTensor(args[0]._weight)
        if func is aten.copy_.default and isinstance(args[0], QuantizedTensor):
            _copy_into(args[0]._weight, args[1])
            return args[0]
        if func is aten.clone.default:
            return QuantizedTensor(_copy_weight(args[0]._weight))
        if func is aten._to_copy.default and isinstance(args[0], QuantizedTensor):
            dtype = kwargs.get("dtype")
            if dtype in (None, torch.float32) and \
                    kwargs.get("layout") in (None, torch.strided):
                device = kwargs.get("device") or args[0].device
                return QuantizedTensor(_copy_weight(args[0]._weight, device))
        _refuse_writes(func, args, kwargs)
        return func(*tree_map_only(QuantizedTensor, lambda t: t._weight.dequantize(),
                                   args),
                    **tree_map_only(QuantizedTensor, lambda t: t._weight.dequantize(),
                                    kwargs))


def _forward(name):
    return property(lambda self: getattr(self._weight, name),
                    doc=f"The weight's `{name}` (see dqt.QuantizedWeight).")


for _name in ("q", "delta", "max_q", "bits", "packed", "scale", "scale_rule",
              "delta_rows", "max_q_rows", "abs_max", "rows", "qn", "qp",
              "packed_bytes", "persistent_bytes"):
    setattr(QuantizedTensor, _name, _forward(_name))
del _name


def _refuse_writes(func, args, kwargs):
    schema = func._schema
    for i, arg in enumerate(schema.arguments):
        value = args[i] if i < len(args) else kwargs.get(arg.name)
        written = arg.alias_info is not None and arg.alias_info.is_write
        if written and isinstance(value, QuantizedTensor):
            raise RuntimeError(
                f"dqt.QuantizedTensor: {func.__name__} would write into a quantized "
                "weight, which has no float storage: its integers change only "
                "through a dqt.optim optimizer's step (dqt.optim.AdamW, SGD, "
                "Adafactor), which writes them back to the grid with stochastic "
                "rounding")


def _refuse_in_torch_optimizers(optimizer, args, kwargs):
    """A global torch.optim step pre-hook: a torch optimizer handed quantized
    parameters raises before it steps anything."""
    from .optim import _DQTOptimizer
    if isinstance(optimizer, _DQTOptimizer):
        return None
    found = [i for i, p in enumerate(p for g in optimizer.param_groups
                                     for p in g["params"])
             if isinstance(p, QuantizedTensor)]
    if found:
        raise TypeError(
            f"{type(optimizer).__module__}.{type(optimizer).__name__} was handed "
            f"quantized parameter(s) (indices {found[:8]}{' ...' if len(found) > 8 else ''} "
            "in its param_groups), whose integers it cannot update; use "
            "dqt.optim.AdamW, dqt.optim.SGD or dqt.optim.Adafactor, which step "
            "quantized and float parameters together")
    return None


register_optimizer_step_pre_hook(_refuse_in_torch_optimizers)
