"""torch.optim-style DQT optimizers.

`AdamW`, `SGD` and `Adafactor` take what torch's optimizers take (an
iterable of parameters or of param-group dicts) and may mix two kinds of
parameters:

* quantized weights: the `dqt.QuantizedTensor` parameters of `dqt.nn`
  layers, or `dqt.QuantizedWeight` objects (whose gradient is their `grad`
  buffer; `dqt.QuantizedTensor.of(weight)` is the tensor that keys their
  state). They are stepped by the C++ DQT
  optimizer (`dqt::optim::AdamW`/`SGD`/`Adafactor`): one JIT kernel launch
  per param group and grid configuration, the update written back to the
  integer grid
  with stochastic rounding (docs/numerics.md). Weights with one delta per
  tensor and per output row (`scale="row"`, each row's delta and max q
  updated by the step) mix freely: each grid, storage and scale is its own
  kernel. The Philox `tensor_id` of a
  weight is its global index in the optimizer (counting every parameter of
  every group in order, as torch's state_dict does), so it is stable across
  state_dict()/load_state_dict().
* ordinary float32 tensors (norms, embeddings, biases, float heads):
  stepped by the same generated kernel in float mode, in one launch per
  group (docs/numerics.md, "Float parameters"): the quantized weights'
  update (AdamW in HuggingFace's order, SGD with decoupled weight decay,
  Adafactor as HuggingFace's, with the factored second moment for
  matrices) without the grid, and the same non-finite masking: an element
  whose gradient is NaN or infinite keeps its value and states, so no NaN
  reaches any weight. Float parameters of other dtypes are refused
  (TypeError).

Parameters without a gradient are skipped, as torch does. A group has one
step count (its C++ optimizer's): the bias corrections of a parameter
skipped at some steps count those steps too.

Hyper-parameters live in `param_groups` and may change between steps (an
LR scheduler sets `group["lr"]`): they are kernel arguments, so nothing is
recompiled. `group["seed"]` is the Philox seed of the group's quantized
weights.
"""
import collections.abc
import math
import numbers
from typing import NamedTuple

import torch

from . import _C
from .nn import QuantizedWeight, quantized_weight_of
from .tensor import QuantizedTensor

__all__ = ["AdamW", "SGD", "Adafactor", "StepStats", "StepStatsList"]


class StepStats(NamedTuple):
    """By-products of one quantized weight's step."""
    tensor_id: int   #: the weight's global index in the optimizer
    max_q: int       #: max of the new integers
    changed: int     #: number of integers that changed
    nonfinite: int   #: non-finite gradient elements (left untouched)


class StepStatsList(collections.abc.Sequence):
    """The StepStats of one step, by tensor_id: a read-only sequence.

    Weights on a GPU leave their statistics in device memory, and the step
    does not wait for them; the first access reads them (one
    synchronization per kernel launch), later ones use that copy.
    Weights on the CPU have them at once.
    """

    def __init__(self, entries=()):
        # (tensor_id, the C++ StepStatsList, index in it)
        self._entries = sorted(entries, key=lambda e: e[0])
        self._stats = None

    @property
    def pending(self) -> bool:
        """Whether reading the statistics will wait for a GPU."""
        return self._stats is None and any(r.pending for _, r, _ in self._entries)

    def _read(self):
        if self._stats is None:
            lists = {}
            self._stats = []
            for idx, result, j in self._entries:
                if id(result) not in lists:
                    lists[id(result)] = result.get()
                self._stats.append(StepStats(idx, *lists[id(result)][j]))
        return self._stats

    def __len__(self):
        return len(self._entries)

    def __getitem__(self, i):
        return self._read()[i]

    def __eq__(self, other):
        if isinstance(other, (StepStatsList, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self):
        return f"StepStatsList({self._read()!r})"


def _number(who, name, value):
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}: {name} must be a number, got {type(value).__name__}")
    return float(value)


def _check_unit(who, name, value):
    value = _number(who, name, value)
    if not 0 <= value < 1:
        raise ValueError(f"{who}: {name} must be in [0, 1), got {value}")
    return value


