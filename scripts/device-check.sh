#!/usr/bin/env bash
# The device check (docs/performance.md, "GPU"): GPU results against CPU
# results computed beforehand, and the step's bandwidth against a
# device-to-device copy and torch's fused AdamW.
#
#   bash scripts/device-check.sh prepare    on a development machine (with
#        the compiler): the standard bundle (build/bundle), the CPU results
#        and the header-only dependencies, in build/device-check/.
#   bash scripts/device-check.sh run        on the GPU machine: PyTorch with
#        CUDA, CMake, ninja and g++, no MLIR/LLVM, no network. Carry
#        build/bundle and build/device-check (the device tool's `carry`).
#        Builds the runtime without the compiler (build/device), checks
#        every standard configuration on device 0, runs the launch tests
#        (where GoogleTest is installed), times N = 64Mi and 256Mi and writes
#        one report, $OUT/device-report.md (else build/device-check/).
#   bash scripts/device-check.sh run --emulated   the same dry run on a
#        machine without a GPU: the tests' emulated CUDA driver stands in
#        (DQT_CUDA_DRIVER), with a PTX-only bundle, at a small N.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mode=${1:-}
PY=${DQT_PYTHON:-python3}
CHECK=build/device-check

if [ "$mode" = prepare ]; then
  bash scripts/setup.sh >/dev/null
  mkdir -p "$CHECK/include"
  build/bin/dqt-cuda-check expected "$CHECK"
  # For `run --emulated` only: the emulated driver runs PTX (whose first line
  # names the configuration), not ptxas' cubins.
  build/bin/dqt-aot --standard --no-cubin --output "$CHECK/ptx-bundle" \
    --name dqt_standard >/dev/null
  cp /usr/include/xxhash.h "$CHECK/include/"
  cp -r /usr/include/nlohmann "$CHECK/include/"
  echo "device-check: prepared; carry build/bundle and $CHECK"
  exit 0
fi
if [ "$mode" != run ]; then
  echo "usage: scripts/device-check.sh prepare | run [--emulated]" >&2
  exit 2
fi
emulated=${2:-}
for need in build/bundle/libdqt_standard.so "$CHECK/expected.txt"; do
  [ -e "$need" ] || { echo "device-check: $need missing (run prepare)" >&2; exit 1; }
done
out=${OUT:-$CHECK}
mkdir -p "$out"
report="$out/device-report.md"
sizes=($((64 << 20)) $((256 << 20)))
bundle=$(pwd)/build/bundle/libdqt_standard.so
if [ "$emulated" = --emulated ]; then
  bundle=$(pwd)/$CHECK/ptx-bundle/libdqt_standard.so
  export DQT_CUDA_DRIVER
  DQT_CUDA_DRIVER=$(pwd)/$(ls build/lib/libdqt-emulated-cuda.so 2>/dev/null || true)
  [ -f "$DQT_CUDA_DRIVER" ] || { echo "device-check: no emulated driver in build/lib" >&2; exit 1; }
  sizes=($((1 << 12)))
fi
# A reconfigure when the bundle changed.
rm -f build/device/CMakeCache.txt
export DQT_CACHE_DIR=$(pwd)/build/device/kernel-cache

start=$(date +%s)
cmake -G Ninja -B build/device -S . -DCMAKE_BUILD_TYPE=Release \
  -DDQT_DEVICE_CHECK_ONLY=ON \
  -DDQT_EXTRA_INCLUDE="$(pwd)/$CHECK/include" \
  -DDQT_KERNEL_BUNDLE="$bundle" \
  -DDQT_PYTHON="$(command -v "$PY")" >"$out/configure.log" 2>&1
ninja -C build/device dqt-cuda-check dqt-bench >"$out/build.log" 2>&1
# The runtime's CUDA launch tests, where GoogleTest is installed.
tests=no
if ninja -C build/device -t targets all 2>/dev/null | grep -q '^dqt-runtime-tests:'; then
  ninja -C build/device dqt-runtime-tests >>"$out/build.log" 2>&1 && tests=yes
fi
built=$(date +%s)

{
  echo "# dqt device check, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "- driver: ${DQT_CUDA_DRIVER:-libcuda.so.1}"
  if command -v nvidia-smi >/dev/null; then
    echo "- GPU: $(nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader | head -1)"
  fi
  echo "- torch: $("$PY" -c 'import torch; print(torch.__version__, torch.version.cuda)')"
  echo "- build (no compiler, from the bundle): $((built - start)) s"
  echo
  echo "## Every standard configuration on device 0 against the CPU"
  echo
  echo '```'
  rc=0
  build/device/bin/dqt-cuda-check verify "$CHECK" || rc=$?
  echo '```'
  echo
  echo "## The runtime's CUDA launch tests"
  echo
  echo '```'
  if [ "$tests" = yes ]; then
    build/device/bin/dqt-runtime-tests \
      --gtest_filter='CudaDriverTest.*:Configs/CudaLaunch.*:CudaTensors.*' 2>&1 | tail -15 || rc=$?
  else
    echo "not built: no GoogleTest on this machine (dqt-cuda-check verify above runs the launches)"
  fi
  echo '```'
  echo
  for size in "${sizes[@]}"; do
  echo "## Bandwidth, N = $size (median of 20)"
  echo
  echo '```'
  build/device/bin/dqt-cuda-check bench "$size" || rc=$?
  echo '```'
  echo
  done
  echo "## The optimizers on CUDA tensors: dqt-bench --device=cuda"
  echo
  echo '```'
  if [ -n "${DQT_CUDA_DRIVER:-}" ]; then
    echo "skipped on the emulated driver (torch has no CUDA tensors there)"
  else
    mi=()
    for size in "${sizes[@]}"; do mi+=($((size >> 20))); done
    list=$(IFS=,; echo "1,${mi[*]}")
    build/device/bin/dqt-bench --device=cuda --reps=7 --sizes="$list" || rc=$?
  fi
  echo '```'
  echo
  echo "## torch fused AdamW on the same device"
  echo
  echo '```'
  "$PY" - "${sizes[@]}" <<'PYEOF' || true
import sys, time, torch
if not torch.cuda.is_available():
    print("no CUDA device for torch: skipped")
    sys.exit(0)
for n, dtype in ((int(a), d) for a in sys.argv[1:] for d in (torch.float32, torch.bfloat16)):
    p = [torch.zeros(n, device="cuda")]
    g = [torch.randn(n, device="cuda") * 1e-3]
    m = [torch.zeros(n, device="cuda", dtype=dtype)]
    v = [torch.zeros(n, device="cuda", dtype=dtype)]
    steps = [torch.zeros((), device="cuda")]
    ts = []
    for r in range(23):
        torch.cuda.synchronize()
        t = time.perf_counter()
        if dtype == torch.float32:
            torch._fused_adamw_(p, g, m, v, [], steps, lr=1e-3, beta1=0.9,
                                beta2=0.999, weight_decay=0.0, eps=1e-8,
                                amsgrad=False, maximize=False)
        else:  # torch has no bf16 states with f32 params in its fused kernel
            break
        torch.cuda.synchronize()
        if r >= 3:
            ts.append(time.perf_counter() - t)
    if ts:
        s = sorted(ts)[len(ts) // 2]
        print(f"torch_fused_adamw_f32    {n:12d} {s * 1e3:12.3f} {28 * n / s / 1e9:10.1f}")
PYEOF
  echo '```'
  echo
  echo "- total: $(( $(date +%s) - start )) s; exit status $rc"
} >"$report" 2>&1
cat "$report"
exit $rc
