"""dqt.optim.AdamW / SGD: quantized weights bit-identical to the single-tensor
kernel (dqt.functional.adamw_step_) and to a Python SGD reference; float
parameters bit-identical to docs/numerics.md's float mode written in torch
ops, non-finite gradients masked; param groups, LR schedules, zero_grad,
state_dict round trips and bad input."""
import io

import pytest
import torch

import dqt
from test_functional import (adamw_ref, next_delta, per_element, scale_result, sqrt_ieee,
                             stochastic_round)

HYPER = dict(lr=0.01, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.05)


def f32(x):
    return torch.tensor(x, dtype=torch.float32)


class Ref:
    """The reference state of one quantized weight (1-D copies), per tensor
    or per row (delta and max_q then f32 and int8 tensors [rows])."""

    def __init__(self, w, tensor_id):
        self.q = w.q.flatten().clone()
        self.per_row = w.scale == "row"
        if self.per_row:
            self.delta, self.max_q = w.delta_rows, w.max_q_rows
        else:
            self.delta, self.max_q = w.delta, w.max_q
        self.bits = w.bits
        self.m = torch.zeros(self.q.numel())
        self.v = torch.zeros(self.q.numel())
        self.tid = tensor_id

    def matches(self, w):
        """Whether weight `w` holds the reference's integers and scales."""
        if not torch.equal(w.q.flatten(), self.q):
            return False
        if self.per_row:
            return same_bits(w.delta_rows, self.delta) and torch.equal(w.max_q_rows, self.max_q)
        return (w.delta, w.max_q) == (self.delta, self.max_q)

    def adamw(self, g, t, lr, betas, eps, weight_decay, seed):
        """Per tensor the single-tensor kernel, per row the torch-ops
        reference of test_functional; returns (max_q, changed, nonfinite)."""
        if self.per_row:
            u = dqt.random.philox_uniform(seed, t, self.tid, self.q.numel())
            (self.q, self.m, self.v, self.delta, self.max_q, changed, nonfinite) = adamw_ref(
                self.q, self.delta, self.max_q, g.flatten(), self.m, self.v, t, lr,
                betas[0], betas[1], eps, weight_decay, self.bits, seed, self.tid, u=u)
            return int(self.q.max()), changed, nonfinite
        r = dqt.functional.adamw_step_(
            self.q, self.delta, self.max_q, g.flatten().clone(), self.m, self.v,
            step=t, lr=lr, beta1=betas[0], beta2=betas[1], eps=eps,
            weight_decay=weight_decay, bits=self.bits, seed=seed, tensor_id=self.tid)
        self.delta, self.max_q = r.delta, r.max_q
        return r.max_q, r.changed, r.nonfinite

    def sgd(self, g, t, lr, momentum, weight_decay, seed):
        """docs/numerics.md's SGD with the contract's rounding, in torch f32;
        returns the number of changed integers."""
        g = g.flatten()
        n = self.q.numel()
        d = per_element(torch.as_tensor(self.delta, dtype=torch.float32).reshape(-1), n)
        dn = next_delta(self.delta, self.max_q, self.bits)
        finite = g.isfinite()
        buf1 = f32(momentum) * self.m + g
        w1 = self.q.float() * d - f32(lr) * buf1
        w2 = w1 - f32(lr * weight_decay) * w1
        r = stochastic_round(w2, dn, dqt.random.philox_uniform(seed, t, self.tid, n), self.bits)
        q1 = torch.where(finite, r.to(torch.int8), self.q)
        changed = int((q1 != self.q).sum())
        self.q, self.m = q1, torch.where(finite, buf1, self.m)
        self.delta, self.max_q = scale_result(q1, dn, self.per_row)
        return changed


