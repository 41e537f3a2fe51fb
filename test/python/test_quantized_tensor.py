"""dqt.QuantizedTensor: the quantized weight is a parameter PyTorch's own code
handles (zero_grad, clip_grad_norm_, requires_grad_, numel, pickle,
torch.save, deepcopy, .to), reads see q * delta, writes are refused, and
torch optimizers refuse quantized parameters (issue 14's failures, each
checked here)."""
import copy
import io
import pickle

import pytest
import torch

import dqt


def mlp(seed=0, bits=8, **kw):
    torch.manual_seed(seed)
    return torch.nn.Sequential(dqt.nn.QuantLinear(8, 16, bits=bits, **kw), torch.nn.ReLU(),
                               dqt.nn.QuantLinear(16, 4, bits=bits, **kw))


def backward(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 8, generator=g)
    model(x).pow(2).sum().backward()


def test_module_zero_grad_clears_the_quantized_gradients():
    layer = dqt.nn.QuantLinear(8, 4)
    layer(torch.randn(2, 8)).sum().backward()
    assert layer.weight.grad.abs().sum() > 0
    layer.zero_grad()
    assert layer.weight.grad is None
    # Accumulation across micro-batches is autograd's: two passes give twice
    # one pass, and a zero_grad() in between starts over.
    model = mlp()
    backward(model)
    g1 = model[0].weight.grad.clone()
    backward(model)
    assert torch.equal(model[0].weight.grad, 2 * g1)
    model.zero_grad()
    backward(model)
    assert torch.equal(model[0].weight.grad, g1)


def test_clip_grad_norm_sees_and_scales_the_quantized_gradients():
    model = mlp()
    backward(model)
    grads = [p.grad.clone() for p in model.parameters()]
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g)
                                                  for g in grads]))
    floats_only = torch.linalg.vector_norm(torch.stack(
        [torch.linalg.vector_norm(p.grad) for p in model.parameters()
         if not isinstance(p, dqt.QuantizedTensor)]))
    assert total > floats_only * 1.01  # the quantized gradients count
    max_norm = float(total) / 4
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    torch.testing.assert_close(norm, total)
    for p, g in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, g * (max_norm / (float(total) + 1e-6)))


def test_requires_grad_false_freezes_a_quantized_weight():
    model = mlp()
    model[0].weight.requires_grad_(False)
    backward(model)
    assert model[0].weight.grad is None
    assert model[2].weight.grad is not None and model[0].bias.grad is not None
    q0, q2 = model[0].weight.q.clone(), model[2].weight.q.clone()
    opt = dqt.optim.AdamW([{"params": [model[0].weight]},
                           {"params": [p for n, p in model.named_parameters()
                                       if n != "0.weight"]}], lr=0.05)
    opt.step()
    assert torch.equal(model[0].weight.q, q0)
    assert not torch.equal(model[2].weight.q, q2)
    # A frozen first layer whose input needs no gradient: no node at all.
    layer = dqt.nn.QuantLinear(8, 4, bias=False).requires_grad_(False)
    assert not layer(torch.randn(2, 8)).requires_grad


def test_numel_and_parameter_counts_are_the_float_models():
    torch.manual_seed(0)
    float_model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 4))
    n = sum(p.numel() for p in float_model.parameters())
    model = dqt.convert(float_model, skip=())
    assert sum(p.numel() for p in model.parameters()) == n
    # "decay if p.dim() >= 2" filters see the weights as matrices.
    assert [p.dim() for p in model.parameters()] == [2, 1, 2, 1]


def test_reads_see_q_times_delta_and_route_gradients():
    layer = dqt.nn.QuantLinear(8, 4, bits=4)
    w = layer.weight.dequantize()
    assert torch.equal(layer.weight.abs().amax(), w.abs().amax())
    assert torch.equal(layer.weight * 2, w * 2)
    assert torch.equal(layer.weight[1], w[1])
    # A read in the graph (a tied use, say) gives the parameter a float
    # gradient, which dqt.optim then steps into the integers.
    x = torch.randn(3, 8)
    torch.nn.functional.linear(x, layer.weight).sum().backward()
    torch.testing.assert_close(layer.weight.grad, torch.ones(3, 4).t() @ x)


