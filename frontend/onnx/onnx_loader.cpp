#include "frontend/onnx/onnx_loader.h"

#include <google/protobuf/io/coded_stream.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "nibble_onnx/onnx.pb.h"

namespace nibble::onnx_frontend {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorKind::InvalidModel, message);
}

// Reads `count` bytes at `offset` from an external-data file, refusing paths that leave the
// model directory (absolute paths, "..", symlinks pointing outside).
std::string read_external(const onnx::TensorProto& proto, const LoadOptions& options,
                          const std::string& what, size_t expected_bytes) {
  std::string location;
  int64_t offset = 0;
  int64_t length = -1;
  // The whole value must be a decimal number ("0x10" is not 0).
  auto number = [&](const std::string& key, const std::string& text) {
    int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
      invalid(what + ": external data entry '" + key + "' is not a number: '" + text + "'");
    }
    return n;
  };
  for (const auto& entry : proto.external_data()) {
    if (entry.key() == "location") location = entry.value();
    else if (entry.key() == "offset") offset = number(entry.key(), entry.value());
    else if (entry.key() == "length") length = number(entry.key(), entry.value());
  }
  if (location.empty()) invalid(what + ": external data without a location");
  if (options.base_dir.empty()) {
    invalid(what + ": external data '" + location +
            "' cannot be resolved for a model loaded from memory without a base directory");
  }
  fs::path rel(location);
  if (rel.is_absolute()) invalid(what + ": external data path '" + location + "' is absolute");
  for (const auto& part : rel) {
    if (part == "..") invalid(what + ": external data path '" + location + "' escapes the model directory");
  }
  std::error_code ec;
  fs::path base = fs::weakly_canonical(options.base_dir, ec);
  fs::path full = fs::weakly_canonical(base / rel, ec);
  if (ec) throw Error(ErrorKind::Io, what + ": cannot resolve external data '" + location + "'");
  auto [base_end, full_it] = std::mismatch(base.begin(), base.end(), full.begin(), full.end());
  if (base_end != base.end()) {
    invalid(what + ": external data path '" + location + "' escapes the model directory");
  }
  std::ifstream in(full, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, what + ": cannot open external data file '" + full.string() + "'");
  in.seekg(0, std::ios::end);
  int64_t file_size = in.tellg();
  if (length < 0 && offset >= 0 && offset <= file_size) length = file_size - offset;
  if (offset < 0 || offset > file_size || length < 0 || length > file_size - offset) {
    invalid(what + ": external data range [" + std::to_string(offset) + ", " +
            (length < 0 ? "end" : "+" + std::to_string(length)) + ") lies outside '" + location + "' (" +
            std::to_string(file_size) + " bytes)");
  }
  if (static_cast<size_t>(length) != expected_bytes) {
    invalid(what + ": external data holds " + std::to_string(length) + " bytes, expected " +
            std::to_string(expected_bytes));
  }
  std::string bytes(static_cast<size_t>(length), '\0');
  in.seekg(offset);
  in.read(bytes.data(), length);
  if (!in) throw Error(ErrorKind::Io, what + ": short read from '" + full.string() + "'");
  return bytes;
}

// Copies typed-field values (one proto element per tensor element) into `out`.
template <typename Src, typename Dst>
void copy_typed(const google::protobuf::RepeatedField<Src>& src, Tensor& out) {
  Dst* dst = out.data<Dst>();
  for (int64_t i = 0; i < out.numel(); ++i) dst[i] = static_cast<Dst>(src.Get(static_cast<int>(i)));
}

// int4/uint4 arrive two per byte (low nibble first); tensors hold one sign/zero-extended per byte.
void unpack_4bit(const uint8_t* packed, Tensor& out) {
  bool is_signed = out.dtype() == DType::I4;
  for (int64_t i = 0; i < out.numel(); ++i) {
    uint8_t nib = (packed[i / 2] >> ((i & 1) * 4)) & 0xF;
    out.data<uint8_t>()[i] = is_signed ? uint8_t(int8_t(nib << 4) >> 4) : nib;
  }
}

}  // namespace

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(ErrorKind::Io, "file not found: " + path);
  if (fs::is_directory(path, ec)) throw Error(ErrorKind::Io, "is a directory, not a file: " + path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, "cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(ErrorKind::Io, "cannot read " + path);
  return std::move(ss).str();
}

