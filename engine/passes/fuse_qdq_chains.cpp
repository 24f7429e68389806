// fuse_qdq_chains: keeps the activations between quantized layers in 8 bits.
//
// After fuse_qdq, a QDQ model computes every quantized convolution in float and quantizes its
// result again for the next layer with a standalone QuantizeLinear:
//
//   QConv -> y (float) -> QuantizeLinear(s, zp) -> q -> QConv ...
//
// When every reader of y quantizes it with the same per-tensor (scale, zero point, type), the
// float y is never needed: QConv writes q itself (inputs 7 and 8, see engine/ops/qconv.cpp) and
// the QuantizeLinear nodes go. The same holds across data-movement ops, which commute exactly
// with a per-tensor QuantizeLinear because they only select, copy or reorder elements:
//
//   Q(Concat(a, b)) = Concat(Q(a), Q(b))      Q(Reshape(a)) = Reshape(Q(a))   (also Flatten,
//   Q(Split(a)[i])  = Split(Q(a))[i]          Squeeze, Unsqueeze, Identity, Transpose, Slice)
//   Q(Resize_nearest(a)) = Resize_nearest(Q(a))
//
// so such an op whose outputs are all quantized alike runs on the 8-bit values instead, and the
// quantization moves to its inputs: into the producing QConv when that input is quantized only
// there, else into a QuantizeLinear of that input (for a Concat, into its slice of the output,
// which the memory planner places in the Concat's buffer). MaxPool would commute too (the
// quantization is monotonic) but nibble's 8-bit MaxPool is the generic loop, slower than the
// float one the SPPF block uses, so it stays in float.
//
// Exactness: the rewritten graph computes the same bytes: QConv quantizes its float result
// exactly as QuantizeLinear does — a true division by the scale, round half to even, saturate
// (see engine/ops/qconv_driver.cpp) — and the moved ops only copy values.
// A value read as float by anything else (a residual Add, a graph output) keeps its float form
// and one QuantizeLinear, shared by all its 8-bit readers.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "engine/passes/passes.h"

namespace nibble {

namespace {

bool is_op(const Node& n, const char* op) { return n.domain.empty() && n.op_type == op; }

bool has_input(const Node& n, size_t i) { return i < n.inputs.size() && n.inputs[i] != kNoValue; }

// A per-tensor 8-bit quantization: real value = scale * (q - zero_point).
struct QuantParams {
  float scale = 1;
  int32_t zero_point = 0;
  DType type = DType::U8;
  bool operator==(const QuantParams& o) const {
    return scale == o.scale && zero_point == o.zero_point && type == o.type;
  }
};

// The parameters of a QuantizeLinear of a float32 tensor to uint8/int8 with one constant
// float32 scale and zero point, or nullopt for any other quantization.
std::optional<QuantParams> per_tensor_params(const Graph& g, const Node& q) {
  if (!is_op(q, "QuantizeLinear") || !has_input(q, 0) || !has_input(q, 1) || q.outputs.size() != 1 ||
      q.outputs[0] == kNoValue)
    return std::nullopt;
  if (g.values[size_t(q.inputs[0])].dtype != DType::F32) return std::nullopt;
  const Value& scale = g.values[size_t(q.inputs[1])];
  if (!scale.constant || scale.constant->numel() != 1 || scale.constant->dtype() != DType::F32)
    return std::nullopt;
  QuantParams p;
  p.scale = scale.constant->data<float>()[0];
  if (!(p.scale > 0) || !std::isfinite(p.scale)) return std::nullopt;  // the op refuses these
  if (has_input(q, 2)) {
    const Value& zp = g.values[size_t(q.inputs[2])];
    if (!zp.constant || zp.constant->numel() != 1 ||
        (zp.constant->dtype() != DType::U8 && zp.constant->dtype() != DType::I8))
      return std::nullopt;
    p.type = zp.constant->dtype();
    p.zero_point = int32_t(zp.constant->get_i64(0));
  } else if (g.opset() >= 21 && q.attr_int("output_dtype", 0) != 0) {
    return std::nullopt;  // rare; left to the op
  }
  if (g.opset() >= 23 && q.attr_int("precision", 0) != 0) return std::nullopt;
  return p;
}

// Ops that only select, copy or reorder the elements of their data inputs (all inputs of a
// Concat, input 0 of the others), with an 8-bit implementation in nibble.
bool moves_elements(const Graph& g, const Node& n) {
  if (!n.domain.empty()) return false;
  static const std::set<std::string> ops = {"Concat",  "Reshape", "Flatten", "Squeeze", "Unsqueeze",
                                            "Identity", "Transpose", "Split", "Slice"};
  if (ops.count(n.op_type)) return true;
  return n.op_type == "Resize" && g.opset() >= 11 && n.attr_string("mode", "nearest") == "nearest";
}

bool is_data_input(const Node& n, size_t i) { return n.op_type == "Concat" || i == 0; }

class ChainRewriter {
 public:
  explicit ChainRewriter(Graph& g) : g_(g) {}

  void run() {
    index();
    find_targets();
    choose_conversions();
    rewrite();
  }

