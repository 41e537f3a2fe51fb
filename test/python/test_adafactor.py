"""dqt.optim.Adafactor: quantized weights bit-identical to an independent
torch-ops reference of docs/numerics.md's Adafactor (ordered double sums,
f32 element math, the SGD kernel's rounding); float parameters equal to
transformers' Adafactor up to rounding; LR schedules, state_dict round trips, non-finite
gradients, a falling loss and bad input."""
import math

import pytest
import torch

import dqt
from test_optim import Ref, f32, round_trip, same_bits, snapshot


def row_sums_in_order(x):
    """Row sums of a [R, C] double tensor, each summed in column order."""
    acc = torch.zeros(x.shape[0], dtype=torch.float64)
    for j in range(x.shape[1]):
        acc = acc + x[:, j]
    return acc


def col_sums_in_order(x):
    acc = torch.zeros(x.shape[1], dtype=torch.float64)
    for i in range(x.shape[0]):
        acc = acc + x[i]
    return acc


def sum_in_order(x):
    s = 0.0
    for v in x.double().flatten().tolist():
        s += v
    return s


def sqrt_ieee(x):
    """The correctly rounded f32 square root (ATen's f32 sqrt may not be)."""
    return x.double().sqrt().float()


def full(x, value):
    """A full-size divisor: ATen divides by a scalar as a multiplication by
    its reciprocal, which rounds differently."""
    return torch.full_like(x, value)


class AdafactorRef:
    """One quantized weight under docs/numerics.md's Adafactor: kernel 1
    here, kernel 2 (the SGD kernel) by test_optim's SGD reference."""

    def __init__(self, w, tensor_id, beta1):
        self.shape = tuple(w.shape)
        self.factored = len(self.shape) == 2
        self.states = ([torch.zeros(self.shape[0]), torch.zeros(self.shape[1])]
                       if self.factored else [torch.zeros(self.shape)])
        self.beta1 = beta1
        self.sgd = Ref(w, tensor_id)  # its m is the first moment (1-D)

    q = property(lambda self: self.sgd.q.view(self.shape))
    m = property(lambda self: self.sgd.m.view(self.shape))

    def step(self, g, t, *, lr, beta1, decay_rate, eps1, clip_threshold,
             weight_decay, seed):
        finite = g.isfinite()
        gd = g.double()
        g2 = torch.where(finite, gd * gd + eps1, 0.0)
        b = 1.0 - float(t) ** decay_rate
        w = 1.0 - b
        if self.factored:
            R, C = g.shape
            row = row_sums_in_order(g2)
            col = col_sums_in_order(g2)
            r = (self.states[0].double() * b + (row / full(row, float(C))) * w).float()
            c = (self.states[1].double() * b + (col / full(col, float(R))) * w).float()
            self.states = [r, c]
            rmean = f32(sum_in_order(r) / R)
            rn = r / full(r, float(rmean))
            u = torch.where(finite, g / sqrt_ieee(rn[:, None] * c[None, :]), f32(math.nan))
            u2 = torch.where(u.isfinite(), u.double() * u.double(), 0.0)
            sumsq = sum_in_order(row_sums_in_order(u2))
        else:
            v = torch.where(finite, (self.states[0].double() * b + g2 * w).float(),
                            self.states[0])
            self.states = [v]
            u = torch.where(finite, g / sqrt_ieee(v), f32(math.nan))
            u2 = torch.where(u.isfinite(), u.double() * u.double(), 0.0).flatten()
            blocks = (u2.numel() + 1023) // 1024
            u2 = torch.cat([u2, torch.zeros(blocks * 1024 - u2.numel(), dtype=torch.float64)])
            sumsq = sum_in_order(row_sums_in_order(u2.view(blocks, 1024)))
        rms = math.sqrt(sumsq / g.numel())
        clip = float(f32(max(1.0, rms / clip_threshold)))
        ut = (u / full(u, clip)) * (f32(1.0) - f32(beta1))

        # The generated SGD kernel: momentum beta1, "gradient" ut; without a
        # first moment ut is also the momentum buffer (0 * ut + ut).
        if self.beta1 == 0:
            self.sgd.m = ut.flatten().clone()
        changed = self.sgd.sgd(ut, t, lr, beta1, weight_decay, seed)
        return (int(self.sgd.q.max()), changed, int((~ut.isfinite()).sum()))


def random_grad(shape, seed, nonfinite_every=0):
    """Magnitudes over five decades; every `nonfinite_every`-th element from
    index 5 NaN, +inf or -inf."""
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(shape, generator=gen) * 10 ** (torch.rand(shape, generator=gen) * 5 - 4)
    if nonfinite_every:
        flat = g.view(-1)
        for i in range(5, flat.numel(), nonfinite_every):
            flat[i] = math.nan if i % 3 == 0 else (math.inf if i & 1 else -math.inf)
    return g


