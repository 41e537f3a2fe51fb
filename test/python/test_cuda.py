"""The GPU path from Python: layers, optimizers, dqt.functional and
dqt.random on CUDA tensors, bit for bit against the CPU.

Two ways to run it:

* on a CUDA device (the tests marked `needs_gpu`): torch tensors on the GPU,
  skipped where torch sees no device, saying so;
* without one: `test_emulated_gpu_path` runs this file as a script in a
  subprocess with the emulated CUDA driver (libdqt-emulated-cuda.so, built
  with the compiler: $DQT_EMULATED_CUDA_DRIVER, set by ctest), which reads
  pageable host memory, and $DQT_HOST_TENSORS_ON_GPU=0, so CPU tensors go
  through the same GPU path (the optimizers' launches, the scales computed
  by device operations, the statistics left on the device).
"""
import os
import subprocess
import sys

import pytest
import torch

import dqt

needs_gpu = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device here: the GPU path runs on the emulated driver "
           "(test_emulated_gpu_path) and on a GPU by scripts/device-check.sh")


def model(device="cpu"):
    torch.manual_seed(3)
    m = torch.nn.Sequential(
        dqt.nn.QuantLinear(24, 40, bits=8),
        torch.nn.ReLU(),
        dqt.nn.QuantLinear(40, 33, bits=4, scale="row"),
        torch.nn.ReLU(),
        dqt.nn.QuantLinear(33, 8, bits=1.58, packed=True),
    )
    return m.to(device)


def layers(m):
    return [x for x in m if isinstance(x, dqt.nn.QuantLinear)]


def weights_equal(a, b):
    for la, lb in zip(layers(a), layers(b)):
        wa, wb = la.weight, lb.weight
        assert torch.equal(wa.q.cpu(), wb.q.cpu())
        if wa.scale == "row":
            assert torch.equal(wa.delta_rows.cpu(), wb.delta_rows.cpu())
            assert torch.equal(wa.max_q_rows.cpu(), wb.max_q_rows.cpu())
        else:
            assert (wa.delta, wa.max_q) == (wb.delta, wb.max_q)
        assert torch.equal(la.bias.detach().cpu(), lb.bias.detach().cpu())


def train_both(device_step, device="cpu", steps=3, opt_cls=dqt.optim.AdamW, **hyper):
    """Trains a CPU model and its copy on `device` (stepped inside
    `device_step`) on the same batches; checks they stay identical."""
    ref = model()
    dev = model(device)  # the same seed: the same weights
    ref_opt = opt_cls(ref.parameters(), seed=5, **hyper)
    dev_opt = opt_cls(dev.parameters(), seed=5, **hyper)
    gen = torch.Generator().manual_seed(11)
    for t in range(steps):
        x = torch.randn(16, 24, generator=gen)
        for m, o in ((ref, ref_opt), (dev, dev_opt)):
            o.zero_grad()
            m(x.to(next(m.parameters()).device)).square().mean().backward()
        want = ref_opt.step()
        got = device_step(dev_opt)
        assert got.pending, "a GPU step must leave its statistics on the device"
        assert list(got) == list(want)
        assert not got.pending
        weights_equal(ref, dev)
    return ref_opt, dev_opt


def functional_both(device, run):
    n = 1003
    gen = torch.Generator().manual_seed(2)
    q = torch.randint(-100, 101, (n,), generator=gen, dtype=torch.int8)
    grad = torch.randn(n, generator=gen) * 0.01
    args = dict(step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                weight_decay=0.01, bits=8, seed=9, tensor_id=4)
    cpu = [q.clone(), grad, torch.zeros(n), torch.zeros(n)]
    dev = [t.clone().to(device) for t in cpu]
    want = dqt.functional.adamw_step_(cpu[0], 0.01, 100, cpu[1], cpu[2], cpu[3], **args)
    got = run(lambda: dqt.functional.adamw_step_(dev[0], 0.01, 100, dev[1], dev[2],
                                                 dev[3], **args))
    assert (got.delta, got.max_q, got.changed, got.nonfinite) == \
        (want.delta, want.max_q, want.changed, want.nonfinite)
    for a, b in zip(cpu, dev):
        assert torch.equal(a, b.cpu())


# -- on a CUDA device ------------------------------------------------------

@needs_gpu
def test_layers_and_optimizers_on_cuda_match_the_cpu():
    for opt_cls, hyper in ((dqt.optim.AdamW, dict(lr=1e-2)),
                           (dqt.optim.SGD, dict(lr=5e-2, momentum=0.9))):
        train_both(lambda o: o.step(), device="cuda", opt_cls=opt_cls, **hyper)


@needs_gpu
def test_layer_moves_with_its_integers_and_checkpoints_load_on_either_device():
    m = model()
    state = m.state_dict()
    g = model().cuda()
    w = layers(g)[0].weight
    assert w.device.type == "cuda" and layers(g)[0].bias.device.type == "cuda"
    x = torch.randn(4, 24)
    assert torch.allclose(g(x.cuda()).cpu(), m(x), atol=1e-5)
    weights_equal(m, g.cpu())
    assert layers(g)[0].weight.device.type == "cpu"
    fresh = model("cuda")
    fresh.load_state_dict(state)
    weights_equal(m, fresh)


@needs_gpu
def test_functional_and_random_on_cuda():
    functional_both("cuda", lambda f: f())
    u = dqt.random.philox_uniform(1, 2, 3, 1000, device="cuda")
    assert u.device.type == "cuda"
    assert torch.equal(u.cpu(), dqt.random.philox_uniform(1, 2, 3, 1000))


@needs_gpu
def test_mixed_devices_are_refused_with_nothing_changed():
    a, b = model(), model("cuda")
    params = list(layers(a)[0].parameters()) + list(layers(b)[0].parameters())
    with pytest.raises(RuntimeError, match="share a device"):
        opt = dqt.optim.AdamW(params)
        for m in (a, b):
            m(torch.randn(2, 24, device=next(m.parameters()).device)).sum().backward()
        opt.step()


# -- on the emulated driver ------------------------------------------------

def _on_emulated_gpu(fn):
    os.environ["DQT_HOST_TENSORS_ON_GPU"] = "0"
    try:
        return fn()
    finally:
        del os.environ["DQT_HOST_TENSORS_ON_GPU"]


def _emulated_checks():
    for opt_cls, hyper in ((dqt.optim.AdamW, dict(lr=1e-2)),
                           (dqt.optim.SGD, dict(lr=5e-2, momentum=0.9))):
        train_both(lambda o: _on_emulated_gpu(o.step), opt_cls=opt_cls, **hyper)
    functional_both("cpu", _on_emulated_gpu)


def test_emulated_gpu_path():
    driver = os.environ.get("DQT_EMULATED_CUDA_DRIVER")
    if not driver:
        pytest.skip("the emulated CUDA driver is built with the compiler; "
                    "the main build's ctest sets DQT_EMULATED_CUDA_DRIVER")
    env = dict(os.environ, DQT_CUDA_DRIVER=driver, DQT_EMULATED_CUDA_PAGEABLE="1")
    r = subprocess.run([sys.executable, __file__], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.strip().endswith("emulated GPU path: ok"), \
        r.stdout + r.stderr


if __name__ == "__main__":
    _emulated_checks()
    print("emulated GPU path: ok")
