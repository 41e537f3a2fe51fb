#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs every test: lit (IR, passes,
# PTX assembled by ptxas) and GoogleTest (JIT execution), through ctest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
BUILD=${DQT_BUILD:-build}
ctest --test-dir "$BUILD" --output-on-failure -j2 "$@"