def state_names(w, beta1):
    names = (["exp_avg_sq_row", "exp_avg_sq_col"] if len(w.shape) == 2 else ["exp_avg_sq"])
    return names + (["exp_avg"] if beta1 > 0 else [])


@pytest.mark.parametrize("scale", ["tensor", "row"])
@pytest.mark.parametrize("bits", [1.58, 8])
@pytest.mark.parametrize("beta1", [0.0, 0.9])
def test_quantized_weights_match_reference(bits, beta1, scale):
    """Factored, 1-D (two RMS blocks) and 3-D weights in param groups around
    a float one (global tensor ids 0, 2, 3), an LR schedule, non-finite gradients at
    step 2 and a binding clip at step 3: weights, scales, states and
    statistics bit for bit. With scale="row" the 2-D and 3-D weights have
    a delta per row (the 1-D one keeps one: per-row and per-tensor weights
    in one group)."""
    gen = torch.Generator().manual_seed(3)
    init = [torch.randn(37, 23, generator=gen), torch.randn(1500, generator=gen) * 0.1,
            torch.randn(3, 4, 5, generator=gen)]
    ws = [dqt.QuantizedWeight.from_float(x, bits, scale=scale if x.dim() > 1 else "tensor")
          for x in init]
    bias = torch.zeros(4, requires_grad=True)  # float, index 1: no gradient, skipped
    hyper = dict(decay_rate=-0.8, eps1=1e-30, clip_threshold=1.0, weight_decay=0.1)
    lr0 = 0.2 if bits < 2 else 0.02  # large, so that many weights move
    opt = dqt.optim.Adafactor([{"params": [ws[0]]},
                               {"params": [bias], "beta1": 0.0},
                               {"params": ws[1:], "seed": 11}],
                              lr=lr0, beta1=beta1, seed=5, **hyper)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    refs = [AdafactorRef(w, tid, beta1) for w, tid in zip(ws, [0, 2, 3])]
    seeds = [5, 11, 11]
    handles = [dqt.QuantizedTensor.of(w) for w in ws]
    changed, nonfinite, kernels = 0, 0, None
    for t in range(1, 4):
        for p, (w, x) in enumerate(zip(ws, init)):
            w.grad = random_grad(x.shape, 10 * t + p, 97 if t == 2 else 0)
        grads = [w.grad.clone() for w in ws]
        if t == 3:
            for i in (0, 2):
                opt.param_groups[i]["clip_threshold"] = 0.5
            hyper["clip_threshold"] = 0.5
        stats = opt.step()
        sched.step()
        assert [s.tensor_id for s in stats] == [0, 2, 3]
        for w, ref, g, s, h, seed in zip(ws, refs, grads, stats, handles, seeds):
            want = ref.step(g, t, lr=lr0 / t, beta1=beta1, seed=seed, **hyper)
            assert (s.max_q, s.changed, s.nonfinite) == want
            assert ref.sgd.matches(w)
            st = opt.state[h]
            assert int(st["step"]) == t
            assert list(st) == ["step"] + state_names(w, beta1)
            live = [st[k] for k in state_names(w, beta1)]
            for got, expect in zip(live, ref.states + ([ref.m] if beta1 > 0 else [])):
                assert same_bits(got, expect)
            changed += s.changed
            nonfinite += s.nonfinite
        cache = dqt._C.kernel_cache_stats()
        counts = (cache["compiled"], cache["loaded"])
        assert kernels is None or counts == kernels  # a new lr is no new kernel
        kernels = counts
    assert changed > 0
    assert nonfinite == sum((x.numel() - 5 + 96) // 97 for x in init)


def test_nonfinite_gradients_are_counted_and_not_applied():
    gen = torch.Generator().manual_seed(1)
    w = dqt.QuantizedWeight.from_float(torch.randn(600, generator=gen), 4)
    opt = dqt.optim.Adafactor([w], lr=0.5, seed=2)
    w.grad = random_grad((600,), 1)
    opt.step()
    h = dqt.QuantizedTensor.of(w)
    q0, v0 = w.q.clone(), opt.state[h]["exp_avg_sq"].clone()
    g = random_grad((600,), 2)
    bad = torch.tensor([0, 7, 100, 599])
    g[bad] = torch.tensor([math.nan, math.inf, -math.inf, math.nan])
    w.grad = g
    (s,) = opt.step()
    assert s.nonfinite == 4
    assert torch.equal(w.q[bad], q0[bad])
    assert same_bits(opt.state[h]["exp_avg_sq"][bad], v0[bad])
    assert s.changed > 0  # the finite elements did move
    assert (w.q != q0).sum() == s.changed


@pytest.mark.parametrize("beta1", [None, 0.9])
def test_float_parameters_follow_huggingface_adafactor(beta1):
    """Float parameters (a matrix, factored, and vectors) step as
    transformers' Adafactor with a fixed lr, up to rounding: the kernel's
    order of operations is docs/numerics.md's, not HF's (weight decay 0,
    where the two orders differ by design)."""
    hf = pytest.importorskip("transformers.optimization")
    torch.manual_seed(7)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(),
                                dqt.nn.QuantLinear(8, 3, bits=4))
    floats = [p for p in model.parameters() if dqt.nn.quantized_weight_of(p) is None]
    twins = [p.detach().clone().requires_grad_(True) for p in floats]
    initial = [p.detach().clone() for p in floats]
    opt = dqt.optim.Adafactor(model.parameters(), lr=0.05, decay_rate=-0.7, beta1=beta1,
                              clip_threshold=0.5)
    ref = hf.Adafactor(twins, lr=0.05, decay_rate=-0.7, beta1=beta1, clip_threshold=0.5,
                       scale_parameter=False, relative_step=False, warmup_init=False)
    for t in range(4):
        opt.zero_grad()
        x = torch.randn(5, 6, generator=torch.Generator().manual_seed(t))
        model(x).pow(2).sum().backward()
        for p, twin in zip(floats, twins):
            twin.grad = p.grad.clone()
        opt.step()
        ref.step()
        for p, twin in zip(floats, twins):
            torch.testing.assert_close(p.detach(), twin.detach(), rtol=1e-5, atol=1e-6)
    assert all(not torch.equal(p, p0) for p, p0 in zip(floats, initial))
    assert list(opt.state[floats[0]]) == ["step", "exp_avg_sq_row", "exp_avg_sq_col"] + \
        (["exp_avg"] if beta1 else [])


