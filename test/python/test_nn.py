"""dqt.QuantizedWeight and dqt.nn.QuantLinear against plain-torch references
(docs/numerics.md: initialization; BitLinear's 8-bit activation quantization
with straight-through estimators)."""
import pytest
import torch

import dqt


def grid(bits):
    if bits < 2:
        return -1, 1
    return -(2 ** (int(bits) - 1)), 2 ** (int(bits) - 1) - 1


def from_float_ref(w, bits, scale="tensor"):
    """The DQT initialization in torch ops: mean|W| in double, s = Qp /
    max(mean, 1e-5) rounded to f32, q = clamp(round_half_even(W*s)), delta
    = 1/s in f32. Per tensor: (q, delta as a float); scale="row": the same
    for each row r = elements [r*L, (r+1)*L), (q, f32 delta [rows])."""
    qn, qp = grid(bits)
    rows = w.shape[0] if scale == "row" else 1
    wr = w.float().reshape(rows, -1)
    mean = wr.double().abs().mean(1)
    s = (qp / mean.clamp_min(1e-5)).float()
    q = (wr * s[:, None]).round().clamp(qn, qp).to(torch.int8).reshape(w.shape)
    delta = torch.ones_like(s) / s
    return q, (delta if scale == "row" else float(delta))


def act_quant_ref(x):
    # A tensor division: Python's `127.0 / t` is `t.reciprocal() * 127`,
    # rounded differently from ATen's scalar / tensor.
    m = x.abs().amax(-1, keepdim=True).clamp_min(1e-5)
    s = torch.full_like(m, 127.0) / m
    return (x * s).round().clamp(-128, 127) / s


def ternarize_ref(w):
    m = w.abs().mean().clamp_min(1e-5)
    s = torch.full_like(m, 1.0) / m
    return (w * s).round().clamp(-1, 1) / s


@pytest.mark.parametrize("bits", [1.58, 2, 3, 4, 8])
def test_from_float_is_the_dqt_initialization(bits):
    w = torch.randn(37, 53, generator=torch.Generator().manual_seed(1)) * 0.05
    qw = dqt.QuantizedWeight.from_float(w, bits)
    q, delta = from_float_ref(w, bits)
    assert qw.q.dtype == torch.int8 and qw.shape == (37, 53)
    assert torch.equal(qw.q, q)
    assert qw.delta == delta
    assert qw.max_q == int(q.max())
    assert qw.bits == bits and (qw.qn, qw.qp) == grid(bits)
    assert int(qw.q.min()) >= qw.qn and int(qw.q.max()) <= qw.qp
    assert torch.equal(qw.dequantize(), q.float() * delta)
    assert qw.numel() == 37 * 53


def test_byte_accounting_and_gradient_buffer():
    qw = dqt.QuantizedWeight.from_float(torch.randn(8, 16), 4)
    assert qw.persistent_bytes == 8 * 16 + 5
    assert qw.grad is None and qw.grad_bytes == 0
    g = torch.randn(8, 16)
    qw.grad = g
    assert qw.grad is not None and torch.equal(qw.grad, g)
    assert qw.grad_bytes == 8 * 16 * 4
    qw.grad = None
    assert qw.grad is None and qw.grad_bytes == 0
    with pytest.raises(ValueError, match="grad: must be a contiguous float32"):
        qw.grad = torch.zeros(8, 15)
    with pytest.raises(ValueError, match="grad: must be a contiguous float32"):
        qw.grad = torch.zeros(8, 16, dtype=torch.float64)


@pytest.mark.parametrize("bits,exc", [(9, ValueError), (1, ValueError), (2.5, ValueError),
                                      (0, ValueError), ("8", TypeError)])
def test_bad_bits_are_refused(bits, exc):
    with pytest.raises(exc, match="bits"):
        dqt.QuantizedWeight.from_float(torch.randn(4, 4), bits)
    with pytest.raises(exc, match="bits"):
        dqt.nn.QuantLinear(4, 4, bits=bits)
    with pytest.raises(exc, match="bits"):
        dqt.convert(torch.nn.Sequential(torch.nn.Linear(4, 4)), bits=bits)


def test_from_float_refuses_bad_tensors():
    with pytest.raises(RuntimeError, match="non-finite"):
        dqt.QuantizedWeight.from_float(torch.tensor([[1.0, float("nan")]]), 8)
    with pytest.raises(RuntimeError, match="floating point"):
        dqt.QuantizedWeight.from_float(torch.ones(2, 2, dtype=torch.int32), 8)


@pytest.mark.parametrize("bits", [1.58, 4, 8])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_matches_reference(bits, bias):
    torch.manual_seed(0)
    layer = dqt.nn.QuantLinear(24, 40, bias=bias, bits=bits)
    x = torch.randn(3, 5, 24)
    x[0, 0] = 0  # an all-zero token (the 1e-5 clamp)
    y = layer(x)
    want = act_quant_ref(x) @ layer.weight.dequantize().t()
    if bias:
        want = want + layer.bias
    assert y.shape == (3, 5, 40)
    assert torch.equal(y, want)
    # The quantization is real: the result differs from the float product.
    assert not torch.equal(y, x @ layer.weight.dequantize().t() + (layer.bias if bias else 0))


