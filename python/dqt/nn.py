"""Layers whose weights exist only as n-bit integers.

`QuantLinear` runs the C++ QuantLinear's forward and backward
(`dqt._C.quant_linear`): per-token absmax 8-bit activation fake
quantization and the weight `q * delta`, both straight-through in the
backward pass. Its `weight` is a `dqt.QuantizedTensor` parameter: PyTorch
sees a float32 tensor of the weight's shape (parameters(), numel,
requires_grad_, zero_grad, clip_grad_norm_, pickling, deepcopy) whose only
storage is the integers, and autograd puts dL/dW in `weight.grad`, a
float32 tensor. `dqt.optim` optimizers step it.
"""
import math
import numbers

import torch

from . import _C
from .tensor import QuantizedTensor, weight_state

QuantizedWeight = _C.QuantizedWeight


def check_bits(bits, who: str) -> float:
    """`bits` if it is 1.58 (ternary) or an integer in [2, 8]; else
    TypeError/ValueError naming `who`."""
    if isinstance(bits, bool) or not isinstance(bits, numbers.Real):
        raise TypeError(f"{who}: bits must be a number (1.58 or 2..8), got "
                        f"{type(bits).__name__}")
    ternary = 1 < bits < 2
    if not ternary and not (float(bits).is_integer() and 2 <= bits <= 8):
        raise ValueError(f"{who}: bits must be 1.58 (ternary) or an integer "
                         f"in [2, 8], got {bits}")
    return bits


def check_packed(packed, bits, who: str) -> bool:
    """`packed` if it is a bool and, when True, `bits` is ternary (packed
    storage holds 2-bit codes); else TypeError/ValueError naming `who`."""
    if not isinstance(packed, bool):
        raise TypeError(f"{who}: packed must be a bool, got {type(packed).__name__}")
    if packed and not 1 < bits < 2:
        raise ValueError(f"{who}: packed=True stores ternary weights 4 per byte; "
                         f"it needs bits=1.58, got bits={bits}")
    return packed


SCALES = ("tensor", "row")


def check_scale(scale, who: str) -> str:
    """`scale` if it is "tensor" (one delta per weight) or "row" (one delta
    per output row); else TypeError/ValueError naming `who`."""
    if not isinstance(scale, str):
        raise TypeError(f"{who}: scale must be a str ('tensor' or 'row'), got "
                        f"{type(scale).__name__}")
    if scale not in SCALES:
        raise ValueError(f"{who}: scale must be 'tensor' or 'row', got {scale!r}")
    return scale


SCALE_RULES = ("maxq", "absmax")


def check_scale_rule(scale_rule, bits, who: str) -> str:
    """`scale_rule` if it is "maxq" (the paper's rule) or "absmax" (bits
    2..8 only, docs/numerics.md "Scale rules"); else TypeError/ValueError
    naming `who`."""
    if not isinstance(scale_rule, str):
        raise TypeError(f"{who}: scale_rule must be a str ('maxq' or 'absmax'), "
                        f"got {type(scale_rule).__name__}")
    if scale_rule not in SCALE_RULES:
        raise ValueError(f"{who}: scale_rule must be 'maxq' or 'absmax', got "
                         f"{scale_rule!r}")
    if scale_rule == "absmax" and 1 < bits < 2:
        raise ValueError(f"{who}: scale_rule='absmax' is for bits 2..8; ternary "
                         "weights keep the paper's rule ('maxq')")
    return scale_rule


def quantized_weight_of(param):
    """The `dqt.QuantizedWeight` behind a `dqt.QuantizedTensor`, or None for
    an ordinary tensor."""
    return param.quantized if isinstance(param, QuantizedTensor) else None


def _float_weight(weight, in_features, out_features, who):
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{who}: weight must be a tensor, got {type(weight).__name__}")
    if tuple(weight.shape) != (out_features, in_features):
        raise ValueError(f"{who}: weight has shape {tuple(weight.shape)}, expected "
                         f"(out_features, in_features) = ({out_features}, {in_features})")
    if not weight.is_floating_point():
        raise TypeError(f"{who}: weight must be floating point, got {weight.dtype}")
    if weight.device.type not in ("cpu", "cuda"):
        raise ValueError(f"{who}: weight is on {weight.device}; CPU and CUDA "
                         "are supported")
    return weight.detach().to(torch.float32)