Tensor tensor_from_proto(const onnx::TensorProto& proto, const LoadOptions& options,
                         const std::string& what) {
  if (proto.has_segment()) throw Error(ErrorKind::Unsupported, what + ": segmented tensors are not supported");
  DType dtype;
  try {
    dtype = dtype_from_onnx(proto.data_type());
  } catch (const Error& e) {
    throw Error(e.kind(), what + ": " + e.what());
  }
  Shape shape(proto.dims().begin(), proto.dims().end());
  for (int64_t d : shape) {
    if (d < 0) invalid(what + ": negative dimension in " + shape_str(shape));
  }
  int64_t numel;
  try {
    numel = shape_numel(shape);
  } catch (const Error&) {
    invalid(what + ": shape " + shape_str(shape) + " is too large");
  }
  bool four_bit = dtype == DType::I4 || dtype == DType::U4;
  size_t stored_bytes = four_bit ? size_t((numel + 1) / 2) : size_t(numel) * dtype_size(dtype);
  if (size_t(numel) * dtype_size(dtype) > options.max_tensor_bytes) {
    invalid(what + ": " + shape_str(shape) + " exceeds the allocation limit of " +
            std::to_string(options.max_tensor_bytes) + " bytes");
  }

  const std::string* raw = nullptr;
  std::string external;
  if (proto.data_location() == onnx::TensorProto::EXTERNAL) {
    external = read_external(proto, options, what, stored_bytes);
    raw = &external;
  } else if (proto.has_raw_data()) {
    raw = &proto.raw_data();
  }

  Tensor t(dtype, shape);
  if (raw) {
    if (raw->size() != stored_bytes) {
      invalid(what + ": raw data holds " + std::to_string(raw->size()) + " bytes, expected " +
              std::to_string(stored_bytes) + " for " + dtype_name(dtype) + " " + shape_str(shape));
    }
    if (four_bit) unpack_4bit(reinterpret_cast<const uint8_t*>(raw->data()), t);
    else if (stored_bytes) std::memcpy(t.raw(), raw->data(), stored_bytes);
    return t;
  }

  auto check_count = [&](int64_t have, int64_t want) {
    if (have != want) {
      invalid(what + ": holds " + std::to_string(have) + " values, expected " +
              std::to_string(want) + " for shape " + shape_str(shape));
    }
  };
  switch (dtype) {
    case DType::F32:
      check_count(proto.float_data_size(), numel);
      copy_typed<float, float>(proto.float_data(), t);
      break;
    case DType::F64:
      check_count(proto.double_data_size(), numel);
      copy_typed<double, double>(proto.double_data(), t);
      break;
    case DType::I64:
      check_count(proto.int64_data_size(), numel);
      copy_typed<int64_t, int64_t>(proto.int64_data(), t);
      break;
    case DType::U32:
      check_count(proto.uint64_data_size(), numel);
      copy_typed<uint64_t, uint32_t>(proto.uint64_data(), t);
      break;
    case DType::U64:
      check_count(proto.uint64_data_size(), numel);
      copy_typed<uint64_t, uint64_t>(proto.uint64_data(), t);
      break;
    case DType::I32: check_count(proto.int32_data_size(), numel); copy_typed<int32_t, int32_t>(proto.int32_data(), t); break;
    case DType::I16: check_count(proto.int32_data_size(), numel); copy_typed<int32_t, int16_t>(proto.int32_data(), t); break;
    case DType::U16: case DType::F16:
      check_count(proto.int32_data_size(), numel);
      copy_typed<int32_t, uint16_t>(proto.int32_data(), t);
      break;
    case DType::I8: check_count(proto.int32_data_size(), numel); copy_typed<int32_t, int8_t>(proto.int32_data(), t); break;
    case DType::U8: check_count(proto.int32_data_size(), numel); copy_typed<int32_t, uint8_t>(proto.int32_data(), t); break;
    case DType::Bool: check_count(proto.int32_data_size(), numel); copy_typed<int32_t, bool>(proto.int32_data(), t); break;
    case DType::I4: case DType::U4: {
      check_count(proto.int32_data_size(), int64_t(stored_bytes));
      std::vector<uint8_t> packed(stored_bytes);
      for (size_t i = 0; i < stored_bytes; ++i) packed[i] = uint8_t(proto.int32_data(int(i)));
      unpack_4bit(packed.data(), t);
      break;
    }
    default:
      throw Error(ErrorKind::Unsupported, what + ": unsupported dtype " + dtype_name(dtype));
  }
  return t;
}

