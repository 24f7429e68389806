#!/usr/bin/env python3
"""QDQ models from `nibble quantize`: nibble vs ONNX Runtime on the same quantized model.

For each model and image, `nibble run MODEL --image IMG` saves the letterboxed input and the
outputs; ONNX Runtime runs that input. Prints, per model, the max |diff| of the raw output and
the max |diff| of the sorted scores, and how many YOLOv10 detections (class + box within 2 px,
score > 0.25) agree. ONNX Runtime runs without graph optimizations by default, i.e. the graph's
fake-quant float semantics, which nibble reproduces up to float rounding (with them, ORT fuses
QDQ into integer ops that round differently). Exits non-zero when a
model fails to load in ONNX Runtime or its detections disagree on more than `--max-mismatch` of
the boxes.

  .venv/bin/python tests/e2e/check_quantized_with_ort.py --nibble build/bin/nibble \
      --images ../shared/coco-mini/val2017 --count 4 /tmp/q/*.onnx
"""
import argparse
import glob
import os
import sys
import tempfile

import numpy as np
import onnxruntime as ort

from compare_with_ort import run_nibble, sanitize, yolov10_detections


def matched(a, b, px=2):
    """Detections of `a` that have a same-class box in `b` within `px` pixels."""
    used, n = set(), 0
    for cls, box in a:
        for j, (cls2, box2) in enumerate(b):
            if j not in used and cls == cls2 and max(abs(x - y) for x, y in zip(box, box2)) <= px:
                used.add(j)
                n += 1
                break
    return n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="+")
    p.add_argument("--nibble", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-mismatch", type=float, default=0.1)
    p.add_argument("--ort-optimization", choices=["disabled", "all"], default="disabled",
                   help="disabled: ONNX Runtime runs every Q/DQ node as written (the graph's "
                        "fake-quant float semantics); all: its QDQ fusions, which requantize in "
                        "integer arithmetic and round differently")
    args = p.parse_args()
    images = sorted(glob.glob(os.path.join(args.images, "*.jpg")))[: args.count]
    failed = False
    for model in args.models:
        so = ort.SessionOptions()
        if args.ort_optimization == "disabled":
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        name_in = session.get_inputs()[0].name
        worst, score_worst, agree, total = 0.0, 0.0, 0, 0
        for image in images:
            with tempfile.TemporaryDirectory() as tmp:
                run_nibble(args.nibble, model, image, tmp, args.threads)
                x = np.load(os.path.join(tmp, sanitize(name_in) + ".npy"))
                outs = session.run(None, {name_in: x})
                for info, ref in zip(session.get_outputs(), outs):
                    got = np.load(os.path.join(tmp, sanitize(info.name) + ".npy"))
                    worst = max(worst, float(np.abs(got.astype(np.float64) - ref).max()))
                got0 = np.load(os.path.join(tmp, sanitize(session.get_outputs()[0].name) + ".npy"))
                if outs[0].ndim == 3 and outs[0].shape[2] == 6:
                    # Rows of near-tied scores may leave TopK in either order: compare scores sorted.
                    score_worst = max(score_worst, float(np.abs(
                        np.sort(got0[0, :, 4]) - np.sort(outs[0][0, :, 4])).max()))
                    a, b = yolov10_detections(got0), yolov10_detections(outs[0])
                    agree += matched(a, b)
                    total += max(len(a), len(b))
        print(f"{os.path.basename(model)}: max|diff| {worst:.4g} (row order included), "
              f"sorted scores max|diff| {score_worst:.4g}, detections agree {agree}/{total}")
        if total and agree < (1 - args.max_mismatch) * total:
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
