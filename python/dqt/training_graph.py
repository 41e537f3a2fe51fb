"""A converted model's training step as one MLIR module for dqt-opt.

``export_training_graph(model, example_batch, path, optimizer=opt)`` writes

- ``@forward_backward``: the loss and the gradient of every trainable
  parameter, as linalg on tensors. torch-mlir's FX importer
  (``torch_mlir.fx.stateless_fx_import``) makes it from
  ``make_fx(torch.func.grad_and_value(...))``, with torch-mlir's
  decomposition table;
- ``@dqt_step_<k>``: the step of each kernel configuration, exactly the IR the
  runtime's kernels are compiled from (``dqt._C.step_function``);
- ``@train_step``: dequantizes the integer weights, calls
  ``@forward_backward`` and steps every parameter. It takes and returns the
  optimizer's whole state (docs/design.md, "Training graphs").

``dqt-opt --dqt-compile-cpu`` (or ``--dqt-compile-gpu``) compiles it: the
inliner inlines the calls, the steps are fused and outlined into kernels, the
rest is lowered by upstream passes. With ``with_main=True`` the module also
has a ``@main`` that runs one step on the example batch and the current state
and prints the results, for ``mlir-runner``.
"""

import math
import re

import torch

from . import _C

__all__ = ["export_training_graph", "parse_printed_step", "bits_to_float"]

_ELEMENT_TYPES = {
    torch.float32: "f32",
    torch.bfloat16: "bf16",
    torch.int8: "i8",
    torch.int32: "i32",
    torch.int64: "i64",
}


def _element_type(t, what):
    try:
        return _ELEMENT_TYPES[t.dtype]
    except KeyError:
        raise TypeError(f"dqt.export_training_graph: {what} has dtype {t.dtype}, "
                        "which the training graph cannot carry") from None


def _tensor_type(t, what, shape=None):
    shape = list(t.shape) if shape is None else shape
    dims = "x".join(str(d) for d in shape)
    return f"tensor<{dims + 'x' if dims else ''}{_element_type(t, what)}>"


class _Builder:
    """SSA names and lines of a function being written."""

    def __init__(self):
        self.lines = []
        self.n = 0

    def fresh(self, stem):
        # `.` keeps them apart from the argument names (%w2, %q0, ...).
        self.n += 1
        return f"%{stem}.{self.n}"

    def emit(self, line):
        self.lines.append("  " + line)


def _decompositions():
    """torch-mlir's table, with aten.scatter.value as a compare and select:
    cross-entropy's backward scatters, and torch-mlir would lower that to
    its own tm_tensor dialect, which MLIR 22 does not have."""
    from torch_mlir.extras.fx_decomp_util import get_decomposition_table

    def scatter_value(self, dim, index, value):
        dim = dim % self.dim()
        idx = index.movedim(dim, -1).unsqueeze(-1)
        positions = torch.arange(self.shape[dim], device=self.device)
        mask = (idx == positions).any(-2).movedim(-1, dim)
        return torch.where(mask, torch.scalar_tensor(value, dtype=self.dtype),
                           self)

    table = dict(get_decomposition_table())
    table[torch.ops.aten.scatter.value] = scatter_value
    return table


def _forward_backward(model, params, batch, loss_fn):
    """@forward_backward as MLIR text: (params..., batch...) -> (loss,
    grads...). The model runs with plain float weights (q * delta) through
    torch.func.functional_call."""
    try:
        from torch.fx.experimental.proxy_tensor import make_fx
        from torch_mlir import fx
    except ImportError as e:
        raise ImportError("dqt.export_training_graph needs torch-mlir "
                          "(pip install torch-mlir; scripts/setup.sh installs "
                          "it)") from e
    names = [n for n, _ in params]

    def loss_of(*flat):
        weights = dict(zip(names, flat[:len(names)]))

        def call(*args, **kwargs):
            return torch.func.functional_call(model, weights, args, kwargs)

        out = loss_fn(call, *flat[len(names):])
        return out.loss if hasattr(out, "loss") else out

    def step(*flat):
        grads, loss = torch.func.grad_and_value(
            loss_of, argnums=tuple(range(len(names))))(*flat)
        return (loss, *grads)

    floats = [w for _, w in params]
    graph = make_fx(step, tracing_mode="fake",
                    decomposition_table=_decompositions())(*floats, *batch)
    module = fx.stateless_fx_import(graph, output_type="linalg-on-tensors",
                                    model_name="forward_backward")
    text = str(module)
    if "tm_tensor." in text or "torch." in text:
        raise NotImplementedError(
            "dqt.export_training_graph: torch-mlir left ops outside upstream "
            "MLIR in the forward and backward pass (" +
            ", ".join(sorted(set(re.findall(r"(?:tm_tensor|torch)\.[\w.]+",
                                            text)))) + ")")
    return text