def _check_nonneg(who, name, value):
    value = _number(who, name, value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{who}: {name} must be finite and >= 0, got {value}")
    return value


def _check_range(who, name, value, lo, hi, lo_open=False, hi_open=False):
    """`value` as a float in the interval lo..hi (open ends as given)."""
    value = _number(who, name, value)
    ok = math.isfinite(value) and (value > lo if lo_open else value >= lo) and \
        (value < hi if hi_open else value <= hi)
    if not ok:
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{who}: {name} must be in {interval}, got {value}")
    return value


def _check_positive(who, name, value):
    value = _number(who, name, value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{who}: {name} must be finite and > 0, got {value}")
    return value


def _key(where, key):
    """How an error names hyper-parameter `key`: bare for the constructor's
    arguments (`where` empty), `param_groups[i]['key']` for a group's."""
    return f"{where}['{key}']" if where else key


def _check_state_dtype(who, dtype):
    if dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"{who}: state_dtype must be torch.float32 or "
                         f"torch.bfloat16, got {dtype!r}")
    return dtype == torch.bfloat16


def _check_seed(who, name, seed):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{who}: {name} must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2 ** 64:
        raise ValueError(f"{who}: {name} must be in [0, 2**64), got {seed}")
    return int(seed)


def _gradient(param, weight):
    """A quantized weight's gradient: its parameter's .grad (autograd's),
    else the weight's own buffer (a dqt.QuantizedWeight given directly)."""
    return param.grad if param.grad is not None else weight.grad


def _check_gradient(who, idx, param, weight):
    g = param.grad
    if g is None:
        return
    if g.dtype != torch.float32 or tuple(g.shape) != tuple(weight.shape) or \
            g.device != weight.device or not g.is_contiguous():
        raise RuntimeError(
            f"{who}.step: the gradient of parameter {idx} must be a "
            f"contiguous float32 tensor of shape {tuple(weight.shape)} on "
            f"{weight.device}, got {g.dtype}{tuple(g.shape)} on {g.device}")


class _DQTOptimizer(torch.optim.Optimizer):
    """The machinery shared by AdamW, SGD and Adafactor (see the module
    docstring)."""

    _name = ""
    _state_keys = ()

    def __init__(self, params, defaults):
        self._hyper(defaults, "")  # the constructor's arguments
        _check_seed(self._name, "seed", defaults["seed"])
        self._cpp = {}       # group index -> (parameter ids, C++ optimizer)
        # Philox tensor id of the parameter at each global index (None: the
        # index itself); a sharding wrapper gives its shard the ids the
        # parameters have in the whole model.
        self._tensor_ids = None
        self._in_backward = set()  # ids of parameters stepped in this backward
        # The layout the hooks of this backward step by: computed at the first
        # hook, dropped by step() (param groups do not change mid-backward).
        self._backward_layout = None
        self.last_stats = StepStatsList()
        super().__init__(params, defaults)

    # -- subclass hooks ---------------------------------------------------
    def _hyper(self, group, where):
        """The group's validated hyper-parameters (dict)."""
        raise NotImplementedError

    def _make_cpp(self, weights, hyper, seed):
        raise NotImplementedError

    def _set_cpp_options(self, cpp, hyper, where):
        """Sets the group's options on its C++ optimizer; raises
        ValueError naming `where` for a change the optimizer cannot make."""
        raise NotImplementedError

    def _state_spec(self, param, hyper):
        """[(state key, shape)] of a parameter (quantized or float), in the
        C++ optimizer's state order."""
        return [(key, tuple(param.shape)) for key in self._state_keys]

    def _tensor_id(self, index):
        return index if self._tensor_ids is None else self._tensor_ids[index]

    # -- param groups -----------------------------------------------------
    def add_param_group(self, param_group):
        """As torch.optim.Optimizer.add_param_group; `params` may also hold
        dqt.QuantizedWeight objects. Hyper-parameters are validated first."""
        who = self._name
        if not isinstance(param_group, dict):
            raise TypeError(f"{who}: a param group must be a dict, got "
                            f"{type(param_group).__name__}")
        param_group = dict(param_group)
        params = param_group.get("params")
        if params is None:
            raise ValueError(f"{who}: a param group needs 'params'")
        if isinstance(params, (torch.Tensor, QuantizedWeight)):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(f"{who}: params must be an ordered collection, not a set")
        params = [QuantizedTensor.of(p) if isinstance(p, QuantizedWeight) else p
                  for p in params]
        where = f"param_groups[{len(self.param_groups)}]"
        for j, p in enumerate(params):
            if not isinstance(p, torch.Tensor):
                raise TypeError(f"{who}: can only optimize tensors and "
                                f"dqt.QuantizedWeight, got {type(p).__name__}")
            if not isinstance(p, QuantizedTensor) and p.numel() and (
                    p.dtype != torch.float32 or not p.is_contiguous()):
                raise TypeError(
                    f"{who}: {where}['params'][{j}] is a {p.dtype} "
                    f"{'' if p.is_contiguous() else 'non-contiguous '}tensor; float "
                    "parameters are stepped by the DQT kernel in float mode, which "
                    "takes contiguous float32 tensors")
        param_group["params"] = params
        merged = {**self.defaults, **param_group}
        self._hyper(merged, where)
        _check_seed(who, "seed", merged["seed"])
        super().add_param_group(param_group)

    # -- layout -----------------------------------------------------------
    def _layout(self):
        """Per group: ([(global index, parameter, weight)], [(global index,
        float parameter)]); empty float tensors have nothing to step and are
        left out."""
        out, index = [], 0
        for group in self.param_groups:
            quant, floats = [], []
            for p in group["params"]:
                w = quantized_weight_of(p)
                if w is not None:
                    quant.append((index, p, w))
                elif p.numel():
                    floats.append((index, p))
                index += 1
            out.append((quant, floats))
        return out

    def _export_layout(self):
        """Per parameter, in the order the groups step them (quantized, then
        float, group by group): what dqt.export_training_graph puts in a
        training graph."""
        out = []
        for i, (quant, floats) in enumerate(self._sync()):
            if i not in self._cpp:
                continue
            cpp = self._cpp[i][1]
            hyper = self._hyper(self.param_groups[i], f"param_groups[{i}]")
            for j, (idx, p, _) in enumerate(quant):
                spec = self._state_spec(p, hyper)
                out.append({"param": p, "quantized": True, "group": i,
                            "cpp": cpp, "key": cpp.step_config_key(j),
                            "tensor_id": self._tensor_id(idx),
                            "states": [cpp.state(j, k) for k in range(len(spec))]})
            for j, (_, p) in enumerate(floats):
                spec = self._state_spec(p, hyper)
                out.append({"param": p, "quantized": False, "group": i,
                            "cpp": cpp, "key": cpp.float_config_key(),
                            "tensor_id": 0,
                            "states": [cpp.float_state(j, k)
                                       for k in range(len(spec))]})
        return out

    def _link_state(self, param, cpp, live):
        """Points the torch-visible state of a parameter at the C++
        optimizer's live tensors `live` (by state key)."""
        self.state[param] = {"step": torch.tensor(cpp.step_count, dtype=torch.int64),
                             **live}

    def _live_states(self, cpp, quant, floats, hyper):
        """Per parameter of the group (quantized, then float): {key: live
        C++ state tensor}."""
        out = []
        for j, (_, p, _) in enumerate(quant):
            out.append({key: cpp.state(j, k)
                        for k, (key, _) in enumerate(self._state_spec(p, hyper))})
        for j, (_, p) in enumerate(floats):
            out.append({key: cpp.float_state(j, k)
                        for k, (key, _) in enumerate(self._state_spec(p, hyper))})
        return out

    def _restore_from_state(self, params, live, cpp, seed, where, n_quant):
        """Copies self.state's entries for the group's `params` (e.g. just
        loaded) into the C++ optimizer, whose live states are `live`. All
        present or all absent (fresh): the group shares one step count."""
        present = [p in self.state and len(self.state[p]) > 0 for p in params]
        if not any(present):
            return
        if not all(present):
            raise ValueError(f"{self._name}: {where} mixes parameters with and "
                             "without optimizer state; they share one step count")
        steps = {int(self.state[p]["step"]) for p in params}
        if len(steps) != 1:
            raise ValueError(f"{self._name}: {where}: parameters have different "
                             f"step counts {sorted(steps)}")
        states = []
        for j, (p, spec) in enumerate(zip(params, live)):
            absent = [key for key in spec if key not in self.state[p]]
            if absent:
                raise ValueError(f"{self._name}: {where}: the state of parameter {j} "
                                 f"has no {absent} (were the group's options changed "
                                 "since it was saved?)")
            states.append([self.state[p][key].detach().to(t.device, t.dtype).contiguous()
                           for key, t in spec.items()])
        cpp.restore(steps.pop(), seed, states[:n_quant])
        cpp.restore_float(states[n_quant:])

    def _sync(self):
        """Builds or rebuilds a group's C++ optimizer (its quantized weights
        and float parameters) when the group's parameters changed."""
        layout = self._layout()
        for i, (quant, floats) in enumerate(layout):
            key = (tuple(id(p) for _, p, _ in quant), tuple(id(p) for _, p in floats))
            if not quant and not floats:
                self._cpp.pop(i, None)
                continue
            if i in self._cpp and self._cpp[i][0] == key:
                continue
            group = self.param_groups[i]
            where = f"param_groups[{i}]"
            hyper = self._hyper(group, where)
            seed = _check_seed(self._name, f"{where}['seed']", group["seed"])
            cpp = self._make_cpp([w for _, _, w in quant], hyper, seed)
            cpp.set_tensor_ids([self._tensor_id(idx) for idx, _, _ in quant])
            if floats:
                devices = {p.device for _, p in floats} | {w.device for _, _, w in quant}
                if len(devices) > 1:
                    raise ValueError(f"{self._name}: {where} holds parameters on "
                                     f"{sorted(map(str, devices))}; a group's "
                                     "parameters share one device")
                cpp.add_float_parameters([p for _, p in floats])
            params = [p for _, p, _ in quant] + [p for _, p in floats]
            live = self._live_states(cpp, quant, floats, hyper)
            self._restore_from_state(params, live, cpp, seed, where, len(quant))
            for p, states in zip(params, live):
                self._link_state(p, cpp, states)
            self._cpp[i] = (key, cpp)
        for i in [i for i in self._cpp if i >= len(layout)]:
            del self._cpp[i]
        return layout

    # -- torch.optim API --------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):
        """One step over every parameter with a gradient (the others are
        skipped, as torch does).

        Returns a StepStatsList (one StepStats per quantized weight that was
        stepped, by tensor_id; on a GPU read from the device only when
        accessed); with a `closure`, returns the closure's loss as torch
        optimizers do (the statistics are in `last_stats`).
        Bad hyper-parameters in param_groups and bad gradients raise
        ValueError/TypeError/RuntimeError before anything changes.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        layout = self._sync()
        hypers = [self._hyper(g, f"param_groups[{i}]")
                  for i, g in enumerate(self.param_groups)]
        seeds = [_check_seed(self._name, f"param_groups[{i}]['seed']", g["seed"])
                 for i, g in enumerate(self.param_groups)]
        # Check every gradient before stepping anything.
        stepping = []
        for i, (quant, floats) in enumerate(layout):
            stepped = [idx for idx, p, w in quant
                       if _gradient(p, w) is not None or id(p) in self._in_backward]
            for idx, p, w in quant:
                _check_gradient(self._name, idx, p, w)
            for idx, p in floats:
                _check_gradient(self._name, idx, p, p)
            if stepped or any(p.grad is not None for _, p in floats):
                stepping.append((i, set(stepped)))

        # Options of every group first: one the C++ optimizer refuses stops
        # the step before any weight moved.
        for i, _ in stepping:
            self._set_cpp_options(self._cpp[i][1], hypers[i], f"param_groups[{i}]")
        stats = []
        for i, stepped in stepping:
            quant, floats = layout[i]
            cpp = self._cpp[i][1]
            self._reseed(cpp, quant, seeds[i], hypers[i])
            # Autograd's gradient (the parameter's .grad) is handed to the C++
            # weight for the step, without a copy, and taken back after.
            handed = []
            for _, p, w in quant:
                if p.grad is not None:
                    w.grad = p.grad
                    handed.append(w)
            try:
                result = cpp.step()  # does not wait for a GPU
            finally:
                for w in handed:
                    w.grad = None
            for j, (idx, p, _) in enumerate(quant):
                if idx in stepped:
                    stats.append((self._tensor_id(idx), result, j))
            for p in [p for _, p, _ in quant] + [p for _, p in floats]:
                self.state[p]["step"].fill_(cpp.step_count)

        self._in_backward.clear()
        self._backward_layout = None
        self.last_stats = StepStatsList(stats)
        return loss if closure is not None else self.last_stats

    def _reseed(self, cpp, quant, seed, hyper):
        """A group whose param_groups seed changed continues its states under
        the new seed."""
        if cpp.seed != seed:
            cpp.restore(cpp.step_count, seed,
                        [[cpp.state(j, k) for k in range(len(self._state_spec(w, hyper)))]
                         for j, (_, _, w) in enumerate(quant)])

    def step_in_backward(self):
        """Steps each quantized weight inside the backward pass, as soon as
        autograd has accumulated its gradient (torch's
        `register_post_accumulate_grad_hook`), and frees that gradient at
        once: the quantized weights' gradients never all exist together.
        Call `step()` after `backward()` as usual: it steps the float
        parameters and ends the step. The result is bit-identical to
        stepping after backward.

        Each weight steps with the gradient of one backward pass, before any
        norm over all gradients exists: not for gradient accumulation or
        gradient clipping (torch's own optimizer-in-backward has the same
        limits). Changes to param_groups made after this call are seen at
        the next hook (hyper-parameters) but new parameters are not hooked.
        Returns the hook handles (`.remove()` ends the mode).

        Refused (RuntimeError) when torch.distributed runs more than one
        process: the hook sees the local gradient, before
        DistributedDataParallel has all-reduced it, so replicas would step
        with different gradients and diverge.
        """
        if torch.distributed.is_available() and torch.distributed.is_initialized() and \
                torch.distributed.get_world_size() > 1:
            raise RuntimeError(
                f"{self._name}.step_in_backward: with {torch.distributed.get_world_size()} "
                "processes each weight would step with its local gradient, before "
                "DistributedDataParallel all-reduces it; step after backward instead "
                "(opt.step())")
        layout = self._sync()
        handles = []
        for i, (quant, _) in enumerate(layout):
            for idx, p, _ in quant:
                handles.append(p.register_post_accumulate_grad_hook(
                    lambda p, i=i, idx=idx: self._step_one(p, i, idx)))
        return handles

    @torch.no_grad()
    def _step_one(self, p, i, idx):
        if self._backward_layout is None:
            self._backward_layout = self._sync()
        quant = self._backward_layout[i][0]
        where = f"param_groups[{i}]"
        hyper = self._hyper(self.param_groups[i], where)
        seed = _check_seed(self._name, f"{where}['seed']", self.param_groups[i]["seed"])
        cpp = self._cpp[i][1]
        w = p.quantized
        _check_gradient(self._name, idx, p, w)
        self._set_cpp_options(cpp, hyper, where)
        self._reseed(cpp, quant, seed, hyper)
        w.grad = p.grad
        cpp.step_parameter(w)  # frees the buffer
        p.grad = None
        self._in_backward.add(id(p))

    def zero_grad(self, set_to_none: bool = True):
        """As torch's, for float parameters and quantized weights alike
        (set_to_none also frees a dqt.QuantizedWeight's gradient buffer)."""
        super().zero_grad(set_to_none)
        for group in self.param_groups:
            for p in group["params"]:
                w = quantized_weight_of(p)
                if w is None or w.grad is None:
                    continue
                if set_to_none:
                    w.grad = None
                else:
                    w.grad.zero_()

    def state_dict(self):
        """torch's format: {"state": {global index: {...}}, "param_groups":
        [...]}. Every parameter's state (quantized or float) is {"step"
        (int64), "exp_avg", "exp_avg_sq"} (AdamW), {"step",
        "momentum_buffer"} (SGD) or as Adafactor's docstring says: live
        tensors, as torch's, the same for per-tensor and per-row weights.
        The weights themselves (integers, deltas, max q, and abs_max under
        scale_rule="absmax") belong to the model's state_dict().
        "dqt_numerics" records the numerics contract the states were made
        under (docs/numerics.md)."""
        self._sync()
        return {**super().state_dict(), "dqt_numerics": _C.NUMERICS_VERSION}

    def load_state_dict(self, state_dict):
        """Restores what state_dict() returned (groups, hyper-parameters,
        seeds, step counts, states), validating every entry first: on error,
        ValueError and nothing changes."""
        who = f"{self._name}.load_state_dict"
        if not isinstance(state_dict, dict) or "state" not in state_dict or \
                "param_groups" not in state_dict:
            raise ValueError(f"{who}: expected a dict with 'state' and 'param_groups'")
        layout = self._layout()
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{who}: the state has {len(saved_groups)} param groups, "
                             f"the optimizer {len(self.param_groups)}")
        numerics = state_dict.get("dqt_numerics")
        if any(quant for quant, _ in layout) and numerics != _C.NUMERICS_VERSION:
            contract = "v1 (no 'dqt_numerics')" if numerics is None else repr(numerics)
            raise ValueError(
                f"{who}: the state was made under numerics contract {contract}, "
                f"this build runs v{_C.NUMERICS_VERSION} (docs/numerics.md): the "
                f"quantized weights' random streams differ, so the run cannot "
                f"continue bit-exactly; start the optimizer afresh instead")
        saved_state = state_dict["state"]
        offset = 0
        for i, ((quant, floats), saved) in enumerate(zip(layout, saved_groups)):
            if len(saved["params"]) != len(self.param_groups[i]["params"]):
                raise ValueError(f"{who}: param_groups[{i}] has {len(saved['params'])} "
                                 f"parameters in the state, "
                                 f"{len(self.param_groups[i]['params'])} here")
            where = f"saved param_groups[{i}]"
            hyper = self._hyper({**self.defaults, **saved}, where)
            _check_seed(who, f"saved param_groups[{i}]['seed']", saved.get("seed"))
            steps = set()
            members = [(idx, p, "quantized ") for idx, p, _ in quant] + \
                [(idx, p, "") for idx, p in floats]
            for idx, p, kind in members:
                st = saved_state.get(saved["params"][idx - offset])
                if st is None:
                    steps.add(None)
                    continue
                for key, shape in self._state_spec(p, hyper):
                    t = st.get(key)
                    if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape:
                        raise ValueError(f"{who}: state '{key}' of {kind}parameter "
                                         f"{idx} must be a tensor of shape {shape}")
                if "step" not in st:
                    raise ValueError(f"{who}: {kind}parameter {idx} has no 'step'")
                steps.add(int(st["step"]))
            if len(steps) > 1:
                raise ValueError(f"{who}: the parameters of param_groups[{i}] have "
                                 f"different step counts in the state: {steps}")
            offset += len(self.param_groups[i]["params"])
        super().load_state_dict({k: v for k, v in state_dict.items()
                                 if k != "dqt_numerics"})
        # Push the loaded states into the C++ optimizers (rebuilt from
        # self.state), then point self.state at their live tensors again.
        self._cpp.clear()
        self._sync()


class AdamW(_DQTOptimizer):
    """DQT AdamW (see the module docstring).

    Args:
        params: iterable of parameters (tensors, dqt.QuantizedTensor,
            dqt.QuantizedWeight) or of param-group dicts.
        lr: learning rate (>= 0).
        betas: (beta1, beta2), each in [0, 1).
        eps: > 0, added to sqrt(v).
        weight_decay: decoupled weight decay (>= 0).
        seed: Philox seed of the stochastic rounding, in [0, 2**64).
        state_dtype: dtype of the quantized weights' m and v:
            torch.float32, or torch.bfloat16 (written with stochastic
            rounding from their own Philox stream, docs/numerics.md; 2 bytes
            each instead of 4). Float parameters keep f32 states (float mode).
    """

    _name = "dqt.optim.AdamW"
    _state_keys = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=5e-4, betas=(0.9, 0.999), eps=1e-6,
                 weight_decay=0.01, seed=42, *, state_dtype=torch.float32):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        seed=seed)
        self._bf16_states = _check_state_dtype(self._name, state_dtype)
        super().__init__(params, defaults)

    def _hyper(self, group, where):
        who = self._name
        betas = group.get("betas")
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{who}: {_key(where, 'betas')} must be a pair (beta1, beta2), "
                            f"got {betas!r}")
        eps = _number(who, _key(where, "eps"), group.get("eps"))
        if not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"{who}: {_key(where, 'eps')} must be finite and > 0, got {eps}")
        return dict(
            lr=_check_nonneg(who, _key(where, "lr"), group.get("lr")),
            betas=(_check_unit(who, f"{_key(where, 'betas')}[0] (beta1)", betas[0]),
                   _check_unit(who, f"{_key(where, 'betas')}[1] (beta2)", betas[1])),
            eps=eps,
            weight_decay=_check_nonneg(who, _key(where, "weight_decay"),
                                       group.get("weight_decay")))

    def _make_cpp(self, weights, h, seed):
        return _C.AdamW(weights, lr=h["lr"], beta1=h["betas"][0], beta2=h["betas"][1],
                        eps=h["eps"], weight_decay=h["weight_decay"], seed=seed,
                        bf16_states=self._bf16_states)

    def _set_cpp_options(self, cpp, h, where):
        cpp.set_options(lr=h["lr"], beta1=h["betas"][0], beta2=h["betas"][1],
                        eps=h["eps"], weight_decay=h["weight_decay"])


