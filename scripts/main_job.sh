#!/usr/bin/env bash
# The main job: YOLOv10m in FP32 and in the four low-bit schemes (W8A16, W8A8, W4A8, W4A16),
# timed in nibble, ONNX Runtime and OpenVINO side by side at 1 and 2 threads; with the shared
# assets present, also YOLOv10n (real weights) on coco-mini: its latency next to the others and
# its accuracy in each scheme. Nothing is downloaded besides what scripts/setup.sh installs.
#
#   bash scripts/main_job.sh
#
# Prints the tables and writes them to reports/: main_job.md, main_job.json, latency.svg
# (latency bars), latency_vs_map.svg (with the assets), peers.md/json (every run's times),
# bench/ (per-model `nibble bench --profile` JSON: time per node) and accuracy/ (`nibble compare`).
#
# Environment:
#   NIBBLE_ASSETS        the shared assets (default ../shared); without them the job still runs
#                        on yolov10m, calibrating on synthetic images, and skips the accuracy table
#   NIBBLE_BUILD_DIR     build tree (default build, made by scripts/setup.sh); another directory
#                        is configured and built here (the nibble tool only) and used instead
#   NIBBLE_REPORTS       where the reports and the generated models go (default reports)
#   NIBBLE_ROUNDS        turns each engine takes per model and thread count (default 5; one
#                        timed run per turn, after one warmup run)
#   NIBBLE_SKIP_SETUP=1  do not run scripts/setup.sh (packages, .venv and build/ already there)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ASSETS="${NIBBLE_ASSETS:-$ROOT/../shared}"
if [[ -d $ASSETS ]]; then ASSETS="$(cd "$ASSETS" && pwd)"; fi
BUILD="${NIBBLE_BUILD_DIR:-build}"
REPORTS="${NIBBLE_REPORTS:-reports}"
ROUNDS="${NIBBLE_ROUNDS:-5}"
MODELS="$REPORTS/models"
PYTHON="$ROOT/.venv/bin/python"

started=$SECONDS
stage_started=$SECONDS
STAGES=()
stage_done() {  # records how long the stage that just ended took
  STAGES+=("--stage" "$1=$((SECONDS - stage_started))")
  echo "main job: $1 took $((SECONDS - stage_started)) s (elapsed $((SECONDS - started)) s)" >&2
  stage_started=$SECONDS
}

# ---- set up and build -------------------------------------------------------------------------
if [[ ${NIBBLE_SKIP_SETUP:-0} != 1 ]]; then
  bash scripts/setup.sh
fi
if [[ $BUILD != build ]]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j "${NIBBLE_JOBS:-$(nproc)}" --target nibble_cli
fi
NIBBLE="$BUILD/bin/nibble"
if [[ ! -x $NIBBLE || ! -x $PYTHON ]]; then
  echo "main job: $NIBBLE or $PYTHON missing; run without NIBBLE_SKIP_SETUP=1" >&2
  exit 1
fi
stage_done "setup and build"

# ---- the models -------------------------------------------------------------------------------
mkdir -p "$MODELS" "$REPORTS/bench"
rm -f "$REPORTS"/bench/*.json
HAVE_ASSETS=0
if [[ -f $ASSETS/models/yolov10n-640-fp32.onnx && -d $ASSETS/coco-mini/val2017 && -d $ASSETS/images ]]; then
  HAVE_ASSETS=1
  CALIB="$ASSETS/images"  # photos that are not in coco-mini
  echo "main job: assets in $ASSETS; calibrating on $CALIB"
else
  # Without photos, activation ranges come from smooth random images: enough for yolov10m's
  # random weights, whose latency does not depend on what the image shows.
  CALIB="$MODELS/calib-synthetic"
  echo "main job: no assets at $ASSETS (set NIBBLE_ASSETS); yolov10m only, calibrating on synthetic images"
  "$PYTHON" - "$CALIB" <<'EOF'
import os, sys
import cv2
import numpy as np
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
for i in range(8):
    coarse = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (640, 480), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(os.path.join(out, f"synthetic{i}.png"), image)
EOF
fi

SCHEMES=(w8a16 w8a8 w4a8 w4a16)
"$NIBBLE" zoo yolov10m --out "$MODELS/yolov10m-fp32.onnx"
quantize_all() {  # FP32 model, output prefix, calibration images used, 4-bit weight rounding
  for scheme in "${SCHEMES[@]}"; do
    "$NIBBLE" quantize "$1" --scheme "$scheme" --format qcdq --calib-images "$CALIB" \
      --calib-count "$3" --weight-rounding "$4" --out "$2-$scheme.onnx" \
      | grep -v '^  '  # not the list of 8-bit layers
  done
}
# yolov10m's random weights are only timed: two images give its activation ranges, and its 4-bit
# weights are rounded to nearest (GPTQ changes accuracy, not the graph or its speed).
quantize_all "$MODELS/yolov10m-fp32.onnx" "$MODELS/yolov10m" 2 nearest
PEER_MODELS=()
if ((HAVE_ASSETS)); then
  quantize_all "$ASSETS/models/yolov10n-640-fp32.onnx" "$MODELS/yolov10n" 32 gptq
  PEER_MODELS+=("yolov10n-fp32=$ASSETS/models/yolov10n-640-fp32.onnx")
fi
PEER_MODELS+=("yolov10m-fp32=$MODELS/yolov10m-fp32.onnx")
for scheme in "${SCHEMES[@]}"; do
  PEER_MODELS+=("yolov10m-$scheme=$MODELS/yolov10m-$scheme.onnx")
done
stage_done "models"

# ---- nibble alone: resident weights and where the time goes ------------------------------------
for spec in "${PEER_MODELS[@]}"; do
  label="${spec%%=*}"
  "$NIBBLE" bench "${spec#*=}" --threads 2 --warmup 1 --iters 1 --profile --top 0 \
    --json "$REPORTS/bench/$label.json" >/dev/null
done
stage_done "profiles"

# ---- side by side: nibble, ONNX Runtime, OpenVINO -----------------------------------------------
"$PYTHON" bench/peers/peers.py "${PEER_MODELS[@]}" --threads 1 2 --rounds "$ROUNDS" --runs 1 \
  --warmup 1 --nibble "$NIBBLE" --md "$REPORTS/peers.md" --json "$REPORTS/peers.json" >/dev/null
stage_done "peers"

# ---- accuracy on coco-mini --------------------------------------------------------------------
ACCURACY=()
if ((HAVE_ASSETS)); then
  COMPARE=(--model "fp32=$ASSETS/models/yolov10n-640-fp32.onnx")
  for scheme in "${SCHEMES[@]}"; do
    COMPARE+=(--model "$scheme=$MODELS/yolov10n-$scheme.onnx")
  done
  "$NIBBLE" compare --coco-root "$ASSETS/coco-mini" "${COMPARE[@]}" --threads 2 --warmup 2 \
    --out "$REPORTS/accuracy" >/dev/null
  cp "$REPORTS/accuracy/latency_vs_map.svg" "$REPORTS/latency_vs_map.svg"
  ACCURACY=(--accuracy "$REPORTS/accuracy/compare.json")
  stage_done "accuracy"
fi

"$PYTHON" bench/peers/main_job_report.py --peers "$REPORTS/peers.json" \
  --bench "$REPORTS/bench" "${ACCURACY[@]}" "${STAGES[@]}" --elapsed $((SECONDS - started)) \
  --out "$REPORTS"
