#include "tools/nibble/zoo/yolov10.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "nibble/error.h"
#include "nibble/nibble.h"
#include "tools/nibble/zoo/node_evaluator.h"
#include "tools/nibble/zoo/onnx_writer.h"

namespace nibble::zoo {

namespace {

constexpr int64_t kOpset = 17;  // what the Ultralytics exports use
constexpr int64_t kClasses = 80;
constexpr int64_t kRegMax = 16;      // DFL bins per box side
constexpr int64_t kMaxDetections = 300;
// A conv with its BatchNorm folded in gets per-channel biases of this spread (trained
// yolov10n: median 0.69 over its convs), and weights giving the rest of a unit variance. The
// bias share is what keeps activations stable with depth: the variance a conv + SiLU passes on
// grows faster than its input's, so without it deviations from unit variance compound from
// layer to layer and from one input image to the next (50x at the head of yolov10n).
constexpr double kFoldedBiasStd = 0.7;
constexpr double kFoldedWeightVariance = 1 - kFoldedBiasStd * kFoldedBiasStd;

// cfg/models/v10/yolov10{n,s,m,b,l,x}.yaml: depth and width multiples, channel cap.
struct Scale {
  const char* name;
  double depth;
  double width;
  int64_t max_channels;
};
constexpr Scale kScales[] = {{"n", 0.33, 0.25, 1024}, {"s", 0.33, 0.50, 1024},
                             {"m", 0.67, 0.75, 768},  {"b", 0.67, 1.00, 512},
                             {"l", 1.00, 1.00, 512},  {"x", 1.00, 1.25, 512}};

// ---- deterministic weights -----------------------------------------------------------------

// splitmix64: tiny, and the same sequence on every platform and compiler.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1), exact in double (53 random bits).
  double symmetric() { return static_cast<double>(next() >> 11) * 0x1.0p-52 - 1.0; }

 private:
  uint64_t state_;
};

// Each tensor draws from its own stream (seed x name), so its values do not depend on the
// order layers are built in.
Random stream_for(uint64_t seed, const std::string& tensor_name) {
  uint64_t hash = 0xCBF29CE484222325ull;  // FNV-1a
  for (unsigned char c : tensor_name) hash = (hash ^ c) * 0x100000001B3ull;
  return Random(seed ^ hash);
}

// Zero-mean uniform values with standard deviation `stddev` (PyTorch initializes convs from
// uniform distributions too). None is denormal: each is 0 or at least stddev * 2^-51 in size.
std::vector<float> uniform_values(uint64_t seed, const std::string& name, int64_t count,
                                  double stddev) {
  Random random = stream_for(seed, name);
  const double half_width = stddev * std::sqrt(3.0);
  std::vector<float> values(static_cast<size_t>(count));
  for (float& v : values) v = static_cast<float>(half_width * random.symmetric());
  return values;
}

// ---- graph building ------------------------------------------------------------------------

// A feature map [1, channels, height, width].
struct Feature {
  std::string value;
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
};

// A PyTorch module's place: its scope in exported node names ("/model.22/m.0/cv1/cv1.2") and
// its parameter prefix ("model.22.m.0.cv1.2").
struct Scope {
  std::string node;
  std::string param;

  Scope child(const std::string& attribute) const {
    return {node + "/" + attribute, param + "." + attribute};
  }
  // Item of an nn.ModuleList attribute: the list itself is never called, so it adds no scope.
  Scope item(const std::string& list, int64_t i) const {
    const std::string name = list + "." + std::to_string(i);
    return {node + "/" + name, param + "." + name};
  }
  // Element of this nn.Sequential: torch names its scope after the sequential's own name.
  Scope element(int64_t i) const {
    const std::string base = node.substr(node.rfind('/') + 1);
    return {node + "/" + base + "." + std::to_string(i), param + "." + std::to_string(i)};
  }
};

enum class BiasInit {
  FoldedBatchNorm,  // random, std kFoldedBiasStd (Conv modules: conv + BatchNorm folded)
  BoxDistribution,  // 1.0, as Ultralytics' Detect.bias_init
  ClassPrior        // log(5 / nc / (640 / stride)^2), as Ultralytics' Detect.bias_init
};

// Standard deviation of each conv's weights, by weight name, as calibration set it.
using WeightScales = std::map<std::string, double>;

// Rounded to steps of 2^(1/64) (about 1%), so that the last-bit differences between machines'
// float kernels during calibration do not change the weights.
double rounded_scale(double scale) { return std::exp2(std::round(std::log2(scale) * 64) / 64); }

double mean_square(const Tensor& t) {
  double sum = 0;
  for (int64_t i = 0; i < t.numel(); ++i) sum += double(t.data<float>()[i]) * t.data<float>()[i];
  return sum / double(t.numel());
}

class Yolov10Builder {
 public:
  // With `shadow` (holding the input image as "images"), every node runs as it is added and
  // each conv not in `scales` gets the weight scale that gives it unit output variance there.
  Yolov10Builder(const Yolov10Options& options, const Scale& scale, WeightScales& scales,
                 NodeEvaluator* shadow)
      : options_(options),
        scale_(scale),
        scales_(scales),
        shadow_(shadow),
        w_(kOpset, 8, "main_graph") {
    w_.evaluate_with(shadow);
  }

