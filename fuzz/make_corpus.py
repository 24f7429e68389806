#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (generated, not committed).

    make_corpus.py OUT_DIR [--assets DIR]

OUT_DIR/onnx:  every model.onnx of the ONNX backend node tests (one operator each), the hostile
               catalogue of tests/hostile, and a few small conv nets (float, QDQ W8A8, ConvInteger)
               that reach the fused and integer kernels. The YOLO models (3-12 MB) are left out:
               one run of them takes seconds under ASan.
OUT_DIR/image: the shared photos re-encoded small (JPEG baseline/progressive, PNG 8/16-bit,
               gray and RGBA, BMP, PPM/PGM), plus one full-size JPEG (fuzz with -max_len to cut it).
"""
import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parents[1]


def small_models():
    rng = np.random.default_rng(3)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(rng.standard_normal((8, 4, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b")
    conv = helper.make_graph([
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c"], ["s"]),
        helper.make_node("Mul", ["c", "s"], ["m"]),
        helper.make_node("MaxPool", ["m"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Resize", ["p", "", "scales"], ["y"], mode="nearest"),
    ], "conv_silu", [x], [y], [w, b, numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")])
    yield "conv_silu_pool_resize", conv, 17

    wq = numpy_helper.from_array(rng.integers(-127, 128, (8, 4, 3, 3)).astype(np.int8), "wq")
    inits = [wq, numpy_helper.from_array(np.full(8, 0.02, np.float32), "ws"),
             numpy_helper.from_array(np.zeros(8, np.int8), "wz"),
             numpy_helper.from_array(np.array(0.05, np.float32), "xs"),
             numpy_helper.from_array(np.array(0, np.int8), "xz")]
    qdq = helper.make_graph([
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
        helper.make_node("Conv", ["xd", "wd"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"]),
    ], "qdq_conv", [x], [y], inits)
    yield "qdq_conv_w8a8", qdq, 13

    xu = helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4, 6, 6])
    yi = helper.make_tensor_value_info("y", TensorProto.INT32, None)
    ci = helper.make_graph([helper.make_node("ConvInteger", ["x", "wq", "xz"], ["y"], pads=[1, 1, 1, 1])],
                           "conv_integer", [xu], [yi],
                           [wq, numpy_helper.from_array(np.array(128, np.uint8), "xz")])
    yield "conv_integer", ci, 13


def write_onnx_corpus(out, assets):
    out.mkdir(parents=True)
    node_tests = sorted((assets / "onnx-node-tests").glob("*/test_*/model.onnx"))
    for model in node_tests:
        shutil.copy(model, out / f"{model.parent.name}.onnx")
    with tempfile.TemporaryDirectory() as tmp:  # the catalogue also writes files beside its directory
        hostile = pathlib.Path(tmp) / "hostile"
        subprocess.run([sys.executable, str(ROOT / "tests" / "hostile" / "make_hostile_models.py"), str(hostile)],
                       check=True, stdout=subprocess.DEVNULL)
        for model in hostile.glob("*.onnx"):
            shutil.copy(model, out / f"hostile_{model.name}")
    for name, graph, opset in small_models():
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        onnx.save(m, out / f"{name}.onnx")
    print(f"{out}: {len(list(out.iterdir()))} seeds ({len(node_tests)} node tests)")


def write_image_corpus(out, assets):
    out.mkdir(parents=True)
    photos = sorted((assets / "images").glob("*.jpg"))
    for i, photo in enumerate(photos):
        image = cv2.imread(str(photo))
        small = cv2.resize(image, (48 + 8 * i, 32 + 4 * i), interpolation=cv2.INTER_AREA)
        stem = photo.stem
        cv2.imwrite(str(out / f"{stem}.jpg"), small, [cv2.IMWRITE_JPEG_QUALITY, 80])
        cv2.imwrite(str(out / f"{stem}_progressive.jpg"), small, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
        cv2.imwrite(str(out / f"{stem}.png"), small)
        cv2.imwrite(str(out / f"{stem}_gray.png"), cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        cv2.imwrite(str(out / f"{stem}_16bit.png"), small.astype(np.uint16) * 257)
        cv2.imwrite(str(out / f"{stem}_rgba.png"), cv2.cvtColor(small, cv2.COLOR_BGR2BGRA))
        cv2.imwrite(str(out / f"{stem}.bmp"), small)
        cv2.imwrite(str(out / f"{stem}.ppm"), small)
        cv2.imwrite(str(out / f"{stem}.pgm"), cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
    if photos:
        shutil.copy(photos[0], out / f"full_{photos[0].name}")
    print(f"{out}: {len(list(out.iterdir()))} seeds")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--assets", default=os.environ.get("NIBBLE_ASSETS", str(ROOT.parent / "shared")))
    args = parser.parse_args()
    out, assets = pathlib.Path(args.out_dir), pathlib.Path(args.assets)
    shutil.rmtree(out, ignore_errors=True)
    write_onnx_corpus(out / "onnx", assets)
    write_image_corpus(out / "image", assets)


if __name__ == "__main__":
    main()
