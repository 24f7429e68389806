// nibble._nibble: the C++ engine as seen from Python. The ONNX Runtime–shaped API
// (InferenceSession, SessionOptions, NodeArg, ...) is pure Python in python/nibble/; this module
// loads models, describes their inputs and outputs, runs them on NumPy arrays, reads a model's
// metadata, and runs the CLI's report-writing subcommands (coco, compare, bench, quantize).
//
// Inputs are viewed in place (no copy) when they are C-contiguous CPU arrays; outputs are handed
// to NumPy without a copy, the array owning the engine's buffer. The GIL is released while a
// model loads or runs, so Python threads run one session concurrently.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <climits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/io/coded_stream.h>

#include "frontend/onnx/onnx_loader.h"
#include "nibble/nibble.h"
#include "nibble_onnx/onnx.pb.h"
#include "tools/nibble/commands.h"

namespace nb = nanobind;

namespace {

using InputArray = nb::ndarray<nb::ro, nb::c_contig, nb::device::cpu>;

// Python exception classes, one per ErrorKind, all deriving from nibble.NibbleError.
struct ErrorClasses {
  PyObject* base = nullptr;
  PyObject* by_kind[5] = {};
};
ErrorClasses error_classes;

PyObject* new_error_class(nb::module_& m, const char* name, PyObject* bases, const char* doc) {
  std::string qualified = std::string("nibble.") + name;
  PyObject* cls = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases, nullptr);
  if (!cls) throw nb::python_error();
  m.attr(name) = nb::handle(cls);
  return cls;
}

void register_errors(nb::module_& m) {
  ErrorClasses& e = error_classes;
  e.base = new_error_class(m, "NibbleError", PyExc_RuntimeError,
                           "Base class of every error the nibble engine reports.");
  auto derived = [&](const char* name, PyObject* also, const char* doc) {
    nb::object bases = also ? nb::object(nb::make_tuple(nb::handle(e.base), nb::handle(also)))
                            : nb::object(nb::make_tuple(nb::handle(e.base)));
    return new_error_class(m, name, bases.ptr(), doc);
  };
  e.by_kind[int(nibble::ErrorKind::InvalidModel)] =
      derived("InvalidModel", nullptr, "Corrupt or inconsistent ONNX model.");
  e.by_kind[int(nibble::ErrorKind::Unsupported)] =
      derived("Unsupported", nullptr, "Valid ONNX that nibble does not implement.");
  e.by_kind[int(nibble::ErrorKind::InvalidArgument)] =
      derived("InvalidArgument", PyExc_ValueError, "Bad input: name, dtype, shape or option.");
  e.by_kind[int(nibble::ErrorKind::Io)] =
      derived("NoSuchFile", PyExc_FileNotFoundError, "Missing or unreadable file.");
  e.by_kind[int(nibble::ErrorKind::Internal)] =
      derived("InternalError", nullptr, "A bug in nibble.");

  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const nibble::Error& err) {
      int kind = int(err.kind());
      PyObject* cls = kind >= 0 && kind < 5 ? error_classes.by_kind[kind] : error_classes.base;
      PyErr_SetString(cls, err.what());
    }
  });
}

[[noreturn]] void invalid_argument(const std::string& message) {
  throw nibble::Error(nibble::ErrorKind::InvalidArgument, message);
}

nibble::DType dtype_from_array(const nb::dlpack::dtype& t, const std::string& input_name) {
  using Code = nb::dlpack::dtype_code;
  if (t.lanes == 1) {
    switch (Code(t.code)) {
      case Code::Float:
        if (t.bits == 32) return nibble::DType::F32;
        if (t.bits == 16) return nibble::DType::F16;
        if (t.bits == 64) return nibble::DType::F64;
        break;
      case Code::Int:
        if (t.bits == 8) return nibble::DType::I8;
        if (t.bits == 16) return nibble::DType::I16;
        if (t.bits == 32) return nibble::DType::I32;
        if (t.bits == 64) return nibble::DType::I64;
        break;
      case Code::UInt:
        if (t.bits == 8) return nibble::DType::U8;
        if (t.bits == 16) return nibble::DType::U16;
        if (t.bits == 32) return nibble::DType::U32;
        if (t.bits == 64) return nibble::DType::U64;
        break;
      case Code::Bool:
        if (t.bits == 8) return nibble::DType::Bool;
        break;
      default:
        break;
    }
  }
  invalid_argument("input '" + input_name + "': array element type (DLPack code " +
                   std::to_string(t.code) + ", " + std::to_string(t.bits) +
                   " bits) has no nibble equivalent");
}