def test_loss_falls_on_a_small_model():
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(),
                                  torch.nn.Linear(32, 4))
    x = torch.randn(256, 16)
    with torch.no_grad():
        y = teacher(x)
    model = dqt.convert(torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(),
                                            torch.nn.Linear(32, 4)), bits=8, skip=())
    opt = dqt.optim.Adafactor(model.parameters(), lr=0.01)
    losses = []
    for _ in range(80):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(layer.weight.grad is not None for layer in model if hasattr(layer, "weight"))
    opt.zero_grad()
    assert all(layer.weight.grad is None for layer in model if hasattr(layer, "weight"))
    assert losses[-1] < 0.5 * losses[0], losses[::10]


@pytest.mark.parametrize("state_dtype", [torch.float32, torch.bfloat16])
def test_state_dict_round_trip_continues_bit_exactly(state_dtype):
    def make(seed):
        torch.manual_seed(seed)
        model = torch.nn.Sequential(
            torch.nn.Embedding(10, 12), dqt.nn.QuantLinear(12, 16, bits=4, bias=False),
            torch.nn.LayerNorm(16), dqt.nn.QuantLinear(16, 10, bits=8, bias=False))
        groups = [{"params": [model[1].weight, model[3].weight],
                   "beta1": 0.9, "seed": 99},
                  {"params": list(model[0].parameters()) + list(model[2].parameters())}]
        return model, dqt.optim.Adafactor(groups, lr=0.01, seed=17,
                                          state_dtype=state_dtype)

    c, opt_c, sa = round_trip(make)
    assert opt_c.param_groups[0]["seed"] == 99 and opt_c.param_groups[0]["beta1"] == 0.9
    # Float parameters keep the kernel's states: the embedding [10, 12]
    # factored, the norm's vectors full.
    assert {"opt.0.exp_avg_sq_row", "opt.0.exp_avg_sq_col", "opt.0.exp_avg",
            "opt.2.exp_avg_sq_row", "opt.2.exp_avg_sq_col", "opt.3.exp_avg_sq",
            "opt.4.exp_avg_sq"} <= set(sa)
    # The first moment has the chosen dtype; the statistics stay float32.
    state = opt_c.state[c[3].weight]
    assert state["exp_avg"].dtype == state_dtype
    assert state["exp_avg_sq_row"].dtype == torch.float32