def _split_module(text):
    """A printed module as (attribute aliases before it, its operations,
    the resource section after it)."""
    resources = ""
    if "\n{-#" in text:
        text, resources = text.split("\n{-#", 1)
        resources = "{-#" + resources
    at = re.search(r"^module\b", text, re.M).start()
    start = text.index("\n", at) + 1  # after `module [attributes {...}] {`
    end = text.rindex("}")
    return text[:at], text[start:end], resources


def _reshape(b, value, shape, elem, to_flat):
    """A parameter's value between its shape and the 1-D tensor of its
    elements (what the steps take): `to_flat` collapses, else expands."""
    if len(shape) == 1:
        return value
    n = math.prod(shape)
    shaped = f"tensor<{'x'.join(map(str, shape)) + 'x' if shape else ''}{elem}>"
    flat = f"tensor<{n}x{elem}>"
    groups = "[]" if not shape else f"[[{', '.join(map(str, range(len(shape))))}]]"
    out = b.fresh("flat" if to_flat else "view")
    # A 0-d tensor goes to and from tensor<1x...> with empty reassociation.
    collapse = to_flat == bool(shape)
    src, dst = (shaped, flat) if to_flat else (flat, shaped)
    if collapse:
        b.emit(f"{out} = tensor.collapse_shape {value} {groups} : {src} into {dst}")
    else:
        sizes = ", ".join(map(str, shape or [1]))
        b.emit(f"{out} = tensor.expand_shape {value} {groups} output_shape "
               f"[{sizes}] : {src} into {dst}")
    return out


def _hex_dense(t, type_):
    """A dense constant with `t`'s exact bits (the raw little-endian data)."""
    data = t.detach().contiguous().cpu().reshape(-1)
    raw = data.view(torch.uint8).numpy().tobytes() if data.numel() else b""
    return f'dense<"0x{raw.hex().upper()}"> : {type_}'


def _f32_bits(x):
    return "0x%08X" % torch.tensor([x], dtype=torch.float32).view(torch.int32).item()


def _step_entries(optimizer):
    """The optimizer's parameters with their step function (IR, argument
    names); refuses what the training graph does not carry yet."""
    steps, entries = {}, optimizer._export_layout()
    for e in entries:
        if e["key"] not in steps:
            steps[e["key"]] = _C.step_function(e["key"])
        ir, arg_names = steps[e["key"]]
        e["ir"], e["arg_names"] = ir, arg_names
        n = e["param"].numel()
        host_states = (sum(a.startswith("state") for a in arg_names) !=
                       len(e["states"]) or
                       any(s.numel() != n for s in e["states"]))
        unsupported = [what for what, found in
                       [("per-row scales", "delta_rows" in arg_names),
                        ("the absmax scale rule", "reduce_absmax" in ir),
                        ("packed ternary weights", "unpack_ternary" in ir),
                        ("statistics computed on the host (Adafactor's "
                         "factored second moment)", host_states)]
                       if found]
        if unsupported:
            raise NotImplementedError(
                "dqt.export_training_graph: configuration " + e["key"] +
                " has " + ", ".join(unsupported) +
                ", which training graphs do not carry yet")
        if e["quantized"]:
            e["grid"] = re.search(r"grid<(\w+)>", ir).group(1)
    return entries, steps


