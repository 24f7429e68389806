#include "tools/nibble/quantize/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "frontend/onnx/onnx_loader.h"

namespace nibble::quantize {

Scheme parse_scheme(const std::string& name) {
  if (name == "w8a16") return Scheme::W8A16;
  if (name == "w8a8") return Scheme::W8A8;
  if (name == "w4a8") return Scheme::W4A8;
  if (name == "w4a16") return Scheme::W4A16;
  throw Error(ErrorKind::InvalidArgument,
              "--scheme '" + name + "': expected w8a16, w8a8, w4a8 or w4a16");
}

Format parse_format(const std::string& name) {
  if (name == "qcdq") return Format::Qcdq;
  if (name == "qdq") return Format::Qdq;
  throw Error(ErrorKind::InvalidArgument, "--format '" + name + "': expected qcdq or qdq");
}

CalibMethod parse_calib_method(const std::string& name) {
  if (name == "minmax") return CalibMethod::MinMax;
  if (name == "percentile") return CalibMethod::Percentile;
  if (name == "mse") return CalibMethod::Mse;
  throw Error(ErrorKind::InvalidArgument,
              "--calib-method '" + name + "': expected minmax, percentile or mse");
}

int weight_bits(Scheme scheme) {
  return scheme == Scheme::W4A8 || scheme == Scheme::W4A16 ? 4 : 8;
}

bool quantizes_activations(Scheme scheme) {
  return scheme == Scheme::W8A8 || scheme == Scheme::W4A8;
}

namespace {

// TensorProto.INT4 (ONNX 1.16); Debian's onnx.proto predates it.
constexpr auto kInt4 = static_cast<onnx::TensorProto::DataType>(22);

const onnx::TensorProto* find_initializer(const onnx::GraphProto& graph, const std::string& name) {
  for (const auto& t : graph.initializer())
    if (t.name() == name) return &t;
  return nullptr;
}

int64_t int_attr(const onnx::NodeProto& node, const std::string& name, int64_t fallback) {
  for (const auto& a : node.attribute())
    if (a.name() == name) return a.i();
  return fallback;
}

// The weight input of a node nibble quantizes, and the weight axis of its output channels;
// nullopt for nodes left in float.
struct WeightSite {
  int axis = 0;
};

std::optional<WeightSite> weight_site(const onnx::GraphProto& graph, const onnx::NodeProto& node) {
  if (!node.domain().empty() && node.domain() != "ai.onnx") return std::nullopt;
  if (node.input_size() < 2) return std::nullopt;
  const onnx::TensorProto* w = find_initializer(graph, node.input(1));
  if (!w || w->data_type() != onnx::TensorProto::FLOAT) return std::nullopt;
  if (node.op_type() == "Conv" && w->dims_size() >= 3) return WeightSite{0};
  if (node.op_type() == "MatMul" && w->dims_size() == 2) return WeightSite{1};
  if (node.op_type() == "Gemm" && w->dims_size() == 2)
    return WeightSite{int_attr(node, "transB", 0) ? 0 : 1};
  return std::nullopt;
}

// Names not yet used in the graph, derived from a base name.
class NameTable {
 public:
  explicit NameTable(const onnx::GraphProto& graph) {
    for (const auto& t : graph.initializer()) used_.insert(t.name());
    for (const auto& v : graph.input()) used_.insert(v.name());
    for (const auto& n : graph.node()) {
      used_.insert(n.name());
      for (const auto& o : n.output()) used_.insert(o);
    }
  }
  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int i = 2; used_.count(name); ++i) name = base + "_" + std::to_string(i);
    used_.insert(name);
    return name;
  }

 private:
  std::set<std::string> used_;
};

void add_attr(onnx::NodeProto& node, const std::string& name, int64_t value) {
  auto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

onnx::TensorProto make_tensor(const std::string& name, onnx::TensorProto::DataType type,
                              const std::vector<int64_t>& dims, std::string raw) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(type);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::move(raw));
  return t;
}

onnx::TensorProto float_tensor(const std::string& name, const std::vector<int64_t>& dims,
                               const std::vector<float>& values) {
  return make_tensor(name, onnx::TensorProto::FLOAT, dims,
                     std::string(reinterpret_cast<const char*>(values.data()),
                                 values.size() * sizeof(float)));
}