def test_ternary_inference_forward():
    torch.manual_seed(1)
    layer = dqt.nn.QuantLinear(32, 16, bits=8, ternary_inference=True)
    assert layer.ternary_inference
    x = torch.randn(7, 32)
    want = act_quant_ref(x) @ ternarize_ref(layer.weight.dequantize()).t() + layer.bias
    assert torch.equal(layer(x), want)
    layer.ternary_inference = False
    assert not torch.equal(layer(x), want)


class STE(torch.autograd.Function):
    """Straight-through 8-bit activation quantization (the float twin)."""

    @staticmethod
    def forward(ctx, x):
        return act_quant_ref(x)

    @staticmethod
    def backward(ctx, g):
        return g


@pytest.mark.parametrize("ternary", [False, True])
def test_gradients_match_float_twin(ternary):
    torch.manual_seed(2)
    layer = dqt.nn.QuantLinear(24, 12, bits=4, ternary_inference=ternary)
    w = layer.weight.dequantize()
    w_twin = (ternarize_ref(w) if ternary else w).clone().requires_grad_(True)
    b_twin = layer.bias.detach().clone().requires_grad_(True)
    x = torch.randn(2, 6, 24, requires_grad=True)
    x_twin = x.detach().clone().requires_grad_(True)
    t = torch.randn(2, 6, 12)

    ((layer(x) - t) ** 2).sum().backward()
    ((STE.apply(x_twin) @ w_twin.t() + b_twin - t) ** 2).sum().backward()

    assert layer.weight.grad is not None and layer.weight.grad.shape == (12, 24)
    torch.testing.assert_close(layer.weight.grad, w_twin.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x.grad, x_twin.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer.bias.grad, b_twin.grad, rtol=1e-5, atol=1e-5)
    assert layer.weight.grad.abs().sum() > 0
    # Gradients accumulate over backward passes, as torch's do.
    g1 = layer.weight.grad.clone()
    ((layer(x) - t) ** 2).sum().backward()
    torch.testing.assert_close(layer.weight.grad, 2 * g1)


def bf16_reference(layer, x):
    """The bf16 path's arithmetic written out: the activation and weight
    integers multiplied exactly (f32 sums of products below 2**24), the sum
    rounded to bf16, then the weight scale and 1/s applied in f32."""
    xf = x.float()
    m = xf.abs().amax(-1, keepdim=True).clamp_min(1e-5)
    s = torch.full_like(m, 127.0) / m  # as act_quant_ref
    qx = (xf * s).round().clamp(-128, 127)
    w = layer.weight
    ints = w.dequantize() / (w.delta_rows.view(-1, 1) if w.scale == "row" else w.delta)
    out_scale = w.delta_rows if w.scale == "row" else w.delta
    y = (qx @ ints.round().t()).to(torch.bfloat16).float()
    return (y * out_scale / s).to(torch.bfloat16)


@pytest.mark.parametrize("bits,scale", [(8, "tensor"), (4, "row"), (1.58, "tensor")])
def test_bf16_inputs_and_autocast(bits, scale):
    torch.manual_seed(5)
    layer = dqt.nn.QuantLinear(48, 20, bias=False, bits=bits, scale=scale)
    x = torch.randn(3, 7, 48)
    y32 = layer(x)
    # A bf16 input: bf16 out, the integers multiplied in bf16.
    xb = x.to(torch.bfloat16)
    yb = layer(xb)
    assert yb.dtype == torch.bfloat16
    assert torch.equal(yb, bf16_reference(layer, xb))
    # Under autocast an f32 input is quantized as it is (no bf16 rounding of
    # x first) and the product is bf16, as nn.Linear's under autocast.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ya = layer(x)
    assert ya.dtype == torch.bfloat16
    assert torch.equal(ya, bf16_reference(layer, x))
    assert (ya.float() - y32).abs().max() <= 1e-2 * y32.abs().max()
    assert layer(x).dtype == torch.float32  # autocast left no state behind

    # Gradients: the input's in its own dtype, the weight's (f32) close to
    # the f32 path's.
    t = torch.randn(3, 7, 20)
    xa = x.clone().requires_grad_(True)
    ((layer(xa) - t) ** 2).sum().backward()
    g32, gx32 = layer.weight.grad.clone(), xa.grad.clone()
    layer.zero_grad()
    layer.weight.grad = None
    xa.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = ((layer(xa).float() - t) ** 2).sum()
    loss.backward()
    assert layer.weight.grad.dtype == torch.float32 and xa.grad.dtype == torch.float32
    assert (layer.weight.grad - g32).abs().max() <= 2e-2 * g32.abs().max()
    assert (xa.grad - gx32).abs().max() <= 2e-2 * gx32.abs().max()
    assert not torch.equal(layer.weight.grad, g32)  # bf16 arithmetic, really
    xb = xb.clone().requires_grad_(True)
    layer(xb).float().sum().backward()
    assert xb.grad.dtype == torch.bfloat16


