"""scale_rule="absmax" (docs/numerics.md, "Scale rules") through
dqt.QuantizedWeight, dqt.nn.QuantLinear, from_linear, dqt.convert and
dqt.optim: the absmax initialization against torch ops, the next delta taken
from the kept max|w| (so the grid can grow), state_dict round trips,
refusals of the other rule's checkpoints and bad input. (The kernels' bits
against the reference are the C++ tests' step-absmax and gpu-emulated.)"""
import pytest
import torch

import dqt
from test_optim import round_trip, same_bits


def absmax_init_ref(w, bits, rows):
    """s = Qp / max(max|W_r|, 1e-5) in f32, q = clamp(round_half_even(W*s))."""
    qp = 2 ** (int(bits) - 1) - 1
    a = w.reshape(rows, -1).abs().amax(1)
    s = (torch.tensor(float(qp), dtype=torch.float64)
         / torch.clamp(a.double(), min=1e-5)).float()
    q = torch.clamp(torch.round(w.reshape(rows, -1) * s[:, None]), -qp - 1, qp)
    return q.to(torch.int8).reshape(w.shape), (1 / s), a


@pytest.mark.parametrize("scale", ["tensor", "row"])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_from_float_maps_max_abs_to_qp(bits, scale):
    gen = torch.Generator().manual_seed(bits)
    w = torch.randn(9, 17, generator=gen) * torch.logspace(-2, 0, 9)[:, None]
    qw = dqt.QuantizedWeight.from_float(w, bits, scale=scale, scale_rule="absmax")
    rows = 9 if scale == "row" else 1
    q, delta, a = absmax_init_ref(w, bits, rows)
    assert qw.scale_rule == "absmax"
    assert torch.equal(qw.q, q)
    assert same_bits(qw.abs_max, a)
    got = qw.delta_rows if scale == "row" else torch.tensor([qw.delta])
    assert same_bits(got, delta.float())
    # No weight saturates: every row's largest magnitude lands on +-Qp.
    assert int(qw.q.reshape(rows, -1).abs().amax(1).min()) == qw.qp
    assert qw.persistent_bytes == w.numel() + 9 * rows
    assert "scale_rule='absmax'" in repr(qw)
    paper = dqt.QuantizedWeight.from_float(w, bits, scale=scale)
    assert paper.scale_rule == "maxq" and paper.abs_max is None


@pytest.mark.parametrize("scale", ["tensor", "row"])
def test_each_step_takes_the_next_delta_from_the_kept_max_abs(scale):
    torch.manual_seed(3)
    layer = dqt.nn.QuantLinear(24, 12, bits=4, scale=scale, scale_rule="absmax")
    opt = dqt.optim.AdamW(layer.parameters(), lr=0.02, weight_decay=0.0)
    w = layer.weight
    qp = torch.full((w.rows,), float(w.qp))
    grew = False
    for _ in range(6):
        a = w.abs_max
        before = w.delta_rows if scale == "row" else torch.tensor([w.delta])
        opt.zero_grad()
        # A gradient that pushes every weight outward: max|w| grows.
        w.grad = -w.dequantize().sign() - 0.1
        opt.step()
        after = w.delta_rows if scale == "row" else torch.tensor([w.delta])
        want = torch.where(a > 0, a / qp, before)
        assert same_bits(after, want)
        grew = grew or bool((after > before).any())
    assert grew  # the paper's rule can only keep or shrink delta


def model(seed, scale="tensor", rule="absmax"):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Embedding(10, 12),
        dqt.nn.QuantLinear(12, 16, bits=4, scale=scale, scale_rule=rule),
        torch.nn.LayerNorm(16),
        dqt.nn.QuantLinear(16, 10, bits=8, scale=scale, scale_rule=rule))


