#include "engine/plan/plan.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>

#include "engine/ops/op_util.h"
#include "engine/passes/passes.h"

namespace nibble {
namespace {

constexpr size_t kArenaAlignment = 64;  // a cache line; also what the SIMD kernels like

size_t align_up(size_t n) { return (n + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

size_t value_bytes(const Value& v) { return size_t(shape_numel(*v.shape)) * dtype_size(v.dtype); }

// Ops known to write every element of every output. Outputs of other ops are zeroed before
// compute, as separately allocated tensors always were, so none can read stale arena bytes.
bool writes_every_output_element(const Node& node) {
  static const std::set<std::pair<std::string, std::string>> ops = {
      {"nibble", "FusedConv"}, {"nibble", "QConv"},
      {"", "Conv"},            {"", "MaxPool"},         {"", "AveragePool"},
      {"", "GlobalAveragePool"}, {"", "GlobalMaxPool"}, {"", "Concat"},
      {"", "Split"},           {"", "Slice"},           {"", "Reshape"},
      {"", "Flatten"},         {"", "Squeeze"},         {"", "Unsqueeze"},
      {"", "Identity"},        {"", "Transpose"},       {"", "Resize"},
      {"", "Add"},             {"", "Sub"},             {"", "Mul"},
      {"", "Div"},             {"", "Sigmoid"},         {"", "Relu"},
      {"", "Tanh"},            {"", "Softmax"},         {"", "MatMul"},
      {"", "Gemm"},            {"", "TopK"},            {"", "Gather"},
      {"", "GatherElements"},  {"", "Tile"},            {"", "Expand"},
      {"", "Cast"},            {"", "Mod"},             {"", "ReduceMax"},
      {"", "QuantizeLinear"},  {"", "DequantizeLinear"}, {"", "Clip"},
      {"", "HardSwish"},       {"", "HardSigmoid"},     {"", "LeakyRelu"},
      {"", "Pow"},             {"", "Sqrt"},            {"", "Exp"},
  };
  return ops.count({node.domain, node.op_type}) != 0;
}

// Ops whose output bytes are exactly their first input's bytes.
bool is_byte_view(const Node& node) {
  static const std::set<std::string> ops = {"Reshape", "Flatten", "Squeeze", "Unsqueeze",
                                            "Identity"};
  return node.domain.empty() && ops.count(node.op_type) != 0 && node.outputs.size() == 1;
}

// The axis of a Concat (output shape) or Split (input shape) when every slice along it is one
// contiguous block, i.e. all dimensions before it are 1; -1 otherwise.
int64_t contiguous_axis(const Node& node, const Shape& shape, int64_t default_axis) {
  if (shape.empty()) return -1;
  const int64_t axis = normalize_axis(node.attr_int("axis", default_axis), int64_t(shape.size()), node);
  for (int64_t d = 0; d < axis; ++d)
    if (shape[size_t(d)] != 1) return -1;
  return axis;
}

// Chooses where every value lives (see plan.h) and fills plan.storage, the steps' elided /
// zero_outputs flags and the arena size.
class MemoryPlanner {
 public:
  explicit MemoryPlanner(Plan& plan) : plan_(plan), g_(plan.graph) {
    parent_.assign(g_.values.size(), {kNoValue, 0});
  }

  void run() {
    classify_values();
    for (PlanStep& step : plan_.steps) {
      const Node& node = g_.nodes[step.node];
      if (is_byte_view(node)) {
        make_view(step, node.inputs[0], {node.outputs[0]});
      } else if (node.domain.empty() && node.op_type == "Split") {
        split_as_views(step, node);
      } else if (node.domain.empty() && node.op_type == "Concat") {
        concat_in_place(step, node);
      }
      // (Never a Concat, whose output already holds the slices its producers wrote.)
      if (!step.elided && !writes_every_output_element(node))
        step.zero_outputs = std::any_of(node.outputs.begin(), node.outputs.end(),
                                        [&](ValueId v) { return is_arena(v); });
    }
    assign_offsets();
  }

 private:
  struct Parent {
    ValueId value;
    size_t offset;  // bytes into the parent
  };

  bool is_arena(ValueId v) const {
    return v != kNoValue && plan_.storage[size_t(v)].kind == ValueStorage::Kind::Arena;
  }

  void classify_values() {
    std::vector<bool> graph_output(g_.values.size(), false);
    for (ValueId v : g_.outputs) graph_output[size_t(v)] = true;
    plan_.storage.assign(g_.values.size(), {});
    for (const Node& node : g_.nodes) {
      for (ValueId v : node.outputs) {
        if (v == kNoValue) continue;
        const Value& val = g_.values[size_t(v)];
        const bool arena = !graph_output[size_t(v)] && val.shape && val.dtype != DType::Undefined;
        plan_.storage[size_t(v)].kind = arena ? ValueStorage::Kind::Arena : ValueStorage::Kind::Owned;
      }
    }
  }

  // The value that owns v's bytes and v's offset into it.
  ValueId root_of(ValueId v, size_t& offset) const {
    offset = 0;
    while (parent_[size_t(v)].value != kNoValue) {
      offset += parent_[size_t(v)].offset;
      v = parent_[size_t(v)].value;
    }
    return v;
  }

  // outputs[i] becomes a view of `input` at byte offset offsets[i] (0 when not given).
  void make_view(PlanStep& step, ValueId input, const std::vector<ValueId>& outputs,
                 const std::vector<size_t>& offsets = {}) {
    if (!is_arena(input)) return;
    bool all = true;
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (!is_arena(outputs[i])) {
        all = false;
        continue;
      }
      parent_[size_t(outputs[i])] = {input, offsets.empty() ? 0 : offsets[i]};
    }
    step.elided = all;
  }

  void split_as_views(PlanStep& step, const Node& node) {
    const Value& in = g_.values[size_t(node.inputs[0])];
    const int64_t axis = contiguous_axis(node, *in.shape, 0);
    if (axis < 0) return;
    // An omitted output's size is only in PlanStep::omitted_outputs; such splits keep copying.
    if (std::find(node.outputs.begin(), node.outputs.end(), kNoValue) != node.outputs.end())
      return;
    std::vector<size_t> offsets;
    size_t offset = 0;
    for (ValueId v : node.outputs) {
      offsets.push_back(offset);
      offset += value_bytes(g_.values[size_t(v)]);
    }
    make_view(step, node.inputs[0], node.outputs, offsets);
  }

  // Places the producers' buffers inside the Concat output so they write their slices directly.
  // An input's buffer may be a view of a larger one (a Split output): the whole root buffer is
  // placed, and only where every Concat input overlapping it is a view of it at the matching
  // offset (then Concat's copies are all no-ops); other inputs are copied as before.
  void concat_in_place(PlanStep& step, const Node& node) {
    const ValueId out = node.outputs[0];
    if (!is_arena(out) || contiguous_axis(node, *g_.values[size_t(out)].shape, 0) < 0) return;
    const size_t out_bytes = value_bytes(g_.values[size_t(out)]);
    std::vector<int64_t> block_begin, block_end;
    int64_t offset = 0;
    for (ValueId v : node.inputs) {
      block_begin.push_back(offset);
      offset += int64_t(value_bytes(g_.values[size_t(v)]));
      block_end.push_back(offset);
    }
    auto appears_once = [&](ValueId v) {
      return std::count(node.inputs.begin(), node.inputs.end(), v) == 1;
    };
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const ValueId v = node.inputs[i];
      if (!is_arena(v) || !appears_once(v)) continue;
      size_t in_root_offset = 0;
      const ValueId root = root_of(v, in_root_offset);
      if (root == out || parent_[size_t(root)].value != kNoValue) continue;
      const int64_t place = block_begin[i] - int64_t(in_root_offset);
      const int64_t place_end = place + int64_t(value_bytes(g_.values[size_t(root)]));
      if (place < 0 || place_end > int64_t(out_bytes)) continue;
      bool consistent = true;
      for (size_t j = 0; consistent && j < node.inputs.size(); ++j) {
        if (block_end[j] <= place || block_begin[j] >= place_end) continue;
        size_t j_offset = 0;
        consistent = is_arena(node.inputs[j]) && appears_once(node.inputs[j]) &&
                     root_of(node.inputs[j], j_offset) == root &&
                     block_begin[j] - int64_t(j_offset) == place;
      }
      if (consistent) parent_[size_t(root)] = {out, size_t(place)};
    }
    bool all_in_place = true;
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      size_t in_offset = 0;
      all_in_place = all_in_place && is_arena(node.inputs[i]) &&
                     root_of(node.inputs[i], in_offset) == out &&
                     int64_t(in_offset) == block_begin[i];
    }
    step.elided = all_in_place;
  }