def test_first_layer_input_without_grad_still_fills_weight_grad():
    layer = dqt.nn.QuantLinear(8, 4, bits=8)
    layer(torch.randn(3, 8)).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_from_linear():
    torch.manual_seed(3)
    lin = torch.nn.Linear(20, 10)
    layer = dqt.nn.QuantLinear.from_linear(lin, bits=3)
    q, delta = from_float_ref(lin.weight.detach(), 3)
    assert torch.equal(layer.weight.q, q) and layer.weight.delta == delta
    assert torch.equal(layer.bias, lin.bias)
    assert (layer.in_features, layer.out_features, layer.bits) == (20, 10, 3)
    nobias = dqt.nn.QuantLinear.from_linear(torch.nn.Linear(20, 10, bias=False), bits=8)
    assert nobias.bias is None
    with pytest.raises(TypeError, match="expected a torch.nn.Linear"):
        dqt.nn.QuantLinear.from_linear(torch.nn.Conv1d(1, 1, 1))


def test_constructor_initializes_like_nn_linear():
    torch.manual_seed(4)
    lin = torch.nn.Linear(16, 8)
    torch.manual_seed(4)
    layer = dqt.nn.QuantLinear(16, 8, bits=8)
    q, _ = from_float_ref(lin.weight.detach(), 8)
    assert torch.equal(layer.weight.q, q)
    assert torch.equal(layer.bias, lin.bias)


def test_weight_is_a_parameter_of_its_true_shape():
    layer = dqt.nn.QuantLinear(4, 3, bits=8)
    params = dict(layer.named_parameters())
    assert set(params) == {"weight", "bias"}
    w = params["weight"]
    assert isinstance(w, torch.nn.Parameter) and isinstance(w, dqt.QuantizedTensor)
    assert w.shape == (3, 4) and w.numel() == 12 and w.dtype == torch.float32
    assert w.requires_grad and dqt.nn.quantized_weight_of(w) is w.quantized
    assert dqt.QuantizedTensor.of(w.quantized) is w


def test_bad_inputs():
    layer = dqt.nn.QuantLinear(4, 3, bits=8)
    with pytest.raises(TypeError, match="input must be float32 or bfloat16"):
        layer(torch.randn(2, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="input must be float32 or bfloat16"):
        layer(torch.randn(2, 4, dtype=torch.float16))
    with pytest.raises(ValueError, match=r"the layer takes \[..., 4\]"):
        layer(torch.randn(2, 5))
    with pytest.raises(ValueError, match="in_features must be > 0"):
        dqt.nn.QuantLinear(0, 3)
    with pytest.raises(ValueError, match="weight has shape"):
        dqt.nn.QuantLinear(4, 3, weight=torch.randn(4, 3))


def test_state_dict_round_trip():
    torch.manual_seed(5)
    a = dqt.nn.QuantLinear(6, 5, bits=4)
    a.weight.q[0, 0] = 7  # something the initialization did not produce
    sd = a.state_dict()
    assert set(sd) == {"weight_q", "weight_delta", "weight_max_q", "weight_bits", "bias"}
    b = dqt.nn.QuantLinear(6, 5, bits=4)
    assert not torch.equal(a.weight.q, b.weight.q)
    b.load_state_dict(sd)
    assert torch.equal(a.weight.q, b.weight.q)
    assert (a.weight.delta, a.weight.max_q) == (b.weight.delta, b.weight.max_q)
    assert torch.equal(a.bias, b.bias)
    # A different grid, missing keys, values off the grid: refused.
    with pytest.raises(RuntimeError, match="bits=4"):
        dqt.nn.QuantLinear(6, 5, bits=8).load_state_dict(sd)
    with pytest.raises(RuntimeError, match="Missing key.*weight_q"):
        b.load_state_dict({"bias": sd["bias"]})
    bad = dict(sd, weight_q=torch.full((6, 5), 9, dtype=torch.int8).t().contiguous())
    before = b.weight.q.clone()
    with pytest.raises(RuntimeError, match="outside the 4-bit grid"):
        b.load_state_dict(bad)
    assert torch.equal(b.weight.q, before)


def test_backward_keeps_the_input_as_int8_and_a_scale_per_token():
    """QuantLinear saves its input for backward as what activation
    quantization makes of it, int8 and one f32 scale per token (1 byte an
    element), never as a float copy; the gradients stay the reference's."""
    torch.manual_seed(4)
    layer = dqt.nn.QuantLinear(32, 16, bits=8)
    x = torch.randn(4, 5, 32, requires_grad=True)
    saved = []

    def pack(t):
        saved.append((t.dtype, tuple(t.shape)))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = layer(x)
    assert (torch.int8, (4, 5, 32)) in saved
    assert (torch.float32, (4, 5, 1)) in saved
    assert not any(shape[-1] == 32 and dt != torch.int8 for dt, shape in saved), saved
    gy = torch.randn(4, 5, 16)
    y.backward(gy)
    xq = dqt._C.activation_quant8(x.detach())
    w = layer.weight.dequantize()
    assert torch.equal(layer.weight.grad, gy.reshape(-1, 16).t() @ xq.reshape(-1, 32))
    assert torch.allclose(x.grad, gy @ w)
