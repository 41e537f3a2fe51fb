"""dqt.export_training_graph: a converted model's forward, backward and DQT
step as one MLIR module, compiled by dqt-opt and run by mlir-runner, equal to
the Python model's step."""
import os
import shutil
import subprocess

import pytest
import torch
import torch.nn.functional as F

import dqt
from dqt.training_graph import bits_to_float, parse_printed_step


def _tool(env, name):
    d = os.environ.get(env)
    return os.path.join(d, name) if d else shutil.which(name)


DQT_OPT = os.environ.get("DQT_OPT") or shutil.which("dqt-opt")
RUNNER = _tool("DQT_LLVM_TOOLS_DIR", "mlir-runner") or "/usr/lib/llvm-22/bin/mlir-runner"
LIBS = os.environ.get("DQT_LLVM_LIB_DIR", "/usr/lib/llvm-22/lib")

needs_compiler = pytest.mark.skipif(
    not dqt.WITH_COMPILER,
    reason="this build has no compiler (test_refused_without_compiler covers it)")


def _mlp(bits=4, out=2, bias=True, seed=0):
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(4, 8, bias=False), torch.nn.ReLU(),
                            torch.nn.Linear(8, out, bias=bias))
    return dqt.convert(m, bits=bits)


def _run(path, pipeline="--dqt-compile-cpu"):
    assert DQT_OPT and os.path.exists(DQT_OPT), "dqt-opt not found (set DQT_OPT)"
    lowered = subprocess.run([DQT_OPT, path, pipeline], capture_output=True,
                             text=True)
    assert lowered.returncode == 0, lowered.stderr
    if pipeline != "--dqt-compile-cpu":
        return lowered.stdout
    run = subprocess.run(
        [RUNNER, "-e", "main", "-entry-point-result=void",
         f"-shared-libs={LIBS}/libmlir_c_runner_utils.so",
         f"-shared-libs={LIBS}/libmlir_runner_utils.so"],
        input=lowered.stdout, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return parse_printed_step(run.stdout)


def _check_step(model, opt, printed, loss):
    """The graph's step against the Python optimizer's (already taken)."""
    # The forward pass is the same float operations (activation quantization
    # included): the loss agrees to rounding of the matmul order.
    assert bits_to_float(printed["loss"]).item() == pytest.approx(loss, rel=1e-6)
    for k, p in enumerate(opt.param_groups[0]["params"]):
        st = opt.state[p]
        states = [v for key, v in st.items() if key != "step"]
        if isinstance(p, dqt.QuantizedTensor):
            w = p.quantized
            # Integer weights, their delta and max: exactly equal.
            assert printed[f"weights[{k}]"] == w.q.reshape(-1).tolist(), k
            assert bits_to_float(printed[f"delta[{k}]"]).item() == w.delta
            assert printed[f"maxq[{k}]"] == [w.max_q]
        else:
            got = bits_to_float(printed[f"weights[{k}]"])
            torch.testing.assert_close(got, p.detach().reshape(-1),
                                       rtol=1e-6, atol=1e-8)
        # The Adam moments: equal up to the rounding of the gradient's
        # matmuls (MLIR's loops and ATen's kernels sum in other orders).
        for s, state in enumerate(states):
            got = bits_to_float(printed[f"state{s}[{k}]"])
            torch.testing.assert_close(got, state.reshape(-1), rtol=1e-5,
                                       atol=1e-9)


@needs_compiler
def test_mlp_step_equals_python(tmp_path):
    model = _mlp()
    opt = dqt.optim.AdamW(model.parameters(), lr=0.01)
    x, y = torch.randn(8, 4), torch.randn(8, 2)

    def loss_fn(call, x, y):
        return F.mse_loss(call(x), y)

    path = str(tmp_path / "step.mlir")
    info = dqt.export_training_graph(model, (x, y), path, optimizer=opt,
                                     loss_fn=loss_fn, with_main=True)
    assert info["args"][:3] == ["weights[0]", "delta[0]", "maxq[0]"]
    assert "batch[1]" in info["args"] and info["results"][0] == "loss"
    text = open(path).read()
    assert "dqt.adam_moments" in text and "linalg.matmul" in text
    printed = _run(path)

    loss = loss_fn(model, x, y)
    loss.backward()
    opt.step()
    _check_step(model, opt, printed, loss.item())
    # The step did something: some integers moved.
    assert any(p.grad is not None for p in model.parameters())


@needs_compiler
def test_second_step_cross_entropy_8bit(tmp_path):
    # From a state after one Python step (t = 2), with cross-entropy: its
    # backward scatters, which the export decomposes to compare and select
    # (torch-mlir would emit tm_tensor, which MLIR 22 lacks).
    model = _mlp(bits=8, out=3, bias=False, seed=1)
    opt = dqt.optim.AdamW(model.parameters(), lr=0.02, weight_decay=0.1)
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))

    def loss_fn(call, x, y):
        return F.cross_entropy(call(x), y)

    loss_fn(model, x, y).backward()
    opt.step()
    opt.zero_grad()
    path = str(tmp_path / "step2.mlir")
    dqt.export_training_graph(model, (x, y), path, optimizer=opt,
                              loss_fn=loss_fn, with_main=True)
    assert "tm_tensor" not in open(path).read()
    printed = _run(path)
    loss = loss_fn(model, x, y)
    loss.backward()
    opt.step()
    _check_step(model, opt, printed, loss.item())