Tensor load_tensor_file(const std::string& path) {
  std::string bytes = read_file(path);
  onnx::TensorProto proto;
  if (!proto.ParseFromString(bytes)) invalid(path + ": not a valid TensorProto");
  return tensor_from_proto(proto, LoadOptions{fs::path(path).parent_path().string()}, path);
}

namespace {

Attribute convert_attribute(const onnx::AttributeProto& a, const LoadOptions& options,
                            const std::string& where) {
  Attribute out;
  std::string what = where + " attribute '" + a.name() + "'";
  if (!a.ref_attr_name().empty()) {
    throw Error(ErrorKind::Unsupported, what + ": function attribute references are not supported");
  }
  switch (a.type()) {
    case onnx::AttributeProto::FLOAT: out.kind = Attribute::Kind::Float; out.f = a.f(); break;
    case onnx::AttributeProto::INT: out.kind = Attribute::Kind::Int; out.i = a.i(); break;
    case onnx::AttributeProto::STRING: out.kind = Attribute::Kind::String; out.s = a.s(); break;
    case onnx::AttributeProto::TENSOR:
      out.kind = Attribute::Kind::Tensor;
      out.t = tensor_from_proto(a.t(), options, what);
      break;
    case onnx::AttributeProto::FLOATS:
      out.kind = Attribute::Kind::Floats;
      out.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case onnx::AttributeProto::INTS:
      out.kind = Attribute::Kind::Ints;
      out.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case onnx::AttributeProto::STRINGS:
      out.kind = Attribute::Kind::Strings;
      out.strings.assign(a.strings().begin(), a.strings().end());
      break;
    case onnx::AttributeProto::GRAPH:
    case onnx::AttributeProto::GRAPHS:
      // Control flow (If/Loop/Scan) is not supported; keep the kind so the op lookup reports it.
      out.kind = Attribute::Kind::Graph;
      break;
    default:
      throw Error(ErrorKind::Unsupported, what + ": unsupported attribute type " +
                                              std::to_string(int(a.type())));
  }
  return out;
}

// Kahn's algorithm over value producers; rejects cycles.
void sort_topologically(Graph& g) {
  size_t n = g.nodes.size();
  std::vector<int> pending(n, 0);
  std::vector<std::vector<size_t>> consumers(n);
  for (size_t i = 0; i < n; ++i) {
    for (ValueId v : g.nodes[i].inputs) {
      if (v == kNoValue) continue;
      int32_t p = g.values[size_t(v)].producer;
      if (p >= 0) {
        ++pending[i];
        consumers[size_t(p)].push_back(i);
      }
    }
  }
  std::vector<size_t> order;
  order.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (pending[i] == 0) order.push_back(i);
  }
  for (size_t k = 0; k < order.size(); ++k) {
    for (size_t c : consumers[order[k]]) {
      if (--pending[c] == 0) order.push_back(c);
    }
  }
  if (order.size() != n) {
    for (size_t i = 0; i < n; ++i) {
      if (pending[i]) invalid("the graph has a cycle through " + g.nodes[i].describe());
    }
  }
  std::vector<Node> sorted;
  sorted.reserve(n);
  for (size_t i : order) sorted.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(sorted);
  for (size_t i = 0; i < n; ++i) {
    for (ValueId v : g.nodes[i].outputs) {
      if (v != kNoValue) g.values[size_t(v)].producer = int32_t(i);
    }
  }
}

// Protobuf message levels the parser may descend; each subgraph level takes three (GraphProto ->
// NodeProto -> AttributeProto -> GraphProto), the model and its graph two.
constexpr int kMessageNestingLimit = 64;
constexpr int kMaxSubgraphDepth = (kMessageNestingLimit - 2) / 3;