def export_training_graph(model, example_batch, path, *, optimizer,
                          loss_fn=None, with_main=False):
    """Writes the training step of ``model`` (converted by ``dqt.convert``)
    with ``optimizer`` (a ``dqt.optim`` optimizer over its parameters) to
    ``path`` as one MLIR module (see this module's docstring).

    ``example_batch`` is a tuple of tensors; ``loss_fn(model, *batch)``
    returns the scalar loss, where ``model`` calls the model (default: the
    model's output on the whole batch, or its ``.loss``). ``with_main`` adds
    ``@main``: one step on the example batch from the optimizer's current
    state (its next step), printing the results (``parse_printed_step``).

    Returns ``{"args": [...], "results": [...]}``: the names of
    ``@train_step``'s arguments and results, e.g. ``weights[0]``,
    ``state1[0]``, ``delta[0]``, ``batch[1]``, ``hyper[2][g]``.
    """
    from .optim import _DQTOptimizer

    if not isinstance(optimizer, _DQTOptimizer):
        raise TypeError("dqt.export_training_graph: optimizer must be a "
                        f"dqt.optim optimizer, got {type(optimizer).__name__}")
    if not _C.WITH_COMPILER:
        raise RuntimeError("dqt.export_training_graph needs the compiler "
                           "(dqt._C.WITH_COMPILER is False)")
    batch = tuple(example_batch) if isinstance(example_batch, (tuple, list)) \
        else (example_batch,)
    for i, t in enumerate(batch):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"dqt.export_training_graph: example_batch[{i}] "
                            f"must be a tensor, got {type(t).__name__}")
    if loss_fn is None:
        def loss_fn(call, *args):
            return call(*args)

    entries, steps = _step_entries(optimizer)
    names = {id(p): n for n, p in model.named_parameters()}
    params = []
    for e in entries:
        p = e["param"]
        if id(p) not in names:
            raise ValueError("dqt.export_training_graph: the optimizer holds a "
                             "parameter that is not the model's")
        value = p.dequantize() if e["quantized"] else p
        params.append((names[id(p)], value.detach().clone()))
    fb = _forward_backward(model, params, batch, loss_fn)

    b = _Builder()
    sig, args = [], []
    # Per parameter: its weights (q, delta, max q) and states.
    for k, e in enumerate(entries):
        p, n = e["param"], e["param"].numel()
        vals = {}
        if e["quantized"]:
            w = p.quantized
            vals["weights"] = (f"%q{k}", f"tensor<{n}xi8>", w.q)
            vals["delta"] = (f"%delta{k}", "f32", w.delta)
            vals["maxq"] = (f"%maxq{k}", "i8", w.max_q)
        else:
            vals["weights"] = (f"%w{k}", f"tensor<{n}xf32>", p.detach())
        for s, state in enumerate(e["states"]):
            vals[f"state{s}"] = (f"%s{k}_{s}", _tensor_type(state, "state",
                                                           [state.numel()]),
                                 state)
        e["vals"] = vals
        for name, (v, t, _) in vals.items():
            sig.append(f"{v}: {t}")
            args.append(f"{name}[{k}]")
    for i, t in enumerate(batch):
        sig.append(f"%batch{i}: {_tensor_type(t, f'example_batch[{i}]')}")
        args.append(f"batch[{i}]")
    # Per group: the kernel's hyper-parameters, the seed and the step t.
    groups = sorted({e["group"] for e in entries})
    for g in groups:
        e = next(e for e in entries if e["group"] == g)
        for h in range(sum(a.startswith("hyper[") for a in e["arg_names"])):
            sig.append(f"%hyper{h}_g{g}: f32")
            args.append(f"hyper[{h}][{g}]")
        sig += [f"%seed_g{g}: i64", f"%step_g{g}: i64"]
        args += [f"seed[{g}]", f"step[{g}]"]

    # The forward and backward pass on q * delta (reshaped to each weight's
    # shape), as PyTorch computes it.
    fb_args, fb_types = [], []
    for e in entries:
        shape, n = list(e["param"].shape), e["param"].numel()
        v = e["vals"]["weights"][0]
        if e["quantized"]:
            empty, w = b.fresh("e"), b.fresh("w")
            b.emit(f"{empty} = tensor.empty() : tensor<{n}xf32>")
            b.emit(f"{w} = linalg.generic {{indexing_maps = [affine_map<(d0) -> "
                   "(d0)>, affine_map<(d0) -> (d0)>], iterator_types = "
                   f"[\"parallel\"]}} ins({v} : tensor<{n}xi8>) outs({empty} : "
                   f"tensor<{n}xf32>) {{")
            b.emit("^bb0(%a: i8, %o: f32):")
            b.emit("  %f = arith.sitofp %a : i8 to f32")
            b.emit(f"  %r = arith.mulf %f, {e['vals']['delta'][0]} : f32")
            b.emit("  linalg.yield %r : f32")
            b.emit(f"}} -> tensor<{n}xf32>")
            v = w
        fb_args.append(_reshape(b, v, shape, "f32", to_flat=False))
        dims = "x".join(map(str, shape))
        fb_types.append(f"tensor<{dims + 'x' if dims else ''}f32>")
    for i, t in enumerate(batch):
        fb_args.append(f"%batch{i}")
        fb_types.append(_tensor_type(t, f"example_batch[{i}]"))
    out = b.fresh("fb")
    b.emit(f"{out}:{len(entries) + 1} = func.call @forward_backward("
           f"{', '.join(fb_args)}) : ({', '.join(fb_types)}) -> "
           f"(tensor<f32>, {', '.join(fb_types[:len(entries)])})")
    loss = b.fresh("loss")
    b.emit(f"{loss} = tensor.extract {out}#0[] : tensor<f32>")
    ret_vals, ret_types, results = [loss], ["f32"], ["loss"]

    # The steps, each the runtime's IR of its configuration.
    fn_of = {key: f"dqt_step_{i}" for i, key in enumerate(steps)}
    for k, e in enumerate(entries):
        shape, n, g, vals = list(e["param"].shape), e["param"].numel(), \
            e["group"], e["vals"]
        grad = _reshape(b, f"{out}#{k + 1}", shape, "f32", to_flat=True)
        delta_next = None
        if e["quantized"]:
            delta_next = b.fresh("dnext")
            b.emit(f"{delta_next} = dqt.next_delta {vals['delta'][0]}, "
                   f"{vals['maxq'][0]} grid<{e['grid']}>")
        tid = b.fresh("tid")
        b.emit(f"{tid} = arith.constant {e['tensor_id']} : i64")
        named = {"grad": (grad, f"tensor<{n}xf32>"), "seed": (f"%seed_g{g}", "i64"),
                 "step": (f"%step_g{g}", "i64"), "tensor_id": (tid, "i64"),
                 "delta_next": (delta_next, "f32")}
        named.update({a: (v, t) for a, (v, t, _) in vals.items()})
        call_args, call_types = [], []
        for a in e["arg_names"]:
            if a.startswith("hyper["):
                v, t = f"%hyper{a[6:-1]}_g{g}", "f32"
            else:
                v, t = named[a]
            if t.startswith("tensor<"):  # the step functions take any length
                elem = t[t.rindex("x") + 1:-1]
                c = b.fresh("dyn")
                b.emit(f"{c} = tensor.cast {v} : {t} to tensor<?x{elem}>")
                v, t = c, f"tensor<?x{elem}>"
            call_args.append(v)
            call_types.append(t)
        updated = ["weights"] + [f"state{s}" for s in range(len(e["states"]))]
        res_types = [call_types[e["arg_names"].index(a)] for a in updated]
        # Then max(q'), changed, non-finite (integer weights) or the
        # non-finite count (float mode).
        stats = ["i8", "i64", "i64"] if e["quantized"] else ["i64"]
        r = b.fresh("step")
        b.emit(f"{r}:{len(res_types) + len(stats)} = func.call "
               f"@{fn_of[e['key']]}({', '.join(call_args)}) : "
               f"({', '.join(call_types)}) -> ({', '.join(res_types + stats)})")
        for j, a in enumerate(updated):
            c = b.fresh("static")
            b.emit(f"{c} = tensor.cast {r}#{j} : {res_types[j]} to {vals[a][1]}")
            ret_vals.append(c)
            ret_types.append(vals[a][1])
            results.append(f"{a}[{k}]")
        if e["quantized"]:
            ret_vals += [delta_next, f"{r}#{len(res_types)}"]
            ret_types += ["f32", "i8"]
            results += [f"delta[{k}]", f"maxq[{k}]"]
    b.emit(f"return {', '.join(ret_vals)} : {', '.join(ret_types)}")

    aliases, fb_body, resources = _split_module(fb)
    text = ["// The training step of a dqt model and its optimizer, written by",
            "// dqt.export_training_graph; compile with dqt-opt --dqt-compile-cpu",
            "// (or --dqt-compile-gpu).",
            aliases.strip(),
            "module {",
            f"func.func @train_step({', '.join(sig)})",
            f"    -> ({', '.join(ret_types)}) {{"]
    text += b.lines
    text.append("}")
    text.append(fb_body.replace("func.func @forward_backward",
                                "func.func private @forward_backward", 1))
    for key, (ir, _) in steps.items():
        body = _split_module(ir)[1].replace("func.func @dqt_step",
                                        f"func.func private @{fn_of[key]}", 1)
        text.append(body)
    if with_main:
        text.append(_main(entries, batch, groups, sig, ret_types, results))
    text.append("}")
    if resources:
        text.append(resources)
    with open(path, "w") as f:
        f.write("\n".join(text) + "\n")
    return {"args": args, "results": results}


