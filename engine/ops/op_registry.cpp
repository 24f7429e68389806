#include "engine/ops/op_registry.h"

#include <algorithm>

namespace nibble {

InferContext::InferContext(const Graph& graph, const Node& node, int64_t opset,
                           size_t max_tensor_bytes)
    : node(node),
      opset(opset),
      max_tensor_bytes(max_tensor_bytes),
      graph_(graph),
      out_types_(node.outputs.size()) {}

bool InferContext::has_input(size_t i) const {
  return i < node.inputs.size() && node.inputs[i] != kNoValue;
}

void InferContext::require_input(size_t i) const {
  if (!has_input(i)) fail("missing required input " + std::to_string(i));
}

DType InferContext::input_dtype(size_t i) const {
  require_input(i);
  return graph_.values[size_t(node.inputs[i])].dtype;
}

const Shape& InferContext::input_shape(size_t i) const {
  require_input(i);
  const Value& v = graph_.values[size_t(node.inputs[i])];
  if (!v.shape) fail("shape of input '" + v.name + "' is unknown");
  return *v.shape;
}

const Tensor* InferContext::input_constant(size_t i) const {
  if (!has_input(i)) return nullptr;
  const Value& v = graph_.values[size_t(node.inputs[i])];
  return v.constant ? &*v.constant : nullptr;
}

const Tensor& InferContext::require_constant(size_t i, const char* what) const {
  require_input(i);
  const Tensor* t = input_constant(i);
  if (t) return *t;
  std::string message = node.describe() + ": " + what + " must be a constant (known when the model is loaded)";
  // Which runtime graph inputs does the value come from? Specializing the plan on their values
  // is worth it only for small tensors (shape-like data, not images).
  constexpr int64_t kMaxSpecializedElements = 4096;
  std::vector<std::string> sources;
  std::vector<ValueId> stack{node.inputs[i]};
  std::vector<bool> seen(graph_.values.size(), false);
  while (!stack.empty()) {
    ValueId id = stack.back();
    stack.pop_back();
    if (id == kNoValue || seen[size_t(id)]) continue;
    seen[size_t(id)] = true;
    const Value& v = graph_.values[size_t(id)];
    if (v.constant) continue;
    if (v.producer >= 0) {
      for (ValueId in : graph_.nodes[size_t(v.producer)].inputs) stack.push_back(in);
      continue;
    }
    if (!v.shape || shape_numel(*v.shape) > kMaxSpecializedElements) throw Error(ErrorKind::Unsupported, message);
    sources.push_back(v.name);
  }
  if (sources.empty()) throw Error(ErrorKind::Unsupported, message);
  throw ConstantInputRequired(message, std::move(sources));
}

bool InferContext::has_output(size_t i) const {
  return i < node.outputs.size() && node.outputs[i] != kNoValue;
}

void InferContext::set_output(size_t i, DType dtype, Shape shape) {
  if (i >= out_types_.size()) fail("has no output " + std::to_string(i));
  out_types_[i] = {dtype, std::move(shape)};
}

void InferContext::require_dtype(size_t i, std::initializer_list<DType> allowed) const {
  DType t = input_dtype(i);
  for (DType a : allowed) {
    if (a == t) return;
  }
  unsupported("input " + std::to_string(i) + " has unsupported dtype " + dtype_name(t));
}

void InferContext::fail(const std::string& message) const {
  throw Error(ErrorKind::InvalidModel, node.describe() + ": " + message);
}

void InferContext::unsupported(const std::string& message) const {
  throw Error(ErrorKind::Unsupported, node.describe() + ": " + message);
}

const Tensor& ComputeContext::input(size_t i) const {
  if (!has_input(i)) fail("missing input " + std::to_string(i));
  return *inputs_[i];
}

void ComputeContext::fail(const std::string& message) const {
  throw Error(ErrorKind::InvalidArgument, node.describe() + ": " + message);
}

void OpRegistry::add(const std::string& domain, const std::string& op_type, OpDef def) {
  defs_[{domain, op_type}] = std::move(def);
}

const OpDef* OpRegistry::find(const std::string& domain, const std::string& op_type) const {
  auto it = defs_.find({domain, op_type});
  return it == defs_.end() ? nullptr : &it->second;
}

std::vector<std::string> OpRegistry::op_names() const {
  std::vector<std::string> names;
  for (const auto& [key, def] : defs_) {
    names.push_back(key.first.empty() ? key.second : key.first + ":" + key.second);
  }
  return names;
}

const OpRegistry& OpRegistry::instance() {
  static const OpRegistry registry = [] {
    OpRegistry r;
    register_elementwise_ops(r);
    register_reduce_ops(r);
    register_tensor_ops(r);
    register_nn_ops(r);
    register_quant_ops(r);
    register_control_ops(r);
    register_fused_conv_ops(r);
    register_qlinear_fused_ops(r);
    return r;
  }();
  return registry;
}

}  // namespace nibble