// The NumPy dtype an output of this type comes back as. int4/uint4 tensors hold one element per
// byte, so they come back as int8/uint8 (as ONNX Runtime unpacks them too).
nb::dlpack::dtype array_dtype(nibble::DType t) {
  using nibble::DType;
  switch (t) {
    case DType::F32: return nb::dtype<float>();
    case DType::F64: return nb::dtype<double>();
    case DType::F16: return {uint8_t(nb::dlpack::dtype_code::Float), 16, 1};
    case DType::I8: case DType::I4: return nb::dtype<int8_t>();
    case DType::I16: return nb::dtype<int16_t>();
    case DType::I32: return nb::dtype<int32_t>();
    case DType::I64: return nb::dtype<int64_t>();
    case DType::U8: case DType::U4: return nb::dtype<uint8_t>();
    case DType::U16: return nb::dtype<uint16_t>();
    case DType::U32: return nb::dtype<uint32_t>();
    case DType::U64: return nb::dtype<uint64_t>();
    case DType::Bool: return nb::dtype<bool>();
    default:
      throw nibble::Error(nibble::ErrorKind::Unsupported,
                          std::string("output of type ") + nibble::dtype_name(t) +
                              " cannot be returned as a NumPy array");
  }
}

// A NumPy array that owns `tensor`'s storage (copied first only when it is a view of memory
// the session does not hand over, e.g. an input passed straight through).
nb::object to_numpy(nibble::Tensor tensor) {
  if (!tensor.owns_data()) tensor = tensor.clone();
  nb::dlpack::dtype dtype = array_dtype(tensor.dtype());
  std::vector<size_t> shape(tensor.shape().begin(), tensor.shape().end());
  auto* owned = new nibble::Tensor(std::move(tensor));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<nibble::Tensor*>(p); });
  nb::ndarray<nb::numpy> array(owned->raw(), shape.size(), shape.data(), owner, nullptr, dtype);
  return array.cast();
}

nb::dict tensor_info(const nibble::TensorInfo& info) {
  nb::dict d;
  d["name"] = info.name;
  d["type"] = std::string("tensor(") + nibble::dtype_name(info.dtype) + ")";
  nb::list shape;
  for (int64_t dim : info.shape) {
    if (dim < 0) shape.append(nb::none());
    else shape.append(dim);
  }
  d["shape"] = shape;
  return d;
}

nibble::SessionOptions make_options(int num_threads, bool optimize) {
  if (num_threads < 0) invalid_argument("intra_op_num_threads must be >= 0, got " + std::to_string(num_threads));
  nibble::SessionOptions options;
  options.num_threads = num_threads;
  options.optimization = optimize ? nibble::OptimizationLevel::All : nibble::OptimizationLevel::None;
  return options;
}

// ONNX Runtime's ModelMetadata fields, read from the ModelProto (nibble's graph drops them).
nb::dict model_metadata(const void* data, size_t size, const std::string& what) {
  google::protobuf::io::CodedInputStream stream(static_cast<const uint8_t*>(data), int(size));
  stream.SetTotalBytesLimit(INT_MAX);
  onnx::ModelProto model;
  if (size > size_t(INT_MAX) || !model.ParseFromCodedStream(&stream)) {
    throw nibble::Error(nibble::ErrorKind::InvalidModel, what + ": not a valid ONNX model");
  }
  nb::dict meta;
  meta["producer_name"] = model.producer_name();
  meta["graph_name"] = model.graph().name();
  meta["domain"] = model.domain();
  meta["description"] = model.doc_string();
  meta["graph_description"] = model.graph().doc_string();
  meta["version"] = model.model_version();
  nb::dict custom;
  for (const auto& prop : model.metadata_props()) custom[nb::str(prop.key().c_str())] = prop.value();
  meta["custom_metadata_map"] = custom;
  return meta;
}

