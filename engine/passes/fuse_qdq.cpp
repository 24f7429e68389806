// fuse_qdq: lowers the QDQ form of quantized convolutions onto nibble.QConv (engine/ops/qconv.cpp)
// and of quantized matrix products onto nibble.QMatMul (engine/ops/qmatmul.cpp).
//
// Runs right after infer_shapes_and_fold, while the DequantizeLinear nodes whose outputs folding
// turned into float constants are still in the graph: their integer inputs (int8/int4
// initializers, Brevitas' Clip of them, or QuantizeLinear of float weights, all folded to
// constants) are what QConv packs. Pattern, for every Conv:
//
//   w_int [-> Clip] -> DequantizeLinear(w_scale, w_zp, axis=0) -+
//   x_q (uint8/int8, runtime) -> DequantizeLinear(x_scale, x_zp) --+-> Conv [-> Add(bias)]
//                    [-> BatchNormalization] [-> Relu | x*Sigmoid(x) | Clip(const, const)]
//
// and for MatMul / Gemm (transA = 0) with 2-D weights dequantized per tensor or per output
// feature (MatMul, Gemm: axis 1 of [K, N]; Gemm with transB: axis 0 of [N, K]):
//
//   x [-> DequantizeLinear] -> MatMul(x, DQ(w)) [-> Add(N constants)]  |  Gemm(x, DQ(w) [, c])
//
// with Gemm's alpha folded into the scale and beta * c (a row of N values) into the bias.
// An activation that is not dequantized per tensor from uint8/int8 keeps its float value and the
// node runs weight-only (A16). BatchNormalization folds into the per-channel scale and bias,
// never into the integer weights. A node whose weights are dequantized but cannot be lowered
// keeps running in float, and carries the reason in the attribute kQdqFallbackNote for
// `nibble inspect`.
#include <cmath>
#include <set>

#include "engine/passes/passes.h"

namespace nibble {

namespace {

struct GraphIndex {
  std::vector<int32_t> producer;              // per value; -1 for inputs and constants
  std::vector<std::vector<size_t>> readers;   // per value, each reading node once
  std::vector<bool> is_output;

  explicit GraphIndex(const Graph& g)
      : producer(g.values.size(), -1), readers(g.values.size()), is_output(g.values.size()) {
    for (size_t k = 0; k < g.nodes.size(); ++k) {
      for (ValueId v : g.nodes[k].outputs)
        if (v != kNoValue) producer[size_t(v)] = int32_t(k);
      std::set<ValueId> seen;
      for (ValueId v : g.nodes[k].inputs)
        if (v != kNoValue && seen.insert(v).second) readers[size_t(v)].push_back(k);
    }
    for (ValueId v : g.outputs) is_output[size_t(v)] = true;
  }
  // The node that alone reads v, when v is not also a graph output.
  std::optional<size_t> single_reader(ValueId v) const {
    if (is_output[size_t(v)] || readers[size_t(v)].size() != 1) return std::nullopt;
    return readers[size_t(v)][0];
  }
};

bool is_op(const Node& n, const char* op) { return n.domain.empty() && n.op_type == op; }

const Tensor* constant_of(const Graph& g, const Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i] == kNoValue) return nullptr;
  const Value& v = g.values[size_t(n.inputs[i])];
  return v.constant ? &*v.constant : nullptr;
}

bool has_input(const Node& n, size_t i) { return i < n.inputs.size() && n.inputs[i] != kNoValue; }

bool is_integer_weight(DType t) {
  return t == DType::I8 || t == DType::U8 || t == DType::I4 || t == DType::U4 ||
         t == DType::I16 || t == DType::U16;
}

ValueId add_constant(Graph& g, const std::string& name, Tensor t) {
  const ValueId id = g.add_value(name, t.dtype());
  Value& v = g.values[size_t(id)];
  v.shape = t.shape();
  v.constant = std::move(t);
  return id;
}

