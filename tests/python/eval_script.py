#!/usr/bin/env python3
"""COCO evaluation of a YOLOv10 ONNX model, written the usual way against ONNX Runtime.

Switching it to nibble is the one-line change of the import below to `import nibble as ort`
(tests/python/test_eval_script.py runs it both ways). Preprocessing is Ultralytics' letterbox
through OpenCV; the end-to-end [1,300,6] output needs no NMS; pycocotools scores the boxes.
Prints one JSON object: mAP_50_95, mAP_50, the detection count and the median model latency.
"""
import argparse
import contextlib
import io
import json
import os
import time

import cv2
import numpy as np
import onnxruntime as ort
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def letterbox(bgr, size):
    """Aspect-preserving resize into size x size, centered on gray 114 (Ultralytics LetterBox)."""
    h0, w0 = bgr.shape[:2]
    r = min(size / h0, size / w0)
    w, h = int(round(w0 * r)), int(round(h0 * r))
    left, top = int(round((size - w) / 2 - 0.1)), int(round((size - h) / 2 - 0.1))
    canvas = np.full((size, size, 3), 114, np.uint8)
    canvas[top:top + h, left:left + w] = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_LINEAR)
    blob = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255
    return np.ascontiguousarray(blob), r, left, top


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--coco-root", required=True, help="DIR with val2017/ and annotations/")
    ap.add_argument("--max-images", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()

    annotations = os.path.join(args.coco_root, "annotations", "instances_val2017.json")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(annotations)
    category_ids = sorted(coco.getCatIds())
    image_ids = sorted(coco.getImgIds())[:args.max_images or None]

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    model_input = session.get_inputs()[0]
    size = model_input.shape[2]

    results, latencies = [], []
    for image_id in image_ids:
        info = coco.loadImgs(image_id)[0]
        bgr = cv2.imread(os.path.join(args.coco_root, "val2017", info["file_name"]))
        blob, scale, left, top = letterbox(bgr, size)
        start = time.perf_counter()
        (output,) = session.run(None, {model_input.name: blob})
        latencies.append(time.perf_counter() - start)
        for x1, y1, x2, y2, score, cls in output[0]:
            if score <= 0.001:
                continue
            x1, x2 = [float(np.clip((v - left) / scale, 0, info["width"])) for v in (x1, x2)]
            y1, y2 = [float(np.clip((v - top) / scale, 0, info["height"])) for v in (y1, y2)]
            results.append({"image_id": image_id, "category_id": category_ids[int(cls)],
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)})

    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco, coco.loadRes(results), "bbox")
        evaluator.params.imgIds = image_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    print(json.dumps({"engine": ort.__name__, "images": len(image_ids), "detections": len(results),
                      "mAP_50_95": evaluator.stats[0], "mAP_50": evaluator.stats[1],
                      "median_latency_ms": 1000 * float(np.median(latencies))}))


if __name__ == "__main__":
    main()