// Runs one `nibble` subcommand in this process, exactly as the CLI would from `args` (argv
// without the program name). CLI usage errors become InvalidArgument; engine errors propagate.
int run_cli_command(const std::vector<std::string>& args) {
  using Factory = nibble::cli::Command (*)(CLI::App&);
  static const std::map<std::string, Factory> factories = {
      {"bench", nibble::cli::add_bench_command},
      {"coco", nibble::cli::add_coco_command},
      {"compare", nibble::cli::add_compare_command},
      {"quantize", nibble::cli::add_quantize_command},
  };
  if (args.empty() || !factories.count(args[0])) invalid_argument("unknown nibble command");
  CLI::App app{"nibble", "nibble"};
  nibble::cli::Command command = factories.at(args[0])(app);
  std::vector<const char*> argv = {"nibble"};
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  try {
    app.parse(int(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    invalid_argument("nibble " + args[0] + ": " + e.what());
  }
  try {
    return command.run();
  } catch (const nibble::cli::UsageError& e) {
    invalid_argument("nibble " + args[0] + ": " + e.what());
  }
}

}  // namespace

NB_MODULE(_nibble, m) {
  m.doc() = "nibble engine bindings; use the `nibble` package instead of this module.";
  m.attr("__version__") = NIBBLE_VERSION;
  register_errors(m);

  nb::class_<nibble::Session>(m, "Session")
      .def_static(
          "load",
          [](const std::string& path, int num_threads, bool optimize) {
            nibble::SessionOptions options = make_options(num_threads, optimize);
            nb::gil_scoped_release unlocked;
            return nibble::Session::load(path, options);
          },
          nb::arg("path"), nb::arg("num_threads"), nb::arg("optimize"))
      .def_static(
          "load_bytes",
          [](nb::bytes model, int num_threads, bool optimize) {
            nibble::SessionOptions options = make_options(num_threads, optimize);
            const void* data = model.c_str();
            size_t size = model.size();
            nb::gil_scoped_release unlocked;  // `model` is immutable and held by the caller
            // No base directory: a model given as bytes cannot refer to external data files.
            return nibble::Session::load_bytes(data, size, options);
          },
          nb::arg("model"), nb::arg("num_threads"), nb::arg("optimize"))
      .def("inputs",
           [](const nibble::Session& s) {
             nb::list out;
             for (const auto& info : s.inputs()) out.append(tensor_info(info));
             return out;
           })
      .def("outputs",
           [](const nibble::Session& s) {
             nb::list out;
             for (const auto& info : s.outputs()) out.append(tensor_info(info));
             return out;
           })
      .def(
          "run",
          [](const nibble::Session& s, const std::vector<std::pair<std::string, InputArray>>& feed,
             const std::vector<std::string>& output_names) {
            // `feed` keeps every array alive (and, for converted inputs, their copies) until
            // the run returns.
            nibble::NamedTensors inputs;
            inputs.reserve(feed.size());
            for (const auto& [name, array] : feed) {
              nibble::Shape shape(array.ndim());
              for (size_t i = 0; i < array.ndim(); ++i) shape[i] = int64_t(array.shape(i));
              inputs.emplace_back(name, nibble::Tensor::view(dtype_from_array(array.dtype(), name),
                                                             std::move(shape), array.data()));
            }
            std::vector<nibble::Tensor> outputs;
            {
              nb::gil_scoped_release unlocked;
              outputs = s.run(inputs, output_names);
            }
            nb::list result;
            for (auto& t : outputs) result.append(to_numpy(std::move(t)));
            return result;
          },
          nb::arg("feed"), nb::arg("output_names"));

  m.def("model_metadata_from_file", [](const std::string& path) {
    std::string bytes = nibble::onnx_frontend::read_file(path);
    return model_metadata(bytes.data(), bytes.size(), path);
  });
  m.def(
      "run_cli_command",
      [](const std::vector<std::string>& args) {
        nb::gil_scoped_release unlocked;
        return run_cli_command(args);
      },
      nb::arg("args"));
  m.def("model_metadata_from_bytes", [](nb::bytes model) {
    return model_metadata(model.c_str(), model.size(), "model bytes");
  });
}
