// SessionOptions::weight_only_activations: a W4A16 QCDQ network (3x3 conv, depthwise 3x3, 1x1
// conv) runs with float activations by default and with int16 activations when asked. Float
// mode matches the fake-quant graph run as written to float rounding; int16 mode is within the
// int16 quantization of the activations; depthwise layers stay float in both. Int16 mode runs
// 3x3 stride-1 layers on the integer Winograd where kernels/winograd_i16.h says it wins.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/winograd_i16.h"
#include "nibble/nibble.h"
#include "tests/model_builder.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

constexpr int64_t kC = 16, kMid = 24, kOut = 8, kH = 12, kW = 10;

// DequantizeLinear(Clip(int8 weights in [-8, 7], -8, 7), per-channel scales) named `name`.
void int4_weights(ModelBuilder& m, const std::string& name, const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-8, 7);
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  std::vector<int8_t> w(static_cast<size_t>(count));
  for (int8_t& v : w) v = int8_t(dist(rng));
  std::vector<float> scales;
  for (int64_t i = 0; i < shape[0]; ++i) scales.push_back(0.02f + 0.003f * float(i % 7));
  m.initializer(name + "_raw", DType::I8, shape, w);
  m.initializer(name + "_scale", DType::F32, {shape[0]}, scales);
  m.initializer<int8_t>(name + "_zp", DType::I8, {shape[0]}, std::vector<int8_t>(size_t(shape[0]), 0));
  m.node("Clip", {name + "_raw", "w_min", "w_max"}, {name + "_int"});
  auto& dq = m.node("DequantizeLinear", {name + "_int", name + "_scale", name + "_zp"}, {name});
  ModelBuilder::attr(dq, "axis", int64_t{0});
}

ModelBuilder build() {
  ModelBuilder m(13);
  m.input("x", DType::F32, {1, kC, kH, kW});
  m.initializer("w_min", Tensor::scalar<int8_t>(DType::I8, -8));
  m.initializer("w_max", Tensor::scalar<int8_t>(DType::I8, 7));
  int4_weights(m, "w1", {kMid, kC, 3, 3}, 1);
  int4_weights(m, "w2", {kMid, 1, 3, 3}, 2);
  int4_weights(m, "w3", {kOut, kMid, 1, 1}, 3);
  auto& c1 = m.node("Conv", {"x", "w1"}, {"y1"}, "conv3x3");
  ModelBuilder::attr(c1, "pads", std::vector<int64_t>{1, 1, 1, 1});
  auto& c2 = m.node("Conv", {"y1", "w2"}, {"y2"}, "depthwise");
  ModelBuilder::attr(c2, "pads", std::vector<int64_t>{1, 1, 1, 1});
  ModelBuilder::attr(c2, "group", kMid);
  m.node("Conv", {"y2", "w3"}, {"y"}, "conv1x1");
  m.output("y", DType::F32, {1, kOut, kH, kW});
  return m;
}

Session load(const ModelBuilder& m, OptimizationLevel level, WeightOnlyActivations activations) {
  SessionOptions o;
  o.optimization = level;
  o.num_threads = 2;
  o.weight_only_activations = activations;
  return m.session(o);
}

// max |got - want| / max(1, max |want|).
float relative_error(const Tensor& got, const Tensor& want) {
  REQUIRE(got.shape() == want.shape());
  float max_ref = 1.0f, max_diff = 0.0f;
  for (int64_t i = 0; i < want.numel(); ++i) {
    max_ref = std::max(max_ref, std::fabs(want.data<float>()[i]));
    max_diff = std::max(max_diff, std::fabs(got.data<float>()[i] - want.data<float>()[i]));
  }
  return max_diff / max_ref;
}

}  // namespace

TEST_CASE("weight-only layers take float or int16 activations as the session asks") {
  const ModelBuilder m = build();
  const Session reference = load(m, OptimizationLevel::None, WeightOnlyActivations::Float);
  const Session float_mode = load(m, OptimizationLevel::All, WeightOnlyActivations::Float);
  const Session int16_mode = load(m, OptimizationLevel::All, WeightOnlyActivations::Int16);

  const std::string float_plan = float_mode.describe(), int16_plan = int16_mode.describe();
  INFO(float_plan, "\n", int16_plan);
  CHECK(float_plan.find("qconv_w4a16 ") != std::string::npos);
  CHECK(float_plan.find("w4a16i16") == std::string::npos);
  CHECK(int16_plan.find("qconv_w4a16i16") != std::string::npos);
  // Depthwise layers run the FP32 depthwise kernel in both modes.
  CHECK(float_plan.find("dw_w4a16") != std::string::npos);
  CHECK(int16_plan.find("dw_w4a16") != std::string::npos);

  std::mt19937 rng(9);
  std::uniform_real_distribution<float> dist(-1.0f, 3.0f);
  Tensor x(DType::F32, {1, kC, kH, kW});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(rng);
  const Tensor want = reference.run({{"x", x}})[0];
  CHECK(relative_error(float_mode.run({{"x", x}})[0], want) <= 2e-5f);
  // int16 steps of max|x| / 32767 per activation, over depths of 144 and 24.
  const float int16_error = relative_error(int16_mode.run({{"x", x}})[0], want);
  CHECK(int16_error <= 2e-3f);
  CHECK(int16_error > 0.0f);  // the activations really were quantized
}

TEST_CASE("int16 activations run 3x3 stride-1 layers on the integer Winograd where it wins") {
  // 48 -> 48 channels at 24x24: 144 F(2x2) tiles, whole strips of the AVX-512 tiles.
  constexpr int64_t kChannels = 48, kSide = 24;
  ModelBuilder m(13);
  m.input("x", DType::F32, {1, kChannels, kSide, kSide});
  m.initializer("w_min", Tensor::scalar<int8_t>(DType::I8, -8));
  m.initializer("w_max", Tensor::scalar<int8_t>(DType::I8, 7));
  int4_weights(m, "w", {kChannels, kChannels, 3, 3}, 4);
  auto& conv = m.node("Conv", {"x", "w"}, {"y"}, "conv3x3");
  ModelBuilder::attr(conv, "pads", std::vector<int64_t>{1, 1, 1, 1});
  m.output("y", DType::F32, {1, kChannels, kSide, kSide});
  const Session reference = load(m, OptimizationLevel::None, WeightOnlyActivations::Float);
  const Session int16_mode = load(m, OptimizationLevel::All, WeightOnlyActivations::Int16);

  kernels::ConvF32Shape shape;
  shape.in_channels = shape.out_channels = kChannels;
  kernels::ref::ConvGeometry& g = shape.geometry;
  g.channels = kChannels;
  for (int d = 1; d < 3; ++d) {
    g.in[d] = g.out[d] = kSide;
    g.kernel[d] = 3;
    g.pad[d] = 1;
  }
  const std::string plan = int16_mode.describe();
  INFO(plan);
  CHECK(plan.find("qconv_w4a16i16") != std::string::npos);
  const bool winograd = kernels::winograd_i16_preferred(shape, kernels::active_isa());
  CHECK((plan.find("winograd-int16 F(2x2,3x3)") != std::string::npos) == winograd);

  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1.0f, 3.0f);
  Tensor x(DType::F32, {1, kChannels, kSide, kSide});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(rng);
  // int16 steps of max|x| / 8191 (Winograd) or / 32767 (direct) over a depth of 432.
  const float error = relative_error(int16_mode.run({{"x", x}})[0], reference.run({{"x", x}})[0]);
  CHECK(error <= 2e-3f);
  CHECK(error > 0.0f);
}
