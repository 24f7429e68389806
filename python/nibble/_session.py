"""ONNX Runtime–compatible session API over the nibble engine (nibble._nibble).

Names, signatures and defaults follow onnxruntime so that scripts run unchanged. Options and
providers that have no meaning for nibble are accepted: the ones that only tune ONNX Runtime
(memory arenas, logging, execution mode) silently, the ones asking for something nibble does not
do (another execution provider, profiling, saving the optimized model) with a warning.
"""

import enum
import os
import sys
import warnings

import numpy as np

from nibble import _nibble

CPU_PROVIDER = "CPUExecutionProvider"


class GraphOptimizationLevel(enum.IntEnum):
    """onnxruntime.GraphOptimizationLevel. nibble has two levels: ORT_DISABLE_ALL runs every node
    as written (no folding or fusion); every other level runs nibble's full optimization."""

    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_LAYOUT = 3
    ORT_ENABLE_ALL = 99


class ExecutionMode(enum.IntEnum):
    """onnxruntime.ExecutionMode; nibble always runs nodes in order (each one multi-threaded)."""

    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class ExecutionOrder(enum.IntEnum):
    """onnxruntime.ExecutionOrder; nibble's planner fixes the order, so this is not used."""

    DEFAULT = 0
    PRIORITY_BASED = 1
    MEMORY_EFFICIENT = 2


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _warn(message):
    """A RuntimeWarning attributed to the user's line that called into this package."""
    level, frame = 1, sys._getframe(0)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, RuntimeWarning, stacklevel=level)


class SessionOptions:
    """onnxruntime.SessionOptions. nibble uses ``intra_op_num_threads`` (0 = all cores) and
    ``graph_optimization_level``; the other attributes are kept so scripts can set and read them."""

    # ONNX Runtime's defaults. Attributes nibble does not use but that change nothing about the
    # results (threading across nodes, memory arenas, logging) are accepted silently.
    _DEFAULTS = {
        "intra_op_num_threads": 0,
        "inter_op_num_threads": 0,
        "graph_optimization_level": GraphOptimizationLevel.ORT_ENABLE_ALL,
        "execution_mode": ExecutionMode.ORT_SEQUENTIAL,
        "execution_order": ExecutionOrder.DEFAULT,
        "enable_cpu_mem_arena": True,
        "enable_mem_pattern": True,
        "enable_mem_reuse": True,
        "use_deterministic_compute": False,
        "log_severity_level": 2,
        "log_verbosity_level": 0,
        "logid": "",
        "use_per_session_threads": True,
        # Features nibble does not have: a warning when a session is created with them on.
        "enable_profiling": False,
        "profile_file_prefix": "onnxruntime_profile_",
        "optimized_model_filepath": "",
    }
    _UNSUPPORTED_WHEN_SET = {
        "enable_profiling": "nibble does not write ONNX Runtime profiles (see `nibble bench --profile`)",
        "optimized_model_filepath": "nibble does not save its optimized graph",
    }

    def __init__(self):
        object.__setattr__(self, "_values", dict(self._DEFAULTS))
        object.__setattr__(self, "_config_entries", {})
        object.__setattr__(self, "_ignored", [])

    def __getattr__(self, name):
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"'SessionOptions' object has no attribute '{name}'")

    def __setattr__(self, name, value):
        if name not in self._DEFAULTS:
            _warn(f"nibble.SessionOptions: unknown option '{name}' is ignored")
        if name == "graph_optimization_level":
            value = GraphOptimizationLevel(value)
        elif name in ("intra_op_num_threads", "inter_op_num_threads"):
            value = int(value)
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self._values[name] = value

    def add_session_config_entry(self, key, value):
        """Stored and readable back; nibble reads none of ONNX Runtime's config keys."""
        self._config_entries[str(key)] = str(value)

    def get_session_config_entry(self, key):
        if key not in self._config_entries:
            raise RuntimeError(f"SessionOptions does not have configuration with key: {key}")
        return self._config_entries[key]

    def _ignore(self, what):
        self._ignored.append(what)

    def add_free_dimension_override_by_name(self, dim_name, dim_value):
        self._ignore(f"free dimension override '{dim_name}'")

    def add_free_dimension_override_by_denotation(self, dim_denotation, dim_value):
        self._ignore(f"free dimension override by denotation '{dim_denotation}'")

    def add_initializer(self, name, value):
        self._ignore(f"initializer override '{name}'")

    def add_external_initializers(self, names, values):
        self._ignore("external initializers")

    def register_custom_ops_library(self, library_path):
        self._ignore(f"custom op library '{library_path}'")

    def _warnings(self):
        """What this session will not do as asked, one message each."""
        messages = [f"nibble.SessionOptions: {what} is not supported and is ignored" for what in self._ignored]
        for name, why in self._UNSUPPORTED_WHEN_SET.items():
            if self._values[name] != self._DEFAULTS[name]:
                messages.append(f"nibble.SessionOptions: {name} is ignored: {why}")
        return messages


