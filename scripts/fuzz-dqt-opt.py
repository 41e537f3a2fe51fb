#!/usr/bin/env python3
"""Mutation fuzzer for dqt-opt's parser, verifiers and passes.

Takes the .mlir inputs under test/ and examples/, mutates them (truncation,
flipped bytes, deleted/duplicated/swapped lines, changed numbers, types and
attribute values, spliced fragments of other inputs), and runs dqt-opt on each
mutant with one of several pass lists. A run is a finding when dqt-opt
 - dies from a signal or prints a crash report ("Stack dump", "PLEASE submit"),
 - runs past the timeout (a hang), or
 - exits non-zero without a located diagnostic ("file:line:col: error:").
Findings are written to --out with the command that reproduces them.

  scripts/fuzz-dqt-opt.py --seconds 300 --dqt-opt build/bin/dqt-opt
"""
import argparse
import glob
import os
import random
import re
import shutil
import subprocess
import sys
import time

PIPELINES = [
    [],
    ["--dqt-fuse-step"],
    ["--dqt-fuse-step", "--dqt-lower-to-cpu"],
    ["--dqt-fuse-step", "--dqt-lower-to-gpu"],
    ["--dqt-expand-rng"],
    ["--dqt-compile-cpu"],
    ["--dqt-compile-gpu=chip=sm_90"],
    ["--mlir-print-op-generic"],
    # Training graphs: steps outlined from larger functions, the launches.
    ["--dqt-fuse-step", "--dqt-outline-steps"],
    ["--dqt-fuse-step", "--dqt-outline-steps", "--dqt-lower-to-cpu",
     "--one-shot-bufferize=bufferize-function-boundaries",
     "--dqt-lower-launch-to-cpu"],
    ["--dqt-lower-launch-to-gpu"],
]
TOKENS = ["i8", "i64", "f32", "f16", "bf16", "i32", "index", "tensor<?xf32>",
          "tensor<4xi8>", "tensor<?x?xf32>", "memref<?xf32>", "-1", "0", "1",
          "9", "127", "-128", "2147483648", "ternary", "bits = 8", "bits = 0",
          "segments = 0", "segments = 3", "tensors = 9", "rng",
          "tied = array<i64: 5>", 'reductions = ["mul"]', "dqt.yield",
          "%arg0", "%0", "{", "}", "(", ")", ":", ",", "->", "^bb0",
          "dqt.fused_step", "dqt.philox", "dqt.uniform", "func.func", "\x00",
          "dqt.launch", "outs(", "combiners []", "scf.for", "linalg.matmul",
          "tensor.collapse_shape", "@train_step_step0",
          "\xff", '"', "// -----"]


def mutate(text, corpus, rng):
    data = text
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(9)
        if not data:
            return rng.choice(corpus)
        if kind == 0:  # truncate
            data = data[:rng.randrange(len(data))]
        elif kind == 1:  # flip a byte
            i = rng.randrange(len(data))
            data = data[:i] + chr((ord(data[i]) ^ (1 << rng.randrange(7))) or 1) + data[i + 1:]
        elif kind == 2:  # delete a line
            lines = data.split("\n")
            del lines[rng.randrange(len(lines))]
            data = "\n".join(lines)
        elif kind == 3:  # duplicate a line
            lines = data.split("\n")
            i = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
            data = "\n".join(lines)
        elif kind == 4:  # swap two lines
            lines = data.split("\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            data = "\n".join(lines)
        elif kind == 5:  # change a number
            nums = list(re.finditer(r"-?\d+", data))
            if nums:
                m = rng.choice(nums)
                data = data[:m.start()] + rng.choice(["0", "-1", "1", "9", "65", "99999999999", "-128", "3"]) + data[m.end():]
        elif kind == 6:  # replace a token
            toks = list(re.finditer(r"[%\w.<>?]+", data))
            if toks:
                m = rng.choice(toks)
                data = data[:m.start()] + rng.choice(TOKENS) + data[m.end():]
        elif kind == 7:  # insert a token
            i = rng.randrange(len(data) + 1)
            data = data[:i] + rng.choice(TOKENS) + data[i:]
        else:  # splice a fragment of another input
            other = rng.choice(corpus)
            a = rng.randrange(len(other) + 1)
            b = min(len(other), a + rng.randrange(400))
            i = rng.randrange(len(data) + 1)
            data = data[:i] + other[a:b] + data[i:]
    return data


LOCATED = re.compile(r"(:\d+:\d+: error:|loc\(.*\): error:|^error: )", re.M)
# At the start of a line: diagnostics echo source lines, which may quote these.
CRASH = re.compile(r"^(Stack dump:|PLEASE submit a bug report|LLVM ERROR:|.*Assertion `.*' failed)", re.M)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dqt-opt", default="build/bin/dqt-opt")
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--timeout", type=float, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="fuzz-out")
    args = ap.parse_args()

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = sorted(glob.glob(os.path.join(root, "test", "**", "*.mlir"), recursive=True))
    files += sorted(glob.glob(os.path.join(root, "examples", "*.mlir")))
    corpus = []
    for f in files:
        text = open(f, errors="replace").read()
        # Split -split-input-file tests into their cases.
        corpus += [c for c in text.split("// -----") if c.strip()]
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    # Fuzz a snapshot, so rebuilding dqt-opt meanwhile does not disturb the run.
    snapshot = os.path.join(args.out, "dqt-opt")
    shutil.copy2(args.dqt_opt, snapshot)
    args.dqt_opt = snapshot
    stats = {"runs": 0, "ok": 0, "diagnosed": 0, "crash": 0, "hang": 0, "undiagnosed": 0}
    start = time.time()
    while time.time() - start < args.seconds:
        text = mutate(rng.choice(corpus), corpus, rng)
        flags = rng.choice(PIPELINES)
        path = os.path.join(args.out, "current.mlir")
        with open(path, "w", errors="replace") as f:
            f.write(text)
        cmd = [args.dqt_opt, path, "-o", os.devnull] + flags
        stats["runs"] += 1
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=args.timeout)
            err = p.stderr.decode(errors="replace")
            if p.returncode < 0 or CRASH.search(err):
                kind = "crash"
            elif p.returncode == 0:
                kind = "ok"
            elif LOCATED.search(err):
                kind = "diagnosed"
            else:
                kind = "undiagnosed"
        except subprocess.TimeoutExpired:
            kind, err = "hang", ""
        stats[kind] += 1
        if kind in ("crash", "hang", "undiagnosed"):
            n = stats["crash"] + stats["hang"] + stats["undiagnosed"]
            base = os.path.join(args.out, "%s-%03d" % (kind, n))
            with open(base + ".mlir", "w", errors="replace") as f:
                f.write(text)
            with open(base + ".txt", "w") as f:
                f.write(" ".join(cmd[:1] + [base + ".mlir"] + cmd[2:]) + "\n\n" + err[-4000:])
    os.remove(os.path.join(args.out, "current.mlir"))
    os.remove(snapshot)
    print("fuzz-dqt-opt: %.0f s, %d inputs from %d files" % (time.time() - start, len(corpus), len(files)))
    for k, v in stats.items():
        print("  %-12s %d" % (k, v))
    return 1 if stats["crash"] or stats["hang"] or stats["undiagnosed"] else 0


if __name__ == "__main__":
    sys.exit(main())