def _main(entries, batch, groups, sig, ret_types, results):
    """@main: @train_step on constants (the current state, the example batch,
    the next step's hyper-parameters), printing each result as `name:` then
    its values, f32 as their bits (exact)."""
    b = _Builder()
    consts = []
    for e in entries:
        for name, (v, t, value) in e["vals"].items():
            c = "%c" + v[1:]
            if t.startswith("tensor<"):
                b.emit(f"{c} = arith.constant {_hex_dense(value, t)}")
            elif t == "f32":
                b.emit(f"{c} = arith.constant {_f32_bits(float(value))} : f32")
            else:
                b.emit(f"{c} = arith.constant {int(value)} : {t}")
            consts.append(c)
    for i, t in enumerate(batch):
        c = f"%cbatch{i}"
        b.emit(f"{c} = arith.constant {_hex_dense(t, _tensor_type(t, 'batch'))}")
        consts.append(c)
    for g in groups:
        e = next(e for e in entries if e["group"] == g)
        cpp = e["cpp"]
        t = cpp.step_count + 1
        for h, x in enumerate(cpp.kernel_hyper_parameters(t)):
            b.emit(f"%chyper{h}_g{g} = arith.constant {_f32_bits(x)} : f32")
            consts.append(f"%chyper{h}_g{g}")
        b.emit(f"%cseed_g{g} = arith.constant {cpp.seed} : i64")
        b.emit(f"%cstep_g{g} = arith.constant {t} : i64")
        consts += [f"%cseed_g{g}", f"%cstep_g{g}"]
    arg_types = [s.split(": ", 1)[1] for s in sig]
    b.emit(f"%r:{len(ret_types)} = func.call @train_step({', '.join(consts)}) : "
           f"({', '.join(arg_types)}) -> ({', '.join(ret_types)})")
    printers = set()
    for j, (name, t) in enumerate(zip(results, ret_types)):
        b.emit(f'vector.print str "{name}:\\n"')
        if t.startswith("tensor<"):
            elem = t[t.rindex("x") + 1:-1]
            printers.add(elem)
            d = b.fresh("d")
            b.emit(f"{d} = tensor.cast %r#{j} : {t} to tensor<?x{elem}>")
            b.emit(f"func.call @print_{elem}({d}) : (tensor<?x{elem}>) -> ()")
        elif t == "f32":
            bits = b.fresh("bits")
            b.emit(f"{bits} = arith.bitcast %r#{j} : f32 to i32")
            b.emit(f"vector.print {bits} : i32")
        else:
            b.emit(f"vector.print %r#{j} : {t}")
    b.emit("return")
    lines = ["func.func @main() {"] + b.lines + ["}"]
    as_int = {"f32": "i32", "bf16": "i16", "i8": "i8", "i32": "i32", "i64": "i64"}
    for elem in sorted(printers):
        it = as_int[elem]
        cast = (f"    %v = arith.bitcast %e : {elem} to {it}" if it != elem
                else "    %v = arith.addi %e, %zero : " + it)
        zero = "" if it != elem else f"  %zero = arith.constant 0 : {it}\n"
        lines.append(f"""func.func private @print_{elem}(%t: tensor<?x{elem}>) {{
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
{zero}  %n = tensor.dim %t, %c0 : tensor<?x{elem}>
  scf.for %i = %c0 to %n step %c1 {{
    %e = tensor.extract %t[%i] : tensor<?x{elem}>
{cast}
    vector.print %v : {it}
  }}
  return
}}""")
    return "\n".join(lines)


def parse_printed_step(text):
    """The results @main printed: {name: list of ints} (f32 values as their
    bit patterns, bf16 as 16-bit patterns; see ``bits_to_float``)."""
    out, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.endswith(":") and not line[:-1].lstrip("-").isdigit():
            current = line[:-1]
            out[current] = []
        elif current is not None:
            out[current].append(int(line))
    return out


def bits_to_float(bits, dtype=torch.float32):
    """Printed bit patterns as a tensor of `dtype` (float32 or bfloat16)."""
    int_type = torch.int32 if dtype == torch.float32 else torch.int16
    return torch.tensor(bits, dtype=torch.int64).to(int_type).view(dtype)
