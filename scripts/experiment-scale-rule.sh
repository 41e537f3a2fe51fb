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
STEPS=${STEPS:-1000}
LR=${LR:-1e-3}
OUT=${OUT:-runs/scale}
DATA=${DATA:-../shared/data}
LANES=${LANES:-2}
SEEDS=${SEEDS:-42 43 44}
BIN=${BIN:-build/bin/dqt-train}
mkdir -p "$OUT"
TOK="$OUT/tokenizer.model"

run() { # name, seed, method args...
  local name=$1 seed=$2
  shift 2
  [ -f "$OUT/$name-s$seed/summary.json" ] && return 0
  "$BIN" --preset small --steps "$STEPS" --lr "$LR" --seed "$seed" \
    --data-dir "$DATA" --out "$OUT/$name-s$seed" --tokenizer "$TOK" \
    --threads 1 --log-every 100 "$@" > "$OUT/$name-s$seed.out" 2>&1 ||
    echo "FAILED: $name-s$seed (see $OUT/$name-s$seed.out)"
  tail -1 "$OUT/$name-s$seed.out"
}

# The tokenizer first (trained once on the train split, shared by all runs).
[ -f "$TOK" ] || "$BIN" --preset small --steps 1 --data-dir "$DATA" \
  --out "$OUT/tokenizer-run" --tokenizer "$TOK" > "$OUT/tokenizer.out" 2>&1

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

# A queue of (seed, job) pairs, seed-major, served by LANES workers.
queue=()
for seed in $SEEDS; do
  for j in "${jobs_list[@]}"; do
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" ${j%% *} "* ]]; then continue; fi
    queue+=("$seed|$j")
  done
done
lane() { # index
  local k
  for ((k = $1; k < ${#queue[@]}; k += LANES)); do
    local item=${queue[$k]}
    local seed=${item%%|*} j=${item#*|}
    # shellcheck disable=SC2086
    run ${j%% *} "$seed" ${j#* }
  done
}
for ((l = 0; l < LANES; l++)); do lane "$l" & done
wait