// How deeply subgraphs (graph attributes of If/Loop/Scan nodes) nest, read from the wire format
// without recursion: ModelProto.graph (7) -> GraphProto.node (1) -> NodeProto.attribute (5) ->
// AttributeProto.g (6) / graphs (11) -> GraphProto. -1 when the bytes are not well formed. Lets
// a model refused for its nesting say so, where protobuf only reports failure.
int subgraph_depth(const uint8_t* data, size_t size) {
  enum class Kind { Model, Graph, Node, Attribute };
  struct Frame {
    Kind kind;
    const uint8_t* pos;
    const uint8_t* end;
    int graphs;  // graphs enclosing this message, itself included
  };
  auto read_varint = [](const uint8_t*& p, const uint8_t* end, uint64_t& value) {
    value = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
      const uint8_t byte = *p++;
      value |= uint64_t(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return true;
    }
    return false;
  };
  std::vector<Frame> stack{{Kind::Model, data, data + size, 0}};
  int deepest = 0;
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.pos == f.end) {
      stack.pop_back();
      continue;
    }
    uint64_t tag = 0, value = 0;
    if (!read_varint(f.pos, f.end, tag)) return -1;
    switch (tag & 7) {
      case 0: if (!read_varint(f.pos, f.end, value)) return -1; break;
      case 1: if (f.end - f.pos < 8) return -1; f.pos += 8; break;
      case 5: if (f.end - f.pos < 4) return -1; f.pos += 4; break;
      case 2: {
        if (!read_varint(f.pos, f.end, value) || value > uint64_t(f.end - f.pos)) return -1;
        const uint8_t* begin = f.pos;
        f.pos += value;
        const uint64_t field = tag >> 3;
        std::optional<Kind> child;
        if (f.kind == Kind::Model && field == 7) child = Kind::Graph;
        if (f.kind == Kind::Graph && field == 1) child = Kind::Node;
        if (f.kind == Kind::Node && field == 5) child = Kind::Attribute;
        if (f.kind == Kind::Attribute && (field == 6 || field == 11)) child = Kind::Graph;
        if (child) {
          const int graphs = f.graphs + (*child == Kind::Graph ? 1 : 0);
          deepest = std::max(deepest, graphs - 1);  // the main graph is level 0
          stack.push_back({*child, begin, begin + value, graphs});
        }
        break;
      }
      default: return -1;
    }
  }
  return deepest;
}

}  // namespace