// int8 values as INT8, or as INT4 packed two per byte (low nibble first), as ONNX stores them.
onnx::TensorProto int_tensor(const std::string& name, const std::vector<int64_t>& dims,
                             const std::vector<int8_t>& values, bool int4) {
  if (!int4) {
    return make_tensor(name, onnx::TensorProto::INT8, dims,
                       std::string(reinterpret_cast<const char*>(values.data()), values.size()));
  }
  std::string packed((values.size() + 1) / 2, '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    const uint8_t nibble = static_cast<uint8_t>(values[i]) & 0x0F;
    packed[i / 2] = static_cast<char>(static_cast<uint8_t>(packed[i / 2]) | (i % 2 ? nibble << 4 : nibble));
  }
  return make_tensor(name, kInt4, dims, std::move(packed));
}

struct QuantizedWeight {
  std::vector<int8_t> values;
  std::vector<float> scales;  // one per channel, or one
};

// Symmetric narrow-range quantization: q = clamp(round(w / s), -qmax, qmax), s = max|w| / qmax
// (at 4 bits, the clipped s with the least squared error).
QuantizedWeight quantize_weight(const Tensor& w, int axis, int bits, bool per_tensor) {
  const int qmax = bits == 4 ? 7 : 127;
  const Shape& shape = w.shape();
  int64_t inner = 1;
  for (int d = axis + 1; d < int(shape.size()); ++d) inner *= shape[size_t(d)];
  const int64_t channels = shape[size_t(axis)];
  const float* data = w.data<float>();
  auto channel_of = [&](int64_t i) { return per_tensor ? 0 : (i / inner) % channels; };
  std::vector<float> amax(per_tensor ? 1 : size_t(channels), 0.0f);
  for (int64_t i = 0; i < w.numel(); ++i)
    amax[size_t(channel_of(i))] = std::max(amax[size_t(channel_of(i))], std::fabs(data[i]));
  QuantizedWeight q;
  for (float a : amax) q.scales.push_back(a > 0 && std::isfinite(a) ? a / float(qmax) : 1.0f);
  if (bits == 4) {
    // At 4 bits the max|w| scale wastes most levels on a few outliers: per channel, pick the
    // clipped scale (down to half of it) with the least squared rounding error.
    const std::vector<float> full = q.scales;
    std::vector<double> best(full.size(), -1.0);
    for (int step = 0; step <= 20; ++step) {
      const float ratio = 1.0f - 0.025f * float(step);
      std::vector<double> err(full.size(), 0.0);
      for (int64_t i = 0; i < w.numel(); ++i) {
        const size_t c = size_t(channel_of(i));
        const float sc = full[c] * ratio;
        const float v = std::clamp(std::nearbyint(data[i] / sc), float(-qmax), float(qmax)) * sc;
        err[c] += double(v - data[i]) * double(v - data[i]);
      }
      for (size_t c = 0; c < full.size(); ++c) {
        if (best[c] < 0 || err[c] < best[c]) best[c] = err[c], q.scales[c] = full[c] * ratio;
      }
    }
  }
  q.values.resize(size_t(w.numel()));
  for (int64_t i = 0; i < w.numel(); ++i) {
    const float v = std::nearbyint(data[i] / q.scales[size_t(channel_of(i))]);
    q.values[size_t(i)] = static_cast<int8_t>(std::clamp(v, float(-qmax), float(qmax)));
  }
  return q;
}

// Asymmetric 8-bit activation parameters whose range always holds 0.
struct ActivationParams {
  float scale = 1;
  int32_t zero_point = 0;
};

ActivationParams activation_params(Range r, bool is_signed) {
  const float lo = std::min(r.min, 0.0f), hi = std::max(r.max, 0.0f);
  const float qmin = is_signed ? -128.0f : 0.0f;
  ActivationParams p;
  if (hi > lo && std::isfinite(hi - lo)) p.scale = (hi - lo) / 255.0f;
  p.zero_point = static_cast<int32_t>(std::clamp(std::nearbyint(qmin - lo / p.scale), qmin, qmin + 255.0f));
  return p;
}

