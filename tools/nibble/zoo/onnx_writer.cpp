#include "tools/nibble/zoo/onnx_writer.h"

#include <cstring>

#include "nibble/error.h"

namespace nibble::zoo {

Attribute Attribute::ints(const std::string& name, const std::vector<int64_t>& values) {
  Attribute a{name, {}};
  a.proto.set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a.proto.add_ints(v);
  return a;
}

Attribute Attribute::integer(const std::string& name, int64_t value) {
  Attribute a{name, {}};
  a.proto.set_type(onnx::AttributeProto::INT);
  a.proto.set_i(value);
  return a;
}

Attribute Attribute::real(const std::string& name, float value) {
  Attribute a{name, {}};
  a.proto.set_type(onnx::AttributeProto::FLOAT);
  a.proto.set_f(value);
  return a;
}

Attribute Attribute::text(const std::string& name, const std::string& value) {
  Attribute a{name, {}};
  a.proto.set_type(onnx::AttributeProto::STRING);
  a.proto.set_s(value);
  return a;
}

OnnxWriter::OnnxWriter(int64_t opset, int64_t ir_version, const std::string& graph_name) {
  model_.set_ir_version(ir_version);
  model_.set_producer_name("nibble zoo");
  onnx::OperatorSetIdProto* import = model_.add_opset_import();
  import->set_domain("");
  import->set_version(opset);
  graph_ = model_.mutable_graph();
  graph_->set_name(graph_name);
}

std::string OnnxWriter::unique(const std::string& base) {
  const int count = used_[base]++;
  return count == 0 ? base : base + "_" + std::to_string(count);
}

std::vector<std::string> OnnxWriter::node(const std::string& scope, const std::string& op,
                                          const std::vector<std::string>& inputs, int outputs,
                                          const std::vector<Attribute>& attributes) {
  onnx::NodeProto* node = graph_->add_node();
  node->set_op_type(op);
  node->set_name(unique(scope + "/" + op));
  for (const std::string& input : inputs) node->add_input(input);
  std::vector<std::string> names;
  for (int i = 0; i < outputs; ++i) {
    names.push_back(node->name() + "_output_" + std::to_string(i));
    node->add_output(names.back());
  }
  for (const Attribute& attribute : attributes) {
    onnx::AttributeProto* proto = node->add_attribute();
    *proto = attribute.proto;
    proto->set_name(attribute.name);
  }
  if (evaluator_)
    evaluator_->run(*node, [this](const std::string& name) { return initializer(name); });
  return names;
}

onnx::TensorProto* OnnxWriter::add_initializer(const std::string& name) {
  if (!initializers_.emplace(name, graph_->initializer_size()).second)
    throw Error(ErrorKind::Internal, "initializer '" + name + "' is added twice");
  return graph_->add_initializer();
}

const onnx::TensorProto* OnnxWriter::initializer(const std::string& name) const {
  auto it = initializers_.find(name);
  return it == initializers_.end() ? nullptr : &graph_->initializer(it->second);
}

namespace {

template <typename T>
void fill_tensor(onnx::TensorProto* tensor, const std::string& name, int32_t elem_type,
                 const std::vector<int64_t>& shape, const std::vector<T>& values) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  if (count != static_cast<int64_t>(values.size()))
    throw Error(ErrorKind::Internal, "initializer '" + name + "': " +
                                         std::to_string(values.size()) + " values for " +
                                         std::to_string(count) + " elements");
  tensor->set_name(name);
  tensor->set_data_type(elem_type);
  for (int64_t d : shape) tensor->add_dims(d);
  std::string raw(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(raw.data(), values.data(), raw.size());
  tensor->set_raw_data(std::move(raw));
}

}  // namespace

std::string OnnxWriter::f32(const std::string& name, const std::vector<int64_t>& shape,
                            const std::vector<float>& values) {
  fill_tensor(add_initializer(name), name, onnx::TensorProto::FLOAT, shape, values);
  return name;
}

std::string OnnxWriter::i64(const std::string& name, const std::vector<int64_t>& shape,
                            const std::vector<int64_t>& values) {
  fill_tensor(add_initializer(name), name, onnx::TensorProto::INT64, shape, values);
  return name;
}

std::string OnnxWriter::i64_const(const std::string& scope, const std::string& what,
                                  const std::vector<int64_t>& values, bool scalar) {
  const std::vector<int64_t> shape =
      scalar ? std::vector<int64_t>{} : std::vector<int64_t>{static_cast<int64_t>(values.size())};
  return i64(unique(scope + "/" + what), shape, values);
}

std::string OnnxWriter::f32_scalar(const std::string& scope, const std::string& what,
                                   float value) {
  return f32(unique(scope + "/" + what), {}, {value});
}

namespace {

void set_value_info(onnx::ValueInfoProto* info, const std::string& name, int32_t elem_type,
                    const std::vector<int64_t>& shape) {
  info->set_name(name);
  onnx::TypeProto_Tensor* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(elem_type);
  onnx::TensorShapeProto* dims = tensor->mutable_shape();
  for (int64_t d : shape) dims->add_dim()->set_dim_value(d);
}

}  // namespace

void OnnxWriter::input(const std::string& name, int32_t elem_type,
                       const std::vector<int64_t>& shape) {
  set_value_info(graph_->add_input(), name, elem_type, shape);
}

void OnnxWriter::output(const std::string& value, const std::string& name, int32_t elem_type,
                        const std::vector<int64_t>& shape) {
  for (int n = graph_->node_size() - 1; n >= 0; --n) {
    onnx::NodeProto* node = graph_->mutable_node(n);
    for (int i = 0; i < node->output_size(); ++i)
      if (node->output(i) == value) {
        node->set_output(i, name);
        set_value_info(graph_->add_output(), name, elem_type, shape);
        return;
      }
  }
  throw Error(ErrorKind::Internal, "graph output: no node writes '" + value + "'");
}

void OnnxWriter::metadata(const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto* entry = model_.add_metadata_props();
  entry->set_key(key);
  entry->set_value(value);
}

}  // namespace nibble::zoo
