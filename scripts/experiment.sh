#!/usr/bin/env bash
# The issue-4 experiment (docs/results.md): the `small` preset trained with
# identical data, steps, learning rate and seed by every method, then the
# figures. Runs two lanes of one thread each (2 cores).
#
#   STEPS=400 LR=1e-3 OUT=runs/exp bash scripts/experiment.sh
#   ONLY="dqt-4 dqt-4-rows" ...   runs only the named jobs
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STEPS=${STEPS:-400}
LR=${LR:-1e-3}
OUT=${OUT:-runs/exp}
DATA=${DATA:-../shared/data}
LANES=${LANES:-2}
mkdir -p "$OUT"
TOK="$OUT/tokenizer.model"

run() { # name, method args...
  local name=$1
  shift
  [ -f "$OUT/$name/summary.json" ] && return 0
  build/bin/dqt-train --preset small --steps "$STEPS" --lr "$LR" \
    --data-dir "$DATA" --out "$OUT/$name" --tokenizer "$TOK" \
    --threads $((2 / LANES > 0 ? 2 / LANES : 1)) --log-every 50 "$@" \
    > "$OUT/$name.out" 2>&1
  tail -1 "$OUT/$name.out"
}

# The tokenizer first (trained once on the train split, shared by all runs).
[ -f "$TOK" ] || build/bin/dqt-train --preset small --steps 1 --data-dir "$DATA" \
  --out "$OUT/tokenizer-run" --tokenizer "$TOK" > "$OUT/tokenizer.out" 2>&1

jobs_list=(
  "fp32 --method fp32"
  "bitnet --method bitnet"
  "dqt-8 --method dqt --bits 8"
  "dqt-4 --method dqt --bits 4"
  "dqt-3 --method dqt --bits 3"
  "dqt-1.58 --method dqt --bits 1.58"
  "dqt-8-ti --method dqt --bits 8 --ternary-inference"
  "dqt-4-rows --method dqt --bits 4 --scale row"
  "dqt-1.58-rows --method dqt --bits 1.58 --scale row"
)
i=0
for j in "${jobs_list[@]}"; do
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" ${j%% *} "* ]]; then continue; fi
  # shellcheck disable=SC2086
  run $j &
  i=$((i + 1))
  if ((i % LANES == 0)); then wait; fi
done
wait
# The figures of the runs that exist.
runs=()
for j in "${jobs_list[@]}"; do
  [ -f "$OUT/${j%% *}/summary.json" ] && runs+=("$OUT/${j%% *}")
done
scripts/plot "${runs[@]}" --out "$OUT/figures"
