// fuse_conv_epilogues: folds the element-wise tail of a float Conv into one nibble:FusedConv
// node (engine/ops/conv_f32_op.h), so the kernel applies it while the output tile is still in
// registers instead of re-reading the tensor once per op. The patterns:
//
//   Conv [-> Add(bias)] -> activation [-> Add(residual)]   activation: Relu, Clip(constant
//   Conv [-> Add(bias)] -> Add(residual) [-> activation]    bounds), Sigmoid, SiLU = Mul(y, Sigmoid(y))
//   Conv -> Add(bias)
//
// A bias Add adds a constant that is the same over each output channel ([1,C,1,1], [C,1,1], a
// scalar; exporters such as Ultralytics' write Conv without bias and add it this way); it is
// summed into the Conv's own bias. A residual is any other value with exactly the Add's output
// shape (no broadcasting), as in YOLO's bottlenecks (x + SiLU(conv(x))) and ResNet's blocks
// (Relu(conv(x) + x)). Every value swallowed by a fusion must be read only inside it and must
// not be a graph output. The fused node takes the place of the last node it replaces, where all
// of its inputs exist.
#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "engine/ops/conv_f32_op.h"
#include "engine/passes/passes.h"

namespace nibble {
namespace {

bool is_onnx_op(const Node& node, const char* op_type) {
  return node.domain.empty() && node.op_type == op_type;
}

// What one Conv turns into: the FusedConv, the nodes after the Conv it replaces (in order), and
// the summed bias when a bias Add was folded (added to the graph only if the fusion is kept).
struct Fusion {
  Node node;
  std::vector<size_t> absorbed;
  std::optional<Tensor> bias;
};

struct Activation {
  std::string name;  // FusedConv's `activation` attribute
  float clip_min = -std::numeric_limits<float>::infinity();
  float clip_max = std::numeric_limits<float>::infinity();
  std::vector<size_t> nodes;  // the nodes it replaces, in order
  ValueId output = kNoValue;
};

class Fuser {
 public:
  explicit Fuser(Graph& graph)
      : g_(graph), readers_(graph.values.size()), output_(graph.values.size()) {
    for (size_t k = 0; k < g_.nodes.size(); ++k) {
      for (ValueId v : g_.nodes[k].inputs) {
        if (v != kNoValue) readers_[size_t(v)].push_back(k);
      }
    }
    for (ValueId v : g_.outputs) output_[size_t(v)] = true;
  }

  void run() {
    std::vector<std::optional<Node>> fused_at(g_.nodes.size());
    std::vector<bool> replaced(g_.nodes.size(), false);
    for (size_t k = 0; k < g_.nodes.size(); ++k) {
      if (replaced[k] || !is_onnx_op(g_.nodes[k], "Conv") || g_.nodes[k].outputs.size() != 1) {
        continue;
      }
      Fusion fusion = fuse_from(k);
      // An Add of two Conv outputs can be claimed by the first Conv only.
      bool taken = fusion.absorbed.empty();
      for (size_t a : fusion.absorbed) taken = taken || replaced[a];
      if (taken) continue;
      if (fusion.bias) {
        const ValueId bias = g_.add_value(g_.nodes[k].name + "/fused_bias", DType::F32);
        g_.values[size_t(bias)].shape = fusion.bias->shape();
        g_.values[size_t(bias)].constant = std::move(fusion.bias);
        fusion.node.inputs[2] = bias;
      }
      replaced[k] = true;
      for (size_t a : fusion.absorbed) replaced[a] = true;
      fused_at[fusion.absorbed.back()] = std::move(fusion.node);
    }
    std::vector<Node> nodes;
    for (size_t k = 0; k < g_.nodes.size(); ++k) {
      if (fused_at[k]) {
        nodes.push_back(std::move(*fused_at[k]));
      } else if (!replaced[k]) {
        nodes.push_back(std::move(g_.nodes[k]));
      }
    }
    g_.nodes = std::move(nodes);
    for (Value& v : g_.values) v.producer = -1;
    for (size_t k = 0; k < g_.nodes.size(); ++k) {
      for (ValueId v : g_.nodes[k].outputs) {
        if (v != kNoValue) g_.values[size_t(v)].producer = int32_t(k);
      }
    }
  }

