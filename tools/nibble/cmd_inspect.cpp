// `nibble inspect`: the graph nibble runs after folding and fusion — per node, the op, the
// kernel chosen at load and the weight bytes it packed, with why a quantized pattern stayed in
// float — and the totals: packed weight bytes against the model's float weights.

#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "engine/exec/thread_pool.h"
#include "engine/plan/plan.h"
#include "frontend/onnx/onnx_loader.h"
#include "tools/nibble/commands.h"
#include "tools/nibble/run_common.h"

namespace nibble::cli {

namespace {

struct InspectOptions {
  std::string model;
  bool reference = false;
  WeightOnlyActivations weight_only_activations = WeightOnlyActivations::Float;
};

std::string kernel_text(const KernelInfo& k) {
  if (k.family.empty()) return "";
  std::string text = k.family + " " + k.isa;
  if (!k.tile.empty()) text += " " + k.tile;
  return text;
}

// The weight input of a node with packed weights.
size_t weight_input(const Node& node) {
  const bool qlinear = node.domain.empty() && (node.op_type == "QLinearConv" || node.op_type == "QLinearMatMul");
  return qlinear ? 3 : 1;
}

int run_inspect(const InspectOptions& options) {
  const Graph graph = onnx_frontend::load_model_file(options.model);
  std::map<std::string, Shape> shapes;
  for (ValueId v : graph.inputs) {
    const Value& value = graph.values[size_t(v)];
    Shape shape = value.shape.value_or(Shape{});
    for (int64_t& d : shape) {
      if (d < 0) d = 1;  // dynamic dimensions are inspected at 1
    }
    shapes[value.name] = shape;
  }
  ThreadPool pool(1);
  std::shared_ptr<const Plan> plan;
  try {
    plan = build_plan(graph, shapes, {}, !options.reference, size_t{16} << 30, pool,
                      options.weight_only_activations);
  } catch (const Error& e) {
    throw Error(e.kind(), options.model + ": " + e.what());
  }
  const Graph& g = plan->graph;

  std::map<std::string, std::pair<int, size_t>> by_kernel;  // family -> nodes, packed bytes
  size_t packed_total = 0;
  size_t packed_as_float = 0;  // the same weights at 4 bytes each
  for (const PlanStep& step : plan->steps) {
    const Node& node = g.nodes[step.node];
    const KernelInfo& k = step.kernel;
    std::printf("%-48s %-20s", node.name.c_str(),
                (node.domain.empty() ? node.op_type : node.domain + "." + node.op_type).c_str());
    if (!k.family.empty()) std::printf(" %s", kernel_text(k).c_str());
    if (k.packed_weight_bytes) std::printf(" [%zu B packed]", k.packed_weight_bytes);
    if (!k.note.empty()) std::printf(" (%s)", k.note.c_str());
    std::printf("\n");
    packed_total += k.packed_weight_bytes;
    if (k.packed_weight_bytes) {
      const size_t w = weight_input(node);
      if (w < node.inputs.size() && node.inputs[w] != kNoValue) {
        const Value& weights = g.values[size_t(node.inputs[w])];
        if (weights.shape) packed_as_float += size_t(shape_numel(*weights.shape)) * sizeof(float);
      }
    }
    if (!k.family.empty()) {
      auto& [count, bytes] = by_kernel[k.family];
      ++count;
      bytes += k.packed_weight_bytes;
    }
  }
  // Float weights of the model as given: what FP32 would keep resident.
  size_t float_weight_bytes = 0, constant_bytes = 0;
  for (const Value& v : graph.values) {
    if (!v.constant || v.producer >= 0) continue;
    constant_bytes += v.constant->nbytes();
    if (v.constant->dtype() == DType::F32) float_weight_bytes += v.constant->nbytes();
  }
  std::printf("\n%zu nodes\n", plan->steps.size());
  for (const auto& [family, entry] : by_kernel)
    std::printf("  %-20s %4d nodes  %10zu B packed\n", family.c_str(), entry.first, entry.second);
  std::printf("packed weight bytes: %zu (%.2f MiB)", packed_total, double(packed_total) / (1 << 20));
  if (packed_as_float)
    std::printf(" vs %zu B at FP32: %.3fx", packed_as_float, double(packed_total) / double(packed_as_float));
  std::printf("\n");
  std::printf("model initializers:  %zu B, of which float %zu B\n", constant_bytes,
              float_weight_bytes);
  std::printf("inputs:");
  for (ValueId v : graph.inputs) {
    const Value& value = graph.values[size_t(v)];
    std::printf(" %s %s %s", value.name.c_str(), dtype_name(value.dtype),
                shape_str(shapes[value.name]).c_str());
  }
  std::printf("\n");
  if (!graph.constant_inputs.empty()) {
    // Graph inputs with an initializer: ONNX Runtime takes values for them, nibble refuses them.
    std::printf("constant inputs:     %zu graph inputs with initializers, folded at load "
                "(cannot be fed at run time), e.g. '%s'\n",
                graph.constant_inputs.size(), graph.constant_inputs.front().c_str());
  }
  return 0;
}

}  // namespace

Command add_inspect_command(CLI::App& nibble) {
  auto options = std::make_shared<InspectOptions>();
  CLI::App* cmd = nibble.add_subcommand(
      "inspect", "Show the planned graph: per node the kernel and packed weight bytes");
  cmd->add_option("model", options->model, "ONNX model")->required()->check(CLI::ExistingFile);
  add_weight_only_activations_option(*cmd, options->weight_only_activations);
  cmd->add_flag("--reference", options->reference,
                "Plan without fusion (every node as written)");
  return Command{cmd, [options] { return run_inspect(*options); }};
}

}  // namespace nibble::cli
