#!/usr/bin/env python3
"""COCO mAP of a YOLO ONNX model the way Python users get it, as the reference for `nibble coco`.

ONNX Runtime runs the model; the images go through Ultralytics' own preprocessing (cv2.imread,
LetterBox: aspect-preserving cv2.resize INTER_LINEAR, centered gray-114 padding, BGR->RGB, /255,
NCHW); outputs are decoded as Ultralytics does ([1,N,6] end-to-end: score > conf, first max_det
rows; [1,4+C,N]: best class per anchor, score > conf, top-k, class-aware greedy NMS through
per-class box offsets of 7680, max_det); boxes go back to the original image (pad removed,
divided by the scale, clipped) and are scored by pycocotools' COCOeval on the evaluated images.

Differences from nibble that are inherent, not bugs: JPEG decoding (libjpeg in OpenCV vs
stb_image; a few levels on some pixels). EXIF orientation is ignored on both sides.

With --nibble, also runs `nibble coco` with the same settings and checks
  1. |mAP_50_95| and |mAP_50| differences <= --tolerance (default 0.002);
  2. pycocotools on nibble's detections.json gives nibble's own 12 stats (to 1e-9).
Exits 1 on a failed check, 0 otherwise (also when the assets are absent: SKIPPED).
"""
import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import onnxruntime as ort
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

CLASS_OFFSET = 7680.0  # Ultralytics' max_wh: keeps classes apart in one NMS pass
STAT_NAMES = ["mAP_50_95", "mAP_50", "mAP_75", "mAP_small", "mAP_medium", "mAP_large",
              "AR_1", "AR_10", "AR_100", "AR_small", "AR_medium", "AR_large"]


def letterbox(image, height, width):
    """Ultralytics LetterBox(auto=False, scaleup=True, center=True)."""
    h0, w0 = image.shape[:2]
    r = min(height / h0, width / w0)
    new_w, new_h = int(round(w0 * r)), int(round(h0 * r))
    dw, dh = (width - new_w) / 2, (height - new_h) / 2
    if (w0, h0) != (new_w, new_h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT,
                               value=(114, 114, 114))
    return image, r, left, top


def preprocess(path, height, width):
    bgr = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise SystemExit(f"cannot read image {path}")
    boxed, scale, left, top = letterbox(bgr, height, width)
    rgb = boxed[:, :, ::-1].transpose(2, 0, 1)
    tensor = np.ascontiguousarray(rgb, dtype=np.float32)[None] / np.float32(255)
    return tensor, bgr.shape[1], bgr.shape[0], scale, left, top