  ZooModel build();

 private:
  int64_t channels(int64_t c) const {  // make_divisible(min(c, max_channels) * width, 8)
    return static_cast<int64_t>(std::ceil(double(std::min(c, scale_.max_channels)) * scale_.width / 8)) * 8;
  }
  int64_t repeats(int64_t n) const {
    return n > 1 ? std::max<int64_t>(std::llround(double(n) * scale_.depth), 1) : n;
  }

  Feature conv2d(const Feature& x, const std::string& node_scope, const std::string& param,
                 int64_t c2, int64_t k, int64_t stride, int64_t groups, BiasInit bias,
                 double stride_for_prior = 0);
  Feature silu(const Feature& x, const std::string& scope);
  Feature conv(const Feature& x, const Scope& s, int64_t c2, int64_t k = 1, int64_t stride = 1,
               int64_t groups = 1, bool act = true);
  Feature add(const std::string& scope, const Feature& a, const Feature& b);
  Feature concat(const std::string& scope, const std::vector<Feature>& parts);
  std::vector<Feature> split(const std::string& scope, const Feature& x,
                             const std::vector<int64_t>& sizes);

  Feature bottleneck(const Feature& x, const Scope& s, int64_t c2, bool shortcut);
  Feature cib(const Feature& x, const Scope& s, int64_t c2, bool shortcut, bool large_kernel);
  Feature c2f(const Feature& x, const Scope& s, int64_t c2, int64_t n, bool shortcut,
              bool use_cib, bool large_kernel);
  Feature scdown(const Feature& x, const Scope& s, int64_t c2, int64_t k, int64_t stride);
  Feature sppf(const Feature& x, const Scope& s, int64_t c2, int64_t k);
  Feature attention(const Feature& x, const Scope& s, int64_t heads);
  Feature psa(const Feature& x, const Scope& s);
  Feature upsample(const Feature& x, const std::string& scope);
  std::string detect(const std::vector<Feature>& levels, const Scope& s);
  std::string select_top(const std::string& predictions, const std::string& scope,
                         int64_t anchors);

  std::string reshape(const std::string& scope, const std::string& x,
                      const std::vector<int64_t>& shape) {
    return w_.op(scope, "Reshape", {x, w_.i64_const(scope, "Reshape_shape", shape)},
                 {Attribute::integer("allowzero", 0)});
  }

