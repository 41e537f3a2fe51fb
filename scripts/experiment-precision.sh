#!/usr/bin/env bash
# The precision-environment experiment (docs/results.md, "Precision
# environments: the paper's third claim"): the `small` preset, 1,000 steps,
# lr 1e-3, fp32 / bitnet / dqt-8 / dqt-1.58 in the bf16 and fp8
# environments, seeds 42 and 43. The FP32 environment's runs are those of
# the scale-rule experiment (the same settings; --precision fp32 is the
# default), so OUT can be that experiment's directory:
#
#   OUT=runs/scale bash scripts/experiment-precision.sh
#   (STEPS, LR, LANES, SEEDS, BIN, ONLY: scripts/experiment-lanes.sh)
# then scripts/precision-table $OUT (table and the memory/loss figure).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-runs/scale}
SEEDS=${SEEDS:-42 43}
# shellcheck source=scripts/experiment-lanes.sh
source scripts/experiment-lanes.sh

jobs_list=()
for p in bf16 fp8; do
  jobs_list+=("fp32-in-$p --method fp32 --precision $p"
    "bitnet-in-$p --method bitnet --precision $p"
    "dqt-8-in-$p --method dqt --bits 8 --precision $p"
    "dqt-1.58-in-$p --method dqt --bits 1.58 --precision $p")
done
run_experiment