// Why the weights dequantized by `dq` cannot be packed for QConv / QMatMul, whose output
// channels lie along `channel_axis` of the weights; empty when they can.
std::string weight_problem(const Graph& g, const Node& dq, int64_t out_channels, int64_t channel_axis) {
  const Tensor* w = constant_of(g, dq, 0);
  const Tensor* scale = constant_of(g, dq, 1);
  if (!w || !scale || (has_input(dq, 2) && !constant_of(g, dq, 2)))
    return "weights, their scale or zero point are not constants";
  if (!is_integer_weight(w->dtype()))
    return std::string("weights of type ") + dtype_name(w->dtype()) + " have no integer kernel";
  if (scale->numel() == 1) return "";
  const int64_t block = g.opset() >= 21 ? dq.attr_int("block_size", 0) : 0;
  if (block > 0)
    return "blocked weight scales (block_size=" + std::to_string(block) +
           ") have no integer kernel: the kernels take one scale per output channel";
  int64_t axis = dq.attr_int("axis", 1);
  if (axis < 0) axis += w->rank();
  if (axis != channel_axis || scale->numel() != out_channels)
    return "weight scales are per axis " + std::to_string(axis) + ", not per output channel";
  return "";
}

// The integer weight values minus zero points, to check that negated rows stay in int8.
bool row_has_value(const Tensor& w, const Tensor* zero_point, int64_t m, int64_t depth, int32_t value) {
  const int32_t zp = zero_point ? int32_t(zero_point->get_i64(zero_point->numel() == 1 ? 0 : m)) : 0;
  for (int64_t i = m * depth; i < (m + 1) * depth; ++i)
    if (int32_t(w.get_i64(i)) - zp == value) return true;
  return false;
}

// The input of a quantized layer: the integer tensor itself when `x` is dequantized per tensor
// from 8 bits (A8), else x (A16).
struct QuantizedInput {
  ValueId value = kNoValue, scale = kNoValue, zero_point = kNoValue;
};

QuantizedInput quantized_input(const Graph& g, const GraphIndex& index, ValueId x) {
  QuantizedInput in{x, kNoValue, kNoValue};
  if (const int32_t p = index.producer[size_t(x)];
      p >= 0 && is_op(g.nodes[size_t(p)], "DequantizeLinear")) {
    const Node& dq_x = g.nodes[size_t(p)];
    const Value& q = g.values[size_t(dq_x.inputs[0])];
    const Tensor* s = constant_of(g, dq_x, 1);
    const Tensor* z = constant_of(g, dq_x, 2);
    if (!q.constant && (q.dtype == DType::U8 || q.dtype == DType::I8) && s && s->numel() == 1 &&
        s->dtype() == DType::F32 && (!has_input(dq_x, 2) || (z && z->numel() == 1))) {
      in.value = dq_x.inputs[0];
      in.scale = dq_x.inputs[1];
      in.zero_point = has_input(dq_x, 2) ? dq_x.inputs[2] : kNoValue;
    }
  }
  return in;
}

ValueId float_constant(Graph& g, const std::string& name, const std::vector<float>& values) {
  Tensor t(DType::F32, {int64_t(values.size())});
  std::copy(values.begin(), values.end(), t.data<float>());
  return add_constant(g, name, std::move(t));
}

void set_note(Node& node, const std::string& why) {
  Attribute a;
  a.kind = Attribute::Kind::String;
  a.s = why;
  node.attrs[kQdqFallbackNote] = a;
}

