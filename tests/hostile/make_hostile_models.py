#!/usr/bin/env python3
"""Writes the hostile-model catalogue: malformed or malicious ONNX files, each with the error
nibble must give for it.

    make_hostile_models.py OUT_DIR

writes OUT_DIR/<name>.onnx (plus the external-data files and links some models point at) and
OUT_DIR/manifest.tsv, one line per model:

    name <TAB> file <TAB> expected ErrorKind <TAB> substring the error message must contain

tests/hostile/run_hostile_models.cpp loads (and, when loading succeeds, runs) every model with
SessionOptions::max_tensor_bytes = 64 MiB and checks the error. Models are generated at test
time so the repository holds no binaries.
"""
import os
import random
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MAX_TENSOR_BYTES = 64 << 20  # the limit run_hostile_models.cpp loads with
FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64


def value(name, dtype=FLOAT, shape=(1, 4)):
    return helper.make_tensor_value_info(name, dtype, shape)


def graph(nodes, inputs=None, outputs=None, initializers=(), name="hostile"):
    inputs = [value("x")] if inputs is None else inputs
    outputs = [value("y")] if outputs is None else outputs
    return helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))


def model(g, opset=17, ir_version=8):
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir_version
    return m


def relu_model():
    return model(graph([helper.make_node("Relu", ["x"], ["y"], name="relu0")]))


def conv_model():
    """A small valid model with an initializer: the base for truncation cases."""
    w = numpy_helper.from_array(np.linspace(-1, 1, 8 * 3 * 3 * 3, dtype=np.float32).reshape(8, 3, 3, 3), "w")
    return model(graph([helper.make_node("Conv", ["x", "w"], ["y"], name="conv0", pads=[1, 1, 1, 1])],
                       inputs=[value("x", FLOAT, (1, 3, 8, 8))], outputs=[value("y", FLOAT, (1, 8, 8, 8))],
                       initializers=[w]))


def add_model(initializer):
    """y = x + c with c an initializer (the tensor under test)."""
    return model(graph([helper.make_node("Add", ["x", initializer.name], ["y"], name="add0")],
                       initializers=[initializer]))


def raw_tensor(name, dtype, dims, raw):
    t = TensorProto(name=name, data_type=dtype, dims=dims)
    t.raw_data = raw
    return t


def external_tensor(name, dims, location=None, offset=None, length=None):
    t = TensorProto(name=name, data_type=FLOAT, dims=dims)
    t.data_location = TensorProto.EXTERNAL
    for key, val in (("location", location), ("offset", offset), ("length", length)):
        if val is not None:
            t.external_data.add(key=key, value=str(val))
    return t


def qdq_model(scale, zero_point=None, x_dtype=FLOAT, op="QuantizeLinear"):
    """x -> QuantizeLinear/DequantizeLinear with constant scale (and zero point)."""
    inits = [numpy_helper.from_array(np.array(scale, dtype=np.float32), "scale")]
    node_inputs = ["x", "scale"]
    if zero_point is not None:
        inits.append(numpy_helper.from_array(zero_point, "zero_point"))
        node_inputs.append("zero_point")
    out_dtype = FLOAT if op == "DequantizeLinear" else TensorProto.UINT8
    return model(graph([helper.make_node(op, node_inputs, ["y"], name="q0")],
                       inputs=[value("x", x_dtype, (1, 4))], outputs=[value("y", out_dtype, (1, 4))],
                       initializers=inits), opset=19)


def qconv_model(w_scale):
    """The QDQ Conv pattern nibble fuses into an integer convolution, with weight scale w_scale."""
    w = numpy_helper.from_array(np.arange(-8, 8, dtype=np.int8).reshape(2, 2, 2, 2), "w_q")
    inits = [
        w,
        numpy_helper.from_array(np.array(w_scale, dtype=np.float32), "w_scale"),
        numpy_helper.from_array(np.array(0, dtype=np.int8), "w_zero"),
        numpy_helper.from_array(np.array(0.05, dtype=np.float32), "x_scale"),
        numpy_helper.from_array(np.array(128, dtype=np.uint8), "x_zero"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["x_q"], name="qx"),
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zero"], ["x_dq"], name="dqx"),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w_dq"], name="dqw"),
        helper.make_node("Conv", ["x_dq", "w_dq"], ["y"], name="conv0"),
    ]
    return model(graph(nodes, inputs=[value("x", FLOAT, (1, 2, 4, 4))],
                       outputs=[value("y", FLOAT, (1, 2, 3, 3))], initializers=inits), opset=19)