def box_iou(box, boxes):
    """IoU of one box with many, in float32 like the torch/torchvision path."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    overlap = w * h
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - overlap
    return np.where(union > 0, overlap / np.where(union > 0, union, 1), 0)


def decode(output, layout, conf, iou, max_det, topk):
    """Rows (x1, y1, x2, y2, score, class) in letterboxed pixels, best first."""
    if layout == "end-to-end":
        rows = output[0].astype(np.float32)
        rows = rows[(rows[:, 4] > conf) & (rows[:, 5] >= 0)]
        return rows[:max_det]
    preds = output[0].astype(np.float32).T  # [N, 4 + C]
    scores = preds[:, 4:]
    classes = scores.argmax(1)
    best = scores[np.arange(len(scores)), classes]
    keep = best > conf
    preds, classes, best = preds[keep], classes[keep], best[keep]
    half_w, half_h = preds[:, 2] / 2, preds[:, 3] / 2
    boxes = np.stack([preds[:, 0] - half_w, preds[:, 1] - half_h,
                      preds[:, 0] + half_w, preds[:, 1] + half_h], 1)
    order = np.argsort(-best, kind="stable")[:topk]
    boxes, classes, best = boxes[order], classes[order], best[order]
    shifted = boxes + (classes.astype(np.float32) * np.float32(CLASS_OFFSET))[:, None]
    suppressed = np.zeros(len(boxes), bool)
    kept = []
    for i in range(len(boxes)):
        if len(kept) >= max_det:
            break
        if suppressed[i]:
            continue
        kept.append(i)
        rest = np.arange(i + 1, len(boxes))
        rest = rest[~suppressed[rest]]
        if len(rest):
            suppressed[rest[box_iou(shifted[i], shifted[rest]) > iou]] = True
    kept = np.array(kept, int)
    return np.concatenate([boxes[kept], best[kept, None], classes[kept, None].astype(np.float32)],
                          1) if len(kept) else np.zeros((0, 6), np.float32)


def evaluate(annotations, detections, image_ids):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(annotations)
        if detections:
            dt = gt.loadRes(detections)
        else:  # loadRes cannot take an empty list
            dt = COCO()
            dt.dataset = {"images": gt.dataset["images"], "annotations": [],
                          "categories": gt.dataset["categories"]}
            dt.createIndex()
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.params.imgIds = sorted(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        summary = io.StringIO()
        with contextlib.redirect_stdout(summary):
            evaluator.summarize()
    return [float(s) for s in evaluator.stats], summary.getvalue()


def run_reference(args, annotations, images_dir):
    with open(annotations) as f:
        dataset = json.load(f)
    categories = sorted(c["id"] for c in dataset["categories"])  # class i -> i-th category id
    images = sorted(dataset["images"], key=lambda image: image["id"])
    if args.max_images:
        images = images[:args.max_images]

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    model_input = session.get_inputs()[0]
    height = width = args.imgsz or model_input.shape[2]
    if not args.imgsz and isinstance(model_input.shape[3], int):
        width = model_input.shape[3]
    output_shape = session.get_outputs()[0].shape
    layout = args.decoder
    if layout == "auto":
        layout = "end-to-end" if output_shape[2] == 6 else "nms"

    detections = []
    model_ms = []
    for image in images:
        tensor, w0, h0, scale, left, top = preprocess(
            os.path.join(images_dir, image["file_name"]), height, width)
        start = time.perf_counter()
        output = session.run(None, {model_input.name: tensor})[0]
        model_ms.append((time.perf_counter() - start) * 1000)
        rows = decode(output, layout, args.conf, args.iou, args.max_det, args.pre_nms_topk)
        s = np.float32(scale)
        x1 = np.clip((rows[:, 0] - np.float32(left)) / s, 0, np.float32(w0))
        y1 = np.clip((rows[:, 1] - np.float32(top)) / s, 0, np.float32(h0))
        x2 = np.clip((rows[:, 2] - np.float32(left)) / s, 0, np.float32(w0))
        y2 = np.clip((rows[:, 3] - np.float32(top)) / s, 0, np.float32(h0))
        for i in range(len(rows)):
            detections.append({
                "image_id": image["id"], "category_id": categories[int(round(rows[i, 5]))],
                "bbox": [float(x1[i]), float(y1[i]), float(x2[i] - x1[i]), float(y2[i] - y1[i])],
                "score": float(rows[i, 4])})
    stats, summary = evaluate(annotations, detections, [image["id"] for image in images])
    return {"model": args.model, "layout": layout, "num_images": len(images),
            "num_detections": len(detections), "stats": stats,
            "metrics": dict(zip(STAT_NAMES, stats)),
            "model_median_ms": float(np.median(model_ms)), "summary": summary}


def run_nibble(args, out_dir):
    command = [args.nibble, "coco", "--model", args.model, "--coco-root", args.coco_root,
               "--out", out_dir, "--warmup", "0", "--conf", str(args.conf), "--iou", str(args.iou),
               "--max-det", str(args.max_det), "--pre-nms-topk", str(args.pre_nms_topk),
               "--decoder", args.decoder]
    for flag, value in (("--ann", args.ann), ("--max-images", args.max_images),
                        ("--imgsz", args.imgsz), ("--threads", args.threads)):
        if value:
            command += [flag, str(value)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(out_dir, "metrics.json")) as f:
        return json.load(f)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    assets = os.environ.get("NIBBLE_ASSETS", os.path.join(here, "..", "..", "..", "shared"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.join(assets, "models", "yolov10n-640-fp32.onnx"))
    ap.add_argument("--coco-root", default=os.path.join(assets, "coco-mini"))
    ap.add_argument("--ann", help="default COCO_ROOT/annotations/instances_val2017.json")
    ap.add_argument("--max-images", type=int, default=0)
    ap.add_argument("--imgsz", type=int, default=0)
    ap.add_argument("--conf", type=float, default=0.001)
    ap.add_argument("--iou", type=float, default=0.7)
    ap.add_argument("--max-det", type=int, default=300)
    ap.add_argument("--pre-nms-topk", type=int, default=30000)
    ap.add_argument("--decoder", choices=["auto", "end-to-end", "nms"], default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="write the reference metrics and detections count as JSON")
    ap.add_argument("--nibble", help="nibble executable: run it too and compare")
    ap.add_argument("--tolerance", type=float, default=0.002)
    args = ap.parse_args()

    annotations = args.ann or os.path.join(args.coco_root, "annotations",
                                           "instances_val2017.json")
    stem = os.path.splitext(os.path.basename(annotations))[0]
    images_dir = os.path.join(args.coco_root, stem[len("instances_"):]
                              if stem.startswith("instances_") else "val2017")
    if not os.path.isdir(images_dir):
        images_dir = os.path.join(args.coco_root, "val2017")
    if not os.path.exists(args.model) or not os.path.exists(annotations):
        print(f"SKIPPED: {args.model} or {annotations} not found")
        return 0

    reference = run_reference(args, annotations, images_dir)
    print(f"reference (onnxruntime {ort.__version__} + opencv {cv2.__version__} + pycocotools): "
          f"{reference['num_images']} images, {reference['num_detections']} detections, "
          f"decoder {reference['layout']}")
    print(reference["summary"], end="")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({k: v for k, v in reference.items() if k != "summary"}, f, indent=2)
    if not args.nibble:
        return 0

    failures = 0
    with tempfile.TemporaryDirectory() as out_dir:
        nibble = run_nibble(args, out_dir)
        with open(os.path.join(out_dir, "detections.json")) as f:
            nibble_detections = json.load(f)
        image_ids = [int(i) for i in sorted({image["id"] for image in
                                             json.load(open(annotations))["images"]})]
        if args.max_images:
            image_ids = image_ids[:args.max_images]
        pycocotools_on_nibble, _ = evaluate(annotations, nibble_detections, image_ids)
    print(f"nibble: {nibble['metrics']['num_images']} images, "
          f"{nibble['metrics']['num_detections']} detections")
    print(f"{'metric':12s} {'reference':>10s} {'nibble':>10s} {'diff':>9s}")
    for name in STAT_NAMES[:6]:
        ref, got = reference["metrics"][name], nibble["metrics"][name]
        print(f"{name:12s} {ref:10.5f} {got:10.5f} {got - ref:+9.5f}")
    for name in ("mAP_50_95", "mAP_50"):
        diff = abs(nibble["metrics"][name] - reference["metrics"][name])
        if diff > args.tolerance:
            print(f"FAIL: {name} differs by {diff:.5f} > {args.tolerance}")
            failures += 1
    worst = max(abs(a - b) for a, b in zip(pycocotools_on_nibble, nibble["coco_stats"]))
    print(f"pycocotools on nibble's detections.json vs nibble's COCOeval: max |diff| {worst:.3g} "
          "over the 12 stats")
    if worst > 1e-9:
        print("FAIL: nibble's COCOeval disagrees with pycocotools on the same detections")
        failures += 1
    print("OK" if not failures else f"{failures} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
