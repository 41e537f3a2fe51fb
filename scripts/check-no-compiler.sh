#!/usr/bin/env bash
# Proves that a DQT_WITH_COMPILER=OFF build neither includes an MLIR/LLVM
# header nor links an MLIR/LLVM library (ctest `no-compiler-in-build` runs
# it on that build):
#  - the headers each object was compiled with (ninja's dependency log);
#  - the link command of each binary (ninja -t commands);
#  - the shared libraries each binary loads (ldd).
#
#   scripts/check-no-compiler.sh BUILD_DIR TARGET...
set -euo pipefail
build=$1
shift
pattern='(/mlir/|/llvm/|llvm-[0-9]+|libMLIR|libLLVM|libmlir_)'
fail=0

deps=$(ninja -C "$build" -t deps)
if grep -qE "$pattern" <<<"$deps"; then
  echo "FAIL: objects include MLIR/LLVM headers:"
  grep -E "$pattern" <<<"$deps" | sort -u | head -20
  fail=1
fi
nheaders=$(grep -c '^    ' <<<"$deps" || true)
echo "headers checked: $nheaders dependency entries, none under mlir/ or llvm/"

for target in "$@"; do
  cmd=$(ninja -C "$build" -t commands "$target" | tail -1)
  if grep -qE "$pattern" <<<"$cmd"; then
    echo "FAIL: $target links MLIR/LLVM: $cmd"
    fail=1
  fi
  out=$(sed -nE 's/.* -o ([^ ]+).*/\1/p' <<<"$cmd" | head -1)
  if [ -z "$out" ] || [ ! -e "$build/$out" ]; then
    echo "FAIL: cannot find the output of $target ($out)"
    fail=1
    continue
  fi
  libs=$(ldd "$build/$out")
  if grep -qE "$pattern" <<<"$libs"; then
    echo "FAIL: $out loads MLIR/LLVM:"
    grep -E "$pattern" <<<"$libs"
    fail=1
  fi
  echo "$target ($out): $(wc -l <<<"$libs") shared libraries, no MLIR/LLVM"
done
exit $fail
