// fuse_qdq + nibble.QConv / nibble.QMatMul: every QDQ convolution pattern (Brevitas QCDQ weight
// forms, ONNX Runtime QDQ, 4/8-bit, narrow/full range, per tensor/channel, BN after conv,
// activations) and every MatMul / Gemm pattern runs on the low-bit kernels and matches the
// fake-quant float reference — the same model run with OptimizationLevel::None, which executes
// every Q/DQ node as written. ConvInteger (QOperator) is checked bit-exact against the
// reference integer driver.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "nibble/nibble.h"
#include "tests/model_builder.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

Tensor random_floats(const Shape& shape, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t(DType::F32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

Tensor scalar_i8(int8_t v) { return Tensor::scalar<int8_t>(DType::I8, v); }

enum class WeightForm { IntInitializer, FloatThroughQuantize };

struct Pattern {
  int opset = 13;
  WeightForm form = WeightForm::IntInitializer;
  int qmin = -127, qmax = 127;      // the weight Clip: bit width and narrow/full range
  bool per_channel = true;
  bool quantize_activations = true;  // A8; false: weight-only
  bool activation_clip = false;      // Brevitas Q -> Clip -> DQ on activations
  bool unsigned_activations = false; // ORT uint8 with a zero point
  bool batch_norm = false;
  bool silu = false;
  int64_t group = 1;
  int64_t stride = 1;
  int64_t out_channels = 16;
  bool separate_bias = false;  // Conv -> Add(Reshape(bias, [1, M, 1, 1]))
};

constexpr int64_t kC = 8, kM = 16, kH = 9, kW = 7;

ModelBuilder build(const Pattern& p) {
  const int64_t M = p.out_channels;
  ModelBuilder m(p.opset);
  m.input("x", DType::F32, {1, kC, kH, kW});
  const Shape w_shape{M, kC / p.group, 3, 3};
  const int64_t per_row = kC / p.group * 9;
  std::mt19937 rng(7);
  std::vector<float> scales;
  for (int64_t i = 0; i < (p.per_channel ? M : 1); ++i)
    scales.push_back(0.01f + 0.002f * float(i));
  const Shape scale_shape = p.per_channel ? Shape{M} : Shape{};
  m.initializer("w_scale", DType::F32, scale_shape, scales);
  m.initializer<int8_t>("w_zp", DType::I8, scale_shape, std::vector<int8_t>(scales.size(), 0));
  m.initializer("w_min", scalar_i8(int8_t(p.qmin)));
  m.initializer("w_max", scalar_i8(int8_t(p.qmax)));
  if (p.form == WeightForm::IntInitializer) {
    // Values a little outside the clip range, so that the Clip matters.
    std::uniform_int_distribution<int> dist(std::max(p.qmin - 2, -128), std::min(p.qmax + 2, 127));
    std::vector<int8_t> w(size_t(M * per_row));
    for (auto& v : w) v = int8_t(dist(rng));
    m.initializer("w_raw", DType::I8, w_shape, w);
  } else {
    std::vector<float> w(size_t(M * per_row));
    std::normal_distribution<float> dist(0.0f, 0.6f);
    for (auto& v : w) v = dist(rng);
    m.initializer("w_float", DType::F32, w_shape, w);
    auto& q = m.node("QuantizeLinear", {"w_float", "w_scale", "w_zp"}, {"w_raw"});
    if (p.per_channel) ModelBuilder::attr(q, "axis", int64_t{0});
  }
  m.node("Clip", {"w_raw", "w_min", "w_max"}, {"w_int"});
  auto& dq = m.node("DequantizeLinear", {"w_int", "w_scale", "w_zp"}, {"w"});
  if (p.per_channel) ModelBuilder::attr(dq, "axis", int64_t{0});

  std::string conv_in = "x";
  if (p.quantize_activations) {
    m.initializer("x_scale", Tensor::scalar<float>(DType::F32, 0.02f));
    if (p.unsigned_activations)
      m.initializer("x_zp", Tensor::scalar<uint8_t>(DType::U8, 131));
    else
      m.initializer("x_zp", scalar_i8(-3));
    m.node("QuantizeLinear", {"x", "x_scale", "x_zp"}, {"xq"});
    std::string q = "xq";
    if (p.activation_clip) {
      m.initializer("a_min", scalar_i8(-100));
      m.initializer("a_max", scalar_i8(100));
      m.node("Clip", {"xq", "a_min", "a_max"}, {"xq_clipped"});
      q = "xq_clipped";
    }
    m.node("DequantizeLinear", {q, "x_scale", "x_zp"}, {"xd"});
    conv_in = "xd";
  }
  m.initializer("bias", random_floats({M}, 3, -0.5f, 0.5f));
  std::vector<std::string> conv_inputs = {conv_in, "w", "bias"};
  if (p.separate_bias) conv_inputs.pop_back();
  auto& conv = m.node("Conv", conv_inputs, {p.separate_bias ? "conv_no_bias" : "conv"}, "the_conv");
  ModelBuilder::attr(conv, "pads", std::vector<int64_t>{1, 1, 1, 1});
  ModelBuilder::attr(conv, "group", p.group);
  ModelBuilder::attr(conv, "strides", std::vector<int64_t>{p.stride, p.stride});
  if (p.separate_bias) {
    m.initializer<int64_t>("bias_shape", DType::I64, {4}, std::vector<int64_t>{1, M, 1, 1});
    m.node("Reshape", {"bias", "bias_shape"}, {"bias_4d"});
    m.node("Add", {"conv_no_bias", "bias_4d"}, {"conv"});
  }
  std::string y = "conv";
  if (p.batch_norm) {
    Tensor gamma = random_floats({M}, 11, 0.5f, 1.5f);
    gamma.data<float>()[3] = -0.7f;  // a negative factor flips the row's sign
    m.initializer("gamma", gamma);
    m.initializer("beta", random_floats({M}, 12, -0.3f, 0.3f));
    m.initializer("mean", random_floats({M}, 13, -0.2f, 0.2f));
    m.initializer("var", random_floats({M}, 14, 0.5f, 2.0f));
    m.node("BatchNormalization", {y, "gamma", "beta", "mean", "var"}, {"bn"});
    y = "bn";
  }
  if (p.silu) {
    m.node("Sigmoid", {y}, {"sig"});
    m.node("Mul", {y, "sig"}, {"act"});
    y = "act";
  }
  m.node("Identity", {y}, {"y"});
  m.output("y", DType::F32, {1, M, (kH - 1) / p.stride + 1, (kW - 1) / p.stride + 1});
  return m;
}

SessionOptions options(OptimizationLevel level) {
  SessionOptions o;
  o.optimization = level;
  o.num_threads = 2;
  return o;
}

// Runs the pattern fused and as written; checks the kernel and the agreement.
void check_pattern(const Pattern& p, const std::string& kernel) {
  const ModelBuilder m = build(p);
  const Session fused = m.session(options(OptimizationLevel::All));
  const Session reference = m.session(options(OptimizationLevel::None));
  const std::string plan = fused.describe();
  INFO(plan);
  CHECK(plan.find("nibble.QConv") != std::string::npos);
  CHECK(plan.find(kernel) != std::string::npos);
  CHECK(plan.find("DequantizeLinear") == std::string::npos);
  CHECK(plan.find("BatchNormalization") == std::string::npos);
  CHECK(plan.find("Add") == std::string::npos);
  CHECK(plan.find("Sigmoid") == std::string::npos);
  const Tensor x = random_floats({1, kC, kH, kW}, 5, -2.0f, 2.5f);
  const Tensor got = fused.run({{"x", x}})[0];
  const Tensor want = reference.run({{"x", x}})[0];
  REQUIRE(got.shape() == want.shape());
  float max_ref = 0;
  for (int64_t i = 0; i < want.numel(); ++i)
    max_ref = std::max(max_ref, std::fabs(want.data<float>()[i]));
  // Float rounding only: the integer sums are exact, scales and bias apply in another order.
  const float tolerance = 2e-5f * std::max(1.0f, max_ref);
  float max_diff = 0;
  for (int64_t i = 0; i < want.numel(); ++i)
    max_diff = std::max(max_diff, std::fabs(got.data<float>()[i] - want.data<float>()[i]));
  CHECK(max_diff <= tolerance);
}

}  // namespace

TEST_CASE("QCDQ int8 initializer -> Clip -> DQ, per channel, narrow int8, W8A8") {
  check_pattern({}, "qconv_w8a8");
}

TEST_CASE("QCDQ float -> Quantize -> Clip -> DQ, 4-bit [-8, 7], per channel, W4A8") {
  Pattern p;
  p.form = WeightForm::FloatThroughQuantize;
  p.qmin = -8, p.qmax = 7;
  check_pattern(p, "qconv_w4a8");
}

TEST_CASE("QCDQ 4-bit narrow [-7, 7], per tensor, activation Clip, BN and SiLU, W4A8") {
  Pattern p;
  p.qmin = -7, p.qmax = 7;
  p.per_channel = false;
  p.activation_clip = true;
  p.batch_norm = true;
  p.silu = true;
  check_pattern(p, "qconv_w4a8");
}

TEST_CASE("QCDQ full-range int8 weights, weight-only with BN: W8A16") {
  Pattern p;
  p.qmin = -128;
  p.quantize_activations = false;
  p.batch_norm = true;
  check_pattern(p, "qconv_w8a16");
}

TEST_CASE("QCDQ 4-bit weight-only, grouped and depthwise: W4A16") {
  Pattern p;
  p.qmin = -8, p.qmax = 7;
  p.quantize_activations = false;
  p.group = 2;
  check_pattern(p, "qconv_w4a16");
  p.group = kC;
  p.quantize_activations = true;
  check_pattern(p, "qconv_w4a8");
}

TEST_CASE("Depthwise W4A8 / W8A8 on the direct depthwise kernel: stride 1 and 2, int8 and uint8") {
  Pattern p;
  p.group = kC;
  p.out_channels = kC;
  p.qmin = -8, p.qmax = 7;
  check_pattern(p, "qconv_dw_w4a8");
  p.stride = 2;
  check_pattern(p, "qconv_dw_w4a8");
  p.unsigned_activations = true;
  p.qmin = -127, p.qmax = 127;
  p.batch_norm = true;
  p.silu = true;
  check_pattern(p, "qconv_dw_w8a8");
}

TEST_CASE("ORT-style QDQ: uint8 activations with a zero point, opset 21, BN + SiLU: W8A8") {
  Pattern p;
  p.opset = 21;
  p.unsigned_activations = true;
  p.batch_norm = true;
  p.silu = true;
  check_pattern(p, "qconv_w8a8");
  p.separate_bias = true;  // the Add is absorbed too
  check_pattern(p, "qconv_w8a8");
}

TEST_CASE("INT4 initializers with blocked scales fall back to float, saying why") {
  ModelBuilder m(21, 10);
  m.input("x", DType::F32, {1, kC, 5, 5});
  // INT4 weights [M, C, 1, 1] packed two per byte, blocks of 4 input channels.
  std::mt19937 rng(3);
  std::vector<int8_t> w(size_t(kM * kC));
  for (auto& v : w) v = int8_t(int(rng() % 16) - 8);
  auto* init = m.graph().add_initializer();
  init->set_name("w_int");
  init->set_data_type(int32_t(DType::I4));
  for (int64_t d : {kM, kC, int64_t{1}, int64_t{1}}) init->add_dims(d);
  std::string packed(w.size() / 2, '\0');
  for (size_t i = 0; i < w.size(); ++i)
    packed[i / 2] = char(uint8_t(packed[i / 2]) | ((uint8_t(w[i]) & 0xF) << (i % 2 ? 4 : 0)));
  init->set_raw_data(packed);
  m.initializer("w_scale", random_floats({kM, kC / 4, 1, 1}, 9, 0.01f, 0.05f));
  auto& dq = m.node("DequantizeLinear", {"w_int", "w_scale"}, {"w"});
  ModelBuilder::attr(dq, "axis", int64_t{1});
  ModelBuilder::attr(dq, "block_size", int64_t{4});
  m.node("Conv", {"x", "w"}, {"y"}, "blocked_conv");
  m.output("y", DType::F32, {1, kM, 5, 5});

  const Session fused = m.session(options(OptimizationLevel::All));
  const std::string plan = fused.describe();
  INFO(plan);
  CHECK(plan.find("blocked weight scales (block_size=4)") != std::string::npos);
  const Tensor x = random_floats({1, kC, 5, 5}, 4, -1.0f, 1.0f);
  const Tensor got = fused.run({{"x", x}})[0];
  const Tensor want = m.session(options(OptimizationLevel::None)).run({{"x", x}})[0];
  for (int64_t i = 0; i < want.numel(); ++i)
    CHECK(got.data<float>()[i] == doctest::Approx(want.data<float>()[i]).epsilon(1e-5));
}

// ---- MatMul / Gemm -> nibble.QMatMul ----------------------------------------------------------

namespace {

constexpr int64_t kK = 24, kN = 10;

struct MatMulPattern {
  bool gemm = false;
  bool trans_b = false;  // Gemm: weights [N, K], scales along axis 0
  int qmin = -127, qmax = 127;
  bool per_channel = true;
  bool quantize_activations = true;
  bool unsigned_activations = false;
  bool int4_initializer = false;  // ONNX Runtime's INT4 weights (opset 21)
};

ModelBuilder build_matmul(const MatMulPattern& p) {
  const bool int4 = p.int4_initializer;
  ModelBuilder m(int4 ? 21 : 13, int4 ? 10 : 8);
  const Shape x_shape = p.gemm ? Shape{5, kK} : Shape{2, 3, kK};
  m.input("x", DType::F32, x_shape);
  const Shape w_shape = p.trans_b ? Shape{kN, kK} : Shape{kK, kN};
  const int64_t axis = p.trans_b ? 0 : 1;
  std::vector<float> scales;
  for (int64_t i = 0; i < (p.per_channel ? kN : 1); ++i) scales.push_back(0.02f + 0.003f * float(i));
  const Shape scale_shape = p.per_channel ? Shape{kN} : Shape{};
  m.initializer("w_scale", DType::F32, scale_shape, scales);
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> dist(p.qmin, p.qmax);
  std::vector<int8_t> w(size_t(kK * kN));
  for (auto& v : w) v = int8_t(dist(rng));
  if (int4) {
    auto* init = m.graph().add_initializer();
    init->set_name("w_int");
    init->set_data_type(int32_t(DType::I4));
    for (int64_t d : w_shape) init->add_dims(d);
    std::string packed((w.size() + 1) / 2, '\0');
    for (size_t i = 0; i < w.size(); ++i)
      packed[i / 2] = char(uint8_t(packed[i / 2]) | ((uint8_t(w[i]) & 0xF) << (i % 2 ? 4 : 0)));
    init->set_raw_data(packed);
    m.node("DequantizeLinear", {"w_int", "w_scale"}, {"w"});
  } else {
    m.initializer("w_int", DType::I8, w_shape, w);
    m.initializer<int8_t>("w_zp", DType::I8, scale_shape, std::vector<int8_t>(scales.size(), 0));
    m.node("DequantizeLinear", {"w_int", "w_scale", "w_zp"}, {"w"});
  }
  if (p.per_channel) ModelBuilder::attr(*m.graph().mutable_node(m.graph().node_size() - 1), "axis", axis);
  std::string in = "x";
  if (p.quantize_activations) {
    m.initializer("x_scale", Tensor::scalar<float>(DType::F32, 0.03f));
    if (p.unsigned_activations)
      m.initializer("x_zp", Tensor::scalar<uint8_t>(DType::U8, 120));
    else
      m.initializer("x_zp", scalar_i8(5));
    m.node("QuantizeLinear", {"x", "x_scale", "x_zp"}, {"xq"});
    m.node("DequantizeLinear", {"xq", "x_scale", "x_zp"}, {"xd"});
    in = "xd";
  }
  if (p.gemm) {
    m.initializer("c", random_floats({1, kN}, 4, -1.0f, 1.0f));
    auto& g = m.node("Gemm", {in, "w", "c"}, {"y"}, "the_gemm");
    ModelBuilder::attr(g, "transB", int64_t{p.trans_b});
    ModelBuilder::attr(g, "alpha", 0.75f);
    ModelBuilder::attr(g, "beta", 2.0f);
    m.output("y", DType::F32, {5, kN});
  } else {
    m.initializer("bias", random_floats({kN}, 4, -1.0f, 1.0f));
    m.node("MatMul", {in, "w"}, {"mm"}, "the_matmul");
    m.node("Add", {"bias", "mm"}, {"y"});
    m.output("y", DType::F32, {2, 3, kN});
  }
  return m;
}

void check_matmul_pattern(const MatMulPattern& p, const std::string& kernel) {
  const ModelBuilder m = build_matmul(p);
  const Session fused = m.session(options(OptimizationLevel::All));
  const Session reference = m.session(options(OptimizationLevel::None));
  const std::string plan = fused.describe();
  INFO(plan);
  CHECK(plan.find("nibble.QMatMul") != std::string::npos);
  CHECK(plan.find(kernel) != std::string::npos);
  CHECK(plan.find("DequantizeLinear") == std::string::npos);
  CHECK(plan.find("Add") == std::string::npos);
  const Tensor x = random_floats(p.gemm ? Shape{5, kK} : Shape{2, 3, kK}, 6, -2.0f, 2.0f);
  const Tensor got = fused.run({{"x", x}})[0];
  const Tensor want = reference.run({{"x", x}})[0];
  REQUIRE(got.shape() == want.shape());
  for (int64_t i = 0; i < want.numel(); ++i)
    CHECK(got.data<float>()[i] ==
          doctest::Approx(want.data<float>()[i]).epsilon(2e-5).scale(std::fabs(want.data<float>()[i]) + 1));
}

}  // namespace

TEST_CASE("MatMul with QDQ weights: per channel int8 W8A8, int4 W4A8, weight-only, + Add bias") {
  check_matmul_pattern({}, "qmatmul_w8a8");
  MatMulPattern p;
  p.qmin = -8, p.qmax = 7;
  p.unsigned_activations = true;
  check_matmul_pattern(p, "qmatmul_w4a8");
  p.quantize_activations = false;
  p.per_channel = false;
  check_matmul_pattern(p, "qmatmul_w4a16");
}

TEST_CASE("Gemm with QDQ weights: transB, alpha and beta * C, INT4 initializers (opset 21)") {
  MatMulPattern p;
  p.gemm = true;
  check_matmul_pattern(p, "qmatmul_w8a8");
  p.trans_b = true;
  p.quantize_activations = false;
  check_matmul_pattern(p, "qmatmul_w8a16");
  p.int4_initializer = true;
  p.qmin = -8, p.qmax = 7;
  p.unsigned_activations = true;
  p.quantize_activations = true;
  check_matmul_pattern(p, "qmatmul_w4a8");
}

// ---- QOperator convolutions on the integer kernels --------------------------------------------

TEST_CASE("ConvInteger after DynamicQuantizeLinear runs on the integer kernels, bit-exact") {
  // The same model with the weights as a constant (packed for the low-bit kernels) and as a
  // graph input (the reference integer driver, packed at run time).
  auto build_integer = [](bool constant_weights, DType w_type, int w_zero_point) {
    ModelBuilder m(13);
    m.input("x", DType::F32, {1, kC, kH, kW});
    std::mt19937 rng(5);
    std::vector<uint8_t> w(size_t(kM * kC * 9));
    for (auto& v : w) v = uint8_t(w_zero_point + int(rng() % 200) - 100);
    Tensor wt(w_type, {kM, kC, 3, 3});
    std::memcpy(wt.raw(), w.data(), w.size());
    if (constant_weights)
      m.initializer("w", wt);
    else
      m.input("w", w_type, {kM, kC, 3, 3});
    Tensor zp(w_type, {});
    *static_cast<uint8_t*>(zp.raw()) = uint8_t(w_zero_point);
    m.initializer("w_zp", zp);
    m.node("DynamicQuantizeLinear", {"x"}, {"xq", "xs", "xz"});
    auto& conv = m.node("ConvInteger", {"xq", "w", "xz", "w_zp"}, {"y"}, "the_conv");
    ModelBuilder::attr(conv, "pads", std::vector<int64_t>{1, 0, 1, 2});
    ModelBuilder::attr(conv, "strides", std::vector<int64_t>{2, 1});
    m.output("y", DType::I32);
    return std::pair{m, wt};
  };
  for (auto [w_type, zero_point] : {std::pair{DType::I8, 0}, std::pair{DType::U8, 128}}) {
    INFO(dtype_name(w_type));
    auto [packed, w] = build_integer(true, w_type, zero_point);
    auto [reference, unused] = build_integer(false, w_type, zero_point);
    const Session fast = packed.session(options(OptimizationLevel::All));
    const std::string plan = fast.describe();
    INFO(plan);
    CHECK(plan.find("qconv_integer_w8a8") != std::string::npos);
    const Tensor x = random_floats({1, kC, kH, kW}, 8, -1.5f, 2.5f);
    const Tensor got = fast.run({{"x", x}})[0];
    const Tensor want = reference.session(options(OptimizationLevel::All)).run({{"x", x}, {"w", w}})[0];
    REQUIRE(got.shape() == want.shape());
    for (int64_t i = 0; i < want.numel(); ++i) CHECK(got.data<int32_t>()[i] == want.data<int32_t>()[i]);
  }
}
