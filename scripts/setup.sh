#!/usr/bin/env bash
# Installs what nibble needs on a Debian 12 machine and builds it (Release) into build/.
# Idempotent: packages already installed, an existing .venv and an up-to-date build are kept.
#
# Environment: NIBBLE_JOBS  parallel build jobs (default: number of cores)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PACKAGES=(
  build-essential cmake                  # toolchain
  libprotobuf-dev protobuf-compiler      # ONNX protobuf parsing
  libonnx-dev                            # onnx.proto schema
  libstb-dev                             # image decoding
  libeigen3-dev libdnnl-dev              # reference/peer kernels
  libbenchmark-dev doctest-dev           # benchmarks and tests
  libcli11-dev                           # CLI argument parsing
  nlohmann-json3-dev                     # JSON reports and COCO annotations
  clang-16 libclang-rt-16-dev            # sanitizer builds and libFuzzer targets (scripts/test.sh)
  python3 python3-venv python3-dev       # ONNX Runtime reference checks, the Python package
)

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Python environment for the ONNX Runtime comparisons (tests/e2e/*.py).
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import onnx, onnxruntime, numpy, openvino, pycocotools, cv2, pytest, nanobind, scikit_build_core" 2>/dev/null; then
  echo "setup: installing onnx, onnxruntime, numpy, openvino, pycocotools, opencv, pytest, nanobind and scikit-build-core into .venv"
  .venv/bin/pip install -q "onnx>=1.17,<2" "onnxruntime>=1.20,<2" "numpy>=2,<3" "openvino>=2024,<2027" \
    "pycocotools>=2.0.7,<3" "opencv-python-headless>=4.8,<6" \
    "pytest>=7" "nanobind>=2.4,<4" "scikit-build-core>=0.10,<2"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DNIBBLE_BUILD_PYTHON=ON -DPython_EXECUTABLE="$ROOT/.venv/bin/python"
cmake --build build -j "${NIBBLE_JOBS:-$(nproc)}"
# The Python package into .venv, from the tree just built (the pip build finds it up to date).
CMAKE_GENERATOR="Unix Makefiles" .venv/bin/pip install -q --no-build-isolation -C build-dir=build .
