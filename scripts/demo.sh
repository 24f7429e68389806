#!/usr/bin/env bash
# Builds nibble and detects objects in the sample bus photo with YOLOv10n.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ASSETS="${NIBBLE_ASSETS:-$ROOT/../shared}"
MODEL="$ASSETS/models/yolov10n-640-fp32.onnx"
IMAGE="$ASSETS/images/bus.jpg"

for asset in "$MODEL" "$IMAGE"; do
  if [[ ! -f $asset ]]; then
    echo "demo: $asset not found; point NIBBLE_ASSETS at the shared assets directory" >&2
    exit 1
  fi
done

bash scripts/setup.sh
build/bin/nibble run "$MODEL" --image "$IMAGE"