class FloatRef:
    """docs/numerics.md's float mode for one float parameter: the quantized
    weights' update without the grid, masked where the gradient is not
    finite."""

    def __init__(self, p):
        self.w = p.detach().clone()
        self.m = torch.zeros_like(self.w)
        self.v = torch.zeros_like(self.w)

    def adamw(self, g, t, lr, betas, eps, weight_decay):
        b1, b2 = f32(betas[0]), f32(betas[1])
        alpha = lr * (1 - betas[1] ** t) ** 0.5 / (1 - betas[0] ** t)
        finite = g.isfinite()
        m1 = b1 * self.m + (f32(1.0) - b1) * g
        v1 = b2 * self.v + (f32(1.0) - b2) * (g * g)
        w1 = self.w - f32(alpha) * (m1 / (sqrt_ieee(v1) + f32(eps)))
        w2 = w1 - f32(lr * weight_decay) * w1
        self.w = torch.where(finite, w2, self.w)
        self.m = torch.where(finite, m1, self.m)
        self.v = torch.where(finite, v1, self.v)

    def sgd(self, g, lr, momentum, weight_decay):
        finite = g.isfinite()
        buf1 = f32(momentum) * self.m + g
        w1 = self.w - f32(lr) * buf1
        w2 = w1 - f32(lr * weight_decay) * w1
        self.w = torch.where(finite, w2, self.w)
        self.m = torch.where(finite, buf1, self.m)


def model3(scale="tensor"):
    torch.manual_seed(11)
    return torch.nn.Sequential(
        dqt.nn.QuantLinear(12, 16, bits=8, scale=scale), torch.nn.ReLU(),
        dqt.nn.QuantLinear(16, 8, bits=4, scale=scale), torch.nn.Tanh(),
        dqt.nn.QuantLinear(8, 4, bits=1.58, bias=False, scale=scale))


def quant_layers(model):
    return [m for m in model.modules() if isinstance(m, dqt.nn.QuantLinear)]


def backward(model, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 12, generator=gen)
    t = torch.randn(5, 4, generator=gen)
    loss = ((model(x) - t) ** 2).sum()
    loss.backward()
    return loss.item()


def global_ids(opt):
    """tensor_id of each quantized weight: its index over all groups."""
    ids, i = {}, 0
    for g in opt.param_groups:
        for p in g["params"]:
            if isinstance(p, dqt.QuantizedTensor):
                ids[id(p)] = i
            i += 1
    return ids


@pytest.mark.parametrize("scale", ["tensor", "row"])
def test_adamw_matches_single_tensor_kernel_and_torch(scale):
    """Per tensor against the single-tensor kernel, per row against the
    torch-ops reference (test_functional.adamw_ref)."""
    model = model3(scale)
    opt = dqt.optim.AdamW(model.parameters(), seed=7, **HYPER)
    ids = global_ids(opt)
    assert sorted(ids.values()) == [0, 2, 4]  # where nn.Linear's weights would be
    refs = [Ref(layer.weight, ids[id(layer.weight)]) for layer in quant_layers(model)]
    floats = [p for p in model.parameters() if dqt.nn.quantized_weight_of(p) is None]
    twins = [FloatRef(p) for p in floats]
    total_changed = 0
    for t in range(1, 5):
        opt.zero_grad()
        backward(model, t)
        grads = [layer.weight.grad.clone() for layer in quant_layers(model)]
        if t == 3:  # non-finite float gradients: masked, no NaN reaches a weight
            floats[0].grad[1] = float("nan")
            floats[1].grad[0] = float("inf")
        for p, twin in zip(floats, twins):
            twin.adamw(p.grad.clone(), t, **HYPER)
        stats = opt.step()
        assert [s.tensor_id for s in stats] == [0, 2, 4]
        for layer, ref, g, s in zip(quant_layers(model), refs, grads, stats):
            r = ref.adamw(g, t, seed=7, **HYPER)
            assert ref.matches(layer.weight)
            assert (s.max_q, s.changed, s.nonfinite) == r
            st = opt.state[layer.weight]
            assert int(st["step"]) == t
            assert torch.equal(st["exp_avg"].flatten(), ref.m)
            assert torch.equal(st["exp_avg_sq"].flatten(), ref.v)
            total_changed += s.changed
        for p, twin in zip(floats, twins):
            assert torch.equal(p.detach(), twin.w) and p.isfinite().all()
            assert torch.equal(opt.state[p]["exp_avg"], twin.m)
            assert torch.equal(opt.state[p]["exp_avg_sq"], twin.v)
    assert total_changed > 0


