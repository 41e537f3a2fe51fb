"""dqt.random.philox_uniform and dqt.functional.adamw_step_ against
independent pure-Python/LibTorch references (docs/numerics.md)."""
import os
import subprocess
import sys

import pytest
import torch

import dqt
from test_nn import grid

M0, M1, W0, W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
MASK = 0xFFFFFFFF


def philox4x32(ctr, key, rounds=10):
    """Random123's philox4x32_R in plain Python integers."""
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + W0) & MASK, (k1 + W1) & MASK
        p0, p1 = M0 * c0, M1 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & MASK, p1 & MASK, \
            ((p0 >> 32) ^ c3 ^ k1) & MASK, p0 & MASK
    return c0, c1, c2, c3


# The streams of numerics v2 (docs/numerics.md): bits ORed into counter
# word 1 (j >> 32, below 2^28 since element indices are below 2^63).
WEIGHT_STREAM, STATE_STREAM0, STATE_STREAM1 = 0, 0x80000000, 0xC0000000


def random_half(seed, step, tid, i, stream=WEIGHT_STREAM):
    """h_i: the 16 random bits of element i. Block j = i // 8, word
    (i % 8) // 2, its low half for even i and its high half for odd i."""
    j = i // 8
    w = philox4x32((j & MASK, (j >> 32) | stream, step & MASK, tid & MASK),
                   (seed & MASK, (seed >> 32) & MASK))[(i % 8) // 2]
    return w >> 16 if i % 2 else w & 0xFFFF


def uniform_ref(seed, step, tid, numel):
    """u_i = (h_i + 0.5) * 2^-16 = (2 h_i + 1) * 2^-17 (exact in f32)."""
    return torch.tensor([(2 * random_half(seed, step, tid, i) + 1) * 2.0 ** -17
                         for i in range(numel)], dtype=torch.float32)


def state_bits_ref(seed, step, tid, i):
    """h_i of state stream 0 (low 16 bits: m, momentum) | h_i of state
    stream 1 << 16 (v)."""
    return random_half(seed, step, tid, i, STATE_STREAM0) | \
        random_half(seed, step, tid, i, STATE_STREAM1) << 16


def test_philox_uniform_known_answer():
    # Random123 kat_vectors: philox4x32 10, counter 0, key 0.
    words = [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    assert philox4x32((0, 0, 0, 0), (0, 0)) == tuple(words)
    # v2: elements 0..7 are the halves of that block, low half first:
    # h = 0xE8D5, 0x6627, 0xC58D, 0xE169, 0xAC4C, 0xBC57, 0xDBD8, 0x9B00,
    # u = (2h + 1) * 2^-17 (the same constants as the C++ reference's test,
    # test/unit/philox-known-answers.cpp).
    halves = [0xE8D5, 0x6627, 0xC58D, 0xE169, 0xAC4C, 0xBC57, 0xDBD8, 0x9B00]
    assert halves == [w >> s & 0xFFFF for w in words for s in (0, 16)]
    two_h_plus_one = [119211, 52303, 101147, 115411, 88217, 96431, 112561, 79361]
    assert two_h_plus_one == [2 * h + 1 for h in halves]
    expected = torch.tensor([n * 2.0 ** -17 for n in two_h_plus_one])
    assert torch.equal(uniform_ref(0, 0, 0, 8), expected)
    assert uniform_ref(0, 0, 0, 1).item() == 0.9095077514648438
    u = dqt.random.philox_uniform(0, 0, 0, 8)
    assert u.dtype == torch.float32
    assert torch.equal(u, expected)


# Known answers shared with test/unit/philox-known-answers.cpp: (seed, step,
# tensor id, first element, 2 h_i + 1 and state bits of 8 elements).
V2_KATS = [
    (0, 0, 0, 0,
     [119211, 52303, 101147, 115411, 88217, 96431, 112561, 79361],
     [0x12130CCF, 0x79EDA2B2, 0xB3F18772, 0xDCB75140, 0x5DF7F7EF, 0xD8F994FC,
      0x2948835A, 0xBF2EB688]),
    (0x0123456789ABCDEF, 7, 3, 8,
     [23107, 11939, 589, 116669, 3709, 25723, 64155, 114295],
     [0x7FA524C5, 0x3E1D064F, 0x30D21529, 0xBD7233A0, 0x6626B9C7, 0x008084B2,
      0x94FE9D69, 0x1599CE65]),
]


def test_v2_known_answers_of_the_python_reference():
    # The state streams of block 0 under key 0 by hand: counter word 1 =
    # 0x80000000 and 0xC0000000.
    assert philox4x32((0, STATE_STREAM0, 0, 0), (0, 0)) == \
        (0xA2B20CCF, 0x51408772, 0x94FCF7EF, 0xB688835A)
    assert philox4x32((0, STATE_STREAM1, 0, 0), (0, 0)) == \
        (0x79ED1213, 0xDCB7B3F1, 0xD8F95DF7, 0xBF2E2948)
    for seed, step, tid, first, nums, bits in V2_KATS:
        u = uniform_ref(seed, step, tid, first + 8)[first:]
        assert torch.equal(u, torch.tensor([n * 2.0 ** -17 for n in nums]))
        assert [state_bits_ref(seed, step, tid, first + e) for e in range(8)] == bits


def test_v2_known_answers_of_philox_uniform():
    for seed, step, tid, first, nums, _ in V2_KATS:
        u = dqt.random.philox_uniform(seed, step, tid, first + 8)[first:]
        assert torch.equal(u, torch.tensor([n * 2.0 ** -17 for n in nums]))


@pytest.mark.parametrize("seed,step,tid,numel", [
    (42, 1, 0, 1001), (2 ** 63 + 12345, 7, 3, 37), (1, 2 ** 33 + 5, 2 ** 31, 9)])
def test_philox_uniform_matches_python(seed, step, tid, numel):
    assert torch.equal(dqt.random.philox_uniform(seed, step, tid, numel),
                       uniform_ref(seed, step, tid, numel))


def f(x):
    return torch.tensor(x, dtype=torch.float32)


def sqrt_ieee(x):
    # ATen's f32 sqrt may use MKL's vector math (not always correctly
    # rounded); sqrt in double rounded to float is.
    return x.double().sqrt().float()


def next_delta(delta, max_q, bits):
    """The next step (docs/numerics.md): max_q * delta / Qp (an f32 product,
    then an f32 quotient) where max_q > 0, else delta. Per tensor (a float
    and an int) or per row (f32 and integer tensors [rows]): f32 [rows]."""
    d = torch.as_tensor(delta, dtype=torch.float32).reshape(-1)
    mq = torch.as_tensor(max_q).reshape(-1)
    return torch.where(mq > 0, mq.float() * d / f(float(grid(bits)[1])), d)


def per_element(rows, n):
    """Values per row [rows] repeated over the n // rows elements of each."""
    return rows.repeat_interleave(n // rows.numel())


def stochastic_round(w2, dn, u, bits):
    """The new integers (as f32) of updated weights `w2` (1-D) with next
    step `dn` per row (f32 [rows]; one row per tensor): x = w2 * (1/dn),
    the reciprocal rounded to f32 once per row; floor(x) + (u < x -
    floor(x)), clamped to the grid; NaN -> 0."""
    qn, qp = grid(bits)
    x = w2 * per_element(torch.ones_like(dn) / dn, w2.numel())
    fl = x.floor()
    r = torch.where(u < x - fl, fl + 1, fl)
    r = torch.where(x >= qp, f(float(qp)), r)
    r = torch.where(x <= qn, f(float(qn)), r)
    return torch.where(x.isnan(), f(0.0), r)


def scale_result(q1, dn, per_row):
    """(delta', max q') as the kernels report them: a float and an int per
    tensor; f32 [rows] and int8 [rows] per row."""
    if per_row:
        return dn, q1.view(dn.numel(), -1).amax(1)
    return float(dn), int(q1.max())


def adamw_ref(q, delta, max_q, g, m, v, step, lr, beta1, beta2, eps, wd,
              bits, seed, tid, u=None):
    """One DQT AdamW step of 1-D `q` in torch ops. `delta`, `max_q`: a float
    and an int, or per row f32 and int8 tensors [rows] (row r = elements
    [r*L, (r+1)*L)). `u`: the Philox stream (default: uniform_ref's).
    Returns (q', m', v', delta', max q', changed, nonfinite)."""
    per_row = isinstance(delta, torch.Tensor)
    d = per_element(torch.as_tensor(delta, dtype=torch.float32).reshape(-1), q.numel())
    dn = next_delta(delta, max_q, bits)
    alpha = lr * (1 - beta2 ** step) ** 0.5 / (1 - beta1 ** step)
    finite = g.isfinite()
    b1, b2 = f(beta1), f(beta2)
    m1 = b1 * m + (f(1.0) - b1) * g
    v1 = b2 * v + (f(1.0) - b2) * (g * g)
    w = q.float() * d
    w1 = w - f(alpha) * (m1 / (sqrt_ieee(v1) + f(eps)))
    w2 = w1 - f(lr * wd) * w1
    if u is None:
        u = uniform_ref(seed, step, tid, q.numel())
    r = stochastic_round(w2, dn, u, bits)
    q1 = torch.where(finite, r.to(torch.int8), q)
    return (q1, torch.where(finite, m1, m), torch.where(finite, v1, v),
            *scale_result(q1, dn, per_row), int((q1 != q).sum()), int((~finite).sum()))


def make(n, bits, seed=0):
    gen = torch.Generator().manual_seed(seed)
    qp = 1 if bits < 2 else 2 ** (int(bits) - 1) - 1
    q = torch.randint(-qp - (0 if bits < 2 else 1), qp + 1, (n,), generator=gen,
                      dtype=torch.int8)
    g = torch.randn(n, generator=gen) * 10 ** (torch.rand(n, generator=gen) * 5 - 4)
    g[5::997] = float("nan")
    g[7::1499] = float("inf")
    m = torch.randn(n, generator=gen) * 0.01
    v = torch.rand(n, generator=gen) * 1e-4
    return q, g, m, v


HYPER = dict(lr=0.05, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.01)


@pytest.mark.parametrize("bits", [1.58, 2, 3, 4, 8])
def test_adamw_step_matches_reference(bits):
    n = 3001
    q, g, m, v = make(n, bits)
    delta, max_q = 0.02, int(q.max())
    want = adamw_ref(q.clone(), delta, max_q, g, m.clone(), v.clone(), 3,
                     HYPER["lr"], HYPER["beta1"], HYPER["beta2"], HYPER["eps"],
                     HYPER["weight_decay"], bits, 42, 5)
    r = dqt.functional.adamw_step_(q, delta, max_q, g, m, v, step=3, bits=bits,
                                   seed=42, tensor_id=5, **HYPER)
    assert torch.equal(q, want[0])
    assert torch.equal(m, want[1]) and torch.equal(v, want[2])
    assert (r.delta, r.max_q, r.changed, r.nonfinite) == want[3:]
    assert r.changed > n // 100 and r.nonfinite > 0


def test_nonfinite_gradients_never_reach_weights_or_states():
    q, g, m, v = make(2000, 8, seed=3)
    q0, m0, v0 = q.clone(), m.clone(), v.clone()
    bad = ~g.isfinite()
    r = dqt.functional.adamw_step_(q, 0.02, int(q.max()), g, m, v, step=1,
                                   bits=8, seed=1, tensor_id=0, **HYPER)
    assert r.nonfinite == int(bad.sum()) > 0
    assert torch.equal(q[bad], q0[bad])
    assert torch.equal(m[bad], m0[bad]) and torch.equal(v[bad], v0[bad])
    assert m.isfinite().all() and v.isfinite().all()


def same_bytes(a, b):
    """Bit equality (torch.equal says NaN != NaN)."""
    return (a.dtype == b.dtype and a.shape == b.shape and
            torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8)))


def call(q, g, m, v, **over):
    args = dict(step=1, bits=8, seed=1, tensor_id=0, **HYPER)
    delta = over.pop("delta", 0.02)
    max_q = over.pop("max_q", 10)
    args.update(over)
    return dqt.functional.adamw_step_(q, delta, max_q, g, m, v, **args)


@pytest.mark.parametrize("change,message", [
    (lambda t: t.update(m=torch.zeros(99)), "exp_avg has shape [99], q has [100]"),
    (lambda t: t.update(g=torch.zeros(100, dtype=torch.float64)), "grad must be float32, got Double"),
    (lambda t: t.update(v=torch.zeros(200)[::2]), "exp_avg_sq must be contiguous"),
    (lambda t: t.update(q=torch.zeros(100, dtype=torch.int32)), "q must be a 1-D int8 tensor"),
    (lambda t: t.update(q=torch.zeros(10, 10, dtype=torch.int8)), "q must be a 1-D int8 tensor"),
    (lambda t: t.update(bits=9), "bits must be 1.58 (ternary) or an integer in [2, 8], got 9"),
    (lambda t: t.update(bits=2.5), "bits must be 1.58"),
    (lambda t: t.update(lr=-1e-3), "lr must be finite and >= 0, got -0.001"),
    (lambda t: t.update(beta1=1.0), "beta1 must be in [0, 1), got 1"),
    (lambda t: t.update(beta2=-0.1), "beta2 must be in [0, 1)"),
    (lambda t: t.update(eps=0.0), "eps must be > 0"),
    (lambda t: t.update(delta=float("nan")), "delta must be finite and > 0"),
    (lambda t: t.update(max_q=300), "max_q 300 is outside the 8-bit grid"),
    (lambda t: t.update(step=0), "step must be >= 1"),
])
def test_bad_input_is_refused_and_changes_nothing(change, message):
    q, g, m, v = make(100, 8)
    t = dict(q=q, g=g, m=m, v=v)
    change(t)
    before = {k: x.clone() for k, x in t.items() if isinstance(x, torch.Tensor)}
    with pytest.raises(RuntimeError, match="dqt.functional.adamw_step_: .*" +
                       message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        kw = {k: t.pop(k) for k in list(t) if k not in "qgmv"}
        call(t["q"], t["g"], t["m"], t["v"], **kw)
    for k, x in before.items():
        assert same_bytes(t[k], x), k


def test_empty_tensors_are_refused():
    e = torch.zeros(0)
    with pytest.raises(RuntimeError, match="q is empty"):
        call(torch.zeros(0, dtype=torch.int8), e, e.clone(), e.clone())


def test_import_from_any_directory(tmp_path):
    out = subprocess.run([sys.executable, "-c", "import dqt; print(dqt.__name__)"],
                         cwd=tmp_path, capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "dqt"
