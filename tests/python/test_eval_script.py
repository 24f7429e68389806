"""eval_script.py, written against onnxruntime, runs unchanged with `import nibble as ort` and
gives the same COCO mAP on coco-mini (same preprocessing, so only float rounding differs)."""
import json
import os
import subprocess
import sys

import pytest

from conftest import asset

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "eval_script.py")
ORT_IMPORT = "import onnxruntime as ort\n"
NIBBLE_IMPORT = "import nibble as ort\n"


def run_script(path, model, coco_root):
    completed = subprocess.run(
        [sys.executable, path, "--model", model, "--coco-root", coco_root, "--threads", "2"],
        check=True, capture_output=True, text=True)
    return json.loads(completed.stdout)


def test_one_line_switch_gives_the_same_map(tmp_path):
    model = asset("models", "yolov10n-640-fp32.onnx")
    coco_root = asset("coco-mini")
    with open(SCRIPT) as f:
        source = f.read()
    assert source.count(ORT_IMPORT) == 1
    switched = tmp_path / "eval_script_nibble.py"
    switched.write_text(source.replace(ORT_IMPORT, NIBBLE_IMPORT))

    reference = run_script(SCRIPT, model, coco_root)
    got = run_script(str(switched), model, coco_root)
    print(f"\n{reference}\n{got}")
    assert (reference["engine"], got["engine"]) == ("onnxruntime", "nibble")
    assert got["images"] == reference["images"] == 79
    assert reference["mAP_50_95"] > 0.3  # a working detector, so equal mAPs mean something
    assert got["mAP_50_95"] == pytest.approx(reference["mAP_50_95"], abs=1e-3)
    assert got["mAP_50"] == pytest.approx(reference["mAP_50"], abs=1e-3)
    assert abs(got["detections"] - reference["detections"]) <= 0.01 * reference["detections"]
