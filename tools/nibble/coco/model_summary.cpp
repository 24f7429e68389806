#include "tools/nibble/coco/model_summary.h"

#include <cmath>
#include <optional>
#include <set>
#include <vector>

#include "engine/exec/thread_pool.h"
#include "engine/ir/graph.h"
#include "engine/plan/plan.h"
#include "frontend/onnx/onnx_loader.h"

namespace nibble::coco {

namespace {

std::optional<double> scalar_value(const Tensor& tensor) {
  if (tensor.numel() != 1) return std::nullopt;
  switch (tensor.dtype()) {
    case DType::F32: return *tensor.data<float>();
    case DType::F64: return *tensor.data<double>();
    case DType::F16: return half_to_float(*tensor.data<uint16_t>());
    case DType::I8: return *tensor.data<int8_t>();
    case DType::U8: return *tensor.data<uint8_t>();
    case DType::I16: return *tensor.data<int16_t>();
    case DType::U16: return *tensor.data<uint16_t>();
    case DType::I32: return *tensor.data<int32_t>();
    case DType::I64: return static_cast<double>(*tensor.data<int64_t>());
    default: return std::nullopt;
  }
}

int dtype_bits(DType dtype) {
  switch (dtype) {
    case DType::I4: case DType::U4: return 4;
    case DType::I8: case DType::U8: return 8;
    case DType::I16: case DType::U16: case DType::F16: case DType::BF16: return 16;
    default: return 32;
  }
}

// Reads the graph as loaded (before any fusion) to name its quantization scheme.
class SchemeReader {
 public:
  explicit SchemeReader(const Graph& graph) : g_(graph), constant_memo_(graph.values.size()) {}

  std::string scheme() {
    std::set<std::string> ops;
    for (const Node& node : g_.nodes)
      if (node.domain.empty()) ops.insert(node.op_type);
    if (ops.count("DynamicQuantizeLinear") || ops.count("ConvInteger") ||
        ops.count("MatMulInteger"))
      return "dynamic W8A8";
    if (ops.count("QLinearConv") || ops.count("QLinearMatMul")) return "QOperator W8A8";

    // DequantizeLinear nodes split into those of weights (input known at load) and those of
    // activations (Q -> DQ in ONNX Runtime's form, Q -> Clip -> DQ in Brevitas' QCDQ form).
    std::map<int, size_t> weight_elements_by_bits;  // bits -> weight elements dequantized
    std::map<int, size_t> activation_nodes_by_bits;
    for (const Node& node : g_.nodes) {
      if (!node.domain.empty() || node.op_type != "DequantizeLinear" || node.inputs.empty() ||
          node.inputs[0] == kNoValue)
        continue;
      const ValueId x = node.inputs[0];
      if (from_constants(x)) {
        const Value& value = g_.values[static_cast<size_t>(x)];
        const size_t elements = value.shape ? static_cast<size_t>(shape_numel(*value.shape)) : 1;
        weight_elements_by_bits[stored_bits(x)] += elements;
      } else {
        ++activation_nodes_by_bits[stored_bits(x)];
      }
    }
    if (weight_elements_by_bits.empty()) return float_scheme();
    const int weight_bits = most_common(weight_elements_by_bits);
    const std::string weights = "W" + std::to_string(weight_bits);
    if (activation_nodes_by_bits.empty()) return weights + "A16 (weight-only)";
    return weights + "A" + std::to_string(most_common(activation_nodes_by_bits));
  }

 private:
  static int most_common(const std::map<int, size_t>& counts) {
    int best = counts.begin()->first;
    for (const auto& [bits, count] : counts)
      if (count > counts.at(best)) best = bits;
    return best;
  }

  static int64_t shape_numel(const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d > 0 ? d : 1;
    return n;
  }

  // Known at load: a constant, or computed only from constants (int8 weights -> Clip -> DQ,
  // float weights -> Q -> Clip -> DQ in Brevitas' QCDQ form).
  bool from_constants(ValueId v) {
    const auto index = static_cast<size_t>(v);
    if (constant_memo_[index]) return *constant_memo_[index];
    const Value& value = g_.values[index];
    bool known = value.constant.has_value();
    if (!known && value.producer >= 0) {
      known = true;
      constant_memo_[index] = false;  // a cycle would be invalid; never loop
      for (ValueId input : g_.nodes[static_cast<size_t>(value.producer)].inputs)
        if (input != kNoValue && !from_constants(input)) known = false;
    }
    constant_memo_[index] = known;
    return known;
  }

