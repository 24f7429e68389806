#!/usr/bin/env python3
"""Check quantized (QCDQ / QDQ) ONNX models in nibble against ONNX Runtime, one line per model.

Optional, not run in CI (the unit tests build their own small QDQ graphs). For each model:
the counts of QuantizeLinear / Clip / DequantizeLinear / Conv; nibble's output on a letterboxed
image against ONNX Runtime's on the very input nibble used (max |diff|, absolute and relative to
max |ref|; for [1,N,6] detections also whether each detection has a twin), next to the
quantization error itself (ONNX Runtime, quantized vs --fp32 model); and, from `nibble inspect`,
the kernel every Conv runs on. Convs left on a float kernel are listed with the Q/Clip/DQ chain
in front of their inputs, which is what a fusion bug report needs. Runs in the repository's venv
(onnx, onnxruntime, numpy):

    .venv/bin/python tools/export/check_qcdq.py exports/brevitas-yolov10n-*.onnx \\
        --nibble build/bin/nibble --image ../shared/images/bus.jpg
"""
import argparse
import collections
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

from compare_structure import max_diff


def chain(producer, tensor, depth=4):
    """'DequantizeLinear(Clip(QuantizeLinear(x)))' for the producers of `tensor`."""
    node = producer.get(tensor)
    if node is None or depth == 0:
        return tensor
    return f"{node.op_type}({chain(producer, node.input[0], depth - 1)})"


def conv_kernels(nibble, path):
    """(op, kernel) per node name from `nibble inspect`'s "name op kernel ..." lines."""
    text = subprocess.run([nibble, "inspect", path], check=True, capture_output=True,
                          text=True).stdout
    return {f[0]: (f[1], f[2]) for f in map(str.split, text.splitlines()) if len(f) >= 3}


def iou(a, b):
    w = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    area = lambda r: (r[..., 2] - r[..., 0]) * (r[..., 3] - r[..., 1])
    return w * h / (area(a) + area(b) - w * h)


def agreement(got, ref, conf=0.25):
    got, ref = got.astype(np.float64), ref.astype(np.float64)
    if ref.ndim == 3 and ref.shape[-1] == 6:  # detections: TopK may order tied scores either way
        # Each detection of ref (score > conf) has a twin in got: same class, IoU >= 0.9.
        kept, wanted = got[0, got[0, :, 4] > conf], ref[0, ref[0, :, 4] > conf]
        found, worst = 0, 0.0
        for r in wanted:
            twins = kept[(iou(r, kept) >= 0.9) & (kept[:, 5] == r[5])] if len(kept) else kept
            if len(twins):
                found += 1
                worst = max(worst, np.abs(twins[:, :5] - r[:5]).max(axis=1).min())
        return (f"{found} of {len(wanted)} detections found ({len(kept)} kept; worst |diff| of a "
                f"twin {worst:.3g}), max|diff| {max_diff(got, ref):.2e} of max|ref| "
                f"(rows matched by score)")
    diff = np.abs(got - ref)
    return (f"max|diff| {diff.max():.3g} ({diff.max() / max(np.abs(ref).max(), 1e-30):.2e} of "
            f"max|ref|), mean {diff.mean():.2e}")


def check(path, nibble, image, fp32):
    model = onnx.load(path)
    ops = collections.Counter(n.op_type for n in model.graph.node)
    quant_error = ""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([nibble, "run", path, "--image", image, "--save-inputs", tmp,
                        "--save-outputs", tmp], check=True, stdout=subprocess.DEVNULL)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # not the warning for every BN parameter that is an input
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feed = {i.name: np.load(os.path.join(tmp, f"{i.name}.npy")) for i in session.get_inputs()
                if os.path.exists(os.path.join(tmp, f"{i.name}.npy"))}
        out = session.get_outputs()[0].name
        ref = session.run([out], feed)[0]
        if fp32:
            float_out = ort.InferenceSession(fp32, options).run(None, feed)[0]
            if float_out.shape != ref.shape:
                sys.exit(f"{fp32}: output {list(float_out.shape)}, not {list(ref.shape)} as {path}")
            quant_error = f"quantization error (vs FP32) {agreement(ref, float_out)} | "
        got = np.load(os.path.join(tmp, f"{out}.npy"))
    kernels = conv_kernels(nibble, path)
    producer = {o: n for n in model.graph.node for o in n.output}
    per_conv = collections.Counter()
    unfused = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        op, kernel = kernels.get(node.name, ("?", "missing"))
        per_conv[kernel] += 1
        if not kernel.startswith("qconv"):
            unfused.append(f"    {node.name}: {op} {kernel}; x = {chain(producer, node.input[0])}, "
                           f"w = {chain(producer, node.input[1])}")
    print(f"{os.path.basename(path)}: {ops['QuantizeLinear']} Q, {ops['Clip']} Clip, "
          f"{ops['DequantizeLinear']} DQ, {ops['Conv']} Conv | nibble vs ORT "
          f"{agreement(got, ref)} | {quant_error}Conv kernels: "
          + ", ".join(f"{k} {n}" for k, n in per_conv.most_common()))
    for line in unfused:
        print(line)
    return not unfused


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--nibble", default="build/bin/nibble")
    ap.add_argument("--image", default=os.path.join(
        os.environ.get("NIBBLE_ASSETS", os.path.join(os.path.dirname(__file__), "../../../shared")),
        "images", "bus.jpg"))
    ap.add_argument("--fp32", help="the float model they were quantized from")
    args = ap.parse_args()
    return 0 if all([check(m, args.nibble, args.image, args.fp32) for m in args.models]) else 1


if __name__ == "__main__":
    sys.exit(main())
