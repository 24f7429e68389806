#include "engine/plan/plan.h"

#include <chrono>

#include "engine/passes/passes.h"

namespace nibble {

std::shared_ptr<const Plan> build_plan(const Graph& graph,
                                       const std::map<std::string, Shape>& input_shapes,
                                       const std::map<std::string, Tensor>& input_values,
                                       bool optimize, size_t max_tensor_bytes, ThreadPool& pool) {
  auto plan = std::make_shared<Plan>();
  Graph& g = plan->graph;
  g = graph;
  for (ValueId v : g.inputs) {
    Value& val = g.values[size_t(v)];
    val.shape = input_shapes.at(val.name);
    auto value = input_values.find(val.name);
    if (value != input_values.end()) val.constant = value->second.clone();
  }
  remove_dead_nodes(g);
  infer_shapes_and_fold(g, max_tensor_bytes, pool);
  if (optimize) fuse_qdq(g);  // before remove_dead_nodes: it reads the folded DequantizeLinear nodes
  remove_dead_nodes(g);
  if (optimize) {
    fuse_conv_epilogues(g);
    remove_dead_nodes(g);
  }

  std::vector<size_t> last_reader(g.values.size(), SIZE_MAX);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    for (ValueId v : g.nodes[k].inputs) {
      if (v != kNoValue) last_reader[size_t(v)] = k;
    }
  }
  std::vector<bool> keep(g.values.size(), false);
  for (ValueId v : g.outputs) keep[size_t(v)] = true;
  for (ValueId v : g.inputs) keep[size_t(v)] = true;  // caller-owned

  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& node = g.nodes[k];
    PlanStep step;
    step.node = k;
    step.def = OpRegistry::instance().find(node.domain, node.op_type);
    step.opset = g.opset(node.domain);
    InferContext ctx(g, node, step.opset);
    step.def->infer(ctx);
    if (step.def->prepare) step.state = step.def->prepare(ctx);
    if (step.def->kernel_info) step.kernel = step.def->kernel_info(ctx, step.state.get());
    if (auto note = node.attrs.find(kQdqFallbackNote); note != node.attrs.end())
      step.kernel.note = note->second.s;
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (node.outputs[i] == kNoValue) step.omitted_outputs.push_back(ctx.output_types()[i]);
    }
    for (ValueId v : node.inputs) {
      if (v != kNoValue && last_reader[size_t(v)] == k && !keep[size_t(v)] &&
          !g.values[size_t(v)].constant) {
        step.release_after.push_back(v);
      }
    }
    // Outputs nobody reads (unused optional outputs) are released right away.
    for (ValueId v : node.outputs) {
      if (v != kNoValue && last_reader[size_t(v)] == SIZE_MAX && !keep[size_t(v)]) {
        step.release_after.push_back(v);
      }
    }
    plan->steps.push_back(std::move(step));
  }
  return plan;
}

std::vector<Tensor> execute_plan(const Plan& plan, const std::vector<const Tensor*>& inputs,
                                 ThreadPool& pool, std::vector<double>* step_seconds) {
  const Graph& g = plan.graph;
  std::vector<Tensor> owned(g.values.size());
  std::vector<const Tensor*> bound(g.values.size(), nullptr);
  for (size_t i = 0; i < g.values.size(); ++i) {
    if (g.values[i].constant) bound[i] = &*g.values[i].constant;
  }
  for (size_t i = 0; i < g.inputs.size(); ++i) bound[size_t(g.inputs[i])] = inputs[i];

  if (step_seconds) step_seconds->assign(plan.steps.size(), 0.0);
  for (size_t k = 0; k < plan.steps.size(); ++k) {
    const PlanStep& step = plan.steps[k];
    const auto step_start = std::chrono::steady_clock::now();
    const Node& node = g.nodes[step.node];
    std::vector<const Tensor*> in;
    in.reserve(node.inputs.size());
    for (ValueId v : node.inputs) in.push_back(v == kNoValue ? nullptr : bound[size_t(v)]);
    std::vector<Tensor> scratch;  // omitted optional outputs
    scratch.reserve(node.outputs.size());
    std::vector<Tensor*> out;
    for (ValueId v : node.outputs) {
      if (v == kNoValue) {
        const auto& [dtype, shape] = step.omitted_outputs[scratch.size()];
        out.push_back(dtype == DType::Undefined ? &scratch.emplace_back()
                                                : &scratch.emplace_back(dtype, shape));
        continue;
      }
      const Value& val = g.values[size_t(v)];
      owned[size_t(v)] = Tensor(val.dtype, *val.shape);
      bound[size_t(v)] = &owned[size_t(v)];
      out.push_back(&owned[size_t(v)]);
    }
    step.def->compute(ComputeContext(node, step.opset, std::move(in), std::move(out), pool,
                                     step.state.get()));
    for (ValueId v : step.release_after) {
      owned[size_t(v)] = Tensor();
      bound[size_t(v)] = nullptr;
    }
    if (step_seconds)
      (*step_seconds)[k] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
  }

  std::vector<Tensor> results;
  for (ValueId v : g.outputs) {
    if (owned[size_t(v)].owns_data()) {
      results.push_back(owned[size_t(v)]);  // shares storage; no other reader remains
    } else {
      results.push_back(bound[size_t(v)]->clone());  // a constant or a caller's input
    }
  }
  return results;
}

}  // namespace nibble