@pytest.mark.parametrize("scale", ["tensor", "row"])
def test_state_dict_round_trip_continues_bit_exactly(scale):
    def make(seed):
        m = model(seed, scale)
        return m, dqt.optim.AdamW(m.parameters(), lr=0.01, seed=17)

    c, _, sa = round_trip(make)
    assert c[1].scale_rule == c[3].scale_rule == "absmax"
    assert sa["model.1.weight_abs_max"].shape == sa["model.1.weight_delta"].shape
    assert sa["model.1.weight_abs_max"].dtype == torch.float32


def test_checkpoints_of_the_other_rule_are_refused_and_change_nothing():
    trained = {}
    for rule in ("maxq", "absmax"):
        m = model(1, rule=rule)
        opt = dqt.optim.AdamW(m.parameters(), lr=0.05)
        opt.zero_grad()
        m(torch.randint(0, 10, (4, 6))).sum().backward()
        opt.step()
        trained[rule] = m.state_dict()
    assert "1.weight_abs_max" in trained["absmax"]
    assert "1.weight_abs_max" not in trained["maxq"]
    for saved, here in (("maxq", "absmax"), ("absmax", "maxq")):
        m = model(2, rule=here)
        before = {k: v.clone() for k, v in m.state_dict().items()}
        with pytest.raises(RuntimeError, match=rf"1.weight: saved with scale_rule="
                           rf"'{saved}', the layer has scale_rule='{here}'"):
            m.load_state_dict(trained[saved])
        after = m.state_dict()
        assert all(same_bits(before[k], after[k]) for k in ("1.weight_q", "1.bias"))
    bad = dict(trained["absmax"])
    bad["3.weight_abs_max"] = torch.tensor(-1.0)
    m = model(2)
    with pytest.raises(RuntimeError, match="weight_abs_max must be >= 0 and not NaN"):
        m.load_state_dict(bad)
    missing = {k: v for k, v in trained["absmax"].items() if k != "3.weight_abs_max"}
    # Without the entry the checkpoint reads as the paper's rule.
    with pytest.raises(RuntimeError, match="3.weight: saved with scale_rule='maxq'"):
        m.load_state_dict(missing)
    m.load_state_dict(trained["absmax"])
    assert same_bits(m[3].weight.abs_max.reshape(()), trained["absmax"]["3.weight_abs_max"])


def test_convert_and_from_linear_pass_the_rule_on():
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 4))
    dqt.convert(net, bits=8, scale_rule="absmax", skip=())
    assert [m.scale_rule for m in net] == ["absmax", "absmax"]
    assert "scale_rule='absmax'" in repr(net)
    layer = dqt.nn.QuantLinear.from_linear(torch.nn.Linear(8, 4), 4, scale_rule="absmax")
    assert layer.weight.scale_rule == "absmax"


def test_bad_rules_are_refused():
    w = torch.randn(4, 4)
    makes = (lambda r, b: dqt.QuantizedWeight.from_float(w, b, scale_rule=r),
             lambda r, b: dqt.nn.QuantLinear(4, 4, bits=b, scale_rule=r),
             lambda r, b: dqt.nn.QuantLinear.from_linear(torch.nn.Linear(4, 4), b,
                                                         scale_rule=r),
             lambda r, b: dqt.convert(torch.nn.Linear(4, 4), b, scale_rule=r, skip=()))
    for make in makes:
        with pytest.raises(ValueError, match="scale_rule must be 'maxq' or 'absmax', got 'bogus'"):
            make("bogus", 8)
        with pytest.raises(TypeError, match="scale_rule must be a str"):
            make(1, 8)
        with pytest.raises(ValueError, match="ternary weights keep the paper's rule"):
            make("absmax", 1.58)
    qw = dqt.QuantizedWeight.from_float(w, 8)
    with pytest.raises(ValueError, match="keeps no abs_max"):
        qw._set_abs_max(torch.ones(1))
    qa = dqt.QuantizedWeight.from_float(w, 8, scale_rule="absmax")
    with pytest.raises(ValueError, match=r"abs_max must be float32\[1\]"):
        qa._set_abs_max(torch.ones(2))
