"""Every shared model gives the same outputs through nibble.InferenceSession as through
onnxruntime.InferenceSession: float models on seeded uniform [0, 1) inputs (an image's value
range), int8 models on a photo (bus.jpg, resized), where their outputs hold real detections.

Tolerances are those of tests/e2e/compare_with_ort.py: float models within 1e-4 of the output's
magnitude ([1,300,6] end-to-end outputs may swap rows whose scores tie); ONNX Runtime
dynamic-int8 models within one uint8 step of the output range and decoding to the same
detections (on noise the models detect nothing, which would make that comparison empty). On a CPU
without AVX2 + FMA, whose MLAS kernels nibble does not reproduce, the detections alone decide
(compare_with_ort.rounding_case says which case applies).
"""
import os
import sys

import cv2
import numpy as np
import onnxruntime
import pytest

import nibble
from conftest import MODELS, asset

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from compare_with_ort import (decode, max_diff_allowing_tie_swaps, rounding_case,  # noqa: E402
                              same_detections)

NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8}


def seeded_feed(session, seed=0):
    rng = np.random.default_rng(seed)
    feed = {}
    for meta in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in meta.shape]
        feed[meta.name] = rng.uniform(0, 1, shape).astype(NUMPY_TYPES[meta.type])
    return feed


def photo_feed(session):
    """bus.jpg stretched to the model's single [1,3,H,W] input, RGB scaled to [0, 1]."""
    (meta,) = session.get_inputs()
    height, width = meta.shape[2], meta.shape[3]
    bgr = cv2.imread(asset("images", "bus.jpg"), cv2.IMREAD_COLOR)
    rgb = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
    return {meta.name: np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / 255}


@pytest.mark.parametrize("model,kind", MODELS, ids=[m for m, _ in MODELS])
def test_outputs_match_onnxruntime(model, kind):
    path = asset("models", model)
    reference = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    session = nibble.InferenceSession(path, providers=["CPUExecutionProvider"])

    assert [(i.name, i.type, i.shape) for i in session.get_inputs()] == \
        [(i.name, i.type, i.shape) for i in reference.get_inputs()]
    assert [(o.name, o.type, o.shape) for o in session.get_outputs()] == \
        [(o.name, o.type, o.shape) for o in reference.get_outputs()]

    feed = seeded_feed(reference) if kind == "float" else photo_feed(reference)
    expected = reference.run(None, feed)
    got = session.run(None, feed)
    assert len(got) == len(expected)
    for meta, g, r in zip(reference.get_outputs(), got, expected):
        assert g.shape == r.shape and g.dtype == r.dtype, meta.name
        scale = float(np.max(np.abs(r)))
        if r.ndim == 3 and r.shape[2] == 6:
            diff = max_diff_allowing_tie_swaps(g, r, 1e-4 * scale)
        else:
            diff = float(np.max(np.abs(g.astype(np.float64) - r)))
        if kind == "float":
            assert diff <= 1e-4 * scale, f"{meta.name}: max|diff| {diff:.3g}, max|ref| {scale:.3g}"
        else:
            assert decode(r), f"{meta.name}: ONNX Runtime detects nothing on the photo"
            step = (float(r.max()) - min(0.0, float(r.min()))) / 255.0
            exact, case = rounding_case()
            print(case)
            if exact:
                assert diff <= step, f"{meta.name}: max|diff| {diff:.3g} > one step {step:.3g}"
            agree, why = same_detections(g, r)
            assert agree, f"{meta.name}: {why}"
