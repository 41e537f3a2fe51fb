#!/usr/bin/env bash
# The scale-rule experiment (docs/results.md, "Scale rules over three
# seeds"): the `small` preset, 1,000 steps, lr 1e-3, every method under the
# paper's scale rule and under `absmax`, per tensor and per row, three seeds
# each. Two lanes of one thread each (2 cores). Finished runs are skipped, so
# the experiment can be run in parts:
#
#   OUT=runs/scale bash scripts/experiment-scale-rule.sh
#   ONLY="dqt-8-absmax dqt-8-rows-absmax" SEEDS="42" ...   a subset
#   BIN=/path/to/dqt-train ...   a copy of the binary, so that rebuilding
#                                 build/ does not disturb running jobs
# then scripts/seed-table $OUT/* [--out FIGURE.png] (table and seed bands).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-runs/scale}
SEEDS=${SEEDS:-42 43 44}
# shellcheck source=scripts/experiment-lanes.sh
source scripts/experiment-lanes.sh

jobs_list=(
  "fp32 --method fp32"
  "bitnet --method bitnet"
)
for b in 8 4 3 1.58; do
  jobs_list+=("dqt-$b --method dqt --bits $b"
    "dqt-$b-rows --method dqt --bits $b --scale row")
done
# Ternary weights keep the paper's rule under absmax (docs/design.md), so
# the absmax runs are the n-bit ones.
for b in 8 4 3; do
  jobs_list+=("dqt-$b-absmax --method dqt --bits $b --scale-rule absmax"
    "dqt-$b-rows-absmax --method dqt --bits $b --scale-rule absmax --scale row")
done

run_experiment
