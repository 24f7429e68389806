#include "tools/nibble/zoo/node_evaluator.h"

#include <set>

#include "nibble/nibble.h"

namespace nibble::zoo {

Tensor& NodeEvaluator::get(const std::string& name) {
  auto it = values_.find(name);
  if (it == values_.end())
    throw Error(ErrorKind::Internal, "zoo: value '" + name + "' was never computed");
  return it->second;
}

void NodeEvaluator::run(const onnx::NodeProto& node, const InitializerLookup& initializer) {
  // A one-node model: computed values become graph inputs, constants stay initializers.
  onnx::ModelProto model;
  model.set_ir_version(8);
  onnx::OperatorSetIdProto* import = model.add_opset_import();
  import->set_domain("");
  import->set_version(opset_);
  onnx::GraphProto* graph = model.mutable_graph();
  graph->set_name(node.name());
  *graph->add_node() = node;

  NamedTensors feeds;
  std::set<std::string> bound;
  for (const std::string& input : node.input()) {
    if (input.empty() || !bound.insert(input).second) continue;
    if (const onnx::TensorProto* constant = initializer(input)) {
      *graph->add_initializer() = *constant;
      continue;
    }
    const Tensor& value = get(input);
    onnx::ValueInfoProto* info = graph->add_input();
    info->set_name(input);
    onnx::TypeProto_Tensor* type = info->mutable_type()->mutable_tensor_type();
    type->set_elem_type(static_cast<int32_t>(value.dtype()));
    for (int64_t d : value.shape()) type->mutable_shape()->add_dim()->set_dim_value(d);
    feeds.emplace_back(input, Tensor::view(value.dtype(), value.shape(), value.raw()));
  }
  for (const std::string& output : node.output()) graph->add_output()->set_name(output);

  const std::string bytes = model.SerializeAsString();
  const Session session = Session::load_bytes(bytes.data(), bytes.size());
  std::vector<Tensor> outputs = session.run(feeds);
  for (int i = 0; i < node.output_size(); ++i)
    values_[node.output(i)] = std::move(outputs[static_cast<size_t>(i)]);
}

}  // namespace nibble::zoo
