// `nibble quantize` as a library: every scheme in both forms turns a small FP32 conv net into a
// QDQ model of the expected structure that nibble lowers onto the low-bit kernels, agreeing
// with its own fake-quant reference and staying close to the FP32 model.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "nibble/nibble.h"
#include "tests/model_builder.h"
#include "tools/nibble/quantize/quantize.h"

using namespace nibble;
using namespace nibble::testing;
namespace q = nibble::quantize;

namespace {

Tensor random_floats(const Shape& shape, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t(DType::F32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

// x [1,4,8,8] -> Conv 3x3 -> Relu -> Conv 1x1 -> ReduceMax(axes attribute, opset 17) and y.
ModelBuilder fp32_model() {
  ModelBuilder m(17);
  m.input("x", DType::F32, {1, 4, 8, 8});
  m.initializer("w1", random_floats({8, 4, 3, 3}, 1, -0.5f, 0.5f));
  m.initializer("b1", random_floats({8}, 2, -0.1f, 0.1f));
  m.initializer("w2", random_floats({6, 8, 1, 1}, 3, -0.5f, 0.5f));
  auto& c1 = m.node("Conv", {"x", "w1", "b1"}, {"c1"}, "conv1");
  ModelBuilder::attr(c1, "pads", std::vector<int64_t>{1, 1, 1, 1});
  m.node("Relu", {"c1"}, {"r1"}, "relu1");
  m.node("Conv", {"r1", "w2"}, {"y"}, "conv2");
  auto& rm = m.node("ReduceMax", {"y"}, {"peak"}, "peak");
  ModelBuilder::attr(rm, "axes", std::vector<int64_t>{1});
  m.output("y", DType::F32, {1, 6, 8, 8});
  m.output("peak", DType::F32, {1, 1, 8, 8});
  return m;
}

Session load(const onnx::ModelProto& model, OptimizationLevel level) {
  SessionOptions o;
  o.optimization = level;
  o.num_threads = 2;
  const std::string bytes = model.SerializeAsString();
  return Session::load_bytes(bytes.data(), bytes.size(), o);
}

int count(const onnx::ModelProto& m, const std::string& op) {
  int n = 0;
  for (const auto& node : m.graph().node()) n += node.op_type() == op;
  return n;
}

float max_abs_diff(const Tensor& a, const Tensor& b) {
  float d = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    d = std::max(d, std::fabs(a.data<float>()[i] - b.data<float>()[i]));
  return d;
}

}  // namespace

TEST_CASE("quantize: every scheme and form loads, fuses and matches its fake-quant reference") {
  ModelBuilder fp32 = fp32_model();
  const onnx::ModelProto& model = fp32.proto();
  const Tensor x = random_floats({1, 4, 8, 8}, 9, 0.0f, 1.0f);
  const Tensor y32 = load(model, OptimizationLevel::All).run({{"x", x}})[0];

  for (const char* scheme : {"w8a16", "w8a8", "w4a8", "w4a16"}) {
    for (const char* format : {"qcdq", "qdq"}) {
      INFO(scheme << " " << format);
      q::QuantizeOptions options;
      options.scheme = q::parse_scheme(scheme);
      options.format = q::parse_format(format);
      options.keep_boundary_8bit = false;  // both convs are first/output layers: all at 4 bits
      std::map<std::string, q::Range> ranges;
      const auto tensors = q::activation_tensors(model, options);
      if (q::quantizes_activations(options.scheme)) {
        CHECK(tensors == std::vector<std::string>{"x", "r1"});
        q::Calibrator calibrator(q::CalibMethod::MinMax, tensors);
        const onnx::ModelProto instrumented = calibrator.instrument(model);
        calibrator.observe(load(instrumented, OptimizationLevel::All).run({{"x", x}}));
        ranges = calibrator.ranges();
        CHECK(ranges.at("r1").min == 0.0f);  // after Relu
      } else {
        CHECK(tensors.empty());
      }
      const onnx::ModelProto out = q::quantize_model(model, options, ranges);
      const bool qcdq = options.format == q::Format::Qcdq;
      const bool a8 = q::quantizes_activations(options.scheme);
      CHECK(count(out, "Clip") == (qcdq ? 2 : 0));
      CHECK(count(out, "QuantizeLinear") == (a8 ? 2 : 0));
      CHECK(count(out, "DequantizeLinear") == (a8 ? 4 : 2));
      CHECK(out.opset_import(0).version() == (qcdq ? 17 : 21));
      for (const auto& node : out.graph().node()) {
        if (node.op_type() != "ReduceMax") continue;
        CHECK(node.input_size() == (qcdq ? 1 : 2));  // opset 18 moved `axes` to an input
        CHECK(node.attribute_size() == (qcdq ? 1 : 0));
      }
      if (!qcdq && q::weight_bits(options.scheme) == 4) {
        int int4 = 0;
        for (const auto& t : out.graph().initializer()) int4 += t.data_type() == int32_t(DType::I4);
        CHECK(int4 == 4);  // two weights and their zero points
      }

      const Session fused = load(out, OptimizationLevel::All);
      const std::string plan = fused.describe();
      INFO(plan);
      CHECK(plan.find("qconv_" + std::string(scheme)) != std::string::npos);
      const std::vector<Tensor> got = fused.run({{"x", x}});
      const std::vector<Tensor> want = load(out, OptimizationLevel::None).run({{"x", x}});
      CHECK(max_abs_diff(got[0], want[0]) < 1e-4f);
      CHECK(max_abs_diff(got[1], want[1]) < 1e-4f);
      // Quantization error against FP32 stays small for this well-conditioned net.
      CHECK(max_abs_diff(got[0], y32) < (q::weight_bits(options.scheme) == 4 ? 0.25f : 0.05f));
    }
  }
}

TEST_CASE("quantize: options are validated with clear errors") {
  CHECK_THROWS_WITH_AS(q::parse_scheme("w2a8"), doctest::Contains("--scheme 'w2a8'"), Error);
  CHECK_THROWS_WITH_AS(q::parse_format("qop"), doctest::Contains("--format 'qop'"), Error);
  CHECK_THROWS_WITH_AS(q::parse_calib_method("kl"), doctest::Contains("--calib-method"), Error);
  ModelBuilder fp32 = fp32_model();
  q::QuantizeOptions options;
  options.scheme = q::Scheme::W4A16;
  options.keep_boundary_8bit = false;
  options.keep_8bit = {"no_such_node"};
  CHECK_THROWS_WITH_AS(q::quantize_model(fp32.proto(), options, {}),
                       doctest::Contains("no node named 'no_such_node'"), Error);
  options.keep_8bit = {"conv2"};
  const onnx::ModelProto out = q::quantize_model(fp32.proto(), options, {});
  const std::string plan = load(out, OptimizationLevel::All).describe();
  CHECK(plan.find("qconv_w4a16") != std::string::npos);
  CHECK(plan.find("qconv_w8a16") != std::string::npos);  // conv2 kept at 8 bits
}

TEST_CASE("quantize: percentile and MSE calibration narrow the min/max range") {
  Tensor t = random_floats({1, 1, 100, 100}, 4, -1.0f, 1.0f);
  t.data<float>()[17] = 50.0f;  // one outlier
  for (auto method : {q::CalibMethod::Percentile, q::CalibMethod::Mse}) {
    q::Calibrator c(method, {"t"});
    c.observe({t});
    const q::Range r = c.ranges().at("t");
    CHECK(r.max < 50.0f);
    if (method == q::CalibMethod::Percentile) CHECK(r.min < -0.99f);
  }
  q::Calibrator minmax(q::CalibMethod::MinMax, {"t"});
  minmax.observe({t});
  CHECK(minmax.ranges().at("t").max == 50.0f);
}

TEST_CASE("quantize: 4-bit schemes keep first, output and integer-weight layers at 8 bits") {
  // x -> conv1 -> Relu -> conv2 -> Relu -> conv3 -> Softmax -> dfl (weights 0..3) -> y
  ModelBuilder m(17);
  m.input("x", DType::F32, {1, 4, 6, 6});
  m.initializer("w1", random_floats({8, 4, 1, 1}, 1, -0.5f, 0.5f));
  m.initializer("w2", random_floats({8, 8, 1, 1}, 2, -0.5f, 0.5f));
  m.initializer("w3", random_floats({4, 8, 1, 1}, 3, -0.5f, 0.5f));
  m.initializer("ramp", DType::F32, {1, 4, 1, 1}, std::vector<float>{0, 1, 2, 3});
  m.node("Conv", {"x", "w1"}, {"c1"}, "conv1");
  m.node("Relu", {"c1"}, {"r1"}, "relu1");
  m.node("Conv", {"r1", "w2"}, {"c2"}, "conv2");
  m.node("Relu", {"c2"}, {"r2"}, "relu2");
  m.node("Conv", {"r2", "w3"}, {"c3"}, "conv3");
  m.node("Softmax", {"c3"}, {"p"}, "softmax");
  m.node("Conv", {"p", "ramp"}, {"y"}, "dfl");
  m.output("y", DType::F32, {1, 1, 6, 6});
  const onnx::ModelProto& model = m.proto();

  CHECK(q::default_8bit_layers(model) == std::vector<std::string>{"conv1", "conv3", "dfl"});
  q::QuantizeOptions options;
  options.scheme = q::Scheme::W4A16;
  CHECK(q::four_bit_layers(model, options) == std::vector<std::string>{"c2"});
  const onnx::ModelProto out = q::quantize_model(model, options, {});
  const std::string plan = load(out, OptimizationLevel::All).describe();
  INFO(plan);
  CHECK(plan.find("qconv_w4a16") != std::string::npos);
  CHECK(plan.find("qconv_w8a16") != std::string::npos);
  // The DFL ramp is stored exactly: integers with scale 1.
  for (const auto& t : out.graph().initializer()) {
    if (t.name() != "ramp_scale") continue;
    CHECK(t.raw_data().size() == sizeof(float));
    float scale;
    std::memcpy(&scale, t.raw_data().data(), sizeof(float));
    CHECK(scale == 1.0f);
  }
  options.keep_boundary_8bit = false;
  CHECK(q::four_bit_layers(model, options).size() == 4);
}

TEST_CASE("quantize: the Hessian of a padded, strided conv is the sum of its im2col columns") {
  ModelBuilder m(17);
  m.input("x", DType::F32, {1, 2, 5, 4});
  m.initializer("w", random_floats({3, 2, 3, 3}, 1, -0.5f, 0.5f));
  auto& conv = m.node("Conv", {"x", "w"}, {"y"}, "conv");
  ModelBuilder::attr(conv, "pads", std::vector<int64_t>{1, 0, 1, 2});
  ModelBuilder::attr(conv, "strides", std::vector<int64_t>{2, 1});
  m.output("y", DType::F32);
  const Tensor x = random_floats({1, 2, 5, 4}, 5, -1.0f, 1.0f);
  q::HessianCollector collector(m.proto(), {"y"});
  CHECK(collector.input_tensors() == std::vector<std::string>{"x"});
  collector.observe({{"x", &x}});
  const q::LayerHessian& h = collector.hessians().at("y");
  REQUIRE(h.depth == 18);
  REQUIRE(h.groups.size() == 1);
  // Output 3 x 4 (rows: (5 + 1 + 1 - 3) / 2 + 1, columns: 4 + 0 + 2 - 3 + 1).
  CHECK(h.samples == 12);
  std::vector<double> want(18 * 18, 0.0);
  for (int oy = 0; oy < 3; ++oy) {
    for (int ox = 0; ox < 4; ++ox) {
      std::vector<double> column;
      for (int c = 0; c < 2; ++c)
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx) {
            const int iy = oy * 2 - 1 + ky, ix = ox + kx;
            column.push_back(iy >= 0 && iy < 5 && ix < 4 ? x.data<float>()[(c * 5 + iy) * 4 + ix] : 0.0);
          }
      for (int i = 0; i < 18; ++i)
        for (int j = 0; j < 18; ++j) want[size_t(i * 18 + j)] += column[size_t(i)] * column[size_t(j)];
    }
  }
  for (size_t i = 0; i < want.size(); ++i) CHECK(h.groups[0][i] == doctest::Approx(want[i]).epsilon(1e-5));
}

TEST_CASE("quantize: GPTQ rounding has a smaller output error than rounding to nearest") {
  // Correlated inputs, as in a real layer: x = A z.
  constexpr int64_t rows = 16, depth = 24, samples = 400;
  const Tensor w = random_floats({rows, depth}, 1, -1.0f, 1.0f);
  const Tensor a = random_floats({depth, depth}, 2, -1.0f, 1.0f);
  const Tensor z = random_floats({depth, samples}, 3, -1.0f, 1.0f);
  std::vector<double> x(depth * samples, 0.0), h(depth * depth, 0.0);
  for (int64_t i = 0; i < depth; ++i)
    for (int64_t k = 0; k < depth; ++k)
      for (int64_t s = 0; s < samples; ++s)
        x[size_t(i * samples + s)] += a.data<float>()[i * depth + k] * z.data<float>()[k * samples + s];
  for (int64_t i = 0; i < depth; ++i)
    for (int64_t j = 0; j < depth; ++j)
      for (int64_t s = 0; s < samples; ++s)
        h[size_t(i * depth + j)] += x[size_t(i * samples + s)] * x[size_t(j * samples + s)];
  std::vector<float> scales(rows, 1.0f / 7.0f);
  const std::vector<int8_t> gptq = q::gptq_round(w.data<float>(), rows, depth, depth, 1, h, scales.data(), -8, 7);
  REQUIRE(gptq.size() == size_t(rows * depth));
  auto output_error = [&](auto value_of) {
    double e = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t s = 0; s < samples; ++s) {
        double d = 0;
        for (int64_t k = 0; k < depth; ++k)
          d += (value_of(r, k) - double(w.data<float>()[r * depth + k])) * x[size_t(k * samples + s)];
        e += d * d;
      }
    return e;
  };
  const double rtn = output_error([&](int64_t r, int64_t k) {
    return std::clamp(std::nearbyint(double(w.data<float>()[r * depth + k]) * 7), -8.0, 7.0) / 7;
  });
  const double ours = output_error([&](int64_t r, int64_t k) { return gptq[size_t(r * depth + k)] / 7.0; });
  for (int8_t v : gptq) CHECK((v >= -8 && v <= 7));
  CHECK(ours < 0.7 * rtn);
}