// Opset 18 moved the `axes` of these reductions from an attribute to an input.
bool axes_became_input_at_18(const std::string& op) {
  static const std::set<std::string> ops = {"ReduceMax", "ReduceMin", "ReduceMean", "ReduceProd",
                                            "ReduceL1", "ReduceL2", "ReduceLogSum",
                                            "ReduceLogSumExp", "ReduceSumSquare"};
  return ops.count(op) != 0;
}

void upgrade_reductions_to_18(onnx::GraphProto& graph, NameTable& names) {
  for (auto& node : *graph.mutable_node()) {
    if (!axes_became_input_at_18(node.op_type())) continue;
    auto* attrs = node.mutable_attribute();
    for (int i = 0; i < attrs->size(); ++i) {
      if (attrs->Get(i).name() != "axes") continue;
      std::vector<int64_t> axes(attrs->Get(i).ints().begin(), attrs->Get(i).ints().end());
      const std::string name = names.fresh(node.name() + "_axes");
      *graph.add_initializer() = make_tensor(
          name, onnx::TensorProto::INT64, {int64_t(axes.size())},
          std::string(reinterpret_cast<const char*>(axes.data()), axes.size() * sizeof(int64_t)));
      if (node.input_size() < 2) node.add_input(name);
      attrs->DeleteSubrange(i, 1);
      break;
    }
  }
}

}  // namespace

std::vector<std::string> activation_tensors(const onnx::ModelProto& model,
                                            const QuantizeOptions& options) {
  std::vector<std::string> names;
  if (!quantizes_activations(options.scheme)) return names;
  std::set<std::string> seen;
  for (const auto& node : model.graph().node()) {
    if (weight_site(model.graph(), node) && seen.insert(node.input(0)).second)
      names.push_back(node.input(0));
  }
  return names;
}

// ---- calibration --------------------------------------------------------------------------------

Calibrator::Calibrator(CalibMethod method, std::vector<std::string> tensors)
    : method_(method), tensors_(std::move(tensors)), stats_(tensors_.size()) {}

onnx::ModelProto Calibrator::instrument(const onnx::ModelProto& model) const {
  onnx::ModelProto copy = model;
  std::set<std::string> outputs;
  for (const auto& o : copy.graph().output()) outputs.insert(o.name());
  for (const std::string& name : tensors_) {
    // Already an output: still appended, so that the calibrated tensors are the last outputs.
    auto* v = copy.mutable_graph()->add_output();
    v->set_name(name);
    v->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  }
  return copy;
}

void Calibrator::observe(const std::vector<Tensor>& outputs) {
  constexpr int64_t kSamplesPerRun = 1 << 14;
  const size_t first = outputs.size() - tensors_.size();
  for (size_t t = 0; t < tensors_.size(); ++t) {
    const Tensor& x = outputs[first + t];
    if (x.dtype() != DType::F32) {
      throw Error(ErrorKind::InvalidModel, "calibrated tensor '" + tensors_[t] + "' is " +
                                               dtype_name(x.dtype()) + ", expected float");
    }
    Stats& s = stats_[t];
    const float* data = x.data<float>();
    const auto [lo, hi] = std::minmax_element(data, data + x.numel());
    if (x.numel() > 0) {
      s.min = runs_ == 0 ? *lo : std::min(s.min, *lo);
      s.max = runs_ == 0 ? *hi : std::max(s.max, *hi);
    }
    if (method_ == CalibMethod::MinMax) continue;
    const int64_t step = std::max<int64_t>(1, x.numel() / kSamplesPerRun);
    for (int64_t i = 0; i < x.numel(); i += step) s.samples.push_back(data[i]);
  }
  ++runs_;
}

namespace {

// Mean squared error of 8-bit asymmetric fake quantization of `samples` over range r.
double quantization_mse(const std::vector<float>& samples, Range r) {
  const ActivationParams p = activation_params(r, false);
  double sum = 0;
  for (float v : samples) {
    const float q = std::clamp(std::nearbyint(v / p.scale) + float(p.zero_point), 0.0f, 255.0f);
    const double e = double(v) - double((q - float(p.zero_point)) * p.scale);
    sum += e * e;
  }
  return samples.empty() ? 0 : sum / double(samples.size());
}

}  // namespace

