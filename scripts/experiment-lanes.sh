# Sourced by the experiment scripts (scripts/experiment-*.sh): runs
# dqt-train on the `small` preset for every (seed, job) pair, seed-major,
# over LANES workers of one thread each. Finished runs (a summary.json) are
# skipped, so an experiment can be run in parts.
#
# The caller sets jobs_list=("NAME dqt-train args..." ...) and calls
# run_experiment. Environment: STEPS, LR, OUT, DATA, LANES, SEEDS, BIN (a
# copy of the binary, so that rebuilding build/ does not disturb running
# jobs), ONLY (a subset of the job names).
STEPS=${STEPS:-1000}
LR=${LR:-1e-3}
DATA=${DATA:-../shared/data}
LANES=${LANES:-2}
BIN=${BIN:-build/bin/dqt-train}

run_one() { # name, seed, method args...
  local name=$1 seed=$2
  shift 2
  [ -f "$OUT/$name-s$seed/summary.json" ] && return 0
  "$BIN" --preset small --steps "$STEPS" --lr "$LR" --seed "$seed" \
    --data-dir "$DATA" --out "$OUT/$name-s$seed" --tokenizer "$TOK" \
    --threads 1 --log-every 100 "$@" > "$OUT/$name-s$seed.out" 2>&1 ||
    echo "FAILED: $name-s$seed (see $OUT/$name-s$seed.out)"
  tail -1 "$OUT/$name-s$seed.out"
}

run_experiment() {
  mkdir -p "$OUT"
  TOK="$OUT/tokenizer.model"
  # The tokenizer first (trained once on the train split, shared by all).
  [ -f "$TOK" ] || "$BIN" --preset small --steps 1 --data-dir "$DATA" \
    --out "$OUT/tokenizer-run" --tokenizer "$TOK" > "$OUT/tokenizer.out" 2>&1
  local queue=() seed j
  for seed in $SEEDS; do
    for j in "${jobs_list[@]}"; do
      if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" ${j%% *} "* ]]; then
        continue
      fi
      queue+=("$seed|$j")
    done
  done
  lane() { # index
    local k item
    for ((k = $1; k < ${#queue[@]}; k += LANES)); do
      item=${queue[$k]}
      seed=${item%%|*}
      j=${item#*|}
      # shellcheck disable=SC2086
      run_one ${j%% *} "$seed" ${j#* }
    done
  }
  local l
  for ((l = 0; l < LANES; l++)); do lane "$l" & done
  wait
}
