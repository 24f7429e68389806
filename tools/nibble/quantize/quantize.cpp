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

// Whether every weight is an integer that int8 holds, like the fixed 0..15 ramp of YOLO's DFL
// conv: those are stored exactly, with scale 1.
bool is_small_integer_valued(const Tensor& w) {
  const float* data = w.data<float>();
  for (int64_t i = 0; i < w.numel(); ++i)
    if (data[i] != std::nearbyint(data[i]) || std::fabs(data[i]) > 127.0f) return false;
  return true;
}

// Symmetric quantization (zero point 0): q = clamp(round(w / s), qmin, qmax), s = max|w| / qmax,
// narrow range [-127, 127] at 8 bits; at 4 bits the full range [-8, 7] (one more level than
// [-7, 7], for the same kernels) and the clipped s with the least squared error. Small integer
// weights are stored exactly.
QuantizedWeight quantize_weight(const Tensor& w, int axis, int bits, bool per_tensor,
                                const LayerHessian* hessian) {
  const int qmax = bits == 4 ? 7 : 127;
  const int qmin = bits == 4 ? -8 : -127;
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
  const bool exact = is_small_integer_valued(w);
  for (float a : amax) {
    if (exact && a <= float(qmax))
      q.scales.push_back(1.0f);
    else
      q.scales.push_back(a > 0 && std::isfinite(a) ? a / float(qmax) : 1.0f);
  }
  if (bits == 4) {
    // At 4 bits the max|w| scale wastes most levels on a few outliers: per channel, pick the
    // clipped scale (down to a third of it) with the least squared rounding error.
    const std::vector<float> full = q.scales;
    std::vector<double> best(full.size(), -1.0);
    for (int step = 0; step <= 40; ++step) {
      const float ratio = 1.0f - (2.0f / 3.0f) * float(step) / 40.0f;
      std::vector<double> err(full.size(), 0.0);
      for (int64_t i = 0; i < w.numel(); ++i) {
        const size_t c = size_t(channel_of(i));
        const float sc = full[c] * ratio;
        const float v = std::clamp(std::nearbyint(data[i] / sc), float(qmin), float(qmax)) * sc;
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
    q.values[size_t(i)] = static_cast<int8_t>(std::clamp(v, float(qmin), float(qmax)));
  }
  if (hessian && hessian->samples > 0 && bits == 4 && !exact) {
    // GPTQ per group of output channels; W is [channels x depth] (axis 0: Conv, Gemm with
    // transB) or [depth x channels] (axis 1: MatMul, Gemm).
    const int64_t groups = int64_t(hessian->groups.size()), depth = hessian->depth;
    const int64_t rows = channels / groups;
    if (channels % groups != 0 || rows * groups * depth != w.numel()) return q;
    std::vector<float> row_scales(static_cast<size_t>(channels));
    for (int64_t c = 0; c < channels; ++c) row_scales[size_t(c)] = q.scales[per_tensor ? 0 : size_t(c)];
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t first = g * rows;
      const std::vector<int8_t> rounded =
          axis == 0 ? gptq_round(data + first * depth, rows, depth, depth, 1,
                                 hessian->groups[size_t(g)], row_scales.data() + first, qmin, qmax)
                    : gptq_round(data + first, rows, depth, 1, channels,
                                 hessian->groups[size_t(g)], row_scales.data() + first, qmin, qmax);
      if (rounded.empty()) continue;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < depth; ++k) {
          const int64_t i = axis == 0 ? (first + r) * depth + k : k * channels + first + r;
          q.values[size_t(i)] = rounded[size_t(r * depth + k)];
        }
    }
  }
  return q;
}

// Whether 8-bit weights of the node are its float weights exactly: small integers (scale 1), or
// values already on the per-channel 8-bit grid of their max |w| (weights that an exporter
// fake-quantized, like the DFL ramp of Ultralytics' ONNX export: k * 15/127).
bool exact_at_8_bits(const onnx::GraphProto& graph, const onnx::NodeProto& node, int axis) {
  const onnx::TensorProto& proto = *find_initializer(graph, node.input(1));
  const Tensor w = onnx_frontend::tensor_from_proto(proto, {}, "initializer '" + proto.name() + "'");
  if (is_small_integer_valued(w)) return true;
  const QuantizedWeight q = quantize_weight(w, axis, 8, false, nullptr);
  const Shape& shape = w.shape();
  int64_t inner = 1;
  for (int d = axis + 1; d < int(shape.size()); ++d) inner *= shape[size_t(d)];
  const float* data = w.data<float>();
  for (int64_t i = 0; i < w.numel(); ++i) {
    const float scale = q.scales[size_t((i / inner) % shape[size_t(axis)])];
    if (std::fabs(float(q.values[size_t(i)]) * scale - data[i]) > 1e-6f * std::fabs(data[i]) + 1e-12f)
      return false;
  }
  return true;
}

