"""Hugging Face checkpoints of converted models.

`dqt.convert` of a transformers model records in `model.config` a
`quantization_config` with `quant_method: "dqt"` and the converted layers,
so `model.save_pretrained(path)` writes them beside the integers (each
QuantLinear's state_dict entries: `weight_q`, `weight_delta`, ...).
`dqt.from_pretrained(path)` rebuilds that model exactly: the float
architecture from the config, the listed layers as QuantLinear of the
saved grid, storage and scale, then a load that fails on any missing or
unexpected tensor.

transformers' own `from_pretrained` of such a checkpoint would skip the
unknown quantization method with a warning and leave the projections
randomly initialized. Once dqt has registered its quantizer with
transformers it raises instead, pointing here (a quantizer whose
environment check refuses). dqt registers it on import when transformers
is already imported, and on the first `convert` of a transformers model
or `from_pretrained`.
"""
import json
import os

import torch

from . import _C
from .nn import QuantLinear

QUANT_METHOD = "dqt"

__all__ = ["from_pretrained"]


def record_conversion(model, converted, ternary_inference):
    """Adds the converted layers' names to a transformers model's
    `config.quantization_config` (nothing for a model without a config)."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_json_string") or not converted:
        return
    _register_with_transformers()
    qc = getattr(config, "quantization_config", None)
    if isinstance(qc, dict) and qc.get("quant_method") == QUANT_METHOD:
        modules = set(qc["modules"])
        ternary = set(qc.get("ternary_inference", []))
    else:
        modules, ternary = set(), set()
    modules |= set(converted)
    if ternary_inference:
        ternary |= set(converted)
    config.quantization_config = {
        "quant_method": QUANT_METHOD, "numerics": _C.NUMERICS_VERSION,
        "modules": sorted(modules), "ternary_inference": sorted(ternary)}


def _load_checkpoint(path):
    import safetensors.torch
    single = os.path.join(path, "model.safetensors")
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.isfile(single):
        return safetensors.torch.load_file(single, device="cpu")
    if os.path.isfile(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        state = {}
        for name in files:
            state.update(safetensors.torch.load_file(os.path.join(path, name), device="cpu"))
        return state
    raise FileNotFoundError(f"dqt.from_pretrained: {path} has no model.safetensors "
                            "(nor model.safetensors.index.json)")


def _quant_linear_for(linear, prefix, state, ternary):
    """A QuantLinear shaped as `linear` whose grid, storage, scale and rule
    are those of the saved entries under `prefix`."""
    who = "dqt.from_pretrained"
    keys = [prefix + k for k in QuantLinear._STATE_KEYS]
    absent = [k for k in keys if k not in state]
    if absent:
        raise ValueError(f"{who}: the checkpoint has no {absent} for the quantized "
                         f"layer {prefix[:-1]!r} its config lists")
    q, delta, bits = state[prefix + "weight_q"], state[prefix + "weight_delta"], \
        float(state[prefix + "weight_bits"])
    return QuantLinear.from_linear(
        linear, 1.58 if bits < 2 else int(bits), ternary_inference=ternary,
        packed=q.dtype == torch.uint8, scale="row" if delta.dim() == 1 else "tensor",
        scale_rule="absmax" if prefix + QuantLinear._ABS_MAX_KEY in state else "maxq")


def from_pretrained(path, model_class=None):
    """The converted transformers model saved at `path` by `save_pretrained`,
    rebuilt exactly (integers, scales, float parameters), in eval mode as
    transformers returns models.

    Args:
        path: a directory written by `save_pretrained` of a model that
            `dqt.convert` converted.
        model_class: the transformers class to build (default
            `AutoModelForCausalLM`).

    Raises ValueError naming what disagrees: a checkpoint that is not
    dqt's, a listed layer that is no nn.Linear in the architecture or has
    no saved integers, a tensor missing from or unexpected in the
    checkpoint.
    """
    import transformers
    _register_with_transformers()
    who = "dqt.from_pretrained"
    config = transformers.AutoConfig.from_pretrained(path)
    qc = getattr(config, "quantization_config", None)
    if not isinstance(qc, dict) or qc.get("quant_method") != QUANT_METHOD:
        raise ValueError(f"{who}: {path} is not a dqt checkpoint (its config has no "
                         f"quantization_config with quant_method '{QUANT_METHOD}'); "
                         "load it with transformers' from_pretrained")
    if qc.get("numerics") != _C.NUMERICS_VERSION:
        raise ValueError(f"{who}: {path} was saved under numerics contract "
                         f"{qc.get('numerics')!r}, this build runs v{_C.NUMERICS_VERSION} "
                         "(docs/numerics.md)")
    del config.quantization_config  # the float architecture first
    cls = model_class or transformers.AutoModelForCausalLM
    model = cls.from_config(config)
    state = _load_checkpoint(path)
    ternary = set(qc.get("ternary_inference", []))
    for name in qc["modules"]:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        linear = getattr(parent, child, None)
        if type(linear) is not torch.nn.Linear:
            raise ValueError(f"{who}: the config lists {name!r} as a quantized layer, "
                             f"but the architecture has {type(linear).__name__} there")
        setattr(parent, child, _quant_linear_for(linear, name + ".", state,
                                                 name in ternary))
    missing, unexpected = model.load_state_dict(state, strict=False)
    model.tie_weights()
    tied = set(getattr(model, "all_tied_weights_keys", {}) or {})
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise ValueError(f"{who}: {path} does not match the model: missing "
                         f"{missing[:8]}, unexpected {unexpected[:8]}")
    model.config.quantization_config = qc
    return model.eval()


_registered = False


def _register_with_transformers():
    """Makes transformers' from_pretrained refuse a dqt checkpoint loudly
    (instead of skipping the unknown method and leaving random weights)."""
    global _registered
    if _registered:
        return
    from transformers.quantizers import HfQuantizer
    from transformers.quantizers.auto import (register_quantization_config,
                                              register_quantizer)
    from transformers.utils.quantization_config import QuantizationConfigMixin

    @register_quantization_config(QUANT_METHOD)
    class DQTConfig(QuantizationConfigMixin):
        def __init__(self, **kwargs):
            self.quant_method = QUANT_METHOD
            for k, v in kwargs.items():
                setattr(self, k, v)

    @register_quantizer(QUANT_METHOD)
    class DQTRefusingQuantizer(HfQuantizer):
        requires_calibration = True

        def validate_environment(self, *args, **kwargs):
            raise ValueError(
                "this checkpoint holds dqt integer weights (quant_method 'dqt'); "
                "load it with dqt.from_pretrained(path), which rebuilds the "
                "quantized layers exactly")

        def _process_model_before_weight_loading(self, model, **kwargs):
            return model

        def _process_model_after_weight_loading(self, model, **kwargs):
            return model

        def is_serializable(self, safe_serialization=None):
            return True

        @property
        def is_trainable(self):
            return True

    _registered = True
