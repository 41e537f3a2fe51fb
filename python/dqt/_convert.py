"""dqt.convert: swap a float model's linear layers for QuantLinear."""
import torch

from .nn import QuantLinear, check_bits, check_packed, check_scale, check_scale_rule
from .pretrained import record_conversion


def _skip_predicate(skip):
    if skip is None:
        return lambda name, module: False
    if callable(skip):
        return skip
    if isinstance(skip, str):
        skip = (skip,)
    try:
        names = tuple(skip)
    except TypeError:
        raise TypeError("dqt.convert: skip must be a callable (name, module) -> bool "
                        f"or an iterable of names, got {type(skip).__name__}") from None
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"dqt.convert: skip names must be strings, got {n!r}")
    return lambda name, module: any(name == n or name.endswith("." + n) for n in names)


def convert(model: torch.nn.Module, bits=8, *, ternary_inference: bool = False,
            packed: bool = False, scale: str = "tensor", scale_rule: str = "maxq",
            skip=("lm_head",)) -> torch.nn.Module:
    """Replaces every `torch.nn.Linear` in `model` (recursively, in place)
    by a `dqt.nn.QuantLinear` whose integers are the DQT initialization of
    the float weight (docs/numerics.md) and whose bias is the float bias;
    returns the model (a new QuantLinear when `model` itself is a Linear).

    Args:
        bits: 1.58 (ternary) or 2..8.
        ternary_inference: forward with absmean-ternarized weights (the
            paper's variant); the n-bit integers are updated.
        packed: store the ternary integers 4 per byte (bits=1.58 only;
            bit-identical training, about 0.25 byte per weight).
        scale: "tensor" (one delta per weight) or "row" (one delta per
            output feature of each layer, docs/numerics.md "Per-row scale").
        scale_rule: "maxq" (the paper's rule) or "absmax" (bits 2..8: the
            next delta from max|w| before clamping, so the grid can grow;
            docs/numerics.md "Scale rules").
        skip: linear layers to keep float: a predicate `(qualified_name,
            module) -> bool`, or names matching a qualified name or its tail
            ("lm_head" matches "lm_head" and "model.lm_head"). The default
            keeps the output head float, as `dqt-train --quantize linear`
            and BitNet b1.58 do (the decoder's projections are quantized);
            pass `skip=()` to quantize every linear layer.

    Only exact `torch.nn.Linear` instances are converted: subclasses (e.g.
    MultiheadAttention's out_proj, whose owner reads `.weight` directly)
    are left alone. A linear layer shared by several parents is converted
    once and stays shared. Weights must be on the CPU.

    A transformers model also gets `config.quantization_config` (quant
    method "dqt", the converted layers' names), so that `save_pretrained`
    records the conversion and `dqt.from_pretrained` rebuilds it.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"dqt.convert: model must be a torch.nn.Module, got "
                        f"{type(model).__name__}")
    check_bits(bits, "dqt.convert")
    check_packed(packed, bits, "dqt.convert")
    check_scale(scale, "dqt.convert")
    check_scale_rule(scale_rule, bits, "dqt.convert")
    should_skip = _skip_predicate(skip)

    def make(linear):
        return QuantLinear.from_linear(linear, bits, ternary_inference=ternary_inference,
                                       packed=packed, scale=scale,
                                       scale_rule=scale_rule)

    if type(model) is torch.nn.Linear:
        return model if should_skip("", model) else make(model)
    converted, names = {}, []
    for parent_name, parent in list(model.named_modules(remove_duplicate=False)):
        # _modules, not named_children(): that one skips repeated children.
        for child_name, child in list(parent._modules.items()):
            if type(child) is not torch.nn.Linear:
                continue
            name = f"{parent_name}.{child_name}" if parent_name else child_name
            if should_skip(name, child):
                continue
            if id(child) not in converted:
                converted[id(child)] = make(child)
            setattr(parent, child_name, converted[id(child)])
            names.append(name)
    record_conversion(model, names, ternary_inference)
    return model
