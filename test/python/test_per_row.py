"""scale="row": one delta per output row (docs/numerics.md, "Per-row scale")
through dqt.QuantizedWeight, dqt.nn.QuantLinear, from_linear, dqt.convert
and dqt.optim: the row-wise initialization against torch ops, steps of
per-row and per-tensor weights in one optimizer against the torch-ops
references of test_functional/test_optim, non-finite gradients, state_dict
round trips, refusals of the other scale's checkpoints and bad input.
(The per-tensor/per-row comparisons of AdamW, SGD and Adafactor over whole
models are test_optim's and test_adafactor's tests, parametrized by scale.)"""
import io

import pytest
import torch
import torch.nn.functional as F

import dqt
from test_adafactor import random_grad
from test_convert import LAYERS, PROJ, VOCAB, LlamaForCausalLM
from test_nn import act_quant_ref, from_float_ref, ternarize_ref
from test_optim import Ref, round_trip, same_bits, snapshot


def rows_of(q, rows):
    return q.reshape(rows, -1)


def special_rows(shape, seed):
    """A weight whose rows span magnitudes, with an all-zero row (mean|W_r|
    below 1e-5: s_r = Qp / 1e-5) and an all-negative row (max q_r < 0)."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=gen)
    w = w * torch.logspace(-3, 1, shape[0]).view(-1, *[1] * (len(shape) - 1))
    w[1] = 0
    w[2] = -0.1 * w[2].abs() - 1
    return w


@pytest.mark.parametrize("shape", [(37, 53), (6, 3, 5), (1, 9)])
@pytest.mark.parametrize("bits", [1.58, 2, 4, 8])
def test_from_float_is_the_row_wise_initialization(bits, shape):
    w = special_rows(shape, 1) if shape[0] > 2 else torch.randn(shape)
    qw = dqt.QuantizedWeight.from_float(w, bits, scale="row")
    q, delta = from_float_ref(w, bits, scale="row")
    rows = shape[0]
    assert qw.scale == "row" and qw.rows == rows and qw.shape == shape
    assert torch.equal(qw.q, q)
    assert same_bits(qw.delta_rows, delta)
    assert qw.delta_rows.dtype == torch.float32 and qw.delta_rows.shape == (rows,)
    assert torch.equal(qw.max_q_rows, rows_of(q, rows).amax(1))
    assert qw.max_q_rows.dtype == torch.int8
    assert qw.max_q == int(q.max())
    assert torch.equal(qw.dequantize(),
                       (rows_of(q, rows).float() * delta[:, None]).reshape(shape))
    assert qw.persistent_bytes == w.numel() + 5 * rows
    assert "scale='row'" in repr(qw)
    if rows > 2:
        assert int(qw.max_q_rows[2]) < 0  # the all-negative row
        assert int(qw.max_q_rows[1]) == 0  # the zero row
        # Rows of different magnitudes keep their own steps.
        assert len(set(qw.delta_rows.tolist())) > rows // 2


def test_per_row_accessors_and_copies():
    w = torch.randn(5, 7, generator=torch.Generator().manual_seed(2))
    row = dqt.QuantizedWeight.from_float(w, 4, scale="row")
    tensor = dqt.QuantizedWeight.from_float(w, 4)
    assert tensor.scale == "tensor" and tensor.rows == 1
    assert tensor.persistent_bytes == 35 + 5
    with pytest.raises(ValueError, match=r"delta: the weight has one delta per row "
                                         r"\(scale='row'\); use delta_rows"):
        row.delta
    with pytest.raises(ValueError, match=r"delta_rows: the weight has one delta per tensor "
                                         r"\(scale='tensor'\); use delta"):
        tensor.delta_rows
    with pytest.raises(ValueError, match="max_q_rows: .* use max_q"):
        tensor.max_q_rows
    # delta_rows and max_q_rows are copies: writing them changes nothing.
    d, m = row.delta_rows, row.max_q_rows
    row.delta_rows.fill_(-1.0)
    row.max_q_rows.fill_(100)
    assert same_bits(row.delta_rows, d) and torch.equal(row.max_q_rows, m)


def test_packed_ternary_per_row():
    w = special_rows((9, 13), 3)
    a = dqt.QuantizedWeight.from_float(w, 1.58, scale="row")
    p = dqt.QuantizedWeight.from_float(w, 1.58, packed=True, scale="row")
    assert p.packed and p.scale == "row"
    assert torch.equal(p.q, a.q) and same_bits(p.delta_rows, a.delta_rows)
    assert torch.equal(p.max_q_rows, a.max_q_rows)
    assert torch.equal(p.dequantize(), a.dequantize())
    assert p.persistent_bytes == (9 * 13 + 3) // 4 + 5 * 9
    assert "packed=True, scale='row'" in repr(p)


def test_quant_linear_from_linear_and_ternary_inference():
    torch.manual_seed(3)
    lin = torch.nn.Linear(20, 10)
    layer = dqt.nn.QuantLinear.from_linear(lin, bits=4, scale="row")
    q, delta = from_float_ref(lin.weight.detach(), 4, scale="row")
    assert layer.scale == "row" and "scale='row'" in repr(layer)
    assert torch.equal(layer.weight.q, q) and same_bits(layer.weight.delta_rows, delta)
    assert torch.equal(layer.bias, lin.bias)
    x = torch.randn(3, 20)
    w = q.float() * delta[:, None]
    assert torch.equal(layer.weight.dequantize(), w)
    assert torch.equal(layer(x), act_quant_ref(x) @ w.t() + layer.bias)
    layer.ternary_inference = True
    assert torch.equal(layer(x), act_quant_ref(x) @ ternarize_ref(w).t() + layer.bias)
    layer(x).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    # The constructor: nn.Linear's initialization, quantized row-wise.
    torch.manual_seed(4)
    lin = torch.nn.Linear(16, 8)
    torch.manual_seed(4)
    layer = dqt.nn.QuantLinear(16, 8, bits=8, scale="row")
    assert torch.equal(layer.weight.q, from_float_ref(lin.weight.detach(), 8, scale="row")[0])
    assert "scale" not in repr(dqt.nn.QuantLinear(4, 4))


@pytest.mark.parametrize("kind,hyper", [
    ("AdamW", dict(lr=0.05, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.1)),
    ("SGD", dict(lr=0.5, momentum=0.9, weight_decay=0.1)),
])
def test_nonfinite_gradients_in_a_group_of_both_scales(kind, hyper):
    """A per-row 8-bit, a per-row packed ternary and a per-tensor weight in
    one group (three kernels): several steps, NaN/+-inf gradient elements
    at steps 2 and 3 leave their integers and states untouched, are
    counted, and everything else is bit-identical to the reference."""
    ws = [dqt.QuantizedWeight.from_float(special_rows((33, 40), 5), 8, scale="row"),
          dqt.QuantizedWeight.from_float(special_rows((12, 2, 7), 6), 1.58, packed=True,
                                         scale="row"),
          dqt.QuantizedWeight.from_float(torch.randn(17, 9), 4)]
    opt = getattr(dqt.optim, kind)(ws, seed=13, **hyper)
    refs = [Ref(w, i) for i, w in enumerate(ws)]
    key = "exp_avg" if kind == "AdamW" else "momentum_buffer"
    nonfinite = 0
    for t in range(1, 5):
        for i, w in enumerate(ws):
            w.grad = random_grad(tuple(w.shape), 10 * t + i, 13 if t in (2, 3) else 0)
        grads = [w.grad.clone() for w in ws]
        before = [(w.q.clone(), opt.state[dqt.QuantizedTensor.of(w)].get(key)) for w in ws]
        before = [(q, None if st is None else st.clone()) for q, st in before]
        stats = opt.step()
        for w, ref, g, s, (q0, st0) in zip(ws, refs, grads, stats, before):
            if kind == "AdamW":
                want = ref.adamw(g, t, seed=13, **hyper)
            else:
                changed = ref.sgd(g, t, seed=13, **hyper)
                want = (int(ref.q.max()), changed, int((~g.isfinite()).sum()))
            assert (s.max_q, s.changed, s.nonfinite) == want
            assert ref.matches(w)
            st = opt.state[dqt.QuantizedTensor.of(w)]
            assert same_bits(st[key].flatten(), ref.m)
            bad = ~g.isfinite()
            assert s.nonfinite == int(bad.sum())
            if bad.any():
                assert torch.equal(w.q[bad], q0[bad])
                if st0 is not None:
                    assert same_bits(st[key][bad], st0[bad])
            assert st[key].isfinite().all()
            nonfinite += s.nonfinite
    assert nonfinite > 0
    assert all(w.scale == s for w, s in zip(ws, ["row", "row", "tensor"]))


def row_model(seed, scale="row"):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Embedding(10, 12), dqt.nn.QuantLinear(12, 16, bits=4, scale=scale),
        torch.nn.LayerNorm(16), dqt.nn.QuantLinear(16, 10, bits=1.58, packed=True,
                                                   scale=scale))


@pytest.mark.parametrize("kind", ["AdamW", "SGD", "Adafactor"])
def test_state_dict_round_trip_continues_bit_exactly(kind):
    def make(seed):
        model = row_model(seed)
        cls = getattr(dqt.optim, kind)
        return model, cls(model.parameters(), lr=0.01, seed=17)

    c, opt_c, sa = round_trip(make)
    assert sa["model.1.weight_delta"].shape == (16,)
    assert sa["model.1.weight_max_q"].dtype == torch.int8
    assert sa["model.3.weight_delta"].shape == (10,)
    assert c[1].scale == c[3].scale == "row"


def test_model_state_dict_of_the_other_scale_is_refused_and_changes_nothing():
    gen = torch.Generator().manual_seed(0)
    data = [torch.randint(0, 10, (4, 6), generator=gen) for _ in range(2)]
    trained = {}
    for scale in ("tensor", "row"):
        m = row_model(1, scale)
        opt = dqt.optim.AdamW(m.parameters(), lr=0.05)
        for ids in data:
            opt.zero_grad()
            m(ids).sum().backward()
            opt.step()
        trained[scale] = m.state_dict()
    assert trained["row"]["1.weight_delta"].dim() == 1
    assert trained["tensor"]["1.weight_delta"].dim() == 0
    for saved, live in (("tensor", "row"), ("row", "tensor")):
        m = row_model(2, live)
        before = {k: v.clone() for k, v in m.state_dict().items()}
        with pytest.raises(RuntimeError, match=rf"1.weight: saved with scale='{saved}' "
                                               rf".* the layer has scale='{live}'"):
            m.load_state_dict(trained[saved])
        after = m.state_dict()
        for k in ("1.weight_q", "1.weight_delta", "1.weight_max_q", "1.bias",
                  "3.weight_q", "3.weight_delta", "3.bias"):
            assert same_bits(before[k], after[k]), k
    # The same scale loads, bit for bit.
    m = row_model(2)
    m.load_state_dict(trained["row"])
    assert all(same_bits(v, trained["row"][k]) for k, v in m.state_dict().items())


@pytest.mark.parametrize("change,message", [
    (dict(weight_delta=torch.ones(5)), r"the per-row deltas must be Float\[16\], got Float\[5\]"),
    (dict(weight_delta=torch.ones(16, dtype=torch.float64)), "the per-row deltas must be Float"),
    (dict(weight_delta=torch.full((16,), -1.0)), "every row's delta must be finite and > 0"),
    (dict(weight_delta=torch.full((16,), float("inf"))), "finite and > 0"),
    (dict(weight_max_q=torch.full((16,), 9, dtype=torch.int8)),
     r"every row's max q must be in the 4-bit grid \[-8, 7\]"),
    (dict(weight_max_q=torch.zeros(16, dtype=torch.int32)), r"the per-row max q must be Char\[16\]"),
    (dict(weight_delta=torch.ones(2, 8)), "weight_delta must be 0-dim .* or 1-D"),
])
def test_bad_per_row_checkpoint_entries_change_nothing(change, message):
    layer = dqt.nn.QuantLinear(12, 16, bits=4, scale="row")
    sd = layer.state_dict()
    before = {k: v.clone() for k, v in sd.items()}
    with pytest.raises(RuntimeError, match=message):
        layer.load_state_dict(dict(sd, **change))
    after = layer.state_dict()
    assert all(same_bits(before[k], after[k]) for k in before)


def test_converted_llama_trains_with_per_row_scales():
    """dqt.convert(..., scale="row") on test_convert's Llama: every
    projection row-scaled (the row-wise initialization), 12 AdamW steps on
    a fixed batch with a falling loss, per-row deltas that change."""
    torch.manual_seed(0)
    model = LlamaForCausalLM()
    floats = {n: m.weight.detach().clone() for n, m in model.named_modules()
              if type(m) is torch.nn.Linear}
    dqt.convert(model, bits=4, scale="row")
    layers = {n: m for n, m in model.named_modules() if isinstance(m, dqt.nn.QuantLinear)}
    assert len(layers) == LAYERS * len(PROJ) and type(model.lm_head) is torch.nn.Linear
    for n, layer in layers.items():
        q, delta = from_float_ref(floats[n], 4, scale="row")
        assert layer.scale == "row"
        assert torch.equal(layer.weight.q, q) and same_bits(layer.weight.delta_rows, delta)
    deltas0 = {n: layer.weight.delta_rows for n, layer in layers.items()}
    opt = dqt.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0, seed=42)
    ids = torch.randint(0, VOCAB, (4, 13), generator=torch.Generator().manual_seed(1))
    inputs, targets = ids[:, :-1], ids[:, 1:]
    losses = []
    for _ in range(12):
        opt.zero_grad()
        loss = F.cross_entropy(model(inputs).reshape(-1, VOCAB), targets.reshape(-1))
        loss.backward()
        stats = opt.step()
        assert len(stats) == len(layers) and all(s.nonfinite == 0 for s in stats)
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    assert any(not same_bits(layer.weight.delta_rows, deltas0[n]) for n, layer in layers.items())


def test_bad_scale_is_refused():
    w = torch.randn(4, 4)
    for make in (lambda s: dqt.QuantizedWeight.from_float(w, 8, scale=s),
                 lambda s: dqt.nn.QuantLinear(4, 4, scale=s),
                 lambda s: dqt.nn.QuantLinear.from_linear(torch.nn.Linear(4, 4), scale=s)):
        with pytest.raises(ValueError, match="scale must be 'tensor' or 'row', got 'bogus'"):
            make("bogus")
        with pytest.raises(TypeError, match=r"scale must be a str \('tensor' or 'row'\), got int"):
            make(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    with pytest.raises(ValueError, match="dqt.convert: scale must be 'tensor' or 'row'"):
        dqt.convert(model, scale="rows", skip=())
    assert type(model[0]) is torch.nn.Linear  # nothing converted
    with pytest.raises(ValueError, match=r"dqt.QuantizedWeight.from_float: scale='row' .* "
                                         r"at least 2 dimensions \[out, ...\], got shape \[7\]"):
        dqt.QuantizedWeight.from_float(torch.randn(7), 8, scale="row")
    with pytest.raises(ValueError, match="scale must be 'tensor' or 'row'"):
        dqt.QuantizedWeight.from_float(w, 8, scale="Row")