class RunOptions:
    """onnxruntime.RunOptions: accepted by InferenceSession.run; nibble has no per-run options."""

    def __init__(self):
        self.log_severity_level = 2
        self.log_verbosity_level = 0
        self.logid = ""
        self.terminate = False
        self.only_execute_path_to_fetches = False
        self._config_entries = {}

    def add_run_config_entry(self, key, value):
        self._config_entries[str(key)] = str(value)

    def get_run_config_entry(self, key):
        return self._config_entries[key]


class NodeArg:
    """An input or output of a model: ``name``, ``type`` ('tensor(float)') and ``shape`` (ints;
    None for a dimension that is only known when the model runs)."""

    __slots__ = ("name", "type", "shape")

    def __init__(self, name, type, shape):
        self.name = name
        self.type = type
        self.shape = shape

    def __repr__(self):
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"


class ModelMetadata:
    """onnxruntime.ModelMetadata, read from the model's ModelProto."""

    def __init__(self, producer_name="", graph_name="", domain="", description="",
                 graph_description="", version=0, custom_metadata_map=None):
        self.producer_name = producer_name
        self.graph_name = graph_name
        self.domain = domain
        self.description = description
        self.graph_description = graph_description
        self.version = version
        self.custom_metadata_map = dict(custom_metadata_map or {})


def get_all_providers():
    return [CPU_PROVIDER]


def get_available_providers():
    return [CPU_PROVIDER]


def get_device():
    return "CPU"


def set_default_logger_severity(severity):
    """Accepted for compatibility: nibble logs nothing; errors come as exceptions."""


def _provider_names(providers, provider_options):
    """Validates providers the way ONNX Runtime accepts them (names or (name, options) pairs)
    and warns about every provider other than the CPU one."""
    if providers is None:
        return [CPU_PROVIDER]
    if provider_options is not None and len(provider_options) != len(providers):
        raise ValueError("'providers' and 'provider_options' should be the same length if both are given.")
    for entry in providers:
        name = entry[0] if isinstance(entry, (tuple, list)) else entry
        if not isinstance(name, str):
            raise ValueError(f"provider must be a name or a (name, options) pair, got {entry!r}")
        if name != CPU_PROVIDER:
            _warn(f"nibble runs on the CPU only: execution provider '{name}' is ignored, "
                  f"using {CPU_PROVIDER}")
    return [CPU_PROVIDER]


class InferenceSession:
    """onnxruntime.InferenceSession over the nibble engine.

    ``path_or_bytes`` is a model file path (str or os.PathLike) or the serialized model. One
    session may be run from several Python threads at once; the GIL is released during a run.
    Engine errors are raised as subclasses of :class:`nibble.NibbleError` carrying the engine's
    message (InvalidModel, Unsupported, InvalidArgument, NoSuchFile).
    """

    def __init__(self, path_or_bytes, sess_options=None, providers=None, provider_options=None,
                 **kwargs):
        for name in kwargs:
            _warn(f"nibble.InferenceSession: unknown argument '{name}' is ignored")
        options = sess_options if sess_options is not None else SessionOptions()
        for message in options._warnings():
            _warn(message)
        self._providers = _provider_names(providers, provider_options)
        self._sess_options = options

        threads = int(options.intra_op_num_threads)
        optimize = options.graph_optimization_level != GraphOptimizationLevel.ORT_DISABLE_ALL
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            self._model_bytes = bytes(path_or_bytes)
            self._model_path = None
            self._session = _nibble.Session.load_bytes(self._model_bytes, threads, optimize)
        elif isinstance(path_or_bytes, (str, os.PathLike)):
            self._model_bytes = None
            self._model_path = os.fspath(path_or_bytes)
            self._session = _nibble.Session.load(self._model_path, threads, optimize)
        else:
            raise TypeError(f"Unable to load from type '{type(path_or_bytes).__name__}': "
                            "pass a file path or the model's bytes")
        self._inputs = [NodeArg(**info) for info in self._session.inputs()]
        self._outputs = [NodeArg(**info) for info in self._session.outputs()]
        self._metadata = None

    def get_inputs(self):
        return list(self._inputs)

    def get_outputs(self):
        return list(self._outputs)

    def get_overridable_initializers(self):
        return []

    def get_providers(self):
        return list(self._providers)

    def get_provider_options(self):
        return {CPU_PROVIDER: {}}

    def set_providers(self, providers=None, provider_options=None):
        self._providers = _provider_names(providers, provider_options)

    def get_session_options(self):
        return self._sess_options

    def get_modelmeta(self):
        if self._metadata is None:
            if self._model_path is not None:
                fields = _nibble.model_metadata_from_file(self._model_path)
            else:
                fields = _nibble.model_metadata_from_bytes(self._model_bytes)
            self._metadata = ModelMetadata(**fields)
        return self._metadata

    def run(self, output_names, input_feed, run_options=None):
        """Runs the model on ``input_feed`` ({name: array}) and returns the outputs named in
        ``output_names`` (all of them, in model order, when None or empty) as NumPy arrays.

        C-contiguous arrays of the input's element type are read in place; other arrays are
        converted to C order first. Element types are not converted, as in ONNX Runtime: a
        float64 array for a float input is an InvalidArgument error."""
        feed = [(name, value if isinstance(value, np.ndarray) else np.asarray(value))
                for name, value in input_feed.items()]
        return self._session.run(feed, list(output_names) if output_names else [])

    def end_profiling(self):
        return ""
