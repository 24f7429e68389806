"""nibble.bench / quantize / coco: the CLI features called from Python return their reports."""
import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

import nibble
from conftest import asset


def matmul_model(path):
    """y = x @ W (float [2,16] x [16,8]), opset 17: something `nibble quantize` quantizes."""
    weight = np.random.default_rng(1).normal(0, 1, (16, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="matmul")], "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])],
        [numpy_helper.from_array(weight, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path.write_bytes(model.SerializeToString())
    return weight


def test_bench_returns_its_json_report(tmp_path):
    model = tmp_path / "mm.onnx"
    matmul_model(model)
    report = nibble.bench(model, iters=3, warmup=1, threads=1)
    assert report["iters"] == 3 and report["threads"] == 1
    assert report["inputs"][0]["name"] == "x" and report["inputs"][0]["shape"] == [2, 16]
    assert len(report["runs_ms"]) == 3 and report["latency_ms"]["median"] > 0


def test_quantize_writes_a_model_that_runs(tmp_path):
    model, quantized = tmp_path / "mm.onnx", tmp_path / "mm-w8.onnx"
    weight = matmul_model(model)
    assert nibble.quantize(model, quantized, "w8a16") == str(quantized)
    x = np.random.default_rng(2).uniform(0, 1, (2, 16)).astype(np.float32)
    got = nibble.InferenceSession(quantized).run(None, {"x": x})[0]
    # ONNX Runtime's default optimizations rewrite DequantizeLinear -> MatMul into a kernel that
    # also quantizes x (1-3% off here); unoptimized, it computes the model as written.
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    reference = onnxruntime.InferenceSession(str(quantized), options, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(got, reference.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)
    # 8-bit per-channel weights: close to the float product, not equal to it.
    assert 0 < np.abs(got - x @ weight).max() < 0.05 * np.abs(x @ weight).max()


def test_cli_errors_are_exceptions(tmp_path):
    model = tmp_path / "mm.onnx"
    matmul_model(model)
    with pytest.raises(nibble.InvalidArgument, match="w3a3"):
        nibble.quantize(model, tmp_path / "out.onnx", "w3a3")
    with pytest.raises(nibble.NoSuchFile, match="missing.onnx"):
        nibble.bench(tmp_path / "missing.onnx")
    with pytest.raises(nibble.InvalidArgument, match="no-such-option"):
        nibble.bench(tmp_path / "missing.onnx", no_such_option=1)


def test_coco_returns_metrics_json(tmp_path):
    model = asset("models", "yolo11n-320-fp32.onnx")
    metrics = nibble.coco(model, asset("coco-mini"), max_images=3, threads=2, warmup=0,
                          out=tmp_path)
    assert {"model", "settings", "metrics", "latency", "coco_stats"} <= set(metrics)
    assert metrics["metrics"]["num_images"] == 3
    assert 0.1 < metrics["metrics"]["mAP_50_95"] <= 1
    assert (tmp_path / "detections.json").exists()
