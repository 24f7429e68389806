"""The ONNX Runtime–shaped API on small models built here with onnx.helper: metadata, loading
from bytes, input/output selection, dtypes, layouts, options, providers and errors."""
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

import nibble


def add_model(batch="N"):
    """y = x + c (float [batch,3]) and i = argmax(x, axis=1) (int64), opset 17."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])
    i = helper.make_tensor_value_info("i", TensorProto.INT64, [batch])
    c = numpy_helper.from_array(np.array([1, 2, 3], np.float32), "c")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "c"], ["y"], name="add"),
         helper.make_node("ArgMax", ["x"], ["i"], name="argmax", axis=1, keepdims=0)],
        "add_graph", [x], [y, i], [c])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="nibble-tests", model_version=7, ir_version=8)
    helper.set_model_props(model, {"names": "{0: 'a'}"})
    return model.SerializeToString()


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "add.onnx"
    path.write_bytes(add_model())
    return path


def test_module_surface():
    assert nibble.__version__.count(".") == 2
    assert nibble.get_available_providers() == ["CPUExecutionProvider"]
    assert nibble.get_device() == "CPU"
    assert issubclass(nibble.InvalidArgument, nibble.NibbleError)
    assert issubclass(nibble.NoSuchFile, FileNotFoundError)


def test_inputs_outputs_and_run_match_onnxruntime(model_file):
    session = nibble.InferenceSession(str(model_file))
    reference = onnxruntime.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    assert [(a.name, a.type) for a in session.get_inputs()] == [("x", "tensor(float)")]
    assert [(a.name, a.type) for a in session.get_outputs()] == \
        [("y", "tensor(float)"), ("i", "tensor(int64)")]
    # A symbolic dimension is a string in ONNX Runtime; nibble does not keep its name: None.
    assert session.get_inputs()[0].shape == [None, 3]
    assert session.get_providers() == ["CPUExecutionProvider"]

    x = np.arange(12, dtype=np.float32).reshape(4, 3)[:, ::-1]  # not C-contiguous
    got = session.run(None, {"x": x})
    expected = reference.run(None, {"x": x})
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype
        np.testing.assert_array_equal(g, e)
    (only_i,) = session.run(["i"], {"x": x})
    np.testing.assert_array_equal(only_i, expected[1])
    assert session.run([], {"x": x})[0].shape == (4, 3)


def test_outputs_own_their_memory(model_file):
    session = nibble.InferenceSession(model_file)  # os.PathLike
    first = session.run(["y"], {"x": np.zeros((2, 3), np.float32)})[0]
    second = session.run(["y"], {"x": np.ones((2, 3), np.float32)})[0]
    first += 10  # writable, and not shared with the second run's buffer
    np.testing.assert_array_equal(second, [[2, 3, 4], [2, 3, 4]])
    np.testing.assert_array_equal(first, [[11, 12, 13], [11, 12, 13]])


def test_load_from_bytes_and_metadata(model_file):
    session = nibble.InferenceSession(model_file.read_bytes())
    y = session.run(["y"], {"x": np.zeros((1, 3), np.float32)})[0]
    np.testing.assert_array_equal(y, [[1, 2, 3]])
    for s in (session, nibble.InferenceSession(str(model_file))):
        meta = s.get_modelmeta()
        assert (meta.producer_name, meta.graph_name, meta.version) == ("nibble-tests", "add_graph", 7)
        assert meta.custom_metadata_map == {"names": "{0: 'a'}"}


def test_session_options():
    options = nibble.SessionOptions()
    assert options.intra_op_num_threads == 0
    assert options.graph_optimization_level == nibble.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 1
    options.graph_optimization_level = nibble.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.execution_mode = nibble.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # options that change nothing raise no warning
        session = nibble.InferenceSession(add_model(), options)
    assert session.get_session_options() is options
    y = session.run(None, {"x": np.zeros((1, 3), np.float32)})[0]
    np.testing.assert_array_equal(y, [[1, 2, 3]])
    with pytest.raises(ValueError):
        options.intra_op_num_threads = -1


def test_unknown_options_and_providers_warn(model_file):
    options = nibble.SessionOptions()
    with pytest.warns(RuntimeWarning, match="unknown option 'no_such_option'"):
        options.no_such_option = True
    options.enable_profiling = True
    options.add_free_dimension_override_by_name("N", 1)
    with pytest.warns(RuntimeWarning) as caught:
        session = nibble.InferenceSession(
            str(model_file), options,
            providers=[("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"],
            no_such_argument=1)
    messages = " | ".join(str(w.message) for w in caught)
    for expected in ("CUDAExecutionProvider", "no_such_argument", "enable_profiling",
                     "free dimension override 'N'"):
        assert expected in messages
    assert all(w.filename == __file__ for w in caught)  # attributed to the caller's line
    assert session.get_providers() == ["CPUExecutionProvider"]


def test_errors_carry_the_engine_message(model_file, tmp_path):
    with pytest.raises(nibble.NoSuchFile, match="no_such_model.onnx"):
        nibble.InferenceSession(str(tmp_path / "no_such_model.onnx"))
    with pytest.raises(nibble.InvalidModel):
        nibble.InferenceSession(b"definitely not a protobuf")
    with pytest.raises(TypeError):
        nibble.InferenceSession(42)
    session = nibble.InferenceSession(str(model_file))
    with pytest.raises(nibble.InvalidArgument, match="'x'"):
        session.run(None, {"x": np.zeros((1, 3), np.float64)})  # no silent dtype conversion
    with pytest.raises(nibble.InvalidArgument, match="'x'"):
        session.run(None, {"x": np.zeros((1, 4), np.float32)})
    with pytest.raises(nibble.NibbleError, match="'x'"):
        session.run(None, {})
    with pytest.raises(nibble.NibbleError, match="nope"):
        session.run(["nope"], {"x": np.zeros((1, 3), np.float32)})
    with pytest.raises(nibble.InvalidArgument):
        session.run(None, {"x": np.zeros((1, 3), np.complex64)})


def test_unsupported_op_is_reported():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"], name="mystery")], "g", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(nibble.NibbleError, match="NoSuchOp"):
        nibble.InferenceSession(model.SerializeToString())
