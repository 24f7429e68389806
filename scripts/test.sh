#!/usr/bin/env bash
# Sets up and builds nibble, runs the test suite, then builds and runs examples/embed against an
# installed copy of the library (the way an application would use it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ASSETS="${NIBBLE_ASSETS:-$ROOT/../shared}"

bash scripts/setup.sh

# Keep going after a failure so one CI run reports everything; fail at the end.
status=0

echo "test: building examples/embed against an installed nibble"
rm -rf build/install build/embed
cmake --install build --prefix build/install
cmake -S examples/embed -B build/embed -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$ROOT/build/install"
cmake --build build/embed -j "${NIBBLE_JOBS:-$(nproc)}"
MODEL="$ASSETS/models/yolov10n-640-fp32.onnx"
if [[ -f $MODEL ]]; then
  build/embed/embed "$MODEL" || status=$?
else
  echo "test: SKIPPED running examples/embed: $MODEL not found (set NIBBLE_ASSETS)"
fi
ctest --test-dir build --output-on-failure || status=$?
echo "test: setup, Release build and tests took $((SECONDS / 60)) min"

# The same suites under AddressSanitizer + UndefinedBehaviorSanitizer, leak checks of the CLI and
# a smoke run of each fuzz target (a separate clang build, build-asan/).
sanitizers_start=$SECONDS
bash scripts/test_sanitizers.sh || status=$?
echo "test: sanitizers took $(((SECONDS - sanitizers_start) / 60)) min; total $((SECONDS / 60)) min"
exit "$status"