def nested_if_model(depth, op="If"):
    """`depth` control-flow nodes, each holding the next in its subgraph."""
    inner = graph([helper.make_node("Identity", ["x"], ["y"], name="leaf")], inputs=[])
    for level in range(depth):
        if op == "If":
            node = helper.make_node("If", ["cond"], ["y"], name=f"if{level}", then_branch=inner, else_branch=inner)
        else:
            node = helper.make_node("Loop", ["", "cond"], ["y"], name=f"loop{level}", body=inner)
        inner = graph([node], inputs=[])
    cond = numpy_helper.from_array(np.array(True), "cond")
    inner.initializer.append(cond)
    inner.input.append(value("x"))
    return model(inner)


def serialize_deeply_nested_if(depth):
    """Builds If nesting too deep for the Python protobuf serializer by splicing bytes: a
    GraphProto holding one If node whose then_branch is the next GraphProto."""
    def field(number, payload):  # a length-delimited protobuf field
        return encode_varint(number << 3 | 2) + encode_varint(len(payload)) + payload

    leaf = graph([helper.make_node("Identity", ["x"], ["y"], name="leaf")], inputs=[]).SerializeToString()
    inner = leaf
    for level in range(depth):
        attribute = (field(1, b"then_branch")                 # AttributeProto.name
                     + bytes([0xA0, 0x01]) + encode_varint(5)  # AttributeProto.type = GRAPH (field 20)
                     + field(6, inner))                        # AttributeProto.g
        node = field(1, b"cond") + field(2, b"y") + field(3, f"if{level}".encode()) + field(4, b"If") \
            + field(5, attribute)
        inner = field(1, node)  # GraphProto.node
    outer = onnx.ModelProto()
    outer.ir_version = 8
    outer.opset_import.add(domain="", version=17)
    prefix = outer.SerializeToString()
    return prefix + field(7, inner)  # ModelProto.graph