class QuantLinear(torch.nn.Module):
    """y = actquant8(x) @ (q * delta)^T + bias, with integer-only weights.

    Args:
        in_features, out_features: as torch.nn.Linear.
        bias: add a learnable float32 bias (initialized as nn.Linear's).
        bits: 1.58 (ternary) or 2..8: the weight's integer grid.
        ternary_inference: forward with BitNet's absmean ternarization of
            q * delta (straight-through); the n-bit integers are what the
            optimizer updates (the paper's ternary-inference variant).
        weight: a float [out_features, in_features] tensor to quantize
            (DQT initialization) instead of nn.Linear's kaiming-uniform init.
        packed: store the ternary integers 4 per byte (bits=1.58 only):
            about 0.25 byte per weight instead of 1; forward, backward and
            every optimizer step are bit-identical to int8 storage.
        scale: "tensor" (one delta for the weight) or "row" (one delta per
            output feature, initialized and stepped row by row,
            docs/numerics.md "Per-row scale"; 5 more bytes a row).
        scale_rule: how each optimizer step picks the next delta: "maxq"
            (the paper's, max(q) * delta / Qp: the grid can only shrink) or
            "absmax" (bits 2..8: max|w| before clamping / Qp, so it can
            grow; initialized from max|W| instead of mean|W|;
            docs/numerics.md "Scale rules"; 4 more bytes per delta).

    `weight` is a `dqt.QuantizedTensor` parameter of shape [out_features,
    in_features] (`weight.quantized` is its `dqt.QuantizedWeight`); its
    gradient `weight.grad` is an ordinary float32 tensor filled by
    `loss.backward()` and cleared by `zero_grad()`, and
    `weight.requires_grad_(False)` freezes it. Inputs must be float32 or
    bfloat16 tensors of shape [..., in_features] on the layer's device
    (CPU or CUDA: `.to(device)` / `.cuda()` move the integers and scales
    with the bias).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 bits=8, ternary_inference: bool = False, weight=None,
                 packed: bool = False, scale: str = "tensor",
                 scale_rule: str = "maxq"):
        super().__init__()
        who = "dqt.nn.QuantLinear"
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{who}: {name} must be an int, got {type(v).__name__}")
            if v <= 0:
                raise ValueError(f"{who}: {name} must be > 0, got {v}")
        check_bits(bits, who)
        check_packed(packed, bits, who)
        check_scale(scale, who)
        check_scale_rule(scale_rule, bits, who)
        if weight is None:
            # nn.Linear's initialization (same RNG draws, same order).
            weight = torch.empty(out_features, in_features)
            torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        else:
            weight = _float_weight(weight, in_features, out_features, who)
        self.in_features = in_features
        self.out_features = out_features
        self.ternary_inference = bool(ternary_inference)
        self.weight = QuantizedTensor(QuantizedWeight.from_float(
            weight, bits, packed=packed, scale=scale,
            scale_rule=scale_rule))._as_parameter()
        if bias:
            bound = 1 / math.sqrt(in_features)
            self.bias = torch.nn.Parameter(
                torch.empty(out_features).uniform_(-bound, bound).to(weight.device))
        else:
            self.register_parameter("bias", None)

    @classmethod
    def from_linear(cls, linear: torch.nn.Linear, bits=8, *,
                    ternary_inference: bool = False,
                    packed: bool = False, scale: str = "tensor",
                    scale_rule: str = "maxq") -> "QuantLinear":
        """A QuantLinear whose weight is the DQT initialization of
        `linear.weight` and whose bias is `linear.bias` (as float32);
        `packed` (ternary only), `scale` and `scale_rule` as in the
        constructor."""
        if not isinstance(linear, torch.nn.Linear):
            raise TypeError("dqt.nn.QuantLinear.from_linear: expected a "
                            f"torch.nn.Linear, got {type(linear).__name__}")
        layer = cls(linear.in_features, linear.out_features, bias=False, bits=bits,
                    ternary_inference=ternary_inference, weight=linear.weight,
                    packed=packed, scale=scale, scale_rule=scale_rule)
        if linear.bias is not None:
            layer.bias = torch.nn.Parameter(linear.bias.detach().to(torch.float32),
                                            requires_grad=linear.bias.requires_grad)
        return layer

    @property
    def bits(self):
        """1.58 (ternary) or 2..8."""
        return self.weight.bits

    @property
    def packed(self) -> bool:
        """Whether the weight's integers are stored 4 per byte."""
        return self.weight.packed

    @property
    def scale(self) -> str:
        """"tensor" (one delta) or "row" (one delta per output feature)."""
        return self.weight.scale

    @property
    def scale_rule(self) -> str:
        """"maxq" (the paper's rule) or "absmax"."""
        return self.weight.scale_rule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"dqt.nn.QuantLinear: input must be a tensor, got "
                            f"{type(x).__name__}")
        if x.dtype not in (torch.float32, torch.bfloat16):
            raise TypeError("dqt.nn.QuantLinear: input must be float32 or bfloat16, "
                            f"got {x.dtype}")
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"dqt.nn.QuantLinear: input has shape {tuple(x.shape)}, "
                             f"the layer takes [..., {self.in_features}]")
        # bf16 inputs, and any input inside a bf16 autocast region, are
        # multiplied in bf16 and give bf16 (docs/numerics.md, "Precision
        # environments"), as nn.Linear under autocast.
        if not isinstance(self.weight, QuantizedTensor):
            # A plain float weight: q * delta, swapped in by
            # torch.func.functional_call when dqt.export_training_graph
            # traces the model; it multiplies as nn.Linear does.
            if self.ternary_inference:
                raise NotImplementedError(
                    "dqt.nn.QuantLinear: a plain float weight with "
                    "ternary_inference (the training graph has no ternary "
                    "forward yet)")
            # The 8-bit activation quantization of the C++ layer
            # (runtime/QuantLinear.cpp), the same operations in the same
            # order, straight-through in the backward pass.
            s = 127.0 / x.abs().amax(-1, keepdim=True).clamp_min(1e-5)
            xq = (x * s).round().clamp(-128, 127) / s
            xq = x + (xq - x).detach()
            return torch.nn.functional.linear(xq, self.weight, self.bias)
        y = _C.quant_linear(x, self.weight.quantized, self.weight,
                            bool(self.ternary_inference))
        if self.bias is not None:
            y = y + self.bias.to(y.dtype)
        return y

    def _apply(self, fn, recurse=True):
        # .to(device) / .cuda() / .cpu(): the integer weight follows the
        # float tensors' device (probed with an empty tensor); dtype
        # conversions (model.half(), .to(torch.bfloat16)) leave the integers
        # as they are. The weight moves in place and the parameter keeps its
        # identity (swapped as torch swaps wrapper subclasses), so an
        # optimizer built before the move still holds it.
        param = self._parameters["weight"]
        self._parameters["weight"] = None  # skipped by Module._apply; keeps the order
        try:
            super()._apply(fn, recurse)
        finally:
            self._parameters["weight"] = param
        device = fn(torch.empty(0, device=param.device)).device
        if device != param.device:
            grad, param.grad = param.grad, None
            w = param.quantized
            w._move_to(device)
            moved = QuantizedTensor(w)._as_parameter(param.requires_grad)
            torch.utils.swap_tensors(param, moved)
            w._dqt_tensor = param
            if grad is not None:
                param.grad = grad.to(device)
        return self

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, bits={self.bits}, "
                f"ternary_inference={self.ternary_inference}, packed={self.packed}"
                + (", scale='row'" if self.scale == "row" else "")
                + (", scale_rule='absmax'" if self.scale_rule == "absmax" else ""))

    # The integer weight in state_dict(): weight_q (int8 in the weight's
    # shape, or for a packed layer its uint8 packed bytes, so checkpoints keep
    # the 4x saving), weight_delta (f32), weight_max_q (int8) and weight_bits
    # (f32, 1.58 for ternary). With scale="row", weight_delta is float32
    # [out_features] and weight_max_q int8 [out_features] (one per row; 0-dim
    # per tensor: the dimension tells the two apart, and a checkpoint of the
    # other scale is refused). Either form of weight_q loads into a ternary
    # layer of either storage. A scale_rule="absmax" layer adds
    # weight_abs_max (float32, shaped as weight_delta): the next delta comes
    # from it, so a checkpoint without it (or a maxq layer given one) is
    # refused. These are plain tensors (what safetensors and save_pretrained
    # store), in place of the QuantizedTensor parameter "weight".
    _STATE_KEYS = ("weight_q", "weight_delta", "weight_max_q", "weight_bits")
    _ABS_MAX_KEY = "weight_abs_max"

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination.pop(prefix + "weight", None)
        for key, value in weight_state(self.weight.quantized).items():
            destination[prefix + "weight_" + key] = value

    def _weight_state_error(self, q, delta, max_q, bits, abs_max=None):
        """Why the saved weight entries cannot load into this layer (None
        when they can, as far as can be told before loading)."""
        w = self.weight.quantized
        if float(bits) != float(w.bits) and not (float(bits) < 2 and w.bits < 2):
            return f"saved with bits={float(bits):g}, the layer has bits={w.bits}"
        saved = "row" if delta.dim() == 1 else "tensor" if delta.dim() == 0 else None
        if saved is None:
            return (f"weight_delta must be 0-dim (scale='tensor') or 1-D "
                    f"(scale='row'), got shape {tuple(delta.shape)}")
        if saved != w.scale:
            return (f"saved with scale={saved!r} ({delta.numel()} delta"
                    f"{'s' if delta.numel() != 1 else ''}), the layer has "
                    f"scale={w.scale!r} ({w.rows} delta{'s' if w.rows != 1 else ''}); "
                    f"build it with scale={saved!r} to load this checkpoint")
        if (abs_max is not None) != (w.scale_rule == "absmax"):
            saved_rule = "absmax" if abs_max is not None else "maxq"
            return (f"saved with scale_rule={saved_rule!r}, the layer has "
                    f"scale_rule={w.scale_rule!r}; build it with "
                    f"scale_rule={saved_rule!r} to load this checkpoint")
        if abs_max is not None and (abs_max.dtype != torch.float32
                                    or abs_max.shape != delta.shape):
            return (f"weight_abs_max must be float32 shaped as weight_delta "
                    f"{tuple(delta.shape)}, got {abs_max.dtype}{tuple(abs_max.shape)}")
        if abs_max is not None and bool((abs_max.isnan() | (abs_max < 0)).any()):
            return "weight_abs_max must be >= 0 and not NaN"
        return None

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        # The weight's entries are checked first: a refused checkpoint
        # leaves the whole layer (bias included) as it was.
        keys = [prefix + k for k in self._STATE_KEYS]
        entries = [state_dict.get(k) for k in keys]
        abs_max = state_dict.get(prefix + self._ABS_MAX_KEY)
        if abs_max is not None:
            abs_max = torch.as_tensor(abs_max).detach().to("cpu")
        if all(e is not None for e in entries):
            q, delta, max_q, bits = (torch.as_tensor(e).detach().to("cpu") for e in entries)
            error = self._weight_state_error(q, delta, max_q, bits, abs_max)
            if error is not None:
                error_msgs.append(f"{prefix}weight: {error}")
                return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)
        if prefix + "weight" in missing_keys:
            missing_keys.remove(prefix + "weight")
        for k in keys + [prefix + self._ABS_MAX_KEY]:
            if k in unexpected_keys:
                unexpected_keys.remove(k)
        absent = [k for k, e in zip(keys, entries) if e is None]
        if self.scale_rule == "absmax" and abs_max is None:
            absent.append(prefix + self._ABS_MAX_KEY)
        if absent:
            missing_keys.extend(absent)
            return
        w = self.weight.quantized
        try:
            if w.scale == "row":
                w._set_state_rows(q, delta, max_q)
            else:
                w._set_state(q, float(delta), int(max_q))
            if abs_max is not None:  # validated above: cannot fail
                w._set_abs_max(abs_max.reshape(w.rows))
        except ValueError as e:
            error_msgs.append(f"{prefix}weight: {e}")
