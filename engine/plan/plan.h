// A Plan is a graph specialized to one set of input shapes: every value typed and statically
// shaped, constants folded, dead nodes removed, per-node prepared state (packed weights), and
// the point after which each intermediate tensor can be released.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/ir/graph.h"
#include "engine/ops/op_registry.h"

namespace nibble {

struct PlanStep {
  size_t node;  // index into Plan::graph.nodes
  const OpDef* def;
  int64_t opset;
  std::shared_ptr<const void> state;
  KernelInfo kernel;  // from OpDef::kernel_info, for inspect/profile
  std::vector<ValueId> release_after;  // intermediates whose last reader is this step
  // Types of outputs the model omitted (""): ops still get a scratch tensor to write.
  std::vector<std::pair<DType, Shape>> omitted_outputs;
};

struct Plan {
  Graph graph;
  std::vector<PlanStep> steps;
};

// `graph` is copied; `input_shapes` gives the full static shape of every runtime input.
// With `optimize` false the graph runs node by node as written (the reference path).
// `input_values` holds the inputs the plan is specialized on (their values become constants).
std::shared_ptr<const Plan> build_plan(const Graph& graph,
                                       const std::map<std::string, Shape>& input_shapes,
                                       const std::map<std::string, Tensor>& input_values,
                                       bool optimize, size_t max_tensor_bytes, ThreadPool& pool);

// Runs the plan. `inputs[i]` is bound to graph.inputs[i] (already validated).
// Returns a tensor per graph output, in graph order. With `step_seconds`, also the wall time of
// each step (output allocation, compute and release), indexed like plan.steps.
std::vector<Tensor> execute_plan(const Plan& plan, const std::vector<const Tensor*>& inputs,
                                 ThreadPool& pool, std::vector<double>* step_seconds = nullptr);

}  // namespace nibble