class SGD(_DQTOptimizer):
    """DQT SGD with momentum (buf = momentum * buf + g; w -= lr * buf) and
    decoupled weight decay (see the module docstring).

    Args:
        params: as AdamW.
        lr: learning rate (>= 0).
        momentum: in [0, 1).
        weight_decay: decoupled, >= 0.
        seed: Philox seed, in [0, 2**64).
        state_dtype: dtype of the quantized weights' momentum buffer, as
            AdamW's.
    """

    _name = "dqt.optim.SGD"
    _state_keys = ("momentum_buffer",)

    def __init__(self, params, lr=1e-2, momentum=0.9, weight_decay=0.0, seed=42,
                 *, state_dtype=torch.float32):
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, seed=seed)
        self._bf16_states = _check_state_dtype(self._name, state_dtype)
        super().__init__(params, defaults)

    def _hyper(self, group, where):
        who = self._name
        return dict(
            lr=_check_nonneg(who, _key(where, "lr"), group.get("lr")),
            momentum=_check_unit(who, _key(where, "momentum"), group.get("momentum")),
            weight_decay=_check_nonneg(who, _key(where, "weight_decay"),
                                       group.get("weight_decay")))

    def _make_cpp(self, weights, h, seed):
        return _C.SGD(weights, lr=h["lr"], momentum=h["momentum"],
                      weight_decay=h["weight_decay"], seed=seed,
                      bf16_states=self._bf16_states)

    def _set_cpp_options(self, cpp, h, where):
        cpp.set_options(lr=h["lr"], momentum=h["momentum"],
                        weight_decay=h["weight_decay"])