std::map<std::string, Range> Calibrator::ranges() const {
  std::map<std::string, Range> result;
  for (size_t t = 0; t < tensors_.size(); ++t) {
    const Stats& s = stats_[t];
    Range r{s.min, s.max};
    if (method_ == CalibMethod::Percentile && !s.samples.empty()) {
      // 0.01% of the samples may fall outside the range on each side.
      std::vector<float> v = s.samples;
      const size_t lo = size_t(double(v.size() - 1) * 0.0001), hi = size_t(double(v.size() - 1) * 0.9999);
      std::nth_element(v.begin(), v.begin() + lo, v.end());
      r.min = v[lo];
      std::nth_element(v.begin(), v.begin() + hi, v.end());
      r.max = v[hi];
    } else if (method_ == CalibMethod::Mse && !s.samples.empty()) {
      // The shrink of the min/max range that minimizes the quantization error.
      double best = quantization_mse(s.samples, r);
      for (int step = 1; step < 40; ++step) {
        const float f = 1.0f - 0.02f * float(step);
        const Range candidate{s.min * f, s.max * f};
        const double e = quantization_mse(s.samples, candidate);
        if (e < best) best = e, r = candidate;
      }
    }
    result[tensors_[t]] = r;
  }
  return result;
}

// ---- rewriting ----------------------------------------------------------------------------------