def encode_varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def cases(out_dir):
    """Yields (name, model or bytes, kind, message substring)."""
    valid = conv_model().SerializeToString()
    yield "empty_file", b"", "InvalidModel", "the input is empty"
    yield "truncated_half", valid[: len(valid) // 2], "InvalidModel", "protobuf parsing failed"
    yield "truncated_last_byte", valid[:-1], "InvalidModel", "protobuf parsing failed"
    yield "random_bytes", random.Random(8).randbytes(4096), "InvalidModel", "protobuf parsing failed"
    yield "jpeg_header", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64), "InvalidModel", "protobuf parsing failed"
    no_graph = onnx.ModelProto(ir_version=8)
    no_graph.opset_import.add(domain="", version=17)
    yield "no_graph", no_graph, "InvalidModel", "it has no graph"
    yield "ir_version_0", model(relu_model().graph, ir_version=0), "Unsupported", "unsupported ONNX IR version 0"
    yield "ir_version_99", model(relu_model().graph, ir_version=99), "Unsupported", "unsupported ONNX IR version 99"
    yield "no_outputs", model(graph([helper.make_node("Relu", ["x"], ["y"])], outputs=[])), \
        "InvalidModel", "the graph has no outputs"

    # Graph structure.
    yield "cycle_two_nodes", model(graph([
        helper.make_node("Add", ["x", "b"], ["a"], name="add_a"),
        helper.make_node("Relu", ["a"], ["b"], name="relu_b"),
        helper.make_node("Identity", ["a"], ["y"], name="out")])), "InvalidModel", "the graph has a cycle"
    yield "cycle_self_loop", model(graph([helper.make_node("Add", ["x", "y"], ["y"], name="self")])), \
        "InvalidModel", "the graph has a cycle"
    yield "dangling_input", model(graph([helper.make_node("Add", ["x", "ghost"], ["y"], name="add0")])), \
        "InvalidModel", "input 'ghost' is not produced by any node"
    yield "duplicate_node_output", model(graph([
        helper.make_node("Relu", ["x"], ["y"], name="r1"),
        helper.make_node("Neg", ["x"], ["y"], name="r2")])), "InvalidModel", "tensor 'y' is defined twice"
    c = numpy_helper.from_array(np.ones((1, 4), np.float32), "c")
    yield "duplicate_initializer", model(graph([helper.make_node("Add", ["x", "c"], ["y"])],
                                               initializers=[c, c])), "InvalidModel", "tensor 'c' is defined twice"
    yield "node_output_shadows_input", model(graph([helper.make_node("Relu", ["x"], ["x"], name="r")],
                                                   outputs=[value("x")])), \
        "InvalidModel", "tensor 'x' is defined twice"
    yield "output_never_produced", model(graph([helper.make_node("Relu", ["x"], ["y"])],
                                               outputs=[value("z")])), "InvalidModel", "graph output 'z' is never produced"
    yield "empty_op_type", model(graph([helper.make_node("", ["x"], ["y"])])), "InvalidModel", "has no op_type"
    yield "unknown_op", model(graph([helper.make_node("FrobnicateTensor", ["x"], ["y"], name="frob")])), \
        "Unsupported", "FrobnicateTensor"
    yield "domain_not_imported", model(graph([helper.make_node("Relu", ["x"], ["y"], domain="com.evil")])), \
        "Unsupported", "domain 'com.evil' is not imported"
    dup_attr = helper.make_node("Concat", ["x", "x"], ["y"], name="cat", axis=0)
    dup_attr.attribute.extend([helper.make_attribute("axis", 1)])
    yield "duplicate_attribute", model(graph([dup_attr], outputs=[value("y", FLOAT, (2, 4))])), \
        "InvalidModel", "attribute 'axis' given twice"
    yield "empty_initializer_name", add_model(numpy_helper.from_array(np.ones((1, 4), np.float32), "")), \
        "InvalidModel", "initializer has an empty name"

    # Types.
    yield "unknown_input_dtype", model(graph([helper.make_node("Relu", ["x"], ["y"])],
                                             inputs=[value("x", 99)])), "Unsupported", "99"
    yield "string_input", model(graph([helper.make_node("Identity", ["x"], ["y"])],
                                      inputs=[value("x", TensorProto.STRING)])), "Unsupported", "STRING"
    yield "undefined_initializer_dtype", add_model(raw_tensor("c", TensorProto.UNDEFINED, [1, 4], b"")), \
        "Unsupported", "initializer 'c'"
    yield "add_float_int64", model(graph([helper.make_node("Add", ["x", "i"], ["y"], name="add_mixed")],
                                         inputs=[value("x"), value("i", INT64)])), "InvalidModel", "add_mixed"
    yield "conv_int64_input", model(graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv_int")],
        inputs=[value("x", INT64, (1, 1, 4, 4))], outputs=[value("y", INT64)],
        initializers=[numpy_helper.from_array(np.ones((1, 1, 1, 1), np.int64), "w")])), "Unsupported", "conv_int"

    # Dimensions and allocation limits.
    yield "negative_initializer_dim", add_model(raw_tensor("c", FLOAT, [-1, 4], b"")), \
        "InvalidModel", "negative dimension"
    yield "negative_input_dim", model(graph([helper.make_node("Relu", ["x"], ["y"])], inputs=[value("x", FLOAT, (1, -4))])), \
        "InvalidModel", "graph input 'x' has a negative dimension"
    yield "initializer_numel_overflow", add_model(raw_tensor("c", FLOAT, [1 << 40, 1 << 40], b"")), \
        "InvalidModel", "is too large"
    yield "initializer_over_limit", add_model(raw_tensor("c", FLOAT, [1 << 20, 1 << 10], b"")), \
        "InvalidModel", "exceeds the allocation limit"
    yield "input_over_limit", model(graph([helper.make_node("Relu", ["x"], ["y"], name="big_relu")],
                                          inputs=[value("x", FLOAT, (1 << 20, 1 << 20))])), \
        "InvalidModel", "exceeds the allocation limit"
    yield "input_numel_overflow", model(graph([helper.make_node("Relu", ["x"], ["y"])],
                                              inputs=[value("x", FLOAT, (1 << 62, 1 << 62))])), \
        "InvalidModel", "graph input 'x' has shape [4611686018427387904,4611686018427387904], more elements"
    shape = numpy_helper.from_array(np.array([100000, 100000], np.int64), "shape")
    yield "constant_of_shape_huge", model(graph(
        [helper.make_node("ConstantOfShape", ["shape"], ["y"], name="fill")], inputs=[],
        outputs=[value("y", FLOAT, None)], initializers=[shape])), "InvalidModel", "exceeds the allocation limit"
    yield "expand_huge", model(graph(
        [helper.make_node("Expand", ["x", "shape"], ["y"], name="expand")], inputs=[value("x", FLOAT, (1, 1))],
        outputs=[value("y", FLOAT, None)], initializers=[shape])), "InvalidModel", "exceeds the allocation limit"
    repeats = numpy_helper.from_array(np.array([1 << 20, 1 << 20], np.int64), "repeats")
    yield "tile_huge", model(graph([helper.make_node("Tile", ["x", "repeats"], ["y"], name="tile")],
                                   initializers=[repeats])), "InvalidModel", "exceeds the allocation limit"

    # 100 MB: only the configured limit (MAX_TENSOR_BYTES), not the 16 GiB default, refuses it.
    modest = numpy_helper.from_array(np.array([5000, 5000], np.int64), "shape")
    yield "constant_of_shape_over_configured_limit", model(graph(
        [helper.make_node("ConstantOfShape", ["shape"], ["y"], name="fill")], inputs=[],
        outputs=[value("y", FLOAT, None)], initializers=[modest])), \
        "InvalidModel", f"exceeds the allocation limit of {MAX_TENSOR_BYTES} bytes"
    scales = numpy_helper.from_array(np.array([1, 1, 1e6, 1e6], np.float32), "scales")
    yield "resize_huge_scales", model(graph(
        [helper.make_node("Resize", ["x", "", "scales"], ["y"], name="resize0")],
        inputs=[value("x", FLOAT, (1, 1, 4, 4))], outputs=[value("y", FLOAT, None)], initializers=[scales])), \
        "InvalidModel", "exceeds the allocation limit"
    limits = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in (("start", 0), ("limit", 1e12), ("delta", 1))]
    yield "range_huge", model(graph([helper.make_node("Range", ["start", "limit", "delta"], ["y"], name="range0")],
                                    inputs=[], outputs=[value("y", FLOAT, None)], initializers=limits)), \
        "InvalidModel", "exceeds the allocation limit"
    pads = numpy_helper.from_array(np.array([0, 0, 1 << 30, 1 << 30], np.int64), "pads")
    yield "pad_huge", model(graph([helper.make_node("Pad", ["x", "pads"], ["y"], name="pad0")],
                                  outputs=[value("y", FLOAT, None)], initializers=[pads])), \
        "InvalidModel", "exceeds the allocation limit"

    # Initializer contents.
    yield "raw_data_short", add_model(raw_tensor("c", FLOAT, [1, 4], b"\0" * 12)), \
        "InvalidModel", "raw data holds 12 bytes, expected 16"
    yield "raw_data_long", add_model(raw_tensor("c", FLOAT, [1, 4], b"\0" * 20)), \
        "InvalidModel", "raw data holds 20 bytes, expected 16"
    short_floats = TensorProto(name="c", data_type=FLOAT, dims=[1, 4])
    short_floats.float_data.extend([1.0, 2.0, 3.0])
    yield "float_data_count", add_model(short_floats), \
        "InvalidModel", "holds 3 values, expected 4"
    yield "int4_raw_odd_length", add_model(raw_tensor("c", TensorProto.INT4, [5], b"\x12\x34")), \
        "InvalidModel", "raw data holds 2 bytes, expected 3"
    int4_typed = TensorProto(name="c", data_type=TensorProto.UINT4, dims=[6])
    int4_typed.int32_data.extend([1, 2])
    yield "uint4_int32_data_count", add_model(int4_typed), "InvalidModel", "holds 2 values, expected 3"
    segmented = numpy_helper.from_array(np.ones((1, 4), np.float32), "c")
    segmented.segment.begin, segmented.segment.end = 0, 2
    yield "segmented_initializer", add_model(segmented), "Unsupported", "segmented tensors"
    sparse = model(graph([helper.make_node("Add", ["x", "s"], ["y"])]))
    sparse.graph.sparse_initializer.add().values.CopyFrom(numpy_helper.from_array(np.ones(1, np.float32), "s"))
    yield "sparse_initializer", sparse, "Unsupported", "sparse initializers"

    # External data: stays inside the model directory and inside its file.
    with open(os.path.join(out_dir, "weights.bin"), "wb") as f:
        f.write(np.ones(4, np.float32).tobytes())
    outside = os.path.join(os.path.dirname(os.path.abspath(out_dir)), "hostile_outside_secret.bin")
    with open(outside, "wb") as f:
        f.write(np.ones(4, np.float32).tobytes())
    link = os.path.join(out_dir, "link_outside.bin")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(outside, link)
    yield "external_absolute_path", add_model(external_tensor("c", [1, 4], "/etc/passwd")), \
        "InvalidModel", "is absolute"
    yield "external_parent_dir", add_model(external_tensor("c", [1, 4], "../hostile_outside_secret.bin")), \
        "InvalidModel", "escapes the model directory"
    yield "external_nested_parent_dir", add_model(external_tensor("c", [1, 4], "sub/../../x.bin")), \
        "InvalidModel", "escapes the model directory"
    yield "external_symlink_outside", add_model(external_tensor("c", [1, 4], "link_outside.bin")), \
        "InvalidModel", "escapes the model directory"
    yield "external_offset_past_end", add_model(external_tensor("c", [1, 4], "weights.bin", offset=64)), \
        "InvalidModel", "lies outside 'weights.bin' (16 bytes)"
    yield "external_length_past_end", add_model(external_tensor("c", [1, 4], "weights.bin", offset=8, length=16)), \
        "InvalidModel", "lies outside 'weights.bin'"
    yield "external_negative_offset", add_model(external_tensor("c", [1, 4], "weights.bin", offset=-8, length=16)), \
        "InvalidModel", "lies outside 'weights.bin'"
    yield "external_huge_length", add_model(external_tensor("c", [1, 4], "weights.bin", offset=0, length=1 << 62)), \
        "InvalidModel", "lies outside 'weights.bin'"
    yield "external_wrong_length", add_model(external_tensor("c", [1, 4], "weights.bin", offset=4, length=12)), \
        "InvalidModel", "external data holds 12 bytes, expected 16"
    yield "external_missing_file", add_model(external_tensor("c", [1, 4], "no_such_file.bin")), \
        "Io", "cannot open external data file"
    yield "external_no_location", add_model(external_tensor("c", [1, 4])), \
        "InvalidModel", "external data without a location"
    yield "external_offset_not_number", add_model(external_tensor("c", [1, 4], "weights.bin", offset="0x10")), \
        "InvalidModel", "external data entry 'offset' is not a number"

    # Attributes.
    yield "cast_missing_to", model(graph([helper.make_node("Cast", ["x"], ["y"], name="cast0")])), \
        "InvalidModel", "to"
    yield "concat_missing_axis", model(graph([helper.make_node("Concat", ["x", "x"], ["y"], name="cat0")])), \
        "InvalidModel", "axis"
    yield "concat_axis_out_of_range", model(graph([helper.make_node("Concat", ["x", "x"], ["y"], name="cat0", axis=7)])), \
        "InvalidModel", "axis"
    yield "transpose_bad_perm", model(graph([helper.make_node("Transpose", ["x"], ["y"], name="tr0", perm=[0, 0])])), \
        "InvalidModel", "perm"
    w = numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float32), "w")
    yield "conv_channel_mismatch", model(graph([helper.make_node("Conv", ["x", "w"], ["y"], name="conv0")],
                                               inputs=[value("x", FLOAT, (1, 4, 8, 8))], initializers=[w])), \
        "InvalidModel", "conv0"
    yield "conv_kernel_shape_mismatch", model(graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv0", kernel_shape=[5, 5])],
        inputs=[value("x", FLOAT, (1, 3, 8, 8))], initializers=[w])), "InvalidModel", "kernel_shape"
    yield "reshape_two_minus_one", model(graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape0")],
        initializers=[numpy_helper.from_array(np.array([-1, -1], np.int64), "shape")])), "InvalidModel", "-1"
    # Gather: constant indices out of range are the model's error (at load, naming the node);
    # indices fed at run time are the caller's (the runner feeds zeros: the axis is empty).
    yield "gather_index_out_of_range", model(graph(
        [helper.make_node("Gather", ["x", "idx"], ["y"], name="gather0", axis=1)],
        initializers=[numpy_helper.from_array(np.array([100], np.int64), "idx")])), "InvalidModel", \
        "Gather node 'gather0': index 100 is out of range for axis 1 of size 4"
    yield "gather_runtime_index_empty_axis", model(graph(
        [helper.make_node("Gather", ["x", "idx"], ["y"], name="gather0", axis=1)],
        inputs=[value("x", FLOAT, (1, 0)), value("idx", INT64, (2,))], outputs=[value("y", FLOAT, None)])), \
        "InvalidArgument", "Gather node 'gather0': Gather index 0 is out of range for a dimension of size 0"
    yield "gather_output_overflow", model(graph(
        [helper.make_node("Gather", ["x", "idx"], ["y"], name="gather0", axis=0)],
        inputs=[value("x", FLOAT, (4, 1 << 40)), value("idx", INT64, (1 << 40,))], outputs=[value("y", FLOAT, None)])), \
        "InvalidModel", "Gather node 'gather0': output shape [1099511627776,1099511627776] has too many elements"

    # Quantization parameters.
    yield "quantize_zero_scale", qdq_model(0.0), "InvalidModel", "scale must be positive and finite"
    yield "quantize_negative_scale", qdq_model(-0.5), "InvalidModel", "scale must be positive and finite"
    yield "quantize_nan_scale", qdq_model(float("nan")), "InvalidModel", "scale must be positive and finite"
    yield "dequantize_inf_scale", qdq_model(float("inf"), np.array(0, np.uint8), TensorProto.UINT8, "DequantizeLinear"), \
        "InvalidModel", "scale must be positive and finite"
    yield "qconv_zero_weight_scale", qconv_model(0.0), "InvalidModel", "scale must be positive and finite"
    yield "zero_point_float_dtype", qdq_model(0.1, np.array(0.0, np.float32)), "Unsupported", \
        "output dtype float"
    yield "dequantize_zero_point_dtype_mismatch", qdq_model(0.1, np.array(0, np.int8), TensorProto.UINT8, "DequantizeLinear"), \
        "InvalidModel", "zero point"
    yield "quantize_per_axis_scale_length", qdq_model([0.1, 0.2, 0.3]), "InvalidModel", "per-axis scale must have shape [4]"

    # Found by fuzz_onnx_load: a Resize scale whose output dimension overflows int64.
    huge_scales = numpy_helper.from_array(np.array([1, 1, 1e30, 1e30], np.float32), "scales")
    yield "resize_scale_overflow", model(graph(
        [helper.make_node("Resize", ["x", "", "scales"], ["y"], name="resize0")],
        inputs=[value("x", FLOAT, (1, 1, 4, 4))], outputs=[value("y", FLOAT, None)],
        initializers=[huge_scales])), "InvalidModel", "out of range"

    # Antialiased downscaling of 2^21 values to 1: 2^23 cubic coefficients per output value.
    yield "resize_antialias_huge_downscale", model(graph(
        [helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="resize0", mode="cubic", antialias=1)],
        inputs=[value("x", FLOAT, (1, 1, 1, 1 << 21))], outputs=[value("y", FLOAT, None)],
        initializers=[numpy_helper.from_array(np.array([1, 1, 1, 1], np.int64), "sizes")]), opset=18), \
        "Unsupported", "inputs per output value, more than the 65536 supported"

    # Nesting: control flow is unsupported, and nesting deeper than the parser allows is refused
    # before it can exhaust the stack.
    yield "nested_if_depth_8", nested_if_model(8), "Unsupported", "If"
    yield "nested_loop_depth_8", nested_if_model(8, op="Loop"), "Unsupported", "Loop"
    yield "nested_if_depth_25", serialize_deeply_nested_if(25), "InvalidModel", "subgraphs are nested 25 levels deep"
    yield "nested_if_depth_1000", serialize_deeply_nested_if(1000), "InvalidModel", \
        "subgraphs are nested 1000 levels deep"
    yield "nested_if_depth_5000", serialize_deeply_nested_if(5000), "InvalidModel", \
        "subgraphs are nested 5000 levels deep"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    lines = []
    for name, m, kind, needle in cases(out_dir):
        data = m if isinstance(m, bytes) else m.SerializeToString()
        with open(os.path.join(out_dir, name + ".onnx"), "wb") as f:
            f.write(data)
        assert "\t" not in needle and "\n" not in needle
        lines.append(f"{name}\t{name}.onnx\t{kind}\t{needle}\n")
    with open(os.path.join(out_dir, "manifest.tsv"), "w") as f:
        f.writelines(lines)
    print(f"wrote {len(lines)} hostile models to {out_dir}")


if __name__ == "__main__":
    main()
