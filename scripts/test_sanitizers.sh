#!/usr/bin/env bash
# The sanitizer part of CI (run by scripts/test.sh after the Release tests; runnable alone).
#
# build-asan/: clang, AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer), -O1 with
# line tables, libFuzzer targets included; no Python package, no benchmarks. Runs the doctest
# suite, the ONNX conformance runner (--check), the hostile-model catalogue, the concurrency and
# determinism tests, the CLI's `run` and `coco` (leak-checked at exit), and a smoke run of each
# fuzz target. Every sanitizer report aborts the process, so it fails this script.
#
# build-tsan/: ThreadSanitizer, the concurrency and determinism tests (NIBBLE_TSAN=0 skips it).
#
# Environment: NIBBLE_JOBS (default: cores), NIBBLE_ASSETS (default ../shared),
#              NIBBLE_FUZZ_SECONDS (per target, default 60),
#              NIBBLE_FUZZ_RUNS (inputs per target, default 100000), NIBBLE_TSAN (default 1)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ASSETS="${NIBBLE_ASSETS:-$ROOT/../shared}"
JOBS="${NIBBLE_JOBS:-$(nproc)}"
FUZZ_SECONDS="${NIBBLE_FUZZ_SECONDS:-60}"
FUZZ_RUNS="${NIBBLE_FUZZ_RUNS:-100000}"
PYTHON="$ROOT/.venv/bin/python"
CLANG_C=clang-16
CLANG_CXX=clang++-16

status=0
# Runs a command, keeping going on failure so one CI run reports every finding.
check() {
  echo "sanitizers: $*"
  local start=$SECONDS
  if "$@"; then
    echo "sanitizers: ok ($((SECONDS - start)) s): $1"
  else
    echo "sanitizers: FAILED ($((SECONDS - start)) s): $*"
    status=1
  fi
}

configure() {  # build dir, sanitizer list, extra cmake arguments...
  local dir=$1 sanitize=$2
  shift 2
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER="$CLANG_C" -DCMAKE_CXX_COMPILER="$CLANG_CXX" \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DNIBBLE_SANITIZE="$sanitize" -DNIBBLE_BUILD_BENCHMARKS=OFF -DNIBBLE_BUILD_PYTHON=OFF "$@"
}

export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"

start=$SECONDS
echo "sanitizers: building build-asan (ASan + UBSan, libFuzzer targets)"
configure build-asan address,undefined -DNIBBLE_BUILD_FUZZERS=ON
cmake --build build-asan -j "$JOBS" --target nibble_cli nibble_tests nibble_conformance \
  nibble_hostile_models nibble_reliability_tests fuzz_onnx_load fuzz_image
echo "sanitizers: build-asan built in $((SECONDS - start)) s"

check build-asan/bin/nibble_tests
check build-asan/bin/nibble_conformance --check --expected tests/conformance/expected_failures.txt
check build-asan/bin/nibble_reliability_tests
"$PYTHON" tests/hostile/make_hostile_models.py build-asan/hostile_models
check build-asan/bin/nibble_hostile_models build-asan/hostile_models

# LeakSanitizer checks the CLI at exit: a detector on an image, and COCO evaluation on a few images.
if [[ -f $ASSETS/models/yolo11n-320-fp32.onnx && -d $ASSETS/coco-mini ]]; then
  check build-asan/bin/nibble run "$ASSETS/models/yolo11n-320-fp32.onnx" --image "$ASSETS/images/bus.jpg" --threads 2
  check build-asan/bin/nibble coco --model "$ASSETS/models/yolo11n-320-fp32.onnx" --coco-root "$ASSETS/coco-mini" \
    --max-images 3 --warmup 0 --threads 2 --out build-asan/coco
else
  echo "sanitizers: SKIPPED the CLI leak checks: shared models or coco-mini not found (set NIBBLE_ASSETS)"
fi

# Fuzz smoke: each target on its seed corpus with a fixed seed and run count (so a CI run is
# repeatable), bounded by NIBBLE_FUZZ_SECONDS; findings are written to build-asan/findings/.
"$PYTHON" fuzz/make_corpus.py build-asan/corpus --assets "$ASSETS"
mkdir -p build-asan/findings
check build-asan/bin/fuzz_onnx_load build-asan/corpus/onnx -max_len=262144 \
  -seed=1 -runs="$FUZZ_RUNS" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
  -artifact_prefix=build-asan/findings/
check build-asan/bin/fuzz_image build-asan/corpus/image -max_len=65536 \
  -seed=1 -runs="$FUZZ_RUNS" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
  -artifact_prefix=build-asan/findings/

if [[ ${NIBBLE_TSAN:-1} == 1 ]]; then
  tsan_start=$SECONDS
  echo "sanitizers: building build-tsan (ThreadSanitizer)"
  configure build-tsan thread -DNIBBLE_BUILD_TOOLS=OFF
  cmake --build build-tsan -j "$JOBS" --target nibble_reliability_tests
  check build-tsan/bin/nibble_reliability_tests
  echo "sanitizers: ThreadSanitizer part took $((SECONDS - tsan_start)) s"
fi

echo "sanitizers: done in $((SECONDS - start)) s, status $status"
exit "$status"
