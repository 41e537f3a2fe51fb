"""End-to-end tests of build/bin/dqt-train on the `tiny` preset.

The data directory is a small slice (the first lines of every file) of the
standard split in shared/data, with the same layout, so a run takes seconds.
"""
import csv
import hashlib
import json
import math
import os
import pathlib
import subprocess

import pytest

TRAIN = os.environ.get("DQT_TRAIN_BIN", "build/bin/dqt-train")
DATA = os.environ.get("DQT_DATA_DIR", "../shared/data")
FILES = {
    "gutenberg/big.txt": 3000,
    "tinyshakespeare/input.txt": 3000,
    "wikitext-2/valid.txt": 1500,
    "wikitext-2/test.txt": 400,
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for rel, lines in FILES.items():
        src = pathlib.Path(DATA) / rel
        assert src.is_file(), f"{src} missing: set DQT_DATA_DIR to shared/data"
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(src, encoding="utf-8") as f:
            dst.write_text("".join(f.readlines()[:lines]), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    # Trained by the first run that names it, shared by the others.
    return tmp_path_factory.mktemp("tok") / "tokenizer.model"


def train(out, data_dir, tokenizer, *extra, check=True):
    cmd = [TRAIN, "--preset", "tiny", "--data-dir", str(data_dir),
           "--out", str(out), "--tokenizer", str(tokenizer),
           "--eval-tokens", "2048", "--threads", "2", *map(str, extra)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def summary(out):
    return json.loads((pathlib.Path(out) / "summary.json").read_text())


def log_rows(out):
    with open(pathlib.Path(out) / "log.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("method", [("dqt", "--bits", "8"),
                                    ("dqt", "--bits", "1.58"),
                                    ("dqt", "--bits", "4", "--state-dtype",
                                     "bf16"),
                                    ("dqt", "--bits", "8", "--optimizer",
                                     "adafactor"),
                                    ("fp32",), ("bitnet",)])
def test_loss_falls(tmp_path, data_dir, tokenizer, method):
    out = tmp_path / "run"
    train(out, data_dir, tokenizer, "--method", *method, "--steps", "80",
          "--lr", "3e-3")
    s = summary(out)
    # A stated margin: the mean loss of the last 10 steps is at least 0.6 nats
    # below the first step's (ln(vocab) ~ 6.2 at the start; 80 steps
    # of the tiny model reach about 5.4).
    assert s["final_train_loss"] < s["initial_loss"] - 0.6, s
    assert math.isfinite(s["eval_ppl"]) and s["eval_ppl"] > 1
    for key in ["state_bytes_per_param", "peak_rss_bytes", "tokens_per_s",
                "state_sha256"]:
        assert key in s
    rows = log_rows(out)
    assert [int(r["step"]) for r in rows] == list(range(1, 81))
    if method[0] == "dqt":
        changed = [float(r["changed_fraction"]) for r in rows]
        assert all(0 <= c <= 1 for c in changed) and max(changed) > 0
        assert all(int(r["nonfinite"]) == 0 for r in rows)
        assert "eval_ppl_ternary" in s or "--ternary-inference" in method


def test_state_accounting(tmp_path, data_dir, tokenizer):
    # DQT-8 with every parameter quantized: 1 byte of integers and 8 bytes of
    # f32 moments per parameter (+ 5 bytes per tensor); fp32: 16.
    out = tmp_path / "all"
    train(out, data_dir, tokenizer, "--method", "dqt", "--bits", "8",
          "--quantize", "all", "--steps", "3")
    s = summary(out)
    assert s["quantized_params"] == s["params"]
    assert 9.0 < s["state_bytes_per_param"] < 9.01
    train(tmp_path / "fp", data_dir, tokenizer, "--method", "fp32",
          "--steps", "3")
    assert summary(tmp_path / "fp")["state_bytes_per_param"] == 16.0
    # Packed ternary weights with bf16 moments: 1/4 + 2 + 2 bytes.
    train(tmp_path / "pk", data_dir, tokenizer, "--method", "dqt", "--bits",
          "1.58", "--quantize", "all", "--state-dtype", "bf16",
          "--packed-ternary", "--steps", "3")
    assert 4.25 < summary(tmp_path / "pk")["state_bytes_per_param"] < 4.26
    # bf16 moments: 1 + 2 + 2 bytes.
    train(tmp_path / "bf", data_dir, tokenizer, "--method", "dqt", "--bits",
          "1.58", "--quantize", "all", "--state-dtype", "bf16", "--steps", "3")
    s = summary(tmp_path / "bf")
    assert 5.0 < s["state_bytes_per_param"] < 5.01 and s["label"].endswith("-bf16")
    # Adafactor, stepped inside the backward pass: 1 byte of integers and the
    # factored r, c (4 (R + C) bytes per matrix); after the backward pass
    # instead, the f32 gradient (4 bytes) lives until the step.
    for name, extra, lo, hi in [("af", [], 1.0, 1.5),
                                ("af-late", ["--step-in-backward", "false"],
                                 5.0, 5.5)]:
        train(tmp_path / name, data_dir, tokenizer, "--method", "dqt",
              "--bits", "8", "--quantize", "all", "--optimizer", "adafactor",
              "--steps", "3", *extra)
        s = summary(tmp_path / name)
        assert lo < s["state_bytes_per_param"] < hi, (name, s)


@pytest.mark.parametrize("variant", [
    ["--bits", "4"],
    ["--bits", "1.58", "--quantize", "all", "--packed-ternary",
     "--state-dtype", "bf16"],
    ["--bits", "8", "--optimizer", "adafactor"],
    # One delta per output row (norm gains keep one per tensor).
    ["--bits", "4", "--scale", "row", "--quantize", "all"],
    # The absmax rule keeps max|w| per row (matrices) and per tensor (norm
    # gains) in the checkpoint: the next delta comes from it.
    ["--bits", "4", "--scale", "row", "--quantize", "all",
     "--scale-rule", "absmax"],
    # Tied embeddings: one integer weight at both ends, stepped once.
    ["--bits", "1.58", "--quantize", "all", "--tie-embeddings"]])
def test_resume_is_bit_exact(tmp_path, data_dir, tokenizer, variant):
    full, split = tmp_path / "full", tmp_path / "split"
    args = ["--method", "dqt", *variant, "--steps", "20", "--lr", "3e-3"]
    train(full, data_dir, tokenizer, *args)
    train(split, data_dir, tokenizer, *args, "--stop-after", "10")
    assert summary(split)["steps"] == 10
    r = train(split, data_dir, tokenizer, *args, "--resume")
    assert "resumed from" in r.stdout
    a, b = summary(full), summary(split)
    assert b["resumed_from"] == 10 and b["steps"] == 20
    rule = "absmax" if "absmax" in variant else "maxq"
    assert a["scale_rule"] == rule and a["label"].endswith("-absmax") == (rule == "absmax")
    assert a["state_sha256"] == b["state_sha256"]
    assert [r["loss"] for r in log_rows(full)] == \
        [r["loss"] for r in log_rows(split)]


def test_tied_embeddings(tmp_path, data_dir, tokenizer):
    tied, untied = tmp_path / "tied", tmp_path / "untied"
    args = ["--method", "fp32", "--steps", "4"]
    train(untied, data_dir, tokenizer, *args)
    train(tied, data_dir, tokenizer, *args, "--tie-embeddings", "--stop-after", "2")
    a, b = summary(untied), summary(tied)
    assert a["params"] - b["params"] == a["vocab"] * 64, (a, b)
    assert b["shape"]["tie_embeddings"] and not a["shape"]["tie_embeddings"]
    ckpt = next((tied / "checkpoints").iterdir())
    raw = (ckpt / "model.safetensors").read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert "param.embed_tokens" in header and "param.lm_head" not in header
    assert header["__metadata__"]["run.tie_embeddings"] == "1"
    # A resume must name the setting it lacks.
    r = train(tied, data_dir, tokenizer, *args, "--resume", check=False)
    assert r.returncode != 0
    assert "it was run with run.tie_embeddings = 1, this run has no such " \
        "setting" in r.stderr, r.stderr
    train(tied, data_dir, tokenizer, *args, "--tie-embeddings", "--resume")
    assert summary(tied)["steps"] == 4


def test_byte_fallback_tokenizer(tmp_path, data_dir, tokenizer):
    # A new tokenizer gets the 256 byte pieces; an existing one without them
    # is refused by --byte-fallback.
    tok = tmp_path / "bytes.model"
    train(tmp_path / "a", data_dir, tok, "--method", "fp32", "--steps", "1",
          "--byte-fallback")
    vocab = (tmp_path / "bytes.vocab").read_text().splitlines()
    assert sum(line.startswith("<0x") for line in vocab) == 256
    train(tmp_path / "b", data_dir, tokenizer, "--method", "fp32", "--steps", "1")
    r = train(tmp_path / "c", data_dir, tokenizer, "--method", "fp32",
              "--steps", "1", "--byte-fallback", check=False)
    assert r.returncode != 0 and "was trained without byte pieces" in r.stderr, \
        r.stderr


def test_resume_is_bit_exact_with_float_adamw(tmp_path, data_dir, tokenizer):
    full, split = tmp_path / "full", tmp_path / "split"
    args = ["--method", "fp32", "--steps", "12"]
    train(full, data_dir, tokenizer, *args)
    train(split, data_dir, tokenizer, *args, "--stop-after", "5")
    train(split, data_dir, tokenizer, *args, "--resume")
    assert summary(full)["state_sha256"] == summary(split)["state_sha256"]


def test_corrupt_checkpoint_is_refused_and_untouched(tmp_path, data_dir,
                                                     tokenizer):
    out = tmp_path / "run"
    args = ["--method", "dqt", "--bits", "8", "--steps", "6"]
    train(out, data_dir, tokenizer, *args, "--stop-after", "4")
    ckpt = out / "checkpoints" / "step-0000004" / "dqt-optimizer.safetensors"
    data = bytearray(ckpt.read_bytes())
    data[-3] ^= 0x40  # inside the last tensor's bytes
    ckpt.write_bytes(bytes(data))
    digest = hashlib.sha256(bytes(data)).hexdigest()
    r = train(out, data_dir, tokenizer, *args, "--resume", check=False)
    assert r.returncode != 0
    assert "checksum" in r.stderr, r.stderr
    assert hashlib.sha256(ckpt.read_bytes()).hexdigest() == digest
    # A truncated model file is refused as well.
    model = ckpt.parent / "model.safetensors"
    model.write_bytes(model.read_bytes()[:-10])
    r = train(out, data_dir, tokenizer, *args, "--resume", check=False)
    assert r.returncode != 0 and "error:" in r.stderr, r.stderr


def drop_metadata(path, key):
    """Rewrites the safetensors file `path` without the __metadata__ entry
    `key` (the tensor bytes and their checksums unchanged)."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    del header["__metadata__"][key]
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + n:])


def test_resume_of_a_numerics_v1_run_is_refused(tmp_path, data_dir, tokenizer):
    # What a build before numerics v2 wrote: the same files without
    # "dqt.numerics" in the optimizer file. A run cannot continue
    # bit-exactly across contracts, so --resume refuses it and changes
    # nothing (docs/numerics.md).
    out = tmp_path / "run"
    args = ["--method", "dqt", "--bits", "8", "--steps", "6"]
    train(out, data_dir, tokenizer, *args, "--stop-after", "4")
    step = out / "checkpoints" / "step-0000004"
    ckpt = step / "dqt-optimizer.safetensors"
    drop_metadata(ckpt, "dqt.numerics")
    before = {p.name: p.read_bytes() for p in step.iterdir()}
    r = train(out, data_dir, tokenizer, *args, "--resume", check=False)
    assert r.returncode != 0
    assert "was written under numerics contract v1 (4 uniforms per Philox " \
        "block, 24-bit)" in r.stderr, r.stderr
    assert "cannot continue bit-exactly across contracts" in r.stderr, r.stderr
    assert {p.name: p.read_bytes() for p in step.iterdir()} == before
    assert [p.name for p in (out / "checkpoints").iterdir()] == [step.name]


@pytest.mark.parametrize("args,message", [
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--bits", "9"], "bits must be 1.58 (ternary) or an integer in [2, 8]"),
    (["--bits", "1"], "bits must be 1.58 (ternary) or an integer in [2, 8]"),
    (["--method", "int4"], "--method must be fp32, bitnet or dqt"),
    (["--data-dir", "/nonexistent/data"], "is not a directory"),
    (["--steps", "0"], "--steps must be > 0"),
    (["--quantize", "some"], "--quantize must be linear or all"),
    (["--state-dtype", "f16"], "--state-dtype must be f32 or bf16"),
    (["--optimizer", "lion"], "--optimizer must be adamw or adafactor"),
    (["--scale", "column"], "--scale must be tensor or row"),
    (["--method", "fp32", "--scale", "row"], "--scale row needs --method dqt"),
    (["--scale-rule", "mean"], "--scale-rule must be maxq or absmax"),
    (["--bits", "1.58", "--scale-rule", "absmax"],
     "--scale-rule absmax needs --method dqt with --bits 2..8"),
    (["--device", "tpu"], "unknown device 'tpu' (cpu, cuda or cuda:N)"),
    (["--dim", "100", "--heads", "3"], "--dim 100 must split into --heads 3"),
    (["--ffn", "-1"], "must be >= 0"),
    (["--precision", "fp16"], "--precision must be fp32, bf16 or fp8"),
    (["--precision", "fp8", "--quantize", "all"],
     "--precision fp8 needs --quantize linear"),
])
def test_bad_command_lines(tmp_path, data_dir, args, message):
    base = {"--preset": "tiny", "--method": "dqt", "--bits": "8",
            "--steps": "5", "--data-dir": str(data_dir),
            "--out": str(tmp_path / "o")}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    cmd = [TRAIN] + [x for kv in base.items() for x in kv]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert not (tmp_path / "o" / "summary.json").exists()


def test_gpu_step_path_matches_the_cpu(tmp_path, data_dir, tokenizer):
    """The optimizer steps of a run through the CUDA path (the emulated
    driver with pageable host access steps the CPU tensors): the same
    losses and final state, bit for bit, as the CPU path."""
    driver = os.environ.get("DQT_EMULATED_CUDA_DRIVER")
    if not driver:
        pytest.skip("the emulated CUDA driver is built with the compiler; "
                    "the main build's ctest sets DQT_EMULATED_CUDA_DRIVER")
    args = ["--method", "dqt", "--bits", "4", "--scale", "row", "--steps", "3",
            "--lr", "3e-3", "--log-every", "1"]
    train(tmp_path / "cpu", data_dir, tokenizer, *args)
    env = dict(os.environ, DQT_CUDA_DRIVER=driver,
               DQT_EMULATED_CUDA_PAGEABLE="1", DQT_HOST_TENSORS_ON_GPU="0")
    cmd = [TRAIN, "--preset", "tiny", "--data-dir", str(data_dir),
           "--out", str(tmp_path / "gpu"), "--tokenizer", str(tokenizer),
           "--eval-tokens", "2048", "--threads", "2", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary(tmp_path / "cpu")["state_sha256"] == \
        summary(tmp_path / "gpu")["state_sha256"]
    assert [(x["loss"], x["changed_fraction"]) for x in log_rows(tmp_path / "cpu")] == \
        [(x["loss"], x["changed_fraction"]) for x in log_rows(tmp_path / "gpu")]
    # The steps did go to the GPU: one that cannot read host memory refuses.
    del env["DQT_EMULATED_CUDA_PAGEABLE"]
    cmd[cmd.index("--out") + 1] = str(tmp_path / "refused")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode != 0 and "cannot access pageable host memory" in r.stderr, \
        r.stdout + r.stderr


def test_device_cuda(tmp_path, data_dir, tokenizer):
    """--device cuda trains on a GPU; where there is none it says so and
    writes nothing."""
    import torch
    r = train(tmp_path / "o", data_dir, tokenizer, "--method", "dqt", "--bits",
              "8", "--steps", "20", "--lr", "3e-3", "--device", "cuda",
              check=False)
    if torch.cuda.is_available():
        assert r.returncode == 0, r.stdout + r.stderr
        rows = log_rows(tmp_path / "o")
        assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    else:
        assert r.returncode != 0
        assert "--device cuda: no CUDA device is available" in r.stderr, r.stderr
        assert not (tmp_path / "o" / "summary.json").exists()


def test_missing_data_file(tmp_path):
    (tmp_path / "d" / "wikitext-2").mkdir(parents=True)
    r = subprocess.run([TRAIN, "--steps", "1", "--data-dir",
                        str(tmp_path / "d"), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "has no gutenberg/big.txt" in r.stderr


def test_paper_presets_report_memory():
    per = {}
    for method in [("fp32",), ("bitnet",), ("dqt", "--bits", "8",
                                             "--quantize", "all")]:
        r = subprocess.run([TRAIN, "--preset", "130m", "--memory-only",
                            "--method", *method],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        j = json.loads(r.stdout)
        assert 120e6 < j["params"] < 200e6, j
        per[method[0]] = j["state_bytes_per_param"]
    assert per["fp32"] == per["bitnet"] == 16.0
    assert 9.0 < per["dqt"] < 9.01


def test_help_documents_the_options():
    r = subprocess.run([TRAIN, "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for opt in ["--preset", "--method", "--bits", "--steps", "--data-dir",
                "--out", "--resume", "--ternary-inference", "--optimizer",
                "--quantize", "--state-dtype", "--scale", "--save-every",
                "--tie-embeddings", "--dim", "--ffn", "--layers", "--heads",
                "--dump-eval", "--byte-fallback", "--scale-rule", "--nproc",
                "--verify-every", "--dist-timeout"]:
        assert opt in r.stdout


def test_resume_under_another_scale_rule_is_refused(tmp_path, data_dir, tokenizer):
    run = tmp_path / "run"
    args = ["--method", "dqt", "--bits", "4", "--steps", "2"]
    train(run, data_dir, tokenizer, *args, "--scale-rule", "absmax", "--stop-after", "1")
    r = train(run, data_dir, tokenizer, *args, "--resume", check=False)
    assert r.returncode != 0
    assert "it was run with run.method = dqt-4-absmax" in r.stderr, r.stderr
    train(run, data_dir, tokenizer, *args, "--scale-rule", "absmax", "--resume")
    assert summary(run)["steps"] == 2


def safetensors_dtypes(path):
    """{name: dtype} from a safetensors file's header."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    return {k: v["dtype"] for k, v in header.items() if k != "__metadata__"}


# What each environment claims to hold (docs/numerics.md, "Precision
# environments"), as dqt-train reads it off the live tensors of a step.
FP8_DTYPES = {"fp8_weights": "Float8_e4m3fn", "fp8_grads": "Float8_e5m2",
              "fp8_master": "Half", "fp8_exp_avg": "Float8_e4m3fn",
              "fp8_exp_avg_sq": "Half"}


@pytest.mark.parametrize("precision", ["bf16", "fp8"])
@pytest.mark.parametrize("method", [("fp32",), ("bitnet",),
                                    ("dqt", "--bits", "8"),
                                    ("dqt", "--bits", "1.58")])
def test_precision_environments(tmp_path, data_dir, tokenizer, precision,
                                method):
    out = tmp_path / "run"
    train(out, data_dir, tokenizer, "--method", *method, "--precision",
          precision, "--steps", "80", "--lr", "3e-3")
    s = summary(out)
    assert s["final_train_loss"] < s["initial_loss"] - 0.6, s
    assert math.isfinite(s["eval_ppl"]) and s["eval_ppl"] > 1
    assert s["precision"] == precision and s["label"].endswith("-in-" + precision)
    d = s["dtypes"]
    # Autocast: the projections compute in bf16 in both environments.
    assert d["activations"] == "BFloat16", d
    # Embeddings and norm gains stay f32 parameters with f32 gradients.
    assert d["float_weights"] == "Float" and d["float_grads"] == "Float", d
    if method[0] == "dqt":
        # The integers and their kernel's states are the same everywhere.
        assert d["integer_weights"] == "Char" and d["integer_states"] == "Float", d
    ckpt = pathlib.Path(s["checkpoint"]) / "model.safetensors"
    saved = safetensors_dtypes(ckpt)
    if precision == "fp8":
        # The float GEMM weights (every projection of fp32 and bitnet; the
        # head of all four) are FP8 weights with MS-AMP O2's dtypes.
        for k, v in FP8_DTYPES.items():
            assert d[k] == v, d
        assert saved["fp8.lm_head.master"] == "F16"
        assert saved["fp8.lm_head.exp_avg"] == "F8_E4M3"
        assert saved["fp8.lm_head.exp_avg_sq"] == "F16"
        assert ("fp8.layers.0.mlp.up_proj.master" in saved) == (method[0] != "dqt")
        assert "param.lm_head" not in saved
        # 7 bytes per FP8 weight (+ scales) against 16 for f32 AdamW.
        assert s["state_bytes_per_param"] < (16.0 if method[0] != "dqt" else 10.8)
    else:
        assert not any(k.startswith("fp8") for k in d), d
        assert not any(k.startswith("fp8.") for k in saved)
        assert saved["param.lm_head"] == "F32"


@pytest.mark.parametrize("variant", [
    ["--method", "dqt", "--bits", "8", "--precision", "bf16"],
    ["--method", "bitnet", "--precision", "fp8"],
    ["--method", "dqt", "--bits", "1.58", "--precision", "fp8"]])
def test_precision_resume_is_bit_exact(tmp_path, data_dir, tokenizer, variant):
    full, split = tmp_path / "full", tmp_path / "split"
    args = [*variant, "--steps", "16", "--lr", "3e-3"]
    train(full, data_dir, tokenizer, *args)
    train(split, data_dir, tokenizer, *args, "--stop-after", "8")
    train(split, data_dir, tokenizer, *args, "--resume")
    a, b = summary(full), summary(split)
    assert b["resumed_from"] == 8 and b["steps"] == 16
    assert a["state_sha256"] == b["state_sha256"]
    assert [r["loss"] for r in log_rows(full)] == \
        [r["loss"] for r in log_rows(split)]
    # A resume in another environment is refused before anything changes.
    other = [v for v in variant if v not in ("--precision", "bf16", "fp8")]
    r = train(split, data_dir, tokenizer, *other, "--steps", "20", "--lr", "3e-3",
              "--resume", check=False)
    assert r.returncode != 0
    assert "run.precision" in r.stderr, r.stderr
    assert summary(split)["steps"] == 16
    assert summary(split)["state_sha256"] == a["state_sha256"]