onnx::ModelProto quantize_model(const onnx::ModelProto& model, const QuantizeOptions& options,
                                const std::map<std::string, Range>& ranges) {
  const onnx::GraphProto& in = model.graph();
  std::set<std::string> node_names;
  for (const auto& node : in.node()) node_names.insert(node.name());
  for (const std::string& keep : options.keep_8bit) {
    if (!node_names.count(keep))
      throw Error(ErrorKind::InvalidArgument, "--keep-8bit: the model has no node named '" + keep + "'");
  }

  onnx::ModelProto out = model;
  onnx::GraphProto& graph = *out.mutable_graph();
  NameTable names(in);
  const bool qcdq = options.format == Format::Qcdq;
  const int64_t min_opset = qcdq ? 13 : 21;
  bool found_default_domain = false;
  for (auto& op : *out.mutable_opset_import()) {
    if (!op.domain().empty() && op.domain() != "ai.onnx") continue;
    found_default_domain = true;
    if (op.version() < 18 && min_opset >= 18) upgrade_reductions_to_18(graph, names);
    op.set_version(std::max(op.version(), min_opset));
  }
  if (!found_default_domain) {
    auto* op = out.add_opset_import();
    op->set_version(min_opset);
  }
  if (out.ir_version() < 10 && !qcdq) out.set_ir_version(10);  // INT4 needs IR 10

  std::map<std::string, int> weight_uses;
  for (const auto& node : graph.node())
    for (const auto& i : node.input()) ++weight_uses[i];

  const bool activations = quantizes_activations(options.scheme);
  std::map<std::string, std::string> dequantized_activation;  // float name -> DQ output
  std::set<std::string> dropped_initializers;
  google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
  for (const auto& original : graph.node()) {
    const std::optional<WeightSite> site = weight_site(graph, original);
    if (!site) {
      *nodes.Add() = original;
      continue;
    }
    onnx::NodeProto node = original;
    const std::string& base = node.name().empty() ? node.input(1) : node.name();

    // Weights.
    const onnx::TensorProto& w_proto = *find_initializer(graph, node.input(1));
    const Tensor w = onnx_frontend::tensor_from_proto(w_proto, {}, "initializer '" + w_proto.name() + "'");
    const int bits = options.keep_8bit.count(node.name()) ? 8 : weight_bits(options.scheme);
    const QuantizedWeight q = quantize_weight(w, site->axis, bits, options.per_tensor);
    const std::vector<int64_t> w_dims(w.shape().begin(), w.shape().end());
    const bool int4 = bits == 4 && !qcdq;
    const std::string w_int = names.fresh(w_proto.name() + "_quantized");
    *graph.add_initializer() = int_tensor(w_int, w_dims, q.values, int4);
    const std::vector<int64_t> scale_dims =
        options.per_tensor ? std::vector<int64_t>{} : std::vector<int64_t>{int64_t(q.scales.size())};
    const std::string w_scale = names.fresh(w_proto.name() + "_scale");
    const std::string w_zero = names.fresh(w_proto.name() + "_zero_point");
    *graph.add_initializer() = float_tensor(w_scale, scale_dims, q.scales);
    *graph.add_initializer() = int_tensor(w_zero, scale_dims, std::vector<int8_t>(q.scales.size(), 0), int4);
    std::string dq_input = w_int;
    if (qcdq) {
      const int8_t qmax = bits == 4 ? 7 : 127;
      const std::string lo = names.fresh(w_proto.name() + "_clip_min");
      const std::string hi = names.fresh(w_proto.name() + "_clip_max");
      *graph.add_initializer() = int_tensor(lo, {}, {int8_t(-qmax)}, false);
      *graph.add_initializer() = int_tensor(hi, {}, {qmax}, false);
      dq_input = names.fresh(w_proto.name() + "_clipped");
      auto& clip = *nodes.Add();
      clip.set_op_type("Clip");
      clip.set_name(names.fresh(base + "_weight_clip"));
      clip.add_input(w_int), clip.add_input(lo), clip.add_input(hi);
      clip.add_output(dq_input);
    }
    auto& dq = *nodes.Add();
    dq.set_op_type("DequantizeLinear");
    dq.set_name(names.fresh(base + "_weight_dequantize"));
    dq.add_input(dq_input), dq.add_input(w_scale), dq.add_input(w_zero);
    dq.add_output(names.fresh(w_proto.name() + "_dequantized"));
    if (!options.per_tensor) add_attr(dq, "axis", site->axis);
    if (--weight_uses[node.input(1)] == 0) dropped_initializers.insert(node.input(1));
    node.set_input(1, dq.output(0));

    // Activations, one Q/DQ pair per tensor shared by its quantized readers.
    if (activations) {
      const std::string x = node.input(0);
      auto it = dequantized_activation.find(x);
      if (it == dequantized_activation.end()) {
        auto r = ranges.find(x);
        if (r == ranges.end())
          throw Error(ErrorKind::InvalidArgument, "no calibrated range for activation '" + x + "'");
        const ActivationParams p = activation_params(r->second, qcdq);
        const std::string scale = names.fresh(x + "_scale");
        const std::string zero = names.fresh(x + "_zero_point");
        *graph.add_initializer() = float_tensor(scale, {}, {p.scale});
        const char z = static_cast<char>(p.zero_point);
        *graph.add_initializer() =
            make_tensor(zero, qcdq ? onnx::TensorProto::INT8 : onnx::TensorProto::UINT8, {}, std::string(1, z));
        auto& qn = *nodes.Add();
        qn.set_op_type("QuantizeLinear");
        qn.set_name(names.fresh(x + "_quantize"));
        qn.add_input(x), qn.add_input(scale), qn.add_input(zero);
        qn.add_output(names.fresh(x + "_quantized"));
        auto& dqn = *nodes.Add();
        dqn.set_op_type("DequantizeLinear");
        dqn.set_name(names.fresh(x + "_dequantize"));
        dqn.add_input(qn.output(0)), dqn.add_input(scale), dqn.add_input(zero);
        dqn.add_output(names.fresh(x + "_dequantized"));
        it = dequantized_activation.emplace(x, dqn.output(0)).first;
      }
      node.set_input(0, it->second);
    }
    *nodes.Add() = std::move(node);
  }
  graph.mutable_node()->Swap(&nodes);

  auto* inits = graph.mutable_initializer();
  for (int i = inits->size() - 1; i >= 0; --i)
    if (dropped_initializers.count(inits->Get(i).name())) inits->DeleteSubrange(i, 1);
  // Graph inputs that only named a dropped initializer (older exporters list them) go too.
  auto* inputs = graph.mutable_input();
  for (int i = inputs->size() - 1; i >= 0; --i)
    if (dropped_initializers.count(inputs->Get(i).name())) inputs->DeleteSubrange(i, 1);
  return out;
}

}  // namespace nibble::quantize