 private:
  // The fusion for the Conv at `conv`; nothing absorbed when nothing fuses.
  Fusion fuse_from(size_t conv) const {
    Fusion fusion;
    std::vector<size_t>& absorbed = fusion.absorbed;
    const Node& node = g_.nodes[conv];
    ValueId tail = node.outputs[0];
    if (tail == kNoValue || g_.values[size_t(tail)].dtype != DType::F32 ||
        g_.values[size_t(tail)].constant || !g_.values[size_t(tail)].shape) {
      return fusion;
    }
    ValueId bias = node.inputs.size() > 2 ? node.inputs[2] : kNoValue;
    if (std::optional<size_t> add = match_bias_add(tail, bias, fusion.bias)) {
      absorbed.push_back(*add);
      tail = g_.nodes[*add].outputs[0];
    }
    std::optional<Activation> activation = match_activation(tail);
    if (activation) {
      absorbed.insert(absorbed.end(), activation->nodes.begin(), activation->nodes.end());
      tail = activation->output;
    }
    ValueId residual = kNoValue;
    if (std::optional<size_t> add = match_residual_add(tail, residual)) {
      absorbed.push_back(*add);
      tail = g_.nodes[*add].outputs[0];
    }
    bool residual_first = false;
    if (!activation && residual != kNoValue) {
      activation = match_activation(tail);
      if (activation) {
        residual_first = true;
        absorbed.insert(absorbed.end(), activation->nodes.begin(), activation->nodes.end());
        tail = activation->output;
      }
    }
    if (absorbed.empty()) return fusion;

    Node& fused = fusion.node;
    fused.op_type = kFusedConvOp;
    fused.domain = kFusedConvDomain;
    fused.name = node.name;
    fused.attrs = node.attrs;
    fused.inputs = {node.inputs[0], node.inputs[1], bias};
    if (residual != kNoValue) {
      fused.inputs.push_back(residual);
    } else if (fused.inputs[2] == kNoValue && !fusion.bias) {
      fused.inputs.pop_back();
    }
    fused.outputs = {tail};
    if (activation) {
      fused.attrs["activation"] = string_attr(activation->name);
      if (activation->name == "Clip") {
        fused.attrs["clip_min"] = float_attr(activation->clip_min);
        fused.attrs["clip_max"] = float_attr(activation->clip_max);
      }
    }
    if (residual_first) {
      Attribute first;
      first.kind = Attribute::Kind::Int;
      first.i = 1;
      fused.attrs["residual_first"] = first;
    }
    return fusion;
  }

  // The one node reading `v`, when `v` may vanish into a fusion (read once, not an output).
  std::optional<size_t> sole_reader(ValueId v) const {
    const std::vector<size_t>& readers = readers_[size_t(v)];
    if (output_[size_t(v)] || readers.size() != 1) return std::nullopt;
    return readers[0];
  }

  // Add(y, c) reading y alone, with c a constant that is the same over each output channel; on
  // a match, `sum` is the Conv's `bias` (if any, a constant) plus c, one value per channel.
  std::optional<size_t> match_bias_add(ValueId y, ValueId bias, std::optional<Tensor>& sum) const {
    const std::optional<size_t> reader = sole_reader(y);
    if (!reader) return std::nullopt;
    const Node& add = g_.nodes[*reader];
    if (!is_onnx_op(add, "Add") || add.inputs.size() != 2 || add.outputs.size() != 1) {
      return std::nullopt;
    }
    const ValueId other = add.inputs[0] == y ? add.inputs[1] : add.inputs[0];
    if (other == y || other == kNoValue || !g_.values[size_t(other)].constant) return std::nullopt;
    if (bias != kNoValue && !g_.values[size_t(bias)].constant) return std::nullopt;
    const Tensor& c = *g_.values[size_t(other)].constant;
    const Shape& out = *g_.values[size_t(y)].shape;
    const std::optional<Shape>& sum_shape = g_.values[size_t(add.outputs[0])].shape;
    if (c.dtype() != DType::F32 || c.rank() > int64_t(out.size()) || !sum_shape ||
        *sum_shape != out) {
      return std::nullopt;
    }
    // Aligned to the right of the output's rank, every dimension but the channel's must be 1.
    const int64_t channels = out[1];
    const size_t offset = out.size() - size_t(c.rank());
    bool per_channel = false;
    for (size_t d = 0; d < size_t(c.rank()); ++d) {
      const int64_t extent = c.shape()[d];
      if (extent == 1) continue;
      if (offset + d != 1 || extent != channels) return std::nullopt;
      per_channel = true;
    }
    const Tensor* old_bias = bias != kNoValue ? &*g_.values[size_t(bias)].constant : nullptr;
    sum = Tensor(DType::F32, {channels});
    for (int64_t m = 0; m < channels; ++m) {
      sum->data<float>()[m] = (old_bias ? old_bias->data<float>()[m] : 0.0f) +
                              c.data<float>()[per_channel ? m : 0];
    }
    return reader;
  }