// The layers 4-bit schemes keep at 8 bits unless told otherwise: where 4-bit error costs the
// most accuracy. These are the first layers (reached from a graph input through no other
// quantized layer), the output layers (reaching a graph output through no other quantized
// layer: a detector's class and box convolutions) and layers exact at 8 bits (YOLO's DFL conv).
// Output layers are looked for through the exact ones.
std::vector<bool> boundary_layers(const onnx::GraphProto& graph) {
  const int count = graph.node_size();
  const size_t nodes = static_cast<size_t>(count);
  std::vector<bool> weighted(nodes), exact(nodes), keep(nodes);
  std::map<std::string, std::vector<int>> readers;
  std::map<std::string, int> producer;
  for (int k = 0; k < count; ++k) {
    const onnx::NodeProto& node = graph.node(k);
    const std::optional<WeightSite> site = weight_site(graph, node);
    weighted[size_t(k)] = site.has_value();
    exact[size_t(k)] = site && exact_at_8_bits(graph, node, site->axis);
    keep[size_t(k)] = exact[size_t(k)];
    for (const auto& i : node.input()) readers[i].push_back(k);
    for (const auto& o : node.output()) producer[o] = k;
  }
  std::set<std::string> outputs;
  for (const auto& o : graph.output()) outputs.insert(o.name());

  // First layers: walk forward from the graph inputs, stopping at quantized layers.
  std::vector<bool> seen(nodes);
  std::vector<int> stack;
  for (const auto& input : graph.input())
    for (int r : readers[input.name()]) stack.push_back(r);
  while (!stack.empty()) {
    const int k = stack.back();
    stack.pop_back();
    if (seen[size_t(k)]) continue;
    seen[size_t(k)] = true;
    if (weighted[size_t(k)]) {
      keep[size_t(k)] = true;
      continue;
    }
    for (const auto& o : graph.node(k).output())
      for (int r : readers[o]) stack.push_back(r);
  }
  // Output layers: walk backward from the graph outputs, stopping at quantized layers that are
  // not exact.
  std::fill(seen.begin(), seen.end(), false);
  for (const auto& o : outputs)
    if (auto it = producer.find(o); it != producer.end()) stack.push_back(it->second);
  while (!stack.empty()) {
    const int k = stack.back();
    stack.pop_back();
    if (seen[size_t(k)]) continue;
    seen[size_t(k)] = true;
    if (weighted[size_t(k)] && !exact[size_t(k)]) {
      keep[size_t(k)] = true;
      continue;
    }
    for (const auto& i : graph.node(k).input())
      if (auto it = producer.find(i); it != producer.end()) stack.push_back(it->second);
  }
  return keep;
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

namespace {

// Per node, the bit width of its quantized weights (0: not quantized).
std::vector<int> layer_bits(const onnx::GraphProto& graph, const QuantizeOptions& options) {
  const std::vector<bool> boundary = options.keep_boundary_8bit
                                         ? boundary_layers(graph)
                                         : std::vector<bool>(size_t(graph.node_size()));
  std::vector<int> bits(size_t(graph.node_size()), 0);
  for (int k = 0; k < graph.node_size(); ++k) {
    const onnx::NodeProto& node = graph.node(k);
    if (!weight_site(graph, node)) continue;
    const bool keep_8bit = boundary[size_t(k)] || options.keep_8bit.count(node.name());
    bits[size_t(k)] = keep_8bit ? 8 : weight_bits(options.scheme);
  }
  return bits;
}

}  // namespace

std::vector<std::string> four_bit_layers(const onnx::ModelProto& model, const QuantizeOptions& options) {
  const std::vector<int> bits = layer_bits(model.graph(), options);
  std::vector<std::string> names;
  for (int k = 0; k < model.graph().node_size(); ++k)
    if (bits[size_t(k)] == 4) names.push_back(model.graph().node(k).output(0));
  return names;
}

std::vector<std::string> default_8bit_layers(const onnx::ModelProto& model) {
  const std::vector<bool> keep = boundary_layers(model.graph());
  std::vector<std::string> names;
  for (int k = 0; k < model.graph().node_size(); ++k) {
    const onnx::NodeProto& node = model.graph().node(k);
    if (keep[size_t(k)]) names.push_back(node.name().empty() ? node.output(0) : node.name());
  }
  return names;
}

// ---- calibration --------------------------------------------------------------------------------

Calibrator::Calibrator(CalibMethod method, std::vector<std::string> tensors)
    : method_(method), tensors_(std::move(tensors)), stats_(tensors_.size()) {}

onnx::ModelProto with_extra_outputs(const onnx::ModelProto& model, const std::vector<std::string>& tensors) {
  onnx::ModelProto copy = model;
  for (const std::string& name : tensors) {
    // Already an output: still appended, so that the calibrated tensors are the last outputs.
    auto* v = copy.mutable_graph()->add_output();
    v->set_name(name);
    v->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  }
  return copy;
}

onnx::ModelProto Calibrator::instrument(const onnx::ModelProto& model) const {
  return with_extra_outputs(model, tensors_);
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
                                const std::map<std::string, Range>& ranges,
                                const std::map<std::string, LayerHessian>& hessians) {
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
  const std::vector<int> bits_of = layer_bits(in, options);
  for (int index = 0; index < in.node_size(); ++index) {
    const onnx::NodeProto& original = graph.node(index);  // in.node(index), opset-upgraded
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
    const int bits = bits_of[size_t(index)];
    const LayerHessian* hessian = nullptr;
    if (auto it = hessians.find(original.output(0)); it != hessians.end()) hessian = &it->second;
    const QuantizedWeight q = quantize_weight(w, site->axis, bits, options.per_tensor, hessian);
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
      const int8_t qmin = bits == 4 ? -8 : -127, qmax = bits == 4 ? 7 : 127;
      const std::string lo = names.fresh(w_proto.name() + "_clip_min");
      const std::string hi = names.fresh(w_proto.name() + "_clip_max");
      *graph.add_initializer() = int_tensor(lo, {}, {qmin}, false);
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