// MatMul(x, DQ(w)) [-> Add(bias)] or Gemm(x, DQ(w) [, c]) with constant 2-D integer weights
// -> nibble.QMatMul.
void fuse_matmul(Graph& g, const GraphIndex& index, size_t k, std::vector<bool>& absorbed) {
  const Node& node = g.nodes[k];
  const bool gemm = is_op(node, "Gemm");
  if (!has_input(node, 1)) return;
  const ValueId w_value = node.inputs[1];
  const int32_t w_producer = index.producer[size_t(w_value)];
  if (w_producer < 0 || !is_op(g.nodes[size_t(w_producer)], "DequantizeLinear")) return;
  const Node dq_w = g.nodes[size_t(w_producer)];
  const Value& w = g.values[size_t(w_value)];
  if (!w.shape || w.shape->size() != 2) {
    set_note(g.nodes[k], "dequantized weights are not 2-D; runs in float");
    return;
  }
  const bool trans_b = gemm && node.attr_int("transB", 0) != 0;
  const int64_t channel_axis = trans_b ? 0 : 1;
  const int64_t out_features = (*w.shape)[size_t(channel_axis)];
  if (std::string why = weight_problem(g, dq_w, out_features, channel_axis); !why.empty()) {
    set_note(g.nodes[k], why + "; runs in float");
    return;
  }
  const ValueId x_value = node.inputs[0];
  if (g.values[size_t(x_value)].dtype != DType::F32) {
    set_note(g.nodes[k], "activations are not float32; runs in float");
    return;
  }
  if (gemm && node.attr_int("transA", 0) != 0) {
    set_note(g.nodes[k], "Gemm with transA has no quantized kernel; runs in float");
    return;
  }
  const Tensor& w_scale = *constant_of(g, dq_w, 1);
  const float alpha = gemm ? node.attr_float("alpha", 1.0f) : 1.0f;
  std::vector<float> scale(static_cast<size_t>(out_features)), bias;
  for (int64_t n = 0; n < out_features; ++n)
    scale[size_t(n)] = alpha * float(w_scale.get_f64(w_scale.numel() == 1 ? 0 : n));

  // Bias: Gemm's C when it broadcasts along the rows, or an Add of N constants after MatMul.
  std::vector<size_t> chain;
  ValueId out = node.outputs[0];
  auto bias_from = [&](const Tensor& c, float factor) {
    const bool per_feature = c.numel() == out_features && c.shape().back() == out_features;
    if (c.numel() != 1 && !per_feature) return false;
    for (int64_t n = 0; n < out_features; ++n)
      bias.push_back(factor * float(c.get_f64(c.numel() == 1 ? 0 : n)));
    return true;
  };
  if (gemm && has_input(node, 2)) {
    const Tensor* c = constant_of(g, node, 2);
    if (!c || !bias_from(*c, node.attr_float("beta", 1.0f))) {
      set_note(g.nodes[k], "Gemm's C is not a constant row of N values; runs in float");
      return;
    }
  } else if (!gemm) {
    if (auto r = index.single_reader(out); r && is_op(g.nodes[*r], "Add")) {
      const Node& add = g.nodes[*r];
      const size_t other = add.inputs[0] == out ? 1 : 0;
      const Tensor* c = constant_of(g, add, other);
      const Shape& y = *g.values[size_t(out)].shape;
      if (c && c->rank() <= int64_t(y.size()) && add.inputs[1 - other] == out && bias_from(*c, 1.0f)) {
        chain.push_back(*r);
        out = add.outputs[0];
      }
    }
  }

  const QuantizedInput x = quantized_input(g, index, x_value);
  Node fused;
  fused.op_type = "QMatMul";
  fused.domain = "nibble";
  fused.name = node.name;
  if (trans_b) {
    Attribute a;
    a.kind = Attribute::Kind::Int;
    a.i = 1;
    fused.attrs["trans_b"] = a;
  }
  const ValueId scale_v = float_constant(g, fused.name + "/qmatmul_scale", scale);
  const ValueId bias_v = bias.empty() ? kNoValue : float_constant(g, fused.name + "/qmatmul_bias", bias);
  fused.inputs = {x.value, dq_w.inputs[0], has_input(dq_w, 2) ? dq_w.inputs[2] : kNoValue,
                  scale_v, bias_v, x.scale, x.zero_point};
  fused.outputs = {out};
  g.nodes[k] = std::move(fused);
  for (size_t c : chain) absorbed[c] = true;
}

}  // namespace