@pytest.mark.parametrize("write", [
    lambda p: p.mul_(2), lambda p: p.zero_(), lambda p: p.copy_(torch.randn(4, 8)),
    lambda p: torch.add(torch.ones(4, 8), 1, out=p)])
def test_writes_are_refused_and_change_nothing(write):
    layer = dqt.nn.QuantLinear(8, 4)
    q = layer.weight.q.clone()
    with torch.no_grad(), pytest.raises(RuntimeError, match="dqt.optim"):
        write(layer.weight)
    assert torch.equal(layer.weight.q, q)


@pytest.mark.parametrize("kw", [dict(bits=8), dict(bits=1.58, packed=True),
                                dict(bits=4, scale="row")])
def test_copy_takes_integers_or_values_on_the_grid(kw):
    torch.manual_seed(0)
    a, b = dqt.nn.QuantLinear(8, 4, **kw), dqt.nn.QuantLinear(8, 4, **kw)
    with torch.no_grad():
        b.weight.copy_(a.weight)  # another quantized weight: its integers
    assert torch.equal(b.weight.q, a.weight.q)
    assert torch.equal(b.weight.dequantize(), a.weight.dequantize())
    c = dqt.nn.QuantLinear(8, 4, **kw)
    with torch.no_grad():
        c.weight.copy_(a.weight)
    q = c.weight.q.clone()
    with torch.no_grad():
        # Its own values (what a broadcast between identical replicas
        # writes): exact, nothing changes.
        c.weight.copy_(c.weight.dequantize())
        assert torch.equal(c.weight.q, q)
        off = c.weight.dequantize()
        off[0, 0] += 1e-3 * float(off.abs().max())
        with pytest.raises(RuntimeError, match="not on this weight's grid"):
            c.weight.copy_(off)
    assert torch.equal(c.weight.q, q)
    other = dqt.nn.QuantLinear(8, 4, bits=8 if kw["bits"] != 8 else 4)
    with torch.no_grad(), pytest.raises(RuntimeError, match="needs the same shape, grid"):
        other.weight.copy_(a.weight)


@pytest.mark.parametrize("make", [torch.optim.AdamW, torch.optim.SGD,
                                  lambda p: torch.optim.Adam(p, foreach=True)])
def test_torch_optimizers_refuse_quantized_parameters(make):
    model = mlp()
    backward(model)
    before = [p.detach().clone() for p in model.parameters()]
    q = model[0].weight.q.clone()
    opt = make(model.parameters())
    with pytest.raises(TypeError, match="use dqt.optim.AdamW"):
        opt.step()
    # Refused before anything moved, float parameters included.
    assert torch.equal(model[0].weight.q, q)
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p.detach(), b)
    # A torch optimizer over float parameters only is untouched by dqt.
    floats = [p for p in model.parameters() if not isinstance(p, dqt.QuantizedTensor)]
    torch.optim.SGD(floats, lr=0.1).step()
    assert not torch.equal(model[0].bias.detach(), before[1])


def same_model(a, b):
    x = torch.randn(3, 8)
    assert torch.equal(a(x), b(x))
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and type(pa) is type(pb)
        assert isinstance(pb, torch.nn.Parameter) and pa.requires_grad == pb.requires_grad
        if isinstance(pa, dqt.QuantizedTensor):
            assert torch.equal(pa.q, pb.q) and pa.quantized is not pb.quantized


@pytest.mark.parametrize("kw", [dict(bits=8), dict(bits=1.58, packed=True),
                                dict(bits=4, scale="row", scale_rule="absmax")])
