"""packed=True: ternary weights stored 4 per byte (docs/numerics.md, "Packed
ternary storage") through dqt.QuantizedWeight, dqt.nn.QuantLinear,
QuantLinear.from_linear and dqt.convert. Packed and int8 ternary layers
train bit-identically; bytes, state_dict round trips and refusals."""
import io

import pytest
import torch

import dqt
from test_optim import same_bits, snapshot


def pack_ref(q):
    """The documented packing, written independently: element i in bits
    2*(i%4) of byte i//4, two's complement on 2 bits."""
    flat = q.flatten().to(torch.int64) & 3
    n = flat.numel()
    flat = torch.cat([flat, torch.zeros((-n) % 4, dtype=torch.int64)]).view(-1, 4)
    return (flat << torch.tensor([0, 2, 4, 6])).sum(1).to(torch.uint8)


@pytest.mark.parametrize("shape", [(37, 53), (8, 16), (5,), (3, 1, 7)])
def test_from_float_packed_holds_the_same_integers_in_a_quarter(shape):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(1)) * 0.05
    a = dqt.QuantizedWeight.from_float(w, 1.58)
    p = dqt.QuantizedWeight.from_float(w, 1.58, packed=True)
    n = w.numel()
    assert not a.packed and p.packed
    assert p.shape == a.shape == shape and p.numel() == n
    assert torch.equal(p.q, a.q) and p.q.dtype == torch.int8
    assert (p.delta, p.max_q, p.bits) == (a.delta, a.max_q, a.bits)
    assert torch.equal(p.dequantize(), a.dequantize())
    assert p.packed_bytes.dtype == torch.uint8 and p.packed_bytes.shape == ((n + 3) // 4,)
    assert torch.equal(p.packed_bytes, pack_ref(a.q))
    assert p.persistent_bytes == (n + 3) // 4 + 5
    assert a.persistent_bytes == n + 5
    assert "packed=True" in repr(p) and "packed" not in repr(a)
    # The gradient buffer has the weight's shape, not the bytes'.
    p.grad = torch.zeros(shape)
    with pytest.raises(ValueError, match="grad: must be a contiguous float32"):
        p.grad = torch.zeros((n + 3) // 4)


def test_packed_bytes_are_the_live_storage_and_q_a_copy():
    p = dqt.QuantizedWeight.from_float(torch.randn(4, 4), 1.58, packed=True)
    before = p.q.clone()
    assert int(before.abs().sum()) > 0
    p.q.fill_(0)  # a copy: the weight does not change
    assert torch.equal(p.q, before)
    p.packed_bytes.zero_()  # the storage itself
    assert bool((p.q == 0).all())
    with pytest.raises(ValueError, match="stored as int8, not packed"):
        dqt.QuantizedWeight.from_float(torch.randn(4, 4), 1.58).packed_bytes


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_packed_needs_ternary(bits):
    message = rf"packed=True stores ternary weights 4 per byte; it needs bits=1.58, got bits={bits}"
    with pytest.raises(ValueError, match="dqt.QuantizedWeight.from_float: " + message):
        dqt.QuantizedWeight.from_float(torch.randn(4, 4), bits, packed=True)
    with pytest.raises(ValueError, match="dqt.nn.QuantLinear: " + message):
        dqt.nn.QuantLinear(4, 4, bits=bits, packed=True)
    with pytest.raises(ValueError, match="dqt.nn.QuantLinear: " + message):
        dqt.nn.QuantLinear.from_linear(torch.nn.Linear(4, 4), bits, packed=True)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    with pytest.raises(ValueError, match="dqt.convert: " + message):
        dqt.convert(model, bits=bits, packed=True, skip=())
    assert type(model[0]) is torch.nn.Linear  # nothing converted


def test_packed_must_be_a_bool():
    with pytest.raises(TypeError, match="packed must be a bool, got int"):
        dqt.QuantizedWeight.from_float(torch.randn(4, 4), 1.58, packed=1)
    with pytest.raises(TypeError, match="packed must be a bool, got str"):
        dqt.nn.QuantLinear(4, 4, bits=1.58, packed="yes")
    with pytest.raises(TypeError, match="packed must be a bool"):
        dqt.convert(torch.nn.Linear(4, 4), bits=1.58, packed=None)


def float_model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(12, 33), torch.nn.ReLU(),
                               torch.nn.Linear(33, 7), torch.nn.Tanh(),
                               torch.nn.Linear(7, 5, bias=False))


def twins(seed):
    """The same float model converted to ternary twice: int8 and packed
    (from_linear for the last layer, convert for the others)."""
    out = []
    for packed in (False, True):
        m = float_model(seed)
        last = dqt.nn.QuantLinear.from_linear(m[4], 1.58, packed=packed)
        m = dqt.convert(m, bits=1.58, packed=packed, skip=("4",))
        m[4] = last
        out.append(m)
    return out


def quant_layers(model):
    return [m for m in model.modules() if isinstance(m, dqt.nn.QuantLinear)]


@pytest.mark.parametrize("kind,kw", [
    ("AdamW", dict(lr=0.05, weight_decay=0.1)),
    ("SGD", dict(lr=0.5, momentum=0.9, weight_decay=0.1)),
    ("Adafactor", dict(lr=0.3, beta1=0.9, weight_decay=0.1)),
])
def test_packed_and_int8_ternary_train_bit_identically(kind, kw):
    plain, packed = twins(3)
    assert [layer.packed for layer in quant_layers(packed)] == [True] * 3
    assert [layer.packed for layer in quant_layers(plain)] == [False] * 3
    assert "packed=True" in repr(packed)
    cls = getattr(dqt.optim, kind)
    if kind == "Adafactor":  # float biases need beta1 = 0 (torch's Adafactor)
        groups = [[{"params": [l.weight for l in quant_layers(m)]},
                   {"params": [p for p in m.parameters()
                               if dqt.nn.quantized_weight_of(p) is None], "beta1": 0.0}]
                  for m in (plain, packed)]
    else:
        groups = [list(m.parameters()) for m in (plain, packed)]
    opts = [cls(g, seed=9, **kw) for g in groups]
    gen = torch.Generator().manual_seed(0)
    changed = 0
    for t in range(5):
        x, y = torch.randn(6, 12, generator=gen), torch.randn(6, 5, generator=gen)
        outs, stats = [], []
        for m, opt in zip((plain, packed), opts):
            opt.zero_grad()
            out = m(x)
            ((out - y) ** 2).sum().backward()
            outs.append(out.detach())
            stats.append(opt.step())
        assert torch.equal(outs[0], outs[1])
        assert stats[0] == stats[1]
        changed += sum(s.changed for s in stats[0])
        for a, b in zip(quant_layers(plain), quant_layers(packed)):
            assert torch.equal(a.weight.q, b.weight.q)
            assert (a.weight.delta, a.weight.max_q) == (b.weight.delta, b.weight.max_q)
            assert torch.equal(b.weight.packed_bytes, pack_ref(b.weight.q))
    assert changed > 0
    sa = snapshot(plain, opts[0])
    sb = snapshot(packed, opts[1])
    for k in sa:
        if k.endswith("weight_q"):
            continue  # int8 values here, packed bytes there (compared above)
        assert same_bits(sa[k], sb[k]), k


def test_state_dict_of_a_packed_layer():
    torch.manual_seed(5)
    a = dqt.nn.QuantLinear(6, 5, bits=1.58, packed=True)
    sd = a.state_dict()
    assert sd["weight_q"].dtype == torch.uint8 and sd["weight_q"].shape == (8,)
    assert torch.equal(sd["weight_q"], a.weight.packed_bytes)
    for packed in (True, False):  # into either storage
        b = dqt.nn.QuantLinear(6, 5, bits=1.58, packed=packed)
        assert not torch.equal(a.weight.q, b.weight.q)
        b.load_state_dict(sd)
        assert torch.equal(a.weight.q, b.weight.q)
        assert (a.weight.delta, a.weight.max_q) == (b.weight.delta, b.weight.max_q)
        assert torch.equal(a.bias, b.bias)
    # An int8 ternary state dict loads into a packed layer.
    c = dqt.nn.QuantLinear(6, 5, bits=1.58)
    a.load_state_dict(c.state_dict())
    assert torch.equal(a.weight.q, c.weight.q)
    assert torch.equal(a.weight.packed_bytes, pack_ref(c.weight.q))
    # Corrupt bytes (the unused code 0b10, stray high bits) and other grids
    # are refused, and nothing changes.
    before = a.weight.packed_bytes.clone()
    for bad, message in [(0b10 << 2, "invalid code 0b10 at element 1"),
                         (0b01 << 4, "non-zero unused bits")]:
        q = sd["weight_q"].clone()
        if message.startswith("non-zero"):
            q[-1] |= bad  # 30 weights: byte 7 holds elements 28, 29
        else:
            q[0] = (q[0] & 0b11110011) | bad
        with pytest.raises(RuntimeError, match=message):
            a.load_state_dict(dict(sd, weight_q=q))
        assert torch.equal(a.weight.packed_bytes, before)
    with pytest.raises(RuntimeError, match=r"packed ternary storage of 30 weights is "
                                           r"uint8\[8\], got Byte\[7\]"):
        a.load_state_dict(dict(sd, weight_q=sd["weight_q"][:7].clone()))
    with pytest.raises(RuntimeError, match=r"q must be int8 of shape \[5, 6\] or packed "
                                           r"ternary uint8\[8\], got Float\[5, 6\]"):
        a.load_state_dict(dict(sd, weight_q=torch.zeros(5, 6)))
    with pytest.raises(RuntimeError, match="bits=1.58"):
        dqt.nn.QuantLinear(6, 5, bits=8).load_state_dict(sd)
    assert torch.equal(a.weight.packed_bytes, before)


def test_optimizer_state_dict_round_trip_with_packed_weights():
    def make():
        m = twins(4)[1]
        return m, dqt.optim.AdamW(m.parameters(), lr=0.05, seed=3)

    gen = torch.Generator().manual_seed(1)
    data = [(torch.randn(4, 12, generator=gen), torch.randn(4, 5, generator=gen))
            for _ in range(6)]

    def train(m, opt, batches):
        for x, y in batches:
            opt.zero_grad()
            ((m(x) - y) ** 2).sum().backward()
            opt.step()

    a, opt_a = make()
    train(a, opt_a, data)
    b, opt_b = make()
    train(b, opt_b, data[:3])
    buf = io.BytesIO()
    torch.save({"model": b.state_dict(), "opt": opt_b.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf)
    c, opt_c = make()
    c.load_state_dict(saved["model"])
    opt_c.load_state_dict(saved["opt"])
    train(c, opt_c, data[3:])
    sa, sc = snapshot(a, opt_a), snapshot(c, opt_c)
    assert sa.keys() == sc.keys()
    for k in sa:
        assert same_bits(sa[k], sc[k]), k
