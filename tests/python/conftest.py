"""Shared fixtures: where the test assets are, and ONNX Runtime as the reference engine."""
import os
import sys

import pytest

try:
    import nibble  # noqa: F401
except ImportError as error:
    pytest.exit(f"the nibble package is not installed in {sys.executable} ({error}): "
                "run scripts/setup.sh, or pip install . from the repository", returncode=1)

HERE = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.environ.get("NIBBLE_ASSETS") or os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared"))

# The shared YOLO models: (file, kind) with kind "float" or "int8" (ONNX Runtime dynamic int8).
MODELS = [
    ("yolov10n-640-fp32.onnx", "float"),
    ("yolov8n-640-fp32.onnx", "float"),
    ("yolo11n-320-fp32.onnx", "float"),
    ("yolov10n-640-int8-dynamic.onnx", "int8"),
    ("yolov8n-640-uint8-dynamic.onnx", "int8"),
    ("yolo11n-320-uint8-dynamic.onnx", "int8"),
]


def asset(*parts):
    """Full path of a shared asset; skips the test (with the path) when it is absent."""
    path = os.path.join(ASSETS, *parts)
    if not os.path.exists(path):
        pytest.skip(f"asset not found: {path} (set NIBBLE_ASSETS)")
    return path


@pytest.fixture
def small_model():
    """yolo11n at 320x320: the quickest real model."""
    return asset("models", "yolo11n-320-fp32.onnx")