  // Gives each root buffer an offset: buffers whose lifetimes (first write to last read of any
  // value inside them, in steps) overlap get disjoint bytes. Largest first, lowest fitting offset.
  void assign_offsets() {
    const size_t n = g_.values.size();
    std::vector<size_t> first(n, SIZE_MAX), last(n, 0);
    auto touch = [&](ValueId v, size_t step) {
      size_t unused = 0;
      const ValueId root = root_of(v, unused);
      first[size_t(root)] = std::min(first[size_t(root)], step);
      last[size_t(root)] = std::max(last[size_t(root)], step);
    };
    for (size_t k = 0; k < plan_.steps.size(); ++k) {
      const Node& node = g_.nodes[plan_.steps[k].node];
      for (ValueId v : node.outputs)
        if (is_arena(v)) touch(v, k);
      for (ValueId v : node.inputs)
        if (is_arena(v)) touch(v, k);
    }
    std::vector<ValueId> roots;
    for (size_t v = 0; v < n; ++v)
      if (is_arena(ValueId(v)) && parent_[v].value == kNoValue) roots.push_back(ValueId(v));
    std::stable_sort(roots.begin(), roots.end(), [&](ValueId a, ValueId b) {
      return value_bytes(g_.values[size_t(a)]) > value_bytes(g_.values[size_t(b)]);
    });

    struct Placed {
      size_t begin, end, first, last;
    };
    std::vector<Placed> placed;
    size_t arena_bytes = 0;
    for (ValueId root : roots) {
      const size_t bytes = align_up(std::max<size_t>(value_bytes(g_.values[size_t(root)]), 1));
      const size_t f = first[size_t(root)], l = last[size_t(root)];
      std::vector<std::pair<size_t, size_t>> busy;  // byte ranges of buffers live at the same time
      for (const Placed& p : placed)
        if (p.first <= l && f <= p.last) busy.emplace_back(p.begin, p.end);
      std::sort(busy.begin(), busy.end());
      size_t offset = 0;
      for (const auto& [begin, end] : busy) {
        if (offset + bytes <= begin) break;
        offset = std::max(offset, end);
      }
      placed.push_back({offset, offset + bytes, f, l});
      plan_.storage[size_t(root)].offset = offset;
      arena_bytes = std::max(arena_bytes, offset + bytes);
    }
    for (size_t v = 0; v < n; ++v) {
      if (!is_arena(ValueId(v))) continue;
      size_t in_root = 0;
      const ValueId root = root_of(ValueId(v), in_root);
      plan_.storage[v].offset = plan_.storage[size_t(root)].offset + in_root;
    }
    plan_.arenas.set_bytes(arena_bytes);
  }