Graph load_model(const void* data, size_t size, const LoadOptions& options) {
  if (size == 0) invalid("not an ONNX model: the input is empty");
  if (size > size_t(INT_MAX)) {
    throw Error(ErrorKind::Unsupported, "models over 2 GiB must keep weights in external data files");
  }
  onnx::ModelProto model;
  google::protobuf::io::CodedInputStream stream(static_cast<const uint8_t*>(data), int(size));
  stream.SetRecursionLimit(kMessageNestingLimit);  // deeply nested subgraphs must not exhaust the stack
  if (!model.ParseFromCodedStream(&stream) || !stream.ConsumedEntireMessage()) {
    const int depth = subgraph_depth(static_cast<const uint8_t*>(data), size);
    if (depth > kMaxSubgraphDepth) {
      invalid("subgraphs are nested " + std::to_string(depth) + " levels deep (at most " +
              std::to_string(kMaxSubgraphDepth) + " are read)");
    }
    invalid("not an ONNX model: protobuf parsing failed (truncated or corrupt file?)");
  }
  if (!model.has_graph()) invalid("not an ONNX model: it has no graph");
  if (model.ir_version() < 3 || model.ir_version() > 14) {
    throw Error(ErrorKind::Unsupported,
                "unsupported ONNX IR version " + std::to_string(model.ir_version()) + " (3..14 are supported)");
  }

  Graph g;
  g.ir_version = model.ir_version();
  for (const auto& op : model.opset_import()) {
    std::string domain = op.domain() == "ai.onnx" ? "" : op.domain();
    g.opsets[domain] = op.version();
  }

  const onnx::GraphProto& gp = model.graph();
  std::unordered_map<std::string, ValueId> by_name;
  auto define = [&](const std::string& name, const std::string& what) {
    if (name.empty()) invalid(what + " has an empty name");
    auto [it, inserted] = by_name.emplace(name, kNoValue);
    if (!inserted) invalid("tensor '" + name + "' is defined twice (" + what + ")");
    it->second = g.add_value(name);
    return it->second;
  };

  if (gp.sparse_initializer_size() > 0) {
    throw Error(ErrorKind::Unsupported, "sparse initializers are not supported");
  }
  for (const auto& init : gp.initializer()) {
    ValueId v = define(init.name(), "initializer");
    Tensor t = tensor_from_proto(init, options, "initializer '" + init.name() + "'");
    g.values[size_t(v)].dtype = t.dtype();
    g.values[size_t(v)].shape = t.shape();
    g.values[size_t(v)].constant = std::move(t);
  }
  for (const auto& in : gp.input()) {
    if (by_name.count(in.name())) {
      // A graph input that also has an initializer is a constant (Brevitas lists hundreds).
      if (g.values[size_t(by_name[in.name()])].constant) {
        g.constant_inputs.push_back(in.name());
        continue;
      }
    }
    ValueId v = define(in.name(), "graph input");
    const auto& type = in.type();
    if (!type.has_tensor_type()) {
      throw Error(ErrorKind::Unsupported, "graph input '" + in.name() + "' is not a tensor");
    }
    Value& val = g.values[size_t(v)];
    try {
      val.dtype = dtype_from_onnx(type.tensor_type().elem_type());
    } catch (const Error& e) {
      throw Error(e.kind(), "graph input '" + in.name() + "': " + e.what());
    }
    if (type.tensor_type().has_shape()) {
      Shape s;
      for (const auto& d : type.tensor_type().shape().dim()) {
        if (d.has_dim_value() && d.dim_value() < 0) {
          invalid("graph input '" + in.name() + "' has a negative dimension");
        }
        s.push_back(d.has_dim_value() ? d.dim_value() : -1);
      }
      Shape static_dims = s;  // dynamic dimensions at their smallest useful size, 1
      for (int64_t& d : static_dims) d = d < 0 ? 1 : d;
      try {
        shape_numel(static_dims);
      } catch (const Error&) {
        invalid("graph input '" + in.name() + "' has shape " + shape_str(s) +
                ", more elements than a tensor can hold");
      }
      val.shape = s;  // -1 marks a dynamic dimension, fixed when a run is planned
    }
    g.inputs.push_back(v);
  }

  // Create every node output first so nodes may be listed out of order.
  g.nodes.resize(size_t(gp.node_size()));
  for (int i = 0; i < gp.node_size(); ++i) {
    const auto& np = gp.node(i);
    Node& node = g.nodes[size_t(i)];
    node.op_type = np.op_type();
    node.domain = np.domain() == "ai.onnx" ? "" : np.domain();
    node.name = np.name().empty() ? np.op_type() + "_" + std::to_string(i) : np.name();
    if (node.op_type.empty()) invalid("node " + std::to_string(i) + " has no op_type");
    for (const auto& out : np.output()) {
      if (out.empty()) {
        node.outputs.push_back(kNoValue);
        continue;
      }
      ValueId v = define(out, "output of " + node.describe());
      g.values[size_t(v)].producer = i;
      node.outputs.push_back(v);
    }
  }
  for (int i = 0; i < gp.node_size(); ++i) {
    const auto& np = gp.node(i);
    Node& node = g.nodes[size_t(i)];
    if (!g.opsets.count(node.domain)) {
      throw Error(ErrorKind::Unsupported,
                  node.describe() + ": domain '" + node.domain + "' is not imported by the model");
    }
    for (const auto& in : np.input()) {
      if (in.empty()) {
        node.inputs.push_back(kNoValue);
        continue;
      }
      auto it = by_name.find(in);
      if (it == by_name.end()) {
        invalid(node.describe() + ": input '" + in +
                "' is not produced by any node, initializer or graph input");
      }
      node.inputs.push_back(it->second);
    }
    for (const auto& a : np.attribute()) {
      if (node.attrs.count(a.name())) invalid(node.describe() + ": attribute '" + a.name() + "' given twice");
      node.attrs[a.name()] = convert_attribute(a, options, node.describe());
    }
  }
  for (const auto& out : gp.output()) {
    if (out.has_type() && !out.type().has_tensor_type()) {
      throw Error(ErrorKind::Unsupported, "graph output '" + out.name() + "' is not a tensor");
    }
    auto it = by_name.find(out.name());
    if (it == by_name.end()) invalid("graph output '" + out.name() + "' is never produced");
    Value& val = g.values[size_t(it->second)];
    // The declared type is what Session::outputs() reports until a plan infers it.
    if (val.dtype == DType::Undefined && out.type().tensor_type().elem_type() != 0) {
      val.dtype = static_cast<DType>(out.type().tensor_type().elem_type());
    }
    g.outputs.push_back(it->second);
  }
  if (g.outputs.empty()) invalid("the graph has no outputs");
  sort_topologically(g);
  return g;
}

Graph load_model_file(const std::string& path, size_t max_tensor_bytes) {
  std::string bytes = read_file(path);
  LoadOptions options;
  options.base_dir = fs::path(path).parent_path().string();
  if (options.base_dir.empty()) options.base_dir = ".";
  options.max_tensor_bytes = max_tensor_bytes;
  try {
    return load_model(bytes.data(), bytes.size(), options);
  } catch (const Error& e) {
    throw Error(e.kind(), path + ": " + e.what());
  }
}

}  // namespace nibble::onnx_frontend
