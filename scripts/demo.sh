#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the main job:
# 1. compiles examples/adamw_step.mlir (a 3-parameter DQT AdamW group, 8-bit
#    weights) for the CPU (LLVM dialect) and the GPU (PTX for sm_90, checked
#    by ptxas when the CUDA toolkit is present) and JIT-runs the CPU kernel;
# 2. trains the `small` model on the standard split twice, with 8-bit DQT
#    (integer weights only) and with float AdamW, and prints their summary
#    table and the path of the loss plot (a few minutes on 2 cores).
#
#   DQT_DATA_DIR  the corpora (default ../shared/data)
#   DEMO_STEPS    training steps per run (default 200)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
BUILD=${DQT_BUILD:-build}
OUT="$BUILD/demo"
mkdir -p "$OUT"

echo "== dqt-opt --dqt-compile-cpu examples/adamw_step.mlir"
"$BUILD/bin/dqt-opt" examples/adamw_step.mlir --dqt-compile-cpu -o "$OUT/adamw_step.cpu.mlir"
echo "   $(grep -c 'llvm.func' "$OUT/adamw_step.cpu.mlir") llvm.func in $OUT/adamw_step.cpu.mlir"

echo "== dqt-opt --dqt-compile-gpu=\"chip=sm_90\" examples/adamw_step.mlir"
"$BUILD/bin/dqt-opt" examples/adamw_step.mlir --dqt-compile-gpu="chip=sm_90" -o "$OUT/adamw_step.gpu.mlir"
python3 scripts/extract-ptx.py "$OUT/adamw_step.gpu.mlir" > "$OUT/adamw_step.ptx"
echo "   $(grep -c '\.entry' "$OUT/adamw_step.ptx") kernel entry in $OUT/adamw_step.ptx"
if command -v ptxas >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/ptxas ]; then
  PTXAS=$(command -v ptxas || echo /usr/local/cuda/bin/ptxas)
  "$PTXAS" -arch=sm_90 -v "$OUT/adamw_step.ptx" -o "$OUT/adamw_step.cubin" 2>&1 |
    grep -E "spill|registers" | sed 's/^/   /'
else
  echo "   (ptxas not found: PTX not assembled)"
fi

echo "== dqt-step-demo: JIT the CPU kernel and run one step"
"$BUILD/bin/dqt-step-demo" examples/adamw_step.mlir --out "$OUT"

echo "== dqt-train: small preset, 8-bit DQT against float AdamW"
DATA=${DQT_DATA_DIR:-../shared/data}
STEPS=${DEMO_STEPS:-200}
TRAIN_OUT="$OUT/train"
rm -rf "$TRAIN_OUT/dqt-8" "$TRAIN_OUT/fp32"
for run in "dqt-8 --method dqt --bits 8" "fp32 --method fp32"; do
  set -- $run
  name=$1
  shift
  "$BUILD/bin/dqt-train" --preset small "$@" --steps "$STEPS" --lr 1e-3 \
    --data-dir "$DATA" --out "$TRAIN_OUT/$name" \
    --tokenizer "$TRAIN_OUT/tokenizer.model" --eval-tokens 16384 --log-every 50 |
    grep -v "^trainer_interface\|^bpe_model_trainer\|^sentencepiece_trainer"
done
echo
scripts/table "$TRAIN_OUT/dqt-8" "$TRAIN_OUT/fp32"
echo
scripts/plot "$TRAIN_OUT/dqt-8" "$TRAIN_OUT/fp32" --out "$TRAIN_OUT/figures" |
  grep loss.png | sed 's/^/loss plot: /'