  Plan& plan_;
  const Graph& g_;
  std::vector<Parent> parent_;
};

// Drops constant tensors the plan no longer needs: values no node reads (weights a fusion
// consumed, the float copies folded from quantized weights) and weights every reader packed at
// prepare. A packed weight keeps its dtype and shape, without data.
void release_unneeded_constants(Plan& plan) {
  Graph& g = plan.graph;
  std::vector<bool> needed(g.values.size(), false);
  for (ValueId v : g.outputs) needed[size_t(v)] = true;
  std::vector<bool> read(g.values.size(), false);
  for (const PlanStep& step : plan.steps) {
    const Node& node = g.nodes[step.node];
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const ValueId v = node.inputs[i];
      if (v == kNoValue) continue;
      read[size_t(v)] = true;
      const auto& packed = step.kernel.packed_inputs;
      if (std::find(packed.begin(), packed.end(), i) == packed.end()) needed[size_t(v)] = true;
    }
  }
  for (size_t v = 0; v < g.values.size(); ++v) {
    Value& val = g.values[v];
    if (!val.constant || needed[v]) continue;
    if (!read[v]) {
      val.constant.reset();
    } else {
      val.constant = Tensor::view(val.constant->dtype(), val.constant->shape(),
                                  static_cast<void*>(nullptr));
    }
  }
}

}  // namespace

ArenaCache::Buffer ArenaCache::acquire() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!free_.empty()) {
      Buffer b = std::move(free_.back());
      free_.pop_back();
      return b;
    }
  }
  Buffer b;
  b.bytes.reset(new uint8_t[bytes_ + kArenaAlignment]);
  b.aligned = reinterpret_cast<uint8_t*>(
      align_up(reinterpret_cast<uintptr_t>(b.bytes.get())));
  std::memset(b.aligned, 0xFF, bytes_);
  return b;
}

void ArenaCache::release(Buffer buffer) {
  std::lock_guard<std::mutex> lock(mutex_);
  free_.push_back(std::move(buffer));
}