 private:
  Graph& g_;
  std::vector<std::vector<size_t>> readers_;  // each reading node once
  std::vector<bool> is_output_;
  // Per value: the quantization every reader applies to it (directly or through element moves).
  std::vector<std::optional<QuantParams>> target_;
  std::vector<bool> converted_;  // per node: runs on the quantized values
  // Per targeted value whose producer is not converted: the QuantizeLinear node that makes its
  // 8-bit form (an existing reader, reused), or -1 to create one.
  std::map<ValueId, int64_t> quantizer_of_;

  void index() {
    readers_.assign(g_.values.size(), {});
    is_output_.assign(g_.values.size(), false);
    for (size_t k = 0; k < g_.nodes.size(); ++k) {
      std::set<ValueId> seen;
      for (ValueId v : g_.nodes[k].inputs)
        if (v != kNoValue && seen.insert(v).second) readers_[size_t(v)].push_back(k);
    }
    for (ValueId v : g_.outputs) is_output_[size_t(v)] = true;
  }

  // What reader `r` needs of value v: the quantization it applies, or nullopt when it reads
  // the float value.
  std::optional<QuantParams> reader_target(const Node& r, ValueId v) const {
    if (auto p = per_tensor_params(g_, r)) {
      const bool reads_only_x = r.inputs[0] == v && r.inputs[1] != v && (!has_input(r, 2) || r.inputs[2] != v);
      if (reads_only_x && !is_output_[size_t(r.outputs[0])]) return p;
      return std::nullopt;
    }
    if (!moves_elements(g_, r)) return std::nullopt;
    for (size_t i = 0; i < r.inputs.size(); ++i)
      if (r.inputs[i] == v && !is_data_input(r, i)) return std::nullopt;
    std::optional<QuantParams> p;
    for (ValueId out : r.outputs) {
      if (out == kNoValue || !target_[size_t(out)] || (p && !(*p == *target_[size_t(out)])))
        return std::nullopt;
      p = target_[size_t(out)];
    }
    return p;
  }

  // Readers come after their producers (nodes are in topological order), so one backward sweep
  // sees every reader's outputs decided.
  void find_targets() {
    target_.assign(g_.values.size(), std::nullopt);
    for (size_t k = g_.nodes.size(); k-- > 0;) {
      for (ValueId v : g_.nodes[k].outputs) decide_target(v);
    }
    for (ValueId v : g_.inputs) decide_target(v);
  }

  void decide_target(ValueId v) {
    if (v == kNoValue) return;
    const Value& val = g_.values[size_t(v)];
    if (is_output_[size_t(v)] || val.constant || val.dtype != DType::F32 || !val.shape ||
        readers_[size_t(v)].empty())
      return;
    std::optional<QuantParams> p;
    for (size_t r : readers_[size_t(v)]) {
      const std::optional<QuantParams> want = reader_target(g_.nodes[r], v);
      if (!want || (p && !(*p == *want))) return;
      p = want;
    }
    target_[size_t(v)] = p;
  }

  bool all_outputs_targeted(const Node& n) const {
    for (ValueId v : n.outputs)
      if (v == kNoValue || !target_[size_t(v)]) return false;
    return true;
  }

  int64_t numel(ValueId v) const { return shape_numel(*g_.values[size_t(v)].shape); }

  // A node runs on 8-bit values when every output is quantized alike and that saves work: a
  // QConv then writes 8 bits; an element move takes its inputs' 8-bit forms, quantizing those
  // that are also read as float — worth it for a Concat (each slice is quantized in place) and
  // an upsampling Resize (fewer elements), not for a move that merely passes the quantization on.
  void choose_conversions() {
    converted_.assign(g_.nodes.size(), false);
    for (size_t k = 0; k < g_.nodes.size(); ++k) {
      const Node& n = g_.nodes[k];
      if (!all_outputs_targeted(n)) continue;
      if (n.domain == "nibble" && n.op_type == "QConv" && n.outputs.size() == 1) {
        converted_[k] = true;
      } else if (moves_elements(g_, n)) {
        const bool input_targeted = has_input(n, 0) && target_[size_t(n.inputs[0])].has_value();
        converted_[k] = n.op_type == "Concat" || input_targeted ||
                        (n.op_type == "Resize" && has_input(n, 0) &&
                         numel(n.outputs[0]) >= numel(n.inputs[0]));
      }
    }
    for (size_t k = 0; k < g_.nodes.size(); ++k) {
      if (converted_[k]) continue;
      for (ValueId v : g_.nodes[k].outputs)
        if (v != kNoValue && target_[size_t(v)]) quantizer_of_[v] = -1;
    }
    for (ValueId v : g_.inputs)
      if (target_[size_t(v)]) quantizer_of_[v] = -1;
    // Reuse the first QuantizeLinear reader of each such value as its quantizer.
    for (auto& [v, quantizer] : quantizer_of_) {
      for (size_t r : readers_[size_t(v)]) {
        if (is_op(g_.nodes[r], "QuantizeLinear")) {
          quantizer = int64_t(r);
          break;
        }
      }
    }
  }