  // Bits of the integers in value v: the Clip bounds that produced it when there are some
  // (Brevitas' narrow 4-bit weights are int8 clipped to [-8, 7]), else its type's width.
  int stored_bits(ValueId v) const {
    const Value& value = g_.values[static_cast<size_t>(v)];
    if (value.producer >= 0) {
      const Node& producer = g_.nodes[static_cast<size_t>(value.producer)];
      if (producer.op_type == "Clip" && producer.domain.empty()) {
        const std::optional<double> low = clip_bound(producer, 1, "min");
        const std::optional<double> high = clip_bound(producer, 2, "max");
        if (low && high && *high >= *low)
          return static_cast<int>(std::ceil(std::log2(*high - *low + 1)));
        if (!producer.inputs.empty() && producer.inputs[0] != kNoValue)
          return stored_bits(producer.inputs[0]);
      }
      // Types are inferred after load, so a QuantizeLinear output's type comes from the node.
      if (producer.op_type == "QuantizeLinear" && producer.domain.empty() &&
          value.dtype == DType::Undefined)
        return dtype_bits(quantized_type(producer));
    }
    return dtype_bits(value.dtype);
  }

  // QuantizeLinear's output type: its zero point's, else output_dtype (opset 21), else uint8.
  DType quantized_type(const Node& quantize) const {
    if (quantize.inputs.size() > 2 && quantize.inputs[2] != kNoValue) {
      const Value& zero_point = g_.values[static_cast<size_t>(quantize.inputs[2])];
      if (zero_point.dtype != DType::Undefined) return zero_point.dtype;
      if (zero_point.constant) return zero_point.constant->dtype();
    }
    if (quantize.has_attr("output_dtype") && quantize.attr_int("output_dtype") != 0)
      return static_cast<DType>(quantize.attr_int("output_dtype"));  // DType values are ONNX's
    return DType::U8;
  }

  std::optional<double> clip_bound(const Node& clip, size_t input, const char* attribute) const {
    if (clip.has_attr(attribute)) return clip.attr_float(attribute);  // opset < 11
    if (clip.inputs.size() <= input || clip.inputs[input] == kNoValue) return std::nullopt;
    const Value& bound = g_.values[static_cast<size_t>(clip.inputs[input])];
    return bound.constant ? scalar_value(*bound.constant) : std::nullopt;
  }

  // FP16 when most float weight bytes are half precision.
  std::string float_scheme() const {
    size_t half_bytes = 0, float_bytes = 0;
    for (const Value& value : g_.values) {
      if (!value.constant) continue;
      if (value.constant->dtype() == DType::F16) half_bytes += value.constant->nbytes();
      if (value.constant->dtype() == DType::F32) float_bytes += value.constant->nbytes();
    }
    return half_bytes > float_bytes ? "FP16" : "FP32";
  }

  const Graph& g_;
  std::vector<std::optional<bool>> constant_memo_;
};

size_t planned_weight_bytes(const Plan& plan) {
  const Graph& g = plan.graph;
  std::set<ValueId> counted;
  size_t bytes = 0;
  for (const PlanStep& step : plan.steps) {
    if (step.kernel.packed_weight_bytes > 0) {
      bytes += step.kernel.packed_weight_bytes;
      continue;
    }
    for (ValueId v : g.nodes[step.node].inputs) {
      if (v == kNoValue || !g.values[static_cast<size_t>(v)].constant) continue;
      if (counted.insert(v).second) bytes += g.values[static_cast<size_t>(v)].constant->nbytes();
    }
  }
  return bytes;
}

}  // namespace

std::string quantization_scheme(const Graph& graph) { return SchemeReader(graph).scheme(); }

ModelSummary summarize_model(const std::string& path,
                             const std::map<std::string, Shape>& input_shapes) {
  const Graph graph = onnx_frontend::load_model_file(path);
  ModelSummary summary;
  summary.scheme = quantization_scheme(graph);
  ThreadPool pool(1);
  try {
    const std::shared_ptr<const Plan> plan =
        build_plan(graph, input_shapes, /*input_values=*/{}, /*optimize=*/true,
                   size_t{16} << 30, pool);
    summary.weight_bytes = planned_weight_bytes(*plan);
  } catch (const Error& e) {
    throw Error(e.kind(), path + ": " + e.what());
  }
  return summary;
}

}  // namespace nibble::coco