void fuse_qdq(Graph& g) {
  const GraphIndex index(g);
  std::vector<bool> absorbed(g.nodes.size(), false);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    if (is_op(g.nodes[k], "MatMul") || is_op(g.nodes[k], "Gemm")) {
      fuse_matmul(g, index, k, absorbed);
      continue;
    }
    if (!is_op(g.nodes[k], "Conv") || !has_input(g.nodes[k], 1)) continue;
    const ValueId w_value = g.nodes[k].inputs[1];
    const int32_t w_producer = index.producer[size_t(w_value)];
    if (w_producer < 0 || !is_op(g.nodes[size_t(w_producer)], "DequantizeLinear")) continue;
    const Node dq_w = g.nodes[size_t(w_producer)];
    const Shape& w_shape = *g.values[size_t(w_value)].shape;
    const int64_t out_channels = w_shape[0];
    if (std::string why = weight_problem(g, dq_w, out_channels, 0); !why.empty()) {
      set_note(g.nodes[k], why + "; runs in float");
      continue;
    }
    const ValueId x_value = g.nodes[k].inputs[0];
    if (g.values[size_t(x_value)].dtype != DType::F32) {
      set_note(g.nodes[k], "activations are not float32; runs in float");
      continue;
    }
    if (has_input(g.nodes[k], 2) && !constant_of(g, g.nodes[k], 2)) {
      set_note(g.nodes[k], "bias is not a constant; runs in float");
      continue;
    }

    const Tensor& w_int = *constant_of(g, dq_w, 0);
    const Tensor* w_zero = constant_of(g, dq_w, 2);
    const Tensor& w_scale = *constant_of(g, dq_w, 1);
    const int64_t depth = w_int.numel() / out_channels;
    std::vector<float> scale(static_cast<size_t>(out_channels)), bias(static_cast<size_t>(out_channels), 0.0f);
    for (int64_t m = 0; m < out_channels; ++m)
      scale[size_t(m)] = float(w_scale.get_f64(w_scale.numel() == 1 ? 0 : m));
    bool has_bias = has_input(g.nodes[k], 2);
    if (has_bias) {
      const Tensor& b = *constant_of(g, g.nodes[k], 2);
      for (int64_t m = 0; m < out_channels; ++m) bias[size_t(m)] = float(b.get_f64(m));
    }

    const QuantizedInput x = quantized_input(g, index, x_value);

    std::vector<size_t> chain;  // nodes QConv absorbs after the Conv
    ValueId out = g.nodes[k].outputs[0];
    // A bias added apart (exporters that write Conv -> Add(Reshape(bias)), folded to a constant
    // [1, M, 1, ...] or [M, 1, ...]).
    if (auto r = index.single_reader(out);
        r && is_op(g.nodes[*r], "Add") && g.values[size_t(out)].shape) {
      const Node& add = g.nodes[*r];
      const size_t other = add.inputs[0] == out ? 1 : 0;
      const Tensor* c = constant_of(g, add, other);
      const int64_t spatial_rank = int64_t(g.values[size_t(out)].shape->size()) - 2;
      bool per_channel = c && add.inputs[1 - other] == out && c->numel() == out_channels &&
                         c->rank() >= spatial_rank + 1 && c->rank() <= spatial_rank + 2 &&
                         c->shape()[size_t(c->rank() - spatial_rank - 1)] == out_channels;
      if (per_channel) {
        for (int64_t m = 0; m < out_channels; ++m) bias[size_t(m)] += float(c->get_f64(m));
        has_bias = true;
        chain.push_back(*r);
        out = add.outputs[0];
      }
    }
    // BatchNormalization (inference form): scale and bias per output channel.
    if (auto r = index.single_reader(out); r && is_op(g.nodes[*r], "BatchNormalization")) {
      const Node& bn = g.nodes[*r];
      const Tensor *gamma = constant_of(g, bn, 1), *beta = constant_of(g, bn, 2),
                   *mean = constant_of(g, bn, 3), *var = constant_of(g, bn, 4);
      bool foldable = gamma && beta && mean && var && bn.attr_int("training_mode", 0) == 0 &&
                      bn.outputs.size() >= 1;
      for (size_t i = 1; foldable && i < bn.outputs.size(); ++i)
        foldable = bn.outputs[i] == kNoValue || index.readers[size_t(bn.outputs[i])].empty();
      const float eps = bn.attr_float("epsilon", 1e-5f);
      std::vector<float> factor(static_cast<size_t>(out_channels));
      for (int64_t m = 0; foldable && m < out_channels; ++m) {
        factor[size_t(m)] = float(gamma->get_f64(m)) / std::sqrt(float(var->get_f64(m)) + eps);
        // A negative factor negates the row's integers, impossible for -128.
        if (factor[size_t(m)] * scale[size_t(m)] < 0 &&
            row_has_value(w_int, w_zero, m, depth, -128))
          foldable = false;
      }
      if (foldable) {
        for (int64_t m = 0; m < out_channels; ++m) {
          const float f = factor[size_t(m)];
          scale[size_t(m)] *= f;
          bias[size_t(m)] = (bias[size_t(m)] - float(mean->get_f64(m))) * f + float(beta->get_f64(m));
        }
        has_bias = true;
        chain.push_back(*r);
        out = bn.outputs[0];
      }
    }
    // Activation.
    std::string activation;
    float clamp_min = -INFINITY, clamp_max = INFINITY;
    if (const auto& rs = index.readers[size_t(out)]; !index.is_output[size_t(out)]) {
      if (rs.size() == 1 && is_op(g.nodes[rs[0]], "Relu")) {
        activation = "relu";
        chain.push_back(rs[0]);
        out = g.nodes[rs[0]].outputs[0];
      } else if (rs.size() == 1 && is_op(g.nodes[rs[0]], "Clip") && g.opset() >= 11 &&
                 (!has_input(g.nodes[rs[0]], 1) || constant_of(g, g.nodes[rs[0]], 1)) &&
                 (!has_input(g.nodes[rs[0]], 2) || constant_of(g, g.nodes[rs[0]], 2))) {
        const Node& clip = g.nodes[rs[0]];
        if (has_input(clip, 1)) clamp_min = float(constant_of(g, clip, 1)->get_f64(0));
        if (has_input(clip, 2)) clamp_max = float(constant_of(g, clip, 2)->get_f64(0));
        chain.push_back(rs[0]);
        out = clip.outputs[0];
      } else if (rs.size() == 2) {
        // SiLU: Mul(out, Sigmoid(out)) in either operand order.
        size_t sig = rs[0], mul = rs[1];
        if (!is_op(g.nodes[sig], "Sigmoid")) std::swap(sig, mul);
        const Node& s = g.nodes[sig];
        const Node& mu = g.nodes[mul];
        if (is_op(s, "Sigmoid") && is_op(mu, "Mul") && mu.inputs.size() == 2 &&
            index.single_reader(s.outputs[0]) == mul &&
            ((mu.inputs[0] == out && mu.inputs[1] == s.outputs[0]) ||
             (mu.inputs[1] == out && mu.inputs[0] == s.outputs[0]))) {
          activation = "silu";
          chain.push_back(sig);
          chain.push_back(mul);
          out = mu.outputs[0];
        }
      }
    }

    Node fused;
    fused.op_type = "QConv";
    fused.domain = "nibble";
    fused.name = g.nodes[k].name;
    fused.attrs = g.nodes[k].attrs;
    fused.attrs.erase(kQdqFallbackNote);
    if (!activation.empty()) {
      Attribute a;
      a.kind = Attribute::Kind::String;
      a.s = activation;
      fused.attrs["activation"] = a;
    }
    for (auto [key, v] : {std::pair{"clamp_min", clamp_min}, std::pair{"clamp_max", clamp_max}}) {
      if (std::isinf(v)) continue;
      Attribute a;
      a.kind = Attribute::Kind::Float;
      a.f = v;
      fused.attrs[key] = a;
    }
    Tensor scale_t(DType::F32, {out_channels});
    std::copy(scale.begin(), scale.end(), scale_t.data<float>());
    const ValueId scale_v = add_constant(g, fused.name + "/qconv_scale", std::move(scale_t));
    ValueId bias_v = kNoValue;
    if (has_bias) {
      Tensor bias_t(DType::F32, {out_channels});
      std::copy(bias.begin(), bias.end(), bias_t.data<float>());
      bias_v = add_constant(g, fused.name + "/qconv_bias", std::move(bias_t));
    }
    fused.inputs = {x.value, dq_w.inputs[0], has_input(dq_w, 2) ? dq_w.inputs[2] : kNoValue,
                    scale_v, bias_v, x.scale, x.zero_point};
    fused.outputs = {out};
    g.nodes[k] = std::move(fused);
    for (size_t c : chain) absorbed[c] = true;
  }
  std::vector<Node> kept;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    if (!absorbed[k]) kept.push_back(std::move(g.nodes[k]));
  g.nodes = std::move(kept);
}

}  // namespace nibble
