#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs every test: lit (IR, passes,
# PTX assembled by ptxas) and GoogleTest (JIT execution), through ctest; then
# builds the compiler-less configuration (DQT_WITH_COMPILER=OFF: LibTorch
# only, kernels from the standard bundle that dqt-aot made in the main build)
# and runs its tests. Arguments go to both ctest runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
BUILD=${DQT_BUILD:-build}
PY=${DQT_PYTHON:-python3}
ctest --test-dir "$BUILD" --output-on-failure -j2 "$@"

NOCOMP="$BUILD/nocompiler"
if [ ! -f "$NOCOMP/build.ninja" ]; then
  cmake -G Ninja -B "$NOCOMP" -S . \
    -DCMAKE_BUILD_TYPE=Release \
    -DDQT_ENABLE_ASSERTIONS=ON \
    -DDQT_WITH_COMPILER=OFF \
    -DDQT_KERNEL_BUNDLE="$(cd "$BUILD" && pwd)/bundle/libdqt_standard.so" \
    -DDQT_PYTHON="$(command -v "$PY")"
fi
ninja -C "$NOCOMP"
ctest --test-dir "$NOCOMP" --output-on-failure -j2 "$@"