  const Yolov10Options& options_;
  const Scale& scale_;
  WeightScales& scales_;
  NodeEvaluator* shadow_;
  OnnxWriter w_;
  int64_t parameters_ = 0;
  double flops_ = 0;
};

Feature Yolov10Builder::conv2d(const Feature& x, const std::string& node_scope,
                               const std::string& param, int64_t c2, int64_t k, int64_t stride,
                               int64_t groups, BiasInit bias, double stride_for_prior) {
  const int64_t fan_in = x.channels / groups * k * k;
  const std::string weight = param + ".weight";
  // Var(sum w_i x_i) = fan_in * Var(w) * E[x^2] for zero-mean weights: the wanted variance for
  // the input at hand, or for unit-E[x^2] inputs when nothing is measured.
  const double wanted_variance = bias == BiasInit::FoldedBatchNorm ? kFoldedWeightVariance : 1.0;
  double weight_std = std::sqrt(wanted_variance / double(fan_in));
  const auto calibrated = scales_.find(weight);
  const bool calibrating = shadow_ && calibrated == scales_.end();
  if (calibrated != scales_.end())
    weight_std = calibrated->second;
  else if (calibrating)
    weight_std /= std::sqrt(mean_square(shadow_->get(x.value)));
  const int64_t weight_count = c2 * fan_in;
  std::vector<std::string> inputs = {
      x.value, w_.f32(weight, {c2, x.channels / groups, k, k},
                      uniform_values(options_.seed, weight, weight_count, weight_std))};
  parameters_ += weight_count;

  std::vector<float> bias_values;
  if (bias == BiasInit::FoldedBatchNorm) {
    bias_values = uniform_values(options_.seed, param + ".bias", c2, kFoldedBiasStd);
  } else {
    const double value = bias == BiasInit::BoxDistribution
                             ? 1.0
                             : std::log(5.0 / kClasses / std::pow(640.0 / stride_for_prior, 2));
    bias_values.assign(static_cast<size_t>(c2), static_cast<float>(value));
  }
  inputs.push_back(w_.f32(param + ".bias", {c2}, bias_values));
  parameters_ += c2;

  const int64_t pad = k / 2;
  Feature y;
  y.channels = c2;
  y.height = (x.height + 2 * pad - k) / stride + 1;
  y.width = (x.width + 2 * pad - k) / stride + 1;
  y.value = w_.op(node_scope, "Conv", inputs,
                  {Attribute::ints("dilations", {1, 1}), Attribute::integer("group", groups),
                   Attribute::ints("kernel_shape", {k, k}),
                   Attribute::ints("pads", {pad, pad, pad, pad}),
                   Attribute::ints("strides", {stride, stride})});
  flops_ += 2.0 * double(c2 * y.height * y.width) * double(fan_in);

  if (calibrating) {
    // The conv is linear in its weights: rescale them, and the output computed with them, to
    // the wanted variance about the bias, exactly.
    Tensor& out = shadow_->get(y.value);
    float* data = out.data<float>();
    const int64_t plane = out.numel() / c2;
    double variance = 0;
    for (int64_t c = 0; c < c2; ++c)
      for (int64_t i = 0; i < plane; ++i) {
        const double centred = data[c * plane + i] - bias_values[size_t(c)];
        variance += centred * centred;
      }
    variance /= double(out.numel());
    const double calibrated_std =
        rounded_scale(weight_std * std::sqrt(wanted_variance / variance));
    scales_[weight] = calibrated_std;
    const double factor = calibrated_std / weight_std;
    for (int64_t c = 0; c < c2; ++c) {
      const double b = bias_values[size_t(c)];
      for (int64_t i = 0; i < plane; ++i)
        data[c * plane + i] = static_cast<float>(b + (data[c * plane + i] - b) * factor);
    }
  }
  return y;
}

// SiLU as the exporter writes it: x * Sigmoid(x).
Feature Yolov10Builder::silu(const Feature& x, const std::string& scope) {
  Feature y = x;
  const std::string sigmoid = w_.op(scope, "Sigmoid", {x.value});
  y.value = w_.op(scope, "Mul", {x.value, sigmoid});
  return y;
}

// Ultralytics' Conv: conv (BatchNorm folded into weights and bias) then SiLU.
Feature Yolov10Builder::conv(const Feature& x, const Scope& s, int64_t c2, int64_t k,
                             int64_t stride, int64_t groups, bool act) {
  Feature y = conv2d(x, s.node + "/conv", s.param + ".conv", c2, k, stride, groups,
                     BiasInit::FoldedBatchNorm);
  return act ? silu(y, s.node + "/act") : y;
}

Feature Yolov10Builder::add(const std::string& scope, const Feature& a, const Feature& b) {
  Feature y = a;
  y.value = w_.op(scope, "Add", {a.value, b.value});
  return y;
}

Feature Yolov10Builder::concat(const std::string& scope, const std::vector<Feature>& parts) {
  Feature y = parts[0];
  std::vector<std::string> values;
  y.channels = 0;
  for (const Feature& p : parts) {
    values.push_back(p.value);
    y.channels += p.channels;
  }
  y.value = w_.op(scope, "Concat", values, {Attribute::integer("axis", 1)});
  return y;
}

std::vector<Feature> Yolov10Builder::split(const std::string& scope, const Feature& x,
                                           const std::vector<int64_t>& sizes) {
  const std::vector<std::string> values =
      w_.node(scope, "Split", {x.value, w_.i64_const(scope, "Split_sizes", sizes)},
              static_cast<int>(sizes.size()), {Attribute::integer("axis", 1)});
  std::vector<Feature> parts;
  for (size_t i = 0; i < sizes.size(); ++i) {
    Feature part = x;
    part.value = values[i];
    part.channels = sizes[i];
    parts.push_back(part);
  }
  return parts;
}

Feature Yolov10Builder::bottleneck(const Feature& x, const Scope& s, int64_t c2, bool shortcut) {
  const Feature y = conv(conv(x, s.child("cv1"), c2, 3), s.child("cv2"), c2, 3);
  return shortcut && x.channels == c2 ? add(s.node, x, y) : y;
}

// CIB: depthwise 3x3, pointwise to 2c, depthwise 3x3 (or the 7x7 RepVGGDW, fused at export),
// pointwise to c, depthwise 3x3.
Feature Yolov10Builder::cib(const Feature& x, const Scope& s, int64_t c2, bool shortcut,
                            bool large_kernel) {
  const Scope seq = s.child("cv1");
  Feature y = conv(x, seq.element(0), x.channels, 3, 1, x.channels);
  y = conv(y, seq.element(1), 2 * c2, 1);
  if (large_kernel) {
    const Scope rep = seq.element(2);  // RepVGGDW.forward_fuse: act(conv7x7(x))
    y = conv2d(y, rep.node + "/conv", rep.param + ".conv", 2 * c2, 7, 1, 2 * c2,
               BiasInit::FoldedBatchNorm);
    y = silu(y, rep.node + "/act");
  } else {
    y = conv(y, seq.element(2), 2 * c2, 3, 1, 2 * c2);
  }
  y = conv(y, seq.element(3), c2, 1);
  y = conv(y, seq.element(4), c2, 3, 1, c2);
  return shortcut && x.channels == c2 ? add(s.node, x, y) : y;
}

// C2f / C2fCIB: 1x1 conv to 2c, split in halves, n blocks chained on the second half, every
// intermediate concatenated, 1x1 conv out.
Feature Yolov10Builder::c2f(const Feature& x, const Scope& s, int64_t c2, int64_t n,
                            bool shortcut, bool use_cib, bool large_kernel) {
  const int64_t c = c2 / 2;
  std::vector<Feature> parts = split(s.node, conv(x, s.child("cv1"), 2 * c, 1), {c, c});
  for (int64_t i = 0; i < n; ++i) {
    const Scope block = s.item("m", i);
    parts.push_back(use_cib ? cib(parts.back(), block, c, shortcut, large_kernel)
                            : bottleneck(parts.back(), block, c, shortcut));
  }
  return conv(concat(s.node, parts), s.child("cv2"), c2, 1);
}

// SCDown: pointwise conv, then a strided depthwise conv without activation.
Feature Yolov10Builder::scdown(const Feature& x, const Scope& s, int64_t c2, int64_t k,
                               int64_t stride) {
  return conv(conv(x, s.child("cv1"), c2, 1), s.child("cv2"), c2, k, stride, c2, false);
}

Feature Yolov10Builder::sppf(const Feature& x, const Scope& s, int64_t c2, int64_t k) {
  const Feature reduced = conv(x, s.child("cv1"), x.channels / 2, 1);
  std::vector<Feature> parts = {reduced};
  for (int64_t i = 1; i <= 3; ++i) {
    // The same nn.MaxPool2d called three times: torch scopes the calls m, m_1, m_2.
    std::string scope = s.node + "/m";
    if (i > 1) scope += '_' + std::to_string(i - 1);
    Feature pooled = parts.back();
    pooled.value = w_.op(scope, "MaxPool", {parts.back().value},
                         {Attribute::integer("ceil_mode", 0), Attribute::ints("dilations", {1, 1}),
                          Attribute::ints("kernel_shape", {k, k}),
                          Attribute::ints("pads", {k / 2, k / 2, k / 2, k / 2}),
                          Attribute::ints("strides", {1, 1})});
    parts.push_back(pooled);
  }
  return conv(concat(s.node, parts), s.child("cv2"), c2, 1);
}

// Attention (attn_ratio 0.5) in the exported form: the scale is applied to q before q^T k.
Feature Yolov10Builder::attention(const Feature& x, const Scope& s, int64_t heads) {
  const int64_t dim = x.channels;
  const int64_t head_dim = dim / heads;
  const int64_t key_dim = head_dim / 2;
  const int64_t positions = x.height * x.width;
  const Feature qkv = conv(x, s.child("qkv"), dim + 2 * key_dim * heads, 1, 1, 1, false);

  const std::string& n = s.node;
  const std::string grouped = reshape(n, qkv.value, {1, heads, 2 * key_dim + head_dim, positions});
  const std::vector<std::string> qkv_parts =
      w_.node(n, "Split", {grouped, w_.i64_const(n, "Split_sizes", {key_dim, key_dim, head_dim})},
              3, {Attribute::integer("axis", 2)});
  const std::string q = w_.op(
      n, "Mul", {qkv_parts[0], w_.f32_scalar(n, "scale", float(1.0 / std::sqrt(double(key_dim))))});
  const std::string qt = w_.op(n, "Transpose", {q}, {Attribute::ints("perm", {0, 1, 3, 2})});
  const std::string logits = w_.op(n, "MatMul", {qt, qkv_parts[1]});
  const std::string weights = w_.op(n, "Softmax", {logits}, {Attribute::integer("axis", -1)});
  const std::string weights_t =
      w_.op(n, "Transpose", {weights}, {Attribute::ints("perm", {0, 1, 3, 2})});
  const std::string mixed = w_.op(n, "MatMul", {qkv_parts[2], weights_t});
  flops_ += 2.0 * double(heads * positions * positions) * double(key_dim + head_dim);

  Feature attended = x;
  attended.value = reshape(n, mixed, {1, dim, x.height, x.width});
  Feature values = x;
  values.value = reshape(n, qkv_parts[2], {1, dim, x.height, x.width});
  const Feature position = conv(values, s.child("pe"), dim, 3, 1, dim, false);
  return conv(add(n, attended, position), s.child("proj"), dim, 1, 1, 1, false);
}

// PSA: split in halves, attention + feed-forward (both residual) on one half, concat, 1x1 conv.
Feature Yolov10Builder::psa(const Feature& x, const Scope& s) {
  const int64_t c = x.channels / 2;
  std::vector<Feature> halves = split(s.node, conv(x, s.child("cv1"), 2 * c, 1), {c, c});
  Feature b = add(s.node, halves[1], attention(halves[1], s.child("attn"), c / 64));
  const Scope ffn = s.child("ffn");
  const Feature f = conv(conv(b, ffn.element(0), 2 * c, 1), ffn.element(1), c, 1, 1, 1, false);
  b = add(s.node, b, f);
  return conv(concat(s.node, {halves[0], b}), s.child("cv2"), x.channels, 1);
}

// nn.Upsample(scale_factor=2, mode="nearest") at opset 17.
Feature Yolov10Builder::upsample(const Feature& x, const std::string& scope) {
  Feature y = x;
  const std::string scales = w_.f32(scope + "/Resize_scales", {4}, {1, 1, 2, 2});
  y.value = w_.op(scope, "Resize", {x.value, "", scales},
                  {Attribute::text("coordinate_transformation_mode", "asymmetric"),
                   Attribute::real("cubic_coeff_a", -0.75f), Attribute::text("mode", "nearest"),
                   Attribute::text("nearest_mode", "floor")});
  y.height *= 2;
  y.width *= 2;
  return y;
}

// v10Detect: per level a box branch (two 3x3 convs, 1x1 to 4x16 DFL bins) and a light class
// branch (depthwise-separable pairs, 1x1 to 80 classes), then DFL, box decoding and sigmoid.
std::string Yolov10Builder::detect(const std::vector<Feature>& levels, const Scope& s) {
  const bool end_to_end = options_.head == Yolov10Head::EndToEnd;
  const std::string prefix = end_to_end ? "one2one_" : "";
  const int64_t box_channels = std::max({int64_t{16}, levels[0].channels / 4, 4 * kRegMax});
  const int64_t class_channels = std::max(levels[0].channels, std::min<int64_t>(kClasses, 100));
  const std::string& n = s.node;

  std::vector<std::string> boxes, classes;
  int64_t anchors = 0;
  for (size_t i = 0; i < levels.size(); ++i) {
    const Scope branch = s.item(prefix + "cv2", int64_t(i));
    Feature y = conv(levels[i], branch.element(0), box_channels, 3);
    y = conv(y, branch.element(1), box_channels, 3);
    const Scope out = branch.element(2);
    y = conv2d(y, out.node, out.param, 4 * kRegMax, 1, 1, 1, BiasInit::BoxDistribution);
    boxes.push_back(reshape(n, y.value, {1, 4 * kRegMax, -1}));
    anchors += levels[i].height * levels[i].width;
  }
  for (size_t i = 0; i < levels.size(); ++i) {
    const Scope branch = s.item(prefix + "cv3", int64_t(i));
    const int64_t cin = levels[i].channels;
    const Scope first = branch.element(0), second = branch.element(1);
    Feature y = conv(levels[i], first.element(0), cin, 3, 1, cin);
    y = conv(y, first.element(1), class_channels, 1);
    y = conv(y, second.element(0), class_channels, 3, 1, class_channels);
    y = conv(y, second.element(1), class_channels, 1);
    const Scope out = branch.element(2);
    const double stride = double(options_.image_size) / double(levels[i].height);
    y = conv2d(y, out.node, out.param, kClasses, 1, 1, 1, BiasInit::ClassPrior, stride);
    classes.push_back(reshape(n, y.value, {1, kClasses, -1}));
  }
  const std::string box = w_.op(n, "Concat", boxes, {Attribute::integer("axis", -1)});
  const std::string cls = w_.op(n, "Concat", classes, {Attribute::integer("axis", -1)});

  // DFL: softmax over the 16 bins of each side, expectation by a fixed 1x1 conv (0..15).
  const Scope dfl = s.child("dfl");
  std::string d = reshape(dfl.node, box, {1, 4, kRegMax, anchors});
  d = w_.op(dfl.node, "Transpose", {d}, {Attribute::ints("perm", {0, 2, 1, 3})});
  d = w_.op(dfl.node, "Softmax", {d}, {Attribute::integer("axis", 1)});
  std::vector<float> bins(kRegMax);
  std::iota(bins.begin(), bins.end(), 0.0f);
  d = w_.op(dfl.node + "/conv", "Conv",
            {d, w_.f32(dfl.param + ".conv.weight", {1, kRegMax, 1, 1}, bins)},
            {Attribute::ints("dilations", {1, 1}), Attribute::integer("group", 1),
             Attribute::ints("kernel_shape", {1, 1}), Attribute::ints("pads", {0, 0, 0, 0}),
             Attribute::ints("strides", {1, 1})});
  parameters_ += kRegMax;
  flops_ += 2.0 * double(4 * anchors * kRegMax);
  d = reshape(dfl.node, d, {1, 4, anchors});

  // make_anchors: cell centres (x + 0.5, y + 0.5) level by level, and each anchor's stride.
  std::vector<float> centres(static_cast<size_t>(2 * anchors)), strides;
  int64_t a = 0;
  for (const Feature& level : levels) {
    const float stride = float(options_.image_size) / float(level.height);
    for (int64_t y = 0; y < level.height; ++y)
      for (int64_t x = 0; x < level.width; ++x, ++a) {
        centres[size_t(a)] = float(x) + 0.5f;
        centres[size_t(anchors + a)] = float(y) + 0.5f;
        strides.push_back(stride);
      }
  }
  const std::string anchor_points = w_.f32(n + "/anchors", {1, 2, anchors}, centres);
  const std::string anchor_strides = w_.f32(n + "/strides", {1, anchors}, strides);

  // dist2bbox: x1y1 = anchor - lt, x2y2 = anchor + rb; xyxy end to end, else centre + size.
  const std::string axis1 = w_.i64_const(n, "Slice_axes", {1});
  const std::string lt = w_.op(n, "Slice", {d, w_.i64_const(n, "Slice_starts", {0}),
                                            w_.i64_const(n, "Slice_ends", {2}), axis1});
  const std::string rb = w_.op(n, "Slice", {d, w_.i64_const(n, "Slice_starts", {2}),
                                            w_.i64_const(n, "Slice_ends", {4}), axis1});
  const std::string x1y1 = w_.op(n, "Sub", {anchor_points, lt});
  const std::string x2y2 = w_.op(n, "Add", {anchor_points, rb});
  std::string decoded;
  if (end_to_end) {
    decoded = w_.op(n, "Concat", {x1y1, x2y2}, {Attribute::integer("axis", 1)});
  } else {
    const std::string centre =
        w_.op(n, "Div", {w_.op(n, "Add", {x1y1, x2y2}), w_.f32_scalar(n, "two", 2.0f)});
    const std::string size = w_.op(n, "Sub", {x2y2, x1y1});
    decoded = w_.op(n, "Concat", {centre, size}, {Attribute::integer("axis", 1)});
  }
  decoded = w_.op(n, "Mul", {decoded, anchor_strides});
  const std::string scores = w_.op(n, "Sigmoid", {cls});
  const std::string predictions =
      w_.op(n, "Concat", {decoded, scores}, {Attribute::integer("axis", 1)});  // [1,84,A]
  return end_to_end ? select_top(predictions, n, anchors) : predictions;
}

// v10Detect.postprocess as exported at batch 1: the k = min(300, anchors) anchors with the
// best class score, then the best k (anchor, class) pairs among them -> [1,k,6] rows of
// x1, y1, x2, y2, score, class.
std::string Yolov10Builder::select_top(const std::string& predictions, const std::string& n,
                                       int64_t anchors) {
  const int64_t k = std::min(kMaxDetections, anchors);  // small inputs have fewer anchors
  const std::string rows = w_.op(n, "Transpose", {predictions}, {Attribute::ints("perm", {0, 2, 1})});
  const std::vector<std::string> parts =
      w_.node(n, "Split", {rows, w_.i64_const(n, "Split_sizes", {4, kClasses})}, 2,
              {Attribute::integer("axis", -1)});
  const std::string& boxes = parts[0];
  const std::string& scores = parts[1];
  const std::string best = w_.op(n, "ReduceMax", {scores},
                                 {Attribute::ints("axes", {-1}), Attribute::integer("keepdims", 0)});
  const Attribute last_axis = Attribute::integer("axis", -1);
  const std::vector<Attribute> topk_attrs = {last_axis, Attribute::integer("largest", 1),
                                             Attribute::integer("sorted", 1)};
  const std::string anchor_index =
      w_.node(n, "TopK", {best, w_.i64_const(n, "TopK_k", {k})}, 2, topk_attrs)[1];
  const std::string index3 =
      w_.op(n, "Unsqueeze", {anchor_index, w_.i64_const(n, "Unsqueeze_axes", {-1})});
  const std::string class_scores = w_.op(
      n, "GatherElements",
      {scores, w_.op(n, "Tile", {index3, w_.i64_const(n, "Tile_repeats", {1, 1, kClasses})})},
      {Attribute::integer("axis", 1)});
  const std::string flat = w_.op(n, "Flatten", {class_scores}, {Attribute::integer("axis", 1)});
  const std::string index_column =
      w_.op(n, "Flatten", {index3}, {Attribute::integer("axis", 2)});  // [k,1]
  const std::vector<std::string> top =
      w_.node(n, "TopK", {flat, w_.i64_const(n, "TopK_k", {k})}, 2, topk_attrs);
  const std::string score = w_.op(n, "Unsqueeze", {top[0], w_.i64_const(n, "Unsqueeze_axes", {2})});
  const std::string classes = w_.i64_const(n, "classes", {kClasses}, true);
  const std::string row = w_.op(n, "Div", {top[1], classes});
  const std::string class_id = w_.op(n, "Mod", {top[1], classes}, {Attribute::integer("fmod", 0)});
  const std::string picked = w_.op(n, "Gather", {index_column, row}, {Attribute::integer("axis", 0)});
  const std::string class_column =
      w_.op(n, "Unsqueeze", {class_id, w_.i64_const(n, "Unsqueeze_axes", {2})});
  const std::string box_index =
      w_.op(n, "Tile", {picked, w_.i64_const(n, "Tile_repeats", {1, 1, 4})});
  const std::string class_float =
      w_.op(n, "Cast", {class_column}, {Attribute::integer("to", onnx::TensorProto::FLOAT)});
  const std::string picked_boxes =
      w_.op(n, "GatherElements", {boxes, box_index}, {Attribute::integer("axis", 1)});
  return w_.op(n, "Concat", {picked_boxes, score, class_float}, {last_axis});
}

ZooModel Yolov10Builder::build() {
  const std::string name = std::string("yolov10") + scale_.name;
  const int64_t size = options_.image_size;
  w_.input("images", onnx::TensorProto::FLOAT, {1, 3, size, size});
  const Feature x{"images", 3, size, size};

  auto layer = [](int i) {
    return Scope{"/model." + std::to_string(i), "model." + std::to_string(i)};
  };
  const char s = scale_.name[0];
  // Where the scales differ (yolov10{n,s,m,b,l,x}.yaml): C2f or C2fCIB, and the 7x7 RepVGGDW.
  const bool cib6 = s == 'x', cib8 = s != 'n', lk8 = s == 's';
  const bool cib13 = s == 'b' || s == 'l' || s == 'x', cib19 = s != 'n' && s != 's';
  const bool lk22 = s == 'n' || s == 's';

  std::vector<Feature> f;  // outputs of layers 0..22
  f.push_back(conv(x, layer(0), channels(64), 3, 2));
  f.push_back(conv(f[0], layer(1), channels(128), 3, 2));
  f.push_back(c2f(f[1], layer(2), channels(128), repeats(3), true, false, false));
  f.push_back(conv(f[2], layer(3), channels(256), 3, 2));
  f.push_back(c2f(f[3], layer(4), channels(256), repeats(6), true, false, false));
  f.push_back(scdown(f[4], layer(5), channels(512), 3, 2));
  f.push_back(c2f(f[5], layer(6), channels(512), repeats(6), true, cib6, false));
  f.push_back(scdown(f[6], layer(7), channels(1024), 3, 2));
  f.push_back(c2f(f[7], layer(8), channels(1024), repeats(3), true, cib8, lk8));
  f.push_back(sppf(f[8], layer(9), channels(1024), 5));
  f.push_back(psa(f[9], layer(10)));
  f.push_back(upsample(f[10], layer(11).node));
  f.push_back(concat(layer(12).node, {f[11], f[6]}));
  f.push_back(c2f(f[12], layer(13), channels(512), repeats(3), cib13, cib13, false));
  f.push_back(upsample(f[13], layer(14).node));
  f.push_back(concat(layer(15).node, {f[14], f[4]}));
  f.push_back(c2f(f[15], layer(16), channels(256), repeats(3), false, false, false));
  f.push_back(conv(f[16], layer(17), channels(256), 3, 2));
  f.push_back(concat(layer(18).node, {f[17], f[13]}));
  f.push_back(c2f(f[18], layer(19), channels(512), repeats(3), cib19, cib19, false));
  f.push_back(scdown(f[19], layer(20), channels(512), 3, 2));
  f.push_back(concat(layer(21).node, {f[20], f[10]}));
  f.push_back(c2f(f[21], layer(22), channels(1024), repeats(3), true, true, lk22));
  const std::string out = detect({f[16], f[19], f[22]}, layer(23));

  const bool end_to_end = options_.head == Yolov10Head::EndToEnd;
  const int64_t anchors = size * size / 64 + size * size / 256 + size * size / 1024;
  const std::vector<int64_t> out_shape =
      end_to_end ? std::vector<int64_t>{1, std::min(kMaxDetections, anchors), 6}
                 : std::vector<int64_t>{1, 4 + kClasses, anchors};
  w_.output(out, "output0", onnx::TensorProto::FLOAT, out_shape);

  w_.metadata("description", "Ultralytics YOLOv10" + std::string(scale_.name) +
                                 " structure with random weights (nibble zoo)");
  w_.metadata("stride", "32");
  w_.metadata("task", "detect");
  w_.metadata("batch", "1");
  const std::string side = std::to_string(size);
  w_.metadata("imgsz", '[' + side + ", " + side + ']');
  w_.metadata("end2end", end_to_end ? "True" : "False");
  w_.metadata("seed", std::to_string(options_.seed));
  w_.model().mutable_graph()->set_name(name);

  ZooModel result;
  result.model = std::move(w_.model());
  result.parameters = parameters_;
  result.flops = flops_;
  return result;
}

// Calibration runs at one fixed size, so a model's weights do not depend on --imgsz.
constexpr int64_t kCalibrationSize = 256;

// Layer-sequential unit-variance initialization (Mishkin & Matas, "All you need is a good
// init", 2016): the network is built once at the calibration size while nibble runs each node
// on a random image, and every conv's weights are scaled, in order, so that its output
// (bias included) has unit variance on the input it actually receives. Scaling by fan-in alone
// is right only in expectation; on correlated feature maps the errors compound with depth.
WeightScales calibrate(const Yolov10Options& options, const Scale& scale) {
  Yolov10Options small = options;
  small.image_size = kCalibrationSize;
  Tensor image(DType::F32, {1, 3, kCalibrationSize, kCalibrationSize});
  Random random = stream_for(options.seed, "calibration image");
  for (int64_t i = 0; i < image.numel(); ++i)
    image.data<float>()[i] = static_cast<float>(0.5 + 0.5 * random.symmetric());

  NodeEvaluator shadow(kOpset);
  shadow.set("images", std::move(image));
  WeightScales scales;
  Yolov10Builder(small, scale, scales, &shadow).build();
  return scales;
}

}  // namespace

ZooModel build_yolov10(const Yolov10Options& options) {
  const Scale* scale = nullptr;
  for (const Scale& candidate : kScales)
    if (options.scale == candidate.name) scale = &candidate;
  if (!scale)
    throw Error(ErrorKind::InvalidArgument,
                "unknown YOLOv10 scale '" + options.scale + "' (expected n, s, m, b, l or x)");
  if (options.image_size <= 0 || options.image_size % 32 != 0)
    throw Error(ErrorKind::InvalidArgument, "image size " + std::to_string(options.image_size) +
                                                " is not a positive multiple of 32");
  WeightScales scales;
  if (options.calibrate) scales = calibrate(options, *scale);
  return Yolov10Builder(options, *scale, scales, nullptr).build();
}

}  // namespace nibble::zoo