@needs_compiler
def test_compiles_for_gpu(tmp_path):
    model = _mlp()
    opt = dqt.optim.AdamW(model.parameters())
    path = str(tmp_path / "gpu.mlir")
    dqt.export_training_graph(
        model, (torch.randn(8, 4), torch.randn(8, 2)), path, optimizer=opt,
        loss_fn=lambda call, x, y: F.mse_loss(call(x), y))
    out = _run(path, "--dqt-compile-gpu=chip=sm_90")
    assert "gpu.binary @dqt_kernels" in out
    assert out.count("gpu.launch_func") == 3  # two integer weights, the bias
    assert "dqt." not in out.replace("dqt_kernels", "")


@needs_compiler
def test_refusals(tmp_path):
    model = _mlp()
    batch = (torch.randn(8, 4), torch.randn(8, 2))
    path = str(tmp_path / "x.mlir")

    def export(optimizer, b=batch, m=model):
        dqt.export_training_graph(
            m, b, path, optimizer=optimizer,
            loss_fn=lambda call, x, y: F.mse_loss(call(x), y))

    with pytest.raises(TypeError, match="dqt.optim optimizer"):
        export(torch.optim.SGD([torch.zeros(1)], lr=1))
    with pytest.raises(TypeError, match=r"example_batch\[1\] must be a tensor"):
        export(dqt.optim.AdamW(model.parameters()), (batch[0], 3))
    # Adafactor's factored statistics are computed on the host, outside the
    # kernel's IR; packed ternary weights would need unpacking in the
    # forward pass.
    with pytest.raises(NotImplementedError, match="statistics computed on the host"):
        export(dqt.optim.Adafactor(model.parameters()))
    for options, what in [({"bits": 1.58, "packed": True}, "packed ternary"),
                          ({"bits": 4, "scale": "row"}, "per-row scales")]:
        torch.manual_seed(0)
        m = dqt.convert(torch.nn.Sequential(torch.nn.Linear(4, 2, bias=False)),
                        **options)
        with pytest.raises(NotImplementedError, match=what):
            export(dqt.optim.AdamW(m.parameters()), m=m)
    assert not os.path.exists(path)


@pytest.mark.skipif(dqt.WITH_COMPILER, reason="covered by the tests above "
                    "in a build with the compiler")
def test_refused_without_compiler(tmp_path):
    model = _mlp()
    with pytest.raises(RuntimeError, match="needs the compiler"):
        dqt.export_training_graph(model, (torch.randn(8, 4),),
                                  str(tmp_path / "x.mlir"),
                                  optimizer=dqt.optim.AdamW(model.parameters()))
