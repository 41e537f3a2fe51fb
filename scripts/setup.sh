#!/usr/bin/env bash
# Sets up everything dqt needs and builds it (Release, assertions on).
# Idempotent: installs only what is missing, reconfigures only when needed.
#
#   DQT_PYTHON   the Python that gets torch and pytest (default: python3)
#   DQT_BUILD    build directory (default: build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=${DQT_PYTHON:-python3}
BUILD=${DQT_BUILD:-build}

apt_packages=(
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools clang-22
  cmake ninja-build g++ pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libsentencepiece-dev libxxhash-dev
  libssl-dev libgloo-dev
)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# LibTorch comes from the PyPI torch wheel; pytest and numpy for the Python
# side; matplotlib for scripts/plot.
if ! "$PY" -c "import torch, pytest, numpy, matplotlib" >/dev/null 2>&1; then
  echo "setup: installing Python packages (torch, pytest, numpy, matplotlib) for $PY"
  "$PY" -m pip install -q "torch==2.15.*" pytest numpy matplotlib
fi

# The engines the export tests load models in (docs/design.md, "Export"):
# transformers (+ accelerate, which its BitNet loader requires), safetensors,
# sentencepiece, gguf, and llama-cpp-python, which builds llama.cpp from its
# PyPI sdist (CPU only). That build is slow (about 10 minutes on 2 cores), so
# its wheel is kept in $BUILD/wheels (DQT_WHEEL_DIR) and installed from
# there when present.
LLAMA_CPP_VERSION=${DQT_LLAMA_CPP_VERSION:-0.3.36}
if ! "$PY" -c "import transformers, accelerate, safetensors, sentencepiece, google.protobuf, gguf" >/dev/null 2>&1; then
  echo "setup: installing Python packages (transformers, accelerate, safetensors, sentencepiece, protobuf, gguf) for $PY"
  "$PY" -m pip install -q "transformers>=5,<6" accelerate safetensors sentencepiece protobuf "gguf>=0.17"
fi
# torch-mlir's FX importer for dqt.export_training_graph (docs/design.md,
# "Training graphs"). Its wheel pins no torch; --no-deps keeps the torch
# above (its only other dependencies, numpy and packaging, are there).
TORCH_MLIR_VERSION=${DQT_TORCH_MLIR_VERSION:-20261001}
if ! "$PY" -c "import torch_mlir.fx" >/dev/null 2>&1; then
  echo "setup: installing torch-mlir $TORCH_MLIR_VERSION for $PY"
  "$PY" -m pip install -q --no-deps "torch-mlir==$TORCH_MLIR_VERSION" packaging
fi
if ! "$PY" -c "import llama_cpp" >/dev/null 2>&1; then
  wheels=${DQT_WHEEL_DIR:-$BUILD/wheels}
  mkdir -p "$wheels"
  if ! ls "$wheels"/llama_cpp_python-"$LLAMA_CPP_VERSION"-*.whl >/dev/null 2>&1; then
    echo "setup: building llama-cpp-python $LLAMA_CPP_VERSION from source (llama.cpp, CPU only) into $wheels"
    CMAKE_ARGS="-DGGML_CUDA=OFF -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" \
      CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
      "$PY" -m pip wheel -q --no-deps --no-binary llama-cpp-python -w "$wheels" "llama-cpp-python==$LLAMA_CPP_VERSION"
  fi
  # The wheel from $wheels (never a rebuild here); its pure-Python
  # dependencies from the index.
  "$PY" -m pip install -q --find-links "$wheels" --only-binary llama-cpp-python \
    "llama-cpp-python==$LLAMA_CPP_VERSION"
fi

if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -G Ninja -B "$BUILD" -S . \
    -DCMAKE_BUILD_TYPE=Release \
    -DDQT_ENABLE_ASSERTIONS=ON \
    -DDQT_PYTHON="$(command -v "$PY")"
fi
ninja -C "$BUILD"

# `import dqt` from any directory: the package is assembled in $BUILD/python;
# a .pth file in the interpreter's site-packages points there (an editable
# install, without copying the build).
site=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
pkg="$(cd "$BUILD/python" && pwd)"
if [ "$(cat "$site/dqt.pth" 2>/dev/null)" != "$pkg" ]; then
  echo "$pkg" > "$site/dqt.pth"
fi
