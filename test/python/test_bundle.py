"""Kernel bundles from Python: dqt.load_bundle, and bundled kernels giving the
JIT's results (in a build without the compiler, both runs use bundles)."""
import os
import subprocess
import sys

import pytest

import dqt

BUNDLE = os.environ.get("DQT_TEST_BUNDLE", "")

# Three SGD steps of a 3-bit per-row layer with bf16 states (a configuration
# no other test asks for), in a fresh process: prints the kernels taken from
# bundles and a digest of the weights and states.
STEPS = r"""
import hashlib, sys, torch, dqt
if sys.argv[1]:
    dqt.load_bundle(sys.argv[1])
torch.manual_seed(0)
layer = dqt.nn.QuantLinear(16, 8, bias=False, bits=3, scale="row")
opt = dqt.optim.SGD(layer.parameters(), lr=0.05, state_dtype=torch.bfloat16)
for _ in range(3):
    layer(torch.randn(4, 16)).sum().backward()
    opt.step()
    opt.zero_grad()
h = hashlib.sha256(layer.weight.q.numpy().tobytes())
h.update(layer.weight.delta_rows.numpy().tobytes())
for st in opt.state_dict()["state"].values():
    for v in st.values():
        if isinstance(v, torch.Tensor):
            h.update(v.view(torch.uint8).numpy().tobytes() if v.dim() else v.numpy().tobytes())
print(dqt._C.kernel_cache_stats()["bundled"], h.hexdigest())
"""


def run(bundle):
    env = dict(os.environ, DQT_CACHE_DIR="off")
    env.pop("DQT_BUNDLE", None)
    r = subprocess.run([sys.executable, "-c", STEPS, bundle], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    bundled, digest = r.stdout.split()
    return int(bundled), digest


@pytest.mark.skipif(not BUNDLE, reason="the build names no standard bundle "
                    "(DQT_TEST_BUNDLE is set by ctest)")
def test_bundled_kernels_give_the_jit_results():
    with_bundle = run(BUNDLE)
    without = run("")
    assert with_bundle[0] >= 1
    assert with_bundle[1] == without[1]
    if dqt.WITH_COMPILER:
        assert without[0] == 0  # the JIT made them
    else:
        assert without[0] >= 1  # the build's own bundle


def test_load_bundle_refuses_what_is_no_bundle(tmp_path):
    with pytest.raises(RuntimeError, match="cannot load the kernel bundle .*nothing.so"):
        dqt.load_bundle(str(tmp_path / "nothing.so"))
    with pytest.raises(RuntimeError, match="is not a kernel bundle"):
        dqt.load_bundle("libm.so.6")
