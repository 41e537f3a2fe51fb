"""Data-parallel dqt-train (`--nproc N`, or under torchrun): 2 processes
over loopback and Gloo on the `tiny` preset (docs/design.md, "Data
parallel").

The runs use one thread per process. Faults are injected with dqt-train's
test-only variables DQT_TRAIN_TEST_KILL / _HANG / _PERTURB = "RANK:STEP".
"""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from test_dqt_train import TRAIN, data_dir, log_rows, summary  # noqa: F401

ARGS = ["--method", "dqt", "--bits", "8", "--steps", "12", "--lr", "3e-3",
        "--save-every", "4"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory, data_dir):  # noqa: F811
    # Trained once by a 1-process run, so the timed runs below do not.
    tok = tmp_path_factory.mktemp("tok") / "tokenizer.model"
    run(tmp_path_factory.mktemp("tokrun"), data_dir, tok, "--method", "fp32",
        "--steps", "1")
    return tok


def command(out, data_dir, tokenizer, *extra):  # noqa: F811
    return [TRAIN, "--preset", "tiny", "--data-dir", str(data_dir),
            "--out", str(out), "--tokenizer", str(tokenizer),
            "--eval-tokens", "2048", "--threads", "1", *map(str, extra)]


def run(out, data_dir, tokenizer, *extra, check=True, env=None,  # noqa: F811
        timeout=300):
    r = subprocess.run(command(out, data_dir, tokenizer, *extra),
                       capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, **(env or {})})
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def checkpoints(out):
    return sorted(p.name for p in (pathlib.Path(out) / "checkpoints").iterdir())


def safetensors(path):
    """{name: (dtype, bytes)} of a checkpoint file."""
    data = pathlib.Path(path).read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    return {k: (v["dtype"], data[8 + n + v["data_offsets"][0]:
                                 8 + n + v["data_offsets"][1]])
            for k, v in header.items() if k != "__metadata__"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir, tokenizer):  # noqa: F811
    """An uninterrupted 12-step 2-process run."""
    out = tmp_path_factory.mktemp("ref") / "run"
    run(out, data_dir, tokenizer, *ARGS, "--nproc", "2", "--verify-every", "1")
    return out


def test_replicas_are_checked_after_every_step(reference):
    s = summary(reference)
    assert s["nproc"] == 2
    # After initialization and after each of the 12 steps: every check found
    # the two replicas' state hashes equal (a difference stops the run).
    assert s["replica_checks"] == 13
    assert checkpoints(reference) == ["step-0000004", "step-0000008",
                                      "step-0000012"]
    assert [int(r["step"]) for r in log_rows(reference)] == list(range(1, 13))


def test_two_processes_match_one(tmp_path, data_dir, tokenizer):  # noqa: F811
    # The same global batch (8 sequences; 4 per process): the 2-process
    # gradient is the mean of two half-batch means, the 1-process one the
    # mean over the whole batch, which differ by rounding only. Measured on
    # this configuration: through step 5 the integer weights are identical,
    # the float tensors (float weights, AdamW and DQT moments) within 1.2e-7
    # and the losses equal to log.csv's 6 digits; at step 6 a rounding
    # difference in a gradient flips a stochastic rounding (12 integers of
    # 100k), which changes the next forward pass, and the runs drift apart:
    # after 80 steps the final train loss differs by 0.0012, the eval loss
    # by 0.001.
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["--method", "dqt", "--bits", "8", "--steps", "80", "--lr", "3e-3",
            "--save-every", "4"]
    run(one, data_dir, tokenizer, *args)
    run(two, data_dir, tokenizer, *args, "--nproc", "2", "--verify-every", "0")
    step4 = "checkpoints/step-0000004/"
    ints = floats = 0
    for name in ("dqt-optimizer.safetensors", "model.safetensors"):
        a = safetensors(one / (step4 + name))
        b = safetensors(two / (step4 + name))
        assert a.keys() == b.keys()
        for k in a:
            if a[k][0] in ("I8", "U8"):  # integers and their max |q|
                assert a[k] == b[k], k
                ints += 1
            else:
                assert a[k][0] == "F32", k
                x = np.frombuffer(a[k][1], np.float32)
                y = np.frombuffer(b[k][1], np.float32)
                assert np.abs(x - y).max() <= 1e-6, k
                floats += 1
    assert ints == 28 and floats > 0  # 2 layers x 7 projections x (q, max_q)
    la = [r["loss"] for r in log_rows(one)]
    lb = [r["loss"] for r in log_rows(two)]
    assert la[:4] == lb[:4]
    sa, sb = summary(one), summary(two)
    assert sa["initial_loss"] == pytest.approx(sb["initial_loss"], abs=1e-6)
    assert abs(sa["final_train_loss"] - sb["final_train_loss"]) < 0.01
    assert abs(sa["eval_loss"] - sb["eval_loss"]) < 0.01
    # --verify-every 0: at the start, at each checkpoint and at the end.
    assert sb["replica_checks"] == 1 + 80 // 4