def test_pickle_save_and_deepcopy_copy_the_integers(tmp_path, kw):
    model = mlp(**kw)
    backward(model)
    for copied in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        same_model(model, copied)
    path = tmp_path / "model.pt"
    torch.save(model, path)
    loaded = torch.load(path, weights_only=False)
    same_model(model, loaded)
    # Copies are independent: stepping one leaves the other as it was.
    c = copy.deepcopy(model)
    assert c[0].weight.grad is not None and torch.equal(c[0].weight.grad,
                                                        model[0].weight.grad)
    q = model[0].weight.q.clone()
    dqt.optim.AdamW(c.parameters(), lr=0.1).step()
    assert not torch.equal(c[0].weight.q, q) and torch.equal(model[0].weight.q, q)
    # A lone parameter pickles too, as a parameter.
    buf = io.BytesIO()
    torch.save(model[2].weight, buf)
    buf.seek(0)
    p = torch.load(buf, weights_only=False)
    assert isinstance(p, torch.nn.Parameter) and torch.equal(p.q, model[2].weight.q)


def test_to_keeps_the_parameter_and_dtype_casts_keep_the_integers():
    model = mlp()
    w = model[0].weight
    opt = dqt.optim.AdamW(model.parameters(), lr=0.1)
    model.to(torch.bfloat16)   # float tensors cast, integers as they are
    assert model[0].weight is w and w.dtype == torch.float32
    assert model[0].bias.dtype == torch.bfloat16
    model.float()
    model.to("cpu")
    assert model[0].weight is w
    # The parameters keep their order (the optimizers' tensor ids follow it).
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias",
                                                        "2.weight", "2.bias"]
    backward(model)
    opt.step()  # the optimizer built before still steps the same weight
    assert opt.state[w]["step"] == 1
    # Tensor-level copies: .clone() and .to(device) copy the integers.
    c = w.clone()
    assert isinstance(c, dqt.QuantizedTensor) and c.quantized is not w.quantized
    assert torch.equal(c.q, w.q)
    assert torch.equal(w.to(torch.bfloat16), w.dequantize().to(torch.bfloat16))


def test_state_dict_holds_plain_tensors():
    model = mlp(bits=4)
    sd = model.state_dict()
    assert "0.weight" not in sd and sd["0.weight_q"].dtype == torch.int8
    assert all(type(v) is torch.Tensor for v in sd.values())
    other = mlp(seed=5, bits=4)
    other.load_state_dict(sd)
    same_model(model, other)


def test_post_accumulate_grad_hook_sees_the_gradient():
    # torch's per-parameter hook fires for quantized weights too (what
    # stepping inside the backward pass builds on).
    model = mlp()
    seen = []
    for p in model.parameters():
        p.register_post_accumulate_grad_hook(lambda p: seen.append(tuple(p.grad.shape)))
    backward(model)
    assert sorted(seen) == sorted([(16, 8), (16,), (4, 16), (4,)])


@pytest.mark.parametrize("make", [
    lambda ps: dqt.optim.AdamW(ps, lr=0.05, seed=3),
    lambda ps: dqt.optim.SGD(ps, lr=0.05, seed=3),
    lambda ps: dqt.optim.Adafactor(ps, lr=0.05, seed=3)])
def test_step_in_backward_is_bit_identical_and_frees_gradients(make):
    a, b = mlp(bits=4), mlp(bits=4)
    opt_a, opt_b = make(a.parameters()), make(b.parameters())
    handles = opt_b.step_in_backward()
    for t in range(3):
        opt_a.zero_grad()
        opt_b.zero_grad()
        backward(a, seed=t)
        stats_a = opt_a.step()
        q_before = b[0].weight.q.clone()
        backward(b, seed=t)
        # Stepped inside backward: the integers moved, their gradients are gone.
        assert b[0].weight.grad is None and b[2].weight.grad is None
        assert not torch.equal(b[0].weight.q, q_before)
        assert b[0].bias.grad is not None  # float parameters step in step()
        stats_b = opt_b.step()
        assert stats_a == stats_b
        for pa, pb in zip(a.parameters(), b.parameters()):
            if isinstance(pa, dqt.QuantizedTensor):
                assert torch.equal(pa.q, pb.q) and torch.equal(pa.dequantize(), pb.dequantize())
            else:
                assert torch.equal(pa.detach(), pb.detach())
    for h in handles:
        h.remove()
    backward(b)
    assert b[0].weight.grad is not None  # back to stepping in step()