  static Tensor scale_tensor(const QuantParams& p) {
    Tensor t(DType::F32, {});
    t.data<float>()[0] = p.scale;
    return t;
  }
  static Tensor zero_point_tensor(const QuantParams& p) {
    Tensor t(p.type, {});
    if (p.type == DType::U8)
      t.data<uint8_t>()[0] = uint8_t(p.zero_point);
    else
      t.data<int8_t>()[0] = int8_t(p.zero_point);
    return t;
  }

  Node make_quantizer(ValueId x, const QuantParams& p, const std::string& name) {
    Node q;
    q.op_type = "QuantizeLinear";
    q.name = name;
    const ValueId y = g_.add_value(name + "_output", p.type);
    g_.values[size_t(y)].shape = g_.values[size_t(x)].shape;
    q.inputs = {x, add_constant(name + "/scale", scale_tensor(p)),
                add_constant(name + "/zero_point", zero_point_tensor(p))};
    q.outputs = {y};
    return q;
  }

  ValueId add_constant(const std::string& name, Tensor t) {
    const ValueId id = g_.add_value(name, t.dtype());
    g_.values[size_t(id)].shape = t.shape();
    g_.values[size_t(id)].constant = std::move(t);
    return id;
  }

  // Emits the nodes in their order, with quantizers right after the values they quantize.
  void rewrite() {
    const size_t original = g_.nodes.size();
    std::vector<bool> moved(original, false);  // reused quantizers, emitted after their input
    // A QuantizeLinear reader of a targeted value that is not its reused quantizer: dropped, its
    // readers take the value's 8-bit form.
    std::vector<bool> absorbed(original, false);
    for (size_t k = 0; k < original; ++k) {
      const Node& n = g_.nodes[k];
      absorbed[k] = per_tensor_params(g_, n) && target_[size_t(n.inputs[0])] &&
                    !(quantizer_of_.count(n.inputs[0]) && quantizer_of_.at(n.inputs[0]) == int64_t(k));
    }
    std::map<ValueId, ValueId> quantized;  // targeted value -> its 8-bit form
    struct Inserted {
      ValueId input;
      QuantParams params;
      ValueId output;
    };
    std::vector<Inserted> inserted;  // quantizers of float values read by converted moves
    std::vector<Node> out;
    auto emit_quantizer = [&](ValueId v) {
      const int64_t reuse = quantizer_of_.at(v);
      if (reuse >= 0) {
        moved[size_t(reuse)] = true;
        out.push_back(g_.nodes[size_t(reuse)]);
      } else {
        out.push_back(make_quantizer(v, *target_[size_t(v)], g_.values[size_t(v)].name + "_quantize"));
      }
      quantized[v] = out.back().outputs[0];
    };

    // The output of each dropped quantizer -> the 8-bit form of its input.
    std::map<ValueId, ValueId> replaced;
    for (ValueId v : g_.inputs)
      if (quantizer_of_.count(v)) emit_quantizer(v);
    // A value's 8-bit form is known before any reader is reached (topological order).
    for (size_t k = 0; k < original; ++k) {
      if (moved[k]) continue;
      if (absorbed[k]) {
        replaced[g_.nodes[k].outputs[0]] = quantized.at(g_.nodes[k].inputs[0]);
        continue;
      }
      Node n = g_.nodes[k];
      for (ValueId& v : n.inputs)
        if (auto it = replaced.find(v); v != kNoValue && it != replaced.end()) v = it->second;
      if (converted_[k]) {
        const QuantParams p = *target_[size_t(n.outputs[0])];
        if (n.domain == "nibble") {  // QConv: quantizes its own result
          n.inputs.resize(7, kNoValue);
          n.inputs.push_back(add_constant(n.name + "/qconv_y_scale", scale_tensor(p)));
          n.inputs.push_back(add_constant(n.name + "/qconv_y_zero_point", zero_point_tensor(p)));
        }
        for (size_t i = 0; n.domain.empty() && i < n.inputs.size(); ++i) {
          const ValueId u = n.inputs[i];
          if (u == kNoValue || !is_data_input(n, i)) continue;
          if (target_[size_t(u)]) {
            n.inputs[i] = quantized.at(u);
            continue;
          }
          auto it = std::find_if(inserted.begin(), inserted.end(), [&](const Inserted& q) {
            return q.input == u && q.params == p;
          });
          if (it == inserted.end()) {
            out.push_back(make_quantizer(u, p, n.name + "_input" + std::to_string(i) + "_quantize"));
            inserted.push_back({u, p, out.back().outputs[0]});
            it = inserted.end() - 1;
          }
          n.inputs[i] = it->output;
        }
        for (ValueId v : n.outputs) {
          g_.values[size_t(v)].dtype = p.type;
          quantized[v] = v;
        }
      }
      out.push_back(std::move(n));
      for (ValueId v : g_.nodes[k].outputs)
        if (v != kNoValue && quantizer_of_.count(v)) emit_quantizer(v);
    }
    g_.nodes = std::move(out);
  }
};

}  // namespace

void fuse_qdq_chains(Graph& graph) { ChainRewriter(graph).run(); }

}  // namespace nibble