class Adafactor(_DQTOptimizer):
    """DQT Adafactor: HuggingFace's `Adafactor` with a fixed learning rate
    (`scale_parameter=False, relative_step=False, warmup_init=False`) for the
    quantized weights, pinned bit for bit in docs/numerics.md.

    A 2-D quantized weight [R, C] keeps a factored second moment (a row
    state of R and a column state of C floats); any other shape keeps a full
    one. The update u = g / sqrt(v_hat) is clipped by max(1, RMS(u) /
    clip_threshold), optionally averaged into a first moment (beta1 > 0),
    then applied with lr, decoupled weight decay and stochastic rounding by
    the generated SGD kernel. Differences from HuggingFace's code (see
    docs/numerics.md): the first moment holds the unscaled update (the
    current lr multiplies it, as AdamW here: the same for a constant lr),
    and weight decay is applied after the update, not before.

    Float parameters follow the same math without the grid (the SGD
    kernel in float mode): the same states, a factored second moment for
    matrices, and non-finite masking.

    Args:
        params: as AdamW.
        lr: learning rate (>= 0).
        beta1: first-moment coefficient in [0, 1); 0 (or None, as in
            HuggingFace's signature) keeps no first moment and no full-size
            state. It cannot switch between 0 and > 0 once a group's
            optimizer exists (the state exists or not).
        decay_rate: beta2_t = 1 - t**decay_rate, in [-1, 0).
        eps1: added to g*g (> 0).
        clip_threshold: > 0; the update's RMS is clipped to it.
        weight_decay: decoupled, >= 0.
        seed: Philox seed, in [0, 2**64).
        state_dtype: dtype of the quantized weights' first moment "exp_avg"
            (beta1 > 0): torch.float32, or torch.bfloat16 (written by the
            kernel with stochastic rounding from its own Philox stream,
            docs/numerics.md; 2 bytes instead of 4). The second-moment
            statistics stay float32.

    State of a quantized weight (live tensors): "step" (int64),
    "exp_avg_sq_row" [R] and "exp_avg_sq_col" [C] (2-D weights) or
    "exp_avg_sq" (other shapes), float32, and "exp_avg" when beta1 > 0
    (HuggingFace's names; of `state_dtype`). Float parameters hold the same
    entries, all float32.
    """

    _name = "dqt.optim.Adafactor"

    def __init__(self, params, lr=1e-3, beta1=0.0, decay_rate=-0.8, eps1=1e-30,
                 clip_threshold=1.0, weight_decay=0.0, seed=42, *,
                 state_dtype=torch.float32):
        defaults = dict(lr=lr, beta1=beta1, decay_rate=decay_rate, eps1=eps1,
                        clip_threshold=clip_threshold, weight_decay=weight_decay,
                        seed=seed)
        self._bf16_states = _check_state_dtype(self._name, state_dtype)
        super().__init__(params, defaults)

    def _hyper(self, group, where):
        who = self._name
        beta1 = group.get("beta1")
        return dict(
            lr=_check_nonneg(who, _key(where, "lr"), group.get("lr")),
            beta1=0.0 if beta1 is None else _check_unit(who, _key(where, "beta1"), beta1),
            decay_rate=_check_range(who, _key(where, "decay_rate"), group.get("decay_rate"),
                                    -1, 0, hi_open=True),
            eps1=_check_positive(who, _key(where, "eps1"), group.get("eps1")),
            clip_threshold=_check_positive(who, _key(where, "clip_threshold"),
                                           group.get("clip_threshold")),
            weight_decay=_check_nonneg(who, _key(where, "weight_decay"),
                                       group.get("weight_decay")))

    def _state_spec(self, weight, h):
        shape = tuple(weight.shape)
        spec = ([("exp_avg_sq_row", shape[:1]), ("exp_avg_sq_col", shape[1:])]
                if len(shape) == 2 else [("exp_avg_sq", shape)])
        if h["beta1"] > 0:
            spec.append(("exp_avg", shape))
        return spec

    def _make_cpp(self, weights, h, seed):
        return _C.Adafactor(weights, lr=h["lr"], beta1=h["beta1"],
                            decay_rate=h["decay_rate"], eps1=h["eps1"],
                            clip_threshold=h["clip_threshold"],
                            weight_decay=h["weight_decay"], seed=seed,
                            bf16_states=self._bf16_states)

    def _set_cpp_options(self, cpp, h, where):
        if (h["beta1"] > 0) != (cpp.beta1 > 0):
            raise ValueError(
                f"{self._name}: {where}['beta1'] cannot switch between 0 and > 0 "
                f"once the group's optimizer exists (got {h['beta1']}); the first-"
                "moment state exists or not")
        cpp.set_options(lr=h["lr"], beta1=h["beta1"], decay_rate=h["decay_rate"],
                        eps1=h["eps1"], clip_threshold=h["clip_threshold"],
                        weight_decay=h["weight_decay"])