def test_bf16_first_moment_trains_like_f32():
    torch.manual_seed(0)
    x, y = torch.randn(64, 16), torch.randn(64, 4)

    def train(state_dtype):
        torch.manual_seed(1)
        model = torch.nn.Sequential(dqt.nn.QuantLinear(16, 32, bits=8, bias=False),
                                    torch.nn.ReLU(),
                                    dqt.nn.QuantLinear(32, 4, bits=8, bias=False))
        opt = dqt.optim.Adafactor(model.parameters(), lr=0.02, beta1=0.9,
                                  state_dtype=state_dtype)
        losses = []
        for _ in range(40):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return model, opt, losses

    _, _, f32 = train(torch.float32)
    model, opt, bf16 = train(torch.bfloat16)
    assert bf16[-1] < 0.8 * bf16[0], bf16[::10]
    assert bf16[-1] < 1.1 * f32[-1], (bf16[-1], f32[-1])
    m = opt.state[model[0].weight]["exp_avg"]
    assert m.dtype == torch.bfloat16 and m.shape == (32, 16)
    with pytest.raises(ValueError, match="state_dtype"):
        dqt.optim.Adafactor(model.parameters(), state_dtype=torch.float16)


def test_load_state_dict_refuses_mismatches_and_changes_nothing():
    w = dqt.QuantizedWeight.from_float(torch.randn(8, 6), 8)
    opt = dqt.optim.Adafactor([w], beta1=0.5)
    w.grad = torch.randn(8, 6)
    opt.step()
    sd = opt.state_dict()
    # Without a first moment the saved state has no exp_avg: refused.
    other = dqt.QuantizedWeight.from_float(torch.randn(8, 6), 8)
    opt2 = dqt.optim.Adafactor([other], beta1=0.5)
    no_moment = {**sd, "state": {0: {k: v for k, v in sd["state"][0].items()
                                     if k != "exp_avg"}}}
    with pytest.raises(ValueError, match=r"state 'exp_avg' of quantized parameter 0 must be "
                                         r"a tensor of shape \(8, 6\)"):
        opt2.load_state_dict(no_moment)
    wrong = {**sd, "state": {0: dict(sd["state"][0], exp_avg_sq_col=torch.zeros(5))}}
    with pytest.raises(ValueError, match=r"'exp_avg_sq_col' .* shape \(6,\)"):
        opt2.load_state_dict(wrong)
    assert opt2.state_dict()["state"][0]["step"] == 0
    assert opt2.param_groups[0]["beta1"] == 0.5


@pytest.mark.parametrize("kw,message", [
    (dict(lr=-1e-3), "lr must be finite and >= 0, got -0.001"),
    (dict(lr=math.nan), "lr must be finite and >= 0"),
    (dict(beta1=1.0), r"beta1 must be in \[0, 1\), got 1.0"),
    (dict(decay_rate=0.0), r"decay_rate must be in \[-1, 0\), got 0.0"),
    (dict(decay_rate=-1.5), r"decay_rate must be in \[-1, 0\)"),
    (dict(eps1=0.0), "eps1 must be finite and > 0, got 0.0"),
    (dict(clip_threshold=-1.0), "clip_threshold must be finite and > 0"),
    (dict(weight_decay=-0.1), "weight_decay must be finite and >= 0"),
    (dict(seed=2 ** 64), r"seed must be in \[0, 2\*\*64\)"),
])
def test_bad_hyperparameters_raise_value_error(kw, message):
    w = dqt.QuantizedWeight.from_float(torch.randn(4, 4), 8)
    with pytest.raises(ValueError, match="dqt.optim.Adafactor: " + message):
        dqt.optim.Adafactor([w], **kw)


def test_bad_types_raise_type_error():
    w = dqt.QuantizedWeight.from_float(torch.randn(4, 4), 8)
    with pytest.raises(TypeError, match="lr must be a number, got str"):
        dqt.optim.Adafactor([w], lr="0.1")
    with pytest.raises(TypeError, match="seed must be an int"):
        dqt.optim.Adafactor([w], seed=1.0)


def test_beta1_cannot_switch_on_and_changes_nothing():
    a = dqt.QuantizedWeight.from_float(torch.randn(6, 5), 8)
    b = dqt.QuantizedWeight.from_float(torch.randn(6, 5), 8)
    opt = dqt.optim.Adafactor([{"params": [a]}, {"params": [b]}], lr=0.1)
    a.grad, b.grad = torch.randn(6, 5), torch.randn(6, 5)
    opt.step()
    opt.param_groups[1]["beta1"] = 0.9
    qa, qb = a.q.clone(), b.q.clone()
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['beta1'\] cannot switch "
                                         "between 0 and > 0"):
        opt.step()
    # Group 0 came first and was not stepped either.
    assert torch.equal(a.q, qa) and torch.equal(b.q, qb)
    assert int(opt.state[dqt.QuantizedTensor.of(a)]["step"]) == 1


def test_beta1_none_means_no_first_moment():
    w = dqt.QuantizedWeight.from_float(torch.randn(5, 3), 8)
    opt = dqt.optim.Adafactor([w], beta1=None)
    w.grad = torch.randn(5, 3)
    opt.step()
    assert list(opt.state[dqt.QuantizedTensor.of(w)]) == \
        ["step", "exp_avg_sq_row", "exp_avg_sq_col"]