  std::optional<Activation> match_activation(ValueId y) const {
    if (output_[size_t(y)]) return std::nullopt;
    const std::vector<size_t>& readers = readers_[size_t(y)];
    // SiLU: y feeds a Sigmoid and the Mul of y by that Sigmoid, nothing else.
    if (readers.size() == 2 && readers[0] != readers[1]) {
      for (int first = 0; first < 2; ++first) {
        const size_t s = readers[size_t(first)], m = readers[size_t(1 - first)];
        const Node& sigmoid = g_.nodes[s];
        const Node& mul = g_.nodes[m];
        if (!is_onnx_op(sigmoid, "Sigmoid") || !is_onnx_op(mul, "Mul") ||
            sigmoid.outputs.size() != 1 || mul.inputs.size() != 2 || mul.outputs.size() != 1) {
          continue;
        }
        const ValueId sig = sigmoid.outputs[0];
        const bool operands = (mul.inputs[0] == y && mul.inputs[1] == sig) ||
                              (mul.inputs[0] == sig && mul.inputs[1] == y);
        if (operands && sole_reader(sig) == m) {
          Activation a;
          a.name = "SiLU";
          a.nodes = {std::min(s, m), std::max(s, m)};
          a.output = mul.outputs[0];
          return a;
        }
      }
      return std::nullopt;
    }
    const std::optional<size_t> reader = sole_reader(y);
    if (!reader) return std::nullopt;
    const Node& node = g_.nodes[*reader];
    if (node.outputs.size() != 1 || node.inputs.empty() || node.inputs[0] != y) return std::nullopt;
    Activation a;
    a.nodes = {*reader};
    a.output = node.outputs[0];
    if (is_onnx_op(node, "Relu") || is_onnx_op(node, "Sigmoid")) {
      a.name = node.op_type;
      return a;
    }
    if (is_onnx_op(node, "Clip") && clip_bounds(node, a.clip_min, a.clip_max)) {
      a.name = "Clip";
      return a;
    }
    return std::nullopt;
  }

  // Clip's bounds: attributes before opset 11, constant scalar inputs from 11 on.
  bool clip_bounds(const Node& clip, float& lo, float& hi) const {
    if (g_.opset("") < 11) {
      lo = clip.attr_float("min", lo);
      hi = clip.attr_float("max", hi);
      return true;
    }
    for (size_t i = 1; i < clip.inputs.size() && i < 3; ++i) {
      const ValueId v = clip.inputs[i];
      if (v == kNoValue) continue;
      const std::optional<Tensor>& bound = g_.values[size_t(v)].constant;
      if (!bound || bound->dtype() != DType::F32 || bound->numel() != 1) return false;
      (i == 1 ? lo : hi) = bound->data<float>()[0];
    }
    return true;
  }

  // Add(y, r) or Add(r, y) reading y alone, with r another value of exactly y's shape.
  std::optional<size_t> match_residual_add(ValueId y, ValueId& residual) const {
    const std::optional<size_t> reader = sole_reader(y);
    if (!reader) return std::nullopt;
    const Node& add = g_.nodes[*reader];
    if (!is_onnx_op(add, "Add") || add.inputs.size() != 2 || add.outputs.size() != 1) {
      return std::nullopt;
    }
    const ValueId other = add.inputs[0] == y ? add.inputs[1] : add.inputs[0];
    if (other == y || other == kNoValue) return std::nullopt;
    const Value& r = g_.values[size_t(other)];
    const Value& out = g_.values[size_t(add.outputs[0])];
    if (r.dtype != DType::F32 || !r.shape || !out.shape ||
        *r.shape != *g_.values[size_t(y)].shape || *out.shape != *r.shape) {
      return std::nullopt;
    }
    residual = other;
    return reader;
  }

  static Attribute string_attr(const std::string& s) {
    Attribute a;
    a.kind = Attribute::Kind::String;
    a.s = s;
    return a;
  }
  static Attribute float_attr(float f) {
    Attribute a;
    a.kind = Attribute::Kind::Float;
    a.f = f;
    return a;
  }

  Graph& g_;
  std::vector<std::vector<size_t>> readers_;  // value -> nodes reading it (once per input slot)
  std::vector<bool> output_;                  // value is a graph output
};

}  // namespace

void fuse_conv_epilogues(Graph& graph) { Fuser(graph).run(); }

}  // namespace nibble