std::shared_ptr<const Plan> build_plan(const Graph& graph,
                                       const std::map<std::string, Shape>& input_shapes,
                                       const std::map<std::string, Tensor>& input_values,
                                       bool optimize, size_t max_tensor_bytes, ThreadPool& pool,
                                       WeightOnlyActivations weight_only_activations) {
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
    fuse_qdq_chains(g);
    fuse_conv_epilogues(g);
    remove_dead_nodes(g);
  }
  if (weight_only_activations == WeightOnlyActivations::Int16) {
    for (Node& node : g.nodes) {
      if (node.domain != "nibble" || (node.op_type != "QConv" && node.op_type != "QMatMul")) continue;
      Attribute mode;
      mode.kind = Attribute::Kind::String;
      mode.s = "int16";
      node.attrs["weight_only_activations"] = mode;  // read by their prepare (float inputs only)
    }
  }

  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& node = g.nodes[k];
    PlanStep step;
    step.node = k;
    step.def = OpRegistry::instance().find(node.domain, node.op_type);
    step.opset = g.opset(node.domain);
    InferContext ctx(g, node, step.opset, max_tensor_bytes);
    step.def->infer(ctx);
    if (step.def->prepare) step.state = step.def->prepare(ctx);
    if (step.def->kernel_info) step.kernel = step.def->kernel_info(ctx, step.state.get());
    if (auto note = node.attrs.find(kQdqFallbackNote); note != node.attrs.end())
      step.kernel.note = note->second.s;
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      if (node.outputs[i] == kNoValue) step.omitted_outputs.push_back(ctx.output_types()[i]);
    }
    plan->steps.push_back(std::move(step));
  }
  release_unneeded_constants(*plan);

  if (optimize) {
    MemoryPlanner(*plan).run();
    return plan;
  }
  // Reference path: every produced value is allocated on its own and freed after its last reader.
  plan->storage.assign(g.values.size(), {});
  std::vector<size_t> last_reader(g.values.size(), SIZE_MAX);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    for (ValueId v : g.nodes[k].inputs)
      if (v != kNoValue) last_reader[size_t(v)] = k;
    for (ValueId v : g.nodes[k].outputs)
      if (v != kNoValue) plan->storage[size_t(v)].kind = ValueStorage::Kind::Owned;
  }
  std::vector<bool> keep(g.values.size(), false);
  for (ValueId v : g.outputs) keep[size_t(v)] = true;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& node = g.nodes[k];
    std::vector<ValueId>& release = plan->steps[k].release_after;
    for (ValueId v : node.inputs) {
      if (v != kNoValue && last_reader[size_t(v)] == k && !keep[size_t(v)] &&
          plan->storage[size_t(v)].kind == ValueStorage::Kind::Owned) {
        release.push_back(v);
      }
    }
    // Outputs nobody reads (unused optional outputs) are released right away.
    for (ValueId v : node.outputs) {
      if (v != kNoValue && last_reader[size_t(v)] == SIZE_MAX && !keep[size_t(v)])
        release.push_back(v);
    }
  }
  return plan;
}

std::vector<Tensor> execute_plan(const Plan& plan, const std::vector<const Tensor*>& inputs,
                                 ThreadPool& pool, std::vector<double>* step_seconds) {
  const Graph& g = plan.graph;
  // Hands the arena back however the run ends.
  struct ArenaLease {
    ArenaCache& cache;
    ArenaCache::Buffer buffer;
    ~ArenaLease() { cache.release(std::move(buffer)); }
  } arena{plan.arenas, plan.arenas.acquire()};

  std::vector<Tensor> owned(g.values.size());
  std::vector<const Tensor*> bound(g.values.size(), nullptr);
  for (size_t i = 0; i < g.values.size(); ++i) {
    if (g.values[i].constant) bound[i] = &*g.values[i].constant;
  }
  for (size_t i = 0; i < g.inputs.size(); ++i) bound[size_t(g.inputs[i])] = inputs[i];

  if (step_seconds) step_seconds->assign(plan.steps.size(), 0.0);
  std::vector<const Tensor*> in;
  std::vector<Tensor*> out;
  for (size_t k = 0; k < plan.steps.size(); ++k) {
    const PlanStep& step = plan.steps[k];
    const auto step_start = std::chrono::steady_clock::now();
    const Node& node = g.nodes[step.node];
    in.clear();
    for (ValueId v : node.inputs) in.push_back(v == kNoValue ? nullptr : bound[size_t(v)]);
    std::vector<Tensor> scratch;  // omitted optional outputs
    scratch.reserve(node.outputs.size());
    out.clear();
    for (ValueId v : node.outputs) {
      if (v == kNoValue) {
        const auto& [dtype, shape] = step.omitted_outputs[scratch.size()];
        out.push_back(dtype == DType::Undefined ? &scratch.emplace_back()
                                                : &scratch.emplace_back(dtype, shape));
        continue;
      }
      const Value& val = g.values[size_t(v)];
      const ValueStorage& where = plan.storage[size_t(v)];
      if (where.kind == ValueStorage::Kind::Arena) {
        owned[size_t(v)] = Tensor::view(val.dtype, *val.shape, arena.buffer.aligned + where.offset);
        if (step.zero_outputs) std::memset(owned[size_t(v)].raw(), 0, owned[size_t(v)].nbytes());
      } else {
        owned[size_t(v)] = Tensor(val.dtype, *val.shape);
      }
      bound[size_t(v)] = &owned[size_t(v)];
      out.push_back(&owned[size_t(v)]);
    }
    if (!step.elided) {
      step.def->compute(ComputeContext(node, step.opset, in, out, pool, step.state.get()));
    }
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
