#include "engine/ops/op_registry.h"
#include "engine/passes/passes.h"

namespace nibble {

namespace {

const OpDef& find_op(const Node& node) {
  for (const auto& [key, attr] : node.attrs) {
    if (attr.kind == Attribute::Kind::Graph) {
      throw Error(ErrorKind::Unsupported,
                  node.describe() + ": control flow with subgraphs is not supported");
    }
  }
  const OpDef* def = OpRegistry::instance().find(node.domain, node.op_type);
  if (!def) {
    std::string op = node.domain.empty() ? node.op_type : node.domain + "." + node.op_type;
    throw Error(ErrorKind::Unsupported, "unsupported operator " + op + " (node '" + node.name + "')");
  }
  return *def;
}

}  // namespace

void infer_shapes_and_fold(Graph& graph, size_t max_tensor_bytes, ThreadPool& pool) {
  for (ValueId v : graph.inputs) {
    const Value& val = graph.values[size_t(v)];
    if (!val.shape) throw Error(ErrorKind::Internal, "input '" + val.name + "' has no shape");
    for (int64_t d : *val.shape) {
      if (d < 0) throw Error(ErrorKind::Internal, "input '" + val.name + "' shape is not static");
    }
  }
  for (Node& node : graph.nodes) {
    const OpDef& def = find_op(node);
    InferContext ctx(graph, node, graph.opset(node.domain));
    def.infer(ctx);

    bool foldable = def.reads_only_shapes;
    if (!foldable) {
      foldable = true;
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        if (ctx.has_input(i) && !ctx.input_constant(i)) foldable = false;
      }
    }

    std::vector<Tensor> results;
    std::vector<Tensor*> result_ptrs;
    results.reserve(node.outputs.size() + node.inputs.size());
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      auto& [dtype, shape] = ctx.output_types()[i];
      if (dtype == DType::Undefined) {
        if (!ctx.has_output(i)) {  // omitted optional output the op did not type
          if (foldable) results.emplace_back();
          continue;
        }
        throw Error(ErrorKind::Internal, node.describe() + ": output " + std::to_string(i) + " has no type");
      }
      int64_t numel = 0;
      try {
        numel = shape_numel(shape);
      } catch (const Error& e) {  // an element count past int64: the node's shapes are at fault
        throw Error(ErrorKind::InvalidModel, node.describe() + ": output " + e.what());
      }
      if (size_t(numel) * dtype_size(dtype) > max_tensor_bytes) {
        throw Error(ErrorKind::InvalidModel,
                    node.describe() + ": output " + shape_str(shape) + " of " + dtype_name(dtype) +
                        " exceeds the allocation limit of " + std::to_string(max_tensor_bytes) + " bytes");
      }
      if (ctx.has_output(i)) {
        Value& out = graph.values[size_t(node.outputs[i])];
        out.dtype = dtype;
        out.shape = shape;
      }
      if (foldable) results.emplace_back(dtype, shape);
    }
    if (!foldable) continue;

    std::vector<const Tensor*> inputs;
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      inputs.push_back(ctx.has_input(i) ? ctx.input_constant(i) : nullptr);
    }
    if (def.reads_only_shapes) {
      // Shape-only ops see placeholder inputs of the right dtype and shape (no data is read).
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        if (ctx.has_input(i) && !inputs[i]) {
          static const char kNoData = 0;
          results.emplace_back(Tensor::view(ctx.input_dtype(i), ctx.input_shape(i), &kNoData));
        }
      }
      size_t extra = node.outputs.size();
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        if (ctx.has_input(i) && !inputs[i]) inputs[i] = &results[extra++];
      }
    }
    for (size_t i = 0; i < node.outputs.size(); ++i) result_ptrs.push_back(&results[i]);
    std::shared_ptr<const void> state = def.prepare ? def.prepare(ctx) : nullptr;
    def.compute(ComputeContext(node, ctx.opset, inputs, result_ptrs, pool, state.get()));
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (ctx.has_output(i)) graph.values[size_t(node.outputs[i])].constant = std::move(results[i]);
    }
  }
}

}  // namespace nibble