def test_nproc_resume_is_bit_exact(tmp_path, data_dir, tokenizer,  # noqa: F811
                                   reference):
    split = tmp_path / "split"
    run(split, data_dir, tokenizer, *ARGS, "--nproc", "2", "--stop-after", "6")
    other = tmp_path / "other"
    shutil.copytree(split, other)
    r = run(split, data_dir, tokenizer, *ARGS, "--nproc", "2", "--resume")
    assert "resumed from" in r.stdout
    a, b = summary(reference), summary(split)
    assert b["resumed_from"] == 6 and b["steps"] == 12
    assert a["state_sha256"] == b["state_sha256"]
    assert [r["loss"] for r in log_rows(reference)] == \
        [r["loss"] for r in log_rows(split)]
    # Another world size resumes too (the state is not sharded): the same
    # global batches, its own all-reduce rounding.
    run(other, data_dir, tokenizer, *ARGS, "--resume")
    c = summary(other)
    assert c["nproc"] == 1 and c["resumed_from"] == 6 and c["steps"] == 12


def test_torchrun_mode(tmp_path, data_dir, tokenizer,  # noqa: F811
                       reference):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
           "2", "--master-addr", "127.0.0.1", "--master-port", str(port),
           "--no-python", *command(out, data_dir, tokenizer, *ARGS)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary(out)["state_sha256"] == summary(reference)["state_sha256"]


def test_killed_rank_stops_the_run(tmp_path, data_dir, tokenizer,  # noqa: F811
                                   reference):
    out = tmp_path / "run"
    t0 = time.monotonic()
    r = run(out, data_dir, tokenizer, *ARGS, "--nproc", "2", check=False,
            env={"DQT_TRAIN_TEST_KILL": "1:7"})
    elapsed = time.monotonic() - t0
    assert r.returncode != 0
    # Rank 0 finds its peer gone at the next collective and says so itself
    # (Gloo: "Connection closed by peer" or "reset"); the launcher names the
    # rank that died.
    assert "rank 0 of 2: the gradient all-reduce of step 7 failed" in r.stderr
    assert "Connection" in r.stderr, r.stderr
    assert "rank 1 was killed by signal 9" in r.stderr, r.stderr
    assert elapsed < 60, elapsed
    # The checkpoint before the failure is whole (nothing half written
    # beside it) and the run continues from it to the uninterrupted state.
    assert checkpoints(out) == ["step-0000004"]
    run(out, data_dir, tokenizer, *ARGS, "--nproc", "2", "--resume")
    assert summary(out)["state_sha256"] == summary(reference)["state_sha256"]


def test_survivor_without_launcher_fails_on_its_own(tmp_path,
                                                    data_dir,  # noqa: F811
                                                    tokenizer):
    # torchrun-style ranks, no parent to stop them: rank 1 dies at step 3,
    # rank 0 must fail with the reason rather than hang.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2",
               "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "DQT_TRAIN_TEST_KILL": "1:3"}
        procs.append(subprocess.Popen(
            command(out, data_dir, tokenizer, *ARGS), env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    t0 = time.monotonic()
    _, err0 = procs[0].communicate(timeout=120)
    procs[1].communicate(timeout=60)
    assert procs[0].returncode == 1
    assert procs[1].returncode == -9
    assert "rank 0 of 2: the gradient all-reduce of step 3 failed" in err0
    assert time.monotonic() - t0 < 60


def test_hung_rank_times_out(tmp_path, data_dir, tokenizer):  # noqa: F811
    out = tmp_path / "run"
    t0 = time.monotonic()
    r = run(out, data_dir, tokenizer, *ARGS, "--nproc", "2",
            "--dist-timeout", "3", check=False,
            env={"DQT_TRAIN_TEST_HANG": "1:3"})
    assert r.returncode != 0
    assert "the gradient all-reduce of step 3 failed" in r.stderr, r.stderr
    assert "Timed out" in r.stderr, r.stderr
    # 3 s of collective timeout, then the launcher's grace before it
    # terminates the hung rank.
    assert time.monotonic() - t0 < 60


def test_diverged_replicas_are_refused(tmp_path, data_dir,  # noqa: F811
                                       tokenizer):
    out = tmp_path / "run"
    r = run(out, data_dir, tokenizer, *ARGS[:-1], "2", "--nproc", "2",
            check=False, env={"DQT_TRAIN_TEST_PERTURB": "1:3"})
    assert r.returncode != 0
    # Rank 1's state changes after step 3; the check before the checkpoint
    # of step 4 (--verify-every is 10) finds it, and nothing is saved.
    assert "the replicas differ after step 4" in r.stderr, r.stderr
    assert checkpoints(out) == ["step-0000002"]


@pytest.mark.parametrize("args,message", [
    (["--nproc", "3"], "--batch 8 (the global batch) does not split over 3"),
    (["--nproc", "2", "--precision", "fp8"],
     "--precision fp8 is not supported with --nproc"),
    (["--nproc", "2", "--step-in-backward", "true"],
     "--step-in-backward true is not possible with --nproc"),
    (["--nproc", "2", "--device", "cuda"], "--nproc runs on the CPU"),
    (["--nproc", "0"], "--nproc must be >= 1"),
])
def test_bad_nproc_command_lines(tmp_path, data_dir, tokenizer,  # noqa: F811
                                 args, message):
    r = run(tmp_path / "run", data_dir, tokenizer, "--steps", "2", *args,
            check=False)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    # Refused by the launcher before any rank starts.
    assert r.stderr.count("error:") == 1, r.stderr
