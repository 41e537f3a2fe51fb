#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the main job: compiles
# examples/adamw_step.mlir (a 3-parameter DQT AdamW group, 8-bit weights) for
# the CPU (LLVM dialect) and the GPU (PTX for sm_90, checked by ptxas when the
# CUDA toolkit is present), then JIT-runs the CPU kernel once on random data.
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