@pytest.mark.parametrize("scale", ["tensor", "row"])
def test_sgd_matches_reference_and_torch_with_decoupled_decay(scale):
    model = model3(scale)
    hyper = dict(lr=0.02, momentum=0.8, weight_decay=0.1)
    opt = dqt.optim.SGD(model.parameters(), seed=3, **hyper)
    ids = global_ids(opt)
    refs = [Ref(layer.weight, ids[id(layer.weight)]) for layer in quant_layers(model)]
    floats = [p for p in model.parameters() if dqt.nn.quantized_weight_of(p) is None]
    twins = [FloatRef(p) for p in floats]
    total = 0
    for t in range(1, 4):
        opt.zero_grad()
        backward(model, 10 + t)
        grads = [layer.weight.grad.clone() for layer in quant_layers(model)]
        for p, twin in zip(floats, twins):
            twin.sgd(p.grad.clone(), **hyper)
        stats = opt.step()
        for layer, ref, g, s in zip(quant_layers(model), refs, grads, stats):
            changed = ref.sgd(g, t, seed=3, **hyper)
            assert ref.matches(layer.weight)
            assert (s.changed, s.max_q) == (changed, int(ref.q.max()))
            assert torch.equal(opt.state[layer.weight]["momentum_buffer"].flatten(), ref.m)
            total += changed
        for p, twin in zip(floats, twins):
            assert torch.equal(p.detach(), twin.w)
            assert torch.equal(opt.state[p]["momentum_buffer"], twin.m)
    assert total > 0


def test_tensor_ids_are_global_across_groups():
    w = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    a = dqt.QuantizedWeight.from_float(w, 8)
    b = dqt.QuantizedWeight.from_float(w, 8)
    bias = torch.zeros(3, requires_grad=True)
    g = torch.randn(64, 64, generator=torch.Generator().manual_seed(1))
    a.grad, b.grad = g.clone(), g.clone()
    opt = dqt.optim.AdamW([{"params": [a, bias]}, {"params": [b]}], lr=1e-3, seed=5)
    ra, rb = Ref(a, 0), Ref(b, 2)
    stats = opt.step()
    assert [s.tensor_id for s in stats] == [0, 2]
    ra.adamw(g, 1, 1e-3, (0.9, 0.999), 1e-6, 0.01, 5)
    rb.adamw(g, 1, 1e-3, (0.9, 0.999), 1e-6, 0.01, 5)
    assert torch.equal(a.q.flatten(), ra.q) and torch.equal(b.q.flatten(), rb.q)
    # Same weight, same gradient, different stream: different rounding.
    assert not torch.equal(a.q, b.q)


def test_param_groups_and_lr_schedule_without_recompiling():
    model = model3()
    layers = quant_layers(model)
    groups = [{"params": list(layers[0].parameters()), "lr": 0.02},
              {"params": list(layers[1].parameters()) + list(layers[2].parameters()),
               "weight_decay": 0.0}]
    opt = dqt.optim.AdamW(groups, lr=0.005, betas=(0.9, 0.999), seed=1)
    assert [g["lr"] for g in opt.param_groups] == [0.02, 0.005]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1 + step))
    ids = global_ids(opt)
    refs = [Ref(layer.weight, ids[id(layer.weight)]) for layer in layers]
    seen = None
    for t in range(1, 5):
        lrs = [g["lr"] for g in opt.param_groups]
        assert lrs == pytest.approx([0.02 / t, 0.005 / t])
        opt.zero_grad()
        backward(model, 20 + t)
        grads = [layer.weight.grad.clone() for layer in layers]
        opt.step()
        sched.step()
        for i, (layer, ref, g) in enumerate(zip(layers, refs, grads)):
            ref.adamw(g, t, lrs[min(i, 1)], (0.9, 0.999), 1e-6, [0.01, 0.0][min(i, 1)], 1)
            assert torch.equal(layer.weight.q.flatten(), ref.q)
        stats = dqt._C.kernel_cache_stats()
        counts = (stats["compiled"], stats["loaded"])
        if seen is not None:
            assert counts == seen  # new lr, same kernels
        seen = counts
    # Betas changed in a group are applied too (still no new kernel).
    opt.param_groups[1]["betas"] = (0.5, 0.9)
    opt.zero_grad()
    backward(model, 99)
    grads = [layer.weight.grad.clone() for layer in layers]
    lr1 = opt.param_groups[1]["lr"]
    opt.step()
    refs[1].adamw(grads[1], 5, lr1, (0.5, 0.9), 1e-6, 0.0, 1)
    assert torch.equal(layers[1].weight.q.flatten(), refs[1].q)
    stats = dqt._C.kernel_cache_stats()
    assert (stats["compiled"], stats["loaded"]) == seen


