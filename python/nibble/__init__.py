"""nibble: a low-bit CPU inference engine for ONNX models.

The session API mirrors ONNX Runtime's, so a script switches engines with one line::

    import nibble as ort

    session = ort.InferenceSession("yolov10n.onnx", providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: image})

Beyond ONNX Runtime's surface, :func:`quantize`, :func:`coco`, :func:`compare` and
:func:`bench` run the ``nibble`` command-line features and return their reports as dicts.
"""

from nibble._nibble import (
    InternalError,
    InvalidArgument,
    InvalidModel,
    NibbleError,
    NoSuchFile,
    Unsupported,
    __version__,
)
from nibble._session import (
    ExecutionMode,
    ExecutionOrder,
    GraphOptimizationLevel,
    InferenceSession,
    ModelMetadata,
    NodeArg,
    RunOptions,
    SessionOptions,
    get_all_providers,
    get_available_providers,
    get_device,
    set_default_logger_severity,
)
from nibble._tools import bench, coco, compare, quantize

__all__ = [
    "ExecutionMode",
    "ExecutionOrder",
    "GraphOptimizationLevel",
    "InferenceSession",
    "InternalError",
    "InvalidArgument",
    "InvalidModel",
    "ModelMetadata",
    "NibbleError",
    "NoSuchFile",
    "NodeArg",
    "RunOptions",
    "SessionOptions",
    "Unsupported",
    "__version__",
    "bench",
    "coco",
    "compare",
    "get_all_providers",
    "get_available_providers",
    "get_device",
    "quantize",
    "set_default_logger_severity",
]
