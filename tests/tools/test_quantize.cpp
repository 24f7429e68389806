// `nibble quantize` as a library: every scheme in both forms turns a small FP32 conv net into a
// QDQ model of the expected structure that nibble lowers onto the low-bit kernels, agreeing
// with its own fake-quant reference and staying close to the FP32 model.
#include <doctest/doctest.h>

#include <cmath>
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