def test_zero_grad():
    model = model3()
    opt = dqt.optim.AdamW(model.parameters())
    backward(model, 0)
    layers = quant_layers(model)
    assert all(layer.weight.grad is not None for layer in layers)
    opt.zero_grad(set_to_none=False)
    assert all(torch.count_nonzero(layer.weight.grad) == 0 for layer in layers)
    assert all(torch.count_nonzero(layer.bias.grad) == 0 for layer in layers[:2])
    backward(model, 0)
    opt.zero_grad()
    assert all(layer.weight.grad is None for layer in layers)
    assert all(layer.bias.grad is None for layer in layers[:2])


def snapshot(model, opt):
    out = {}
    for k, v in model.state_dict().items():
        out["model." + k] = v.clone()
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out[f"opt.{i}.{k}"] = v.clone()
    return out


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and \
        torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8))


def round_trip(make):
    """Trains `make(0)` 6 steps, and `make(0)` 3 steps, saves model and
    optimizer with torch.save, loads them into `make(1)` (other initial
    weights: everything must come from the file) and trains it 3 more;
    asserts that both end bit for bit the same. `make(seed)` returns
    (model over 10 tokens, optimizer); group 0's lr follows a schedule.
    Returns the continued model and optimizer and both snapshots."""
    tokens = torch.randint(0, 10, (4, 6), generator=torch.Generator().manual_seed(0))

    def train(model, opt, steps, first):
        for t in range(first, first + steps):
            opt.zero_grad()
            logits = model(tokens)
            torch.nn.functional.cross_entropy(logits.reshape(-1, 10),
                                              tokens.roll(1).reshape(-1)).backward()
            opt.param_groups[0]["lr"] = 0.01 / t  # a schedule travels in param_groups
            opt.step()

    a, opt_a = make(0)
    train(a, opt_a, 6, 1)
    b, opt_b = make(0)
    train(b, opt_b, 3, 1)
    buf = io.BytesIO()
    torch.save({"model": b.state_dict(), "opt": opt_b.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf)
    c, opt_c = make(1)
    assert not torch.equal(c[1].weight.q, b[1].weight.q)
    c.load_state_dict(saved["model"])
    opt_c.load_state_dict(saved["opt"])
    train(c, opt_c, 3, 4)
    sa, sc = snapshot(a, opt_a), snapshot(c, opt_c)
    assert sa.keys() == sc.keys()
    for k in sa:
        assert same_bits(sa[k], sc[k]), k
    return c, opt_c, sa


@pytest.mark.parametrize("state_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kind", ["AdamW", "SGD"])
def test_state_dict_round_trip_continues_bit_exactly(kind, state_dtype):
    def make(seed):
        torch.manual_seed(seed)
        model = torch.nn.Sequential(
            torch.nn.Embedding(10, 12), dqt.nn.QuantLinear(12, 16, bits=4),
            torch.nn.LayerNorm(16), dqt.nn.QuantLinear(16, 10, bits=8))
        cls = getattr(dqt.optim, kind)
        groups = [{"params": list(model[:2].parameters())},
                  {"params": list(model[2:].parameters()), "lr": 0.003, "seed": 99}]
        return model, cls(groups, lr=0.01, seed=17, state_dtype=state_dtype)

    c, opt_c, _ = round_trip(make)
    assert opt_c.param_groups[1]["seed"] == 99
    assert int(opt_c.state[c[3].weight]["step"]) == 6
    # The quantized weights' states have the chosen dtype, the float ones f32.
    key = "exp_avg" if kind == "AdamW" else "momentum_buffer"
    assert opt_c.state[c[3].weight][key].dtype == state_dtype
    assert opt_c.state[c[0].weight][key].dtype == torch.float32


@pytest.mark.parametrize("kind", ["AdamW", "SGD"])
def test_bf16_states_train_and_convert_f32_state_dicts(kind):
    cls = getattr(dqt.optim, kind)
    model = model3()
    opt = cls(model.parameters(), lr=0.01, state_dtype=torch.bfloat16)
    first = None
    for _ in range(30):
        opt.zero_grad()
        loss = backward(model, 0)
        first = loss if first is None else first
        opt.step()
    assert backward(model, 0) < 0.7 * first
    quantized = [dqt.nn.quantized_weight_of(p) for p in model.parameters()]
    assert any(w is not None for w in quantized)
    for p in model.parameters():
        if dqt.nn.quantized_weight_of(p) is not None:
            for v in opt.state[p].values():
                if torch.is_tensor(v) and v.dim() > 0:
                    assert v.dtype == torch.bfloat16
    # An f32 optimizer's state_dict loads into a bf16 one as torch.optim
    # casts state on load: the states are converted to the live dtype.
    m2 = model3()
    o32 = cls(m2.parameters(), lr=0.01)
    o32.zero_grad()
    backward(m2, 0)
    o32.step()
    saved = o32.state_dict()
    opt.load_state_dict(saved)
    for i, p in enumerate(model.parameters()):
        if dqt.nn.quantized_weight_of(p) is None:
            continue
        for key, v in opt.state[p].items():
            if torch.is_tensor(v) and v.dim() > 0:
                assert v.dtype == torch.bfloat16
                assert torch.equal(v, saved["state"][i][key].to(torch.bfloat16)), key
    with pytest.raises(ValueError, match="state_dtype"):
        cls(model.parameters(), state_dtype=torch.float16)


def test_load_state_dict_refuses_mismatches_and_changes_nothing():
    model = model3()
    opt = dqt.optim.AdamW(model.parameters())
    backward(model, 1)
    opt.step()
    sd = opt.state_dict()
    other = torch.nn.Sequential(dqt.nn.QuantLinear(12, 16, bits=8),
                                dqt.nn.QuantLinear(16, 9, bits=4),
                                dqt.nn.QuantLinear(8, 4, bits=1.58, bias=False))
    opt2 = dqt.optim.AdamW(other.parameters())
    before = snapshot(other, opt2)
    with pytest.raises(ValueError, match="must be a tensor of shape"):
        opt2.load_state_dict(sd)
    after = snapshot(other, opt2)
    assert before.keys() == after.keys()
    assert all(same_bits(before[k], after[k]) for k in before)
    with pytest.raises(ValueError, match="param groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})


@pytest.mark.parametrize("numerics", [None, "1", "3"])
def test_state_dict_of_another_numerics_contract_is_refused(numerics):
    # A v1 state (no "dqt_numerics") or another version: the random streams
    # differ, so the run could not continue bit-exactly (docs/numerics.md).
    model = model3()
    opt = dqt.optim.AdamW(model.parameters())
    backward(model, 1)
    opt.step()
    sd = opt.state_dict()
    assert sd["dqt_numerics"] == dqt._C.NUMERICS_VERSION == "2"
    if numerics is None:
        del sd["dqt_numerics"]
    else:
        sd["dqt_numerics"] = numerics
    before = snapshot(model, opt)
    with pytest.raises(ValueError, match="numerics contract"):
        opt.load_state_dict(sd)
    after = snapshot(model, opt)
    assert all(same_bits(before[k], after[k]) for k in before)


@pytest.mark.parametrize("cls,kw,message", [
    (dqt.optim.AdamW, dict(lr=-1e-3), "lr must be finite and >= 0, got -0.001"),
    (dqt.optim.AdamW, dict(lr=float("inf")), "lr must be finite"),
    (dqt.optim.AdamW, dict(betas=(1.0, 0.999)), r"betas\[0\] \(beta1\) must be in \[0, 1\), got 1.0"),
    (dqt.optim.AdamW, dict(betas=(0.9, -0.1)), r"betas\[1\] \(beta2\) must be in \[0, 1\)"),
    (dqt.optim.AdamW, dict(eps=0.0), "eps must be finite and > 0"),
    (dqt.optim.AdamW, dict(weight_decay=-1.0), "weight_decay must be finite and >= 0"),
    (dqt.optim.AdamW, dict(seed=-1), r"seed must be in \[0, 2\*\*64\)"),
    (dqt.optim.SGD, dict(momentum=1.0), r"momentum must be in \[0, 1\)"),
    (dqt.optim.SGD, dict(lr=-0.5), "lr must be finite and >= 0"),
])
def test_bad_hyperparameters_raise_value_error(cls, kw, message):
    with pytest.raises(ValueError, match=message):
        cls(model3().parameters(), **kw)


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="betas must be a pair"):
        dqt.optim.AdamW(model3().parameters(), betas=0.9)
    with pytest.raises(TypeError, match="seed must be an int"):
        dqt.optim.AdamW(model3().parameters(), seed=1.5)
    with pytest.raises(TypeError, match="can only optimize tensors"):
        dqt.optim.SGD(["not a tensor"])


def test_bad_group_value_at_step_changes_nothing():
    model = model3()
    opt = dqt.optim.AdamW(model.parameters(), lr=0.01)
    backward(model, 2)
    opt.param_groups[0]["lr"] = -0.1
    qs = [layer.weight.q.clone() for layer in quant_layers(model)]
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['lr'\] must be finite and >= 0"):
        opt.step()
    assert all(torch.equal(q, layer.weight.q) for q, layer in zip(qs, quant_layers(model)))
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['betas'\]\[0\] \(beta1\)"):
        opt.add_param_group({"params": [torch.zeros(2, requires_grad=True)], "betas": (2, 0.5)})


def test_parameters_without_gradient_are_skipped():
    model = model3()
    layers = quant_layers(model)
    opt = dqt.optim.AdamW(model.parameters(), lr=0.05)
    layers[0](torch.randn(2, 12)).sum().backward()  # only the first layer has a gradient
    before = [p.detach().clone() for p in model.parameters()]
    stats = opt.step()
    assert [s.tensor_id for s in stats] == [0]
    after = [p.detach() for p in model.parameters()]
    assert [not torch.equal(a, b) for a, b in zip(before, after)] == \
        [True, True, False, False, False]
    # A group whose parameters have no gradient at all is skipped.
    frozen = dqt.optim.AdamW([{"params": [layers[1].weight]},
                              {"params": [layers[0].weight]}])
    stats = frozen.step()
    assert [s.tensor_id for s in stats] == [1]
    assert int(frozen.state[layers[0].weight]["step"]) == 1
    assert int(frozen.state[layers[1].weight]["step"]) == 0


def test_step_with_closure_returns_loss():
    model = model3()
    opt = dqt.optim.SGD(model.parameters(), lr=0.01)

    def closure():
        opt.zero_grad()
        return backward(model, 5)

    loss = opt.step(closure)
    assert isinstance(loss, float) and loss > 0
    assert [s.tensor_id for s in opt.last_stats] == [0, 2, 4]


@pytest.mark.parametrize("make", [
    lambda ps: dqt.optim.AdamW(ps, lr=0.05),
    lambda ps: dqt.optim.SGD(ps, lr=0.05),
    lambda ps: dqt.optim.Adafactor(ps, lr=0.05, beta1=0.9)])
def test_nonfinite_float_gradients_reach_no_weight(make):
    model = model3()
    opt = make(model.parameters())
    backward(model, 1)
    bias = model[0].bias
    before = bias.detach().clone()
    bias.grad[:4] = float("nan")
    bias.grad[4] = float("inf")
    opt.step()
    assert bias.isfinite().all()
    assert torch.equal(bias.detach()[:5], before[:5])  # masked elements kept
    assert not torch.equal(bias.detach()[5:], before[5:])
    assert all(t.isfinite().all() for k, t in opt.state[bias].items() if k != "step")


def test_float_only_groups_and_refused_dtypes():
    # The usual "no decay" split: biases in a group of their own, stepped by
    # the float-mode kernel (a C++ optimizer without integer weights).
    model = model3()
    quant = [p for p in model.parameters() if isinstance(p, dqt.QuantizedTensor)]
    biases = [p for p in model.parameters() if not isinstance(p, dqt.QuantizedTensor)]
    opt = dqt.optim.AdamW([{"params": quant}, {"params": biases, "weight_decay": 0.0}],
                          **{k: v for k, v in HYPER.items() if k != "weight_decay"})
    twins = [FloatRef(p) for p in biases]
    for t in range(1, 3):
        opt.zero_grad()
        backward(model, t)
        for p, twin in zip(biases, twins):
            twin.adamw(p.grad.clone(), t, HYPER["lr"], HYPER["betas"], HYPER["eps"], 0.0)
        opt.step()
        for p, twin in zip(biases, twins):
            assert torch.equal(p.detach(), twin.w)
    with pytest.raises(TypeError, match=r"param_groups\[0\]\['params'\]\[0\] is a "
                                        r"torch.bfloat16 tensor.*contiguous float32"):
        dqt.optim.AdamW([torch.zeros(3, dtype=torch.bfloat16, requires_grad=True)])
