// The quantization scheme `nibble compare` and `nibble bench` print, read from every graph form
// nibble lowers: Brevitas QCDQ (int8 or float weights, activations Q -> Clip -> DQ), ONNX
// Runtime QDQ (Q -> DQ, int4 initializers, 16-bit activations), weight-only, QOperator, dynamic.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "frontend/onnx/onnx_loader.h"
#include "tests/model_builder.h"
#include "tools/nibble/coco/model_summary.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

enum class WeightForm { Int8Clip, FloatQClip, Int4Initializer };

struct ConvModel {
  int weight_low = -128, weight_high = 127;  // Clip bounds on the int8 weights
  WeightForm weight_form = WeightForm::Int8Clip;
  // Activation quantization before the conv: none (weight-only), Q -> DQ, or Q -> Clip -> DQ.
  enum { None, QDQ, QClipDQ } activations = QDQ;
  DType activation_type = DType::I8;
};

std::string scheme_of(const ModelBuilder& m) {
  const std::string bytes = m.bytes();
  return coco::quantization_scheme(onnx_frontend::load_model(bytes.data(), bytes.size(), {}));
}

// x [1,2,4,4] -> [activation quantization] -> Conv with DQ'd weights [3,2,1,1] -> y.
ModelBuilder conv_model(const ConvModel& c) {
  ModelBuilder m(c.weight_form == WeightForm::Int4Initializer ? 21 : 13);
  m.input("x", DType::F32, {1, 2, 4, 4});
  m.output("y", DType::F32);
  m.initializer<float>("act_scale", DType::F32, {}, {0.05f});
  m.initializer<float>("w_scale", DType::F32, {3}, {0.01f, 0.02f, 0.03f});
  std::string conv_input = "x";
  if (c.activations != ConvModel::None) {
    if (c.activation_type == DType::I8)
      m.initializer<int8_t>("act_zp", DType::I8, {}, {0});
    else if (c.activation_type == DType::U8)
      m.initializer<uint8_t>("act_zp", DType::U8, {}, {128});
    else
      m.initializer<uint16_t>("act_zp", DType::U16, {}, {32768});
    m.node("QuantizeLinear", {"x", "act_scale", "act_zp"}, {"xq"});
    std::string dq_input = "xq";
    if (c.activations == ConvModel::QClipDQ) {
      m.initializer<int8_t>("act_lo", DType::I8, {}, {-128});
      m.initializer<int8_t>("act_hi", DType::I8, {}, {127});
      m.node("Clip", {"xq", "act_lo", "act_hi"}, {"xqc"});
      dq_input = "xqc";
    }
    m.node("DequantizeLinear", {dq_input, "act_scale", "act_zp"}, {"xd"});
    conv_input = "xd";
  }
  std::vector<std::string> weight_dq_inputs = {"wc", "w_scale", "w_zp"};
  if (c.weight_form == WeightForm::Int4Initializer) {
    // INT4 [3, 2, 1, 1] packed two per byte; no zero point.
    auto* w = m.graph().add_initializer();
    w->set_name("w");
    w->set_data_type(int32_t(DType::I4));
    for (int64_t d : {3, 2, 1, 1}) w->add_dims(d);
    w->set_raw_data(std::string("\x1e\x7f\xa9", 3));
    weight_dq_inputs = {"w", "w_scale"};
  } else {
    m.initializer<int8_t>("w_zp", DType::I8, {3}, {0, 0, 0});
    m.initializer<int8_t>("w_lo", DType::I8, {}, {static_cast<int8_t>(c.weight_low)});
    m.initializer<int8_t>("w_hi", DType::I8, {}, {static_cast<int8_t>(c.weight_high)});
    std::string clip_input = "w";
    if (c.weight_form == WeightForm::Int8Clip) {
      m.initializer<int8_t>("w", DType::I8, {3, 2, 1, 1}, {1, -2, 3, -4, 5, -6});
    } else {
      m.initializer<float>("w", DType::F32, {3, 2, 1, 1}, {0.1f, -0.2f, 0.3f, -0.4f, 0.5f, -0.6f});
      ModelBuilder::attr(m.node("QuantizeLinear", {"w", "w_scale", "w_zp"}, {"wq"}), "axis",
                         int64_t{0});
      clip_input = "wq";
    }
    m.node("Clip", {clip_input, "w_lo", "w_hi"}, {"wc"});
  }
  ModelBuilder::attr(m.node("DequantizeLinear", weight_dq_inputs, {"wd"}),
                     "axis", int64_t{0});
  m.node("Conv", {conv_input, "wd"}, {"y"});
  return m;
}

}  // namespace

TEST_CASE("quantization_scheme: Brevitas QCDQ with activations Q -> Clip -> DQ") {
  ConvModel c;
  c.activations = ConvModel::QClipDQ;
  CHECK(scheme_of(conv_model(c)) == "W8A8");
  c.weight_low = -8, c.weight_high = 7;
  CHECK(scheme_of(conv_model(c)) == "W4A8");
  c.weight_low = -7;  // narrow range
  CHECK(scheme_of(conv_model(c)) == "W4A8");
  c.weight_form = WeightForm::FloatQClip;
  CHECK(scheme_of(conv_model(c)) == "W4A8");
  c.weight_low = -127, c.weight_high = 127;
  CHECK(scheme_of(conv_model(c)) == "W8A8");
}

TEST_CASE("quantization_scheme: ONNX Runtime QDQ, int8, uint8 and uint16 activations") {
  ConvModel c;
  CHECK(scheme_of(conv_model(c)) == "W8A8");
  c.activation_type = DType::U8;
  CHECK(scheme_of(conv_model(c)) == "W8A8");
  c.weight_form = WeightForm::Int4Initializer;
  CHECK(scheme_of(conv_model(c)) == "W4A8");
  c.activation_type = DType::U16;  // real 16-bit integer activations, not weight-only
  CHECK(scheme_of(conv_model(c)) == "W4A16");
}

TEST_CASE("quantization_scheme: weight-only and float models") {
  ConvModel c;
  c.activations = ConvModel::None;
  CHECK(scheme_of(conv_model(c)) == "W8A16 (weight-only)");
  c.weight_low = -8, c.weight_high = 7;
  CHECK(scheme_of(conv_model(c)) == "W4A16 (weight-only)");
  c.weight_form = WeightForm::Int4Initializer;
  CHECK(scheme_of(conv_model(c)) == "W4A16 (weight-only)");

  ModelBuilder fp32(13);
  fp32.input("x", DType::F32, {1, 2});
  fp32.initializer<float>("b", DType::F32, {2}, {1.0f, 2.0f});
  fp32.node("Add", {"x", "b"}, {"y"});
  fp32.output("y", DType::F32);
  CHECK(scheme_of(fp32) == "FP32");
}

TEST_CASE("quantization_scheme: QOperator and dynamic quantization") {
  ModelBuilder qop(13);
  qop.input("a", DType::U8, {2, 3});
  qop.initializer<float>("s", DType::F32, {}, {0.1f});
  qop.initializer<uint8_t>("zp", DType::U8, {}, {128});
  qop.initializer<int8_t>("wzp", DType::I8, {}, {0});
  qop.initializer<int8_t>("w", DType::I8, {3, 2}, {1, 2, 3, 4, 5, 6});
  qop.node("QLinearMatMul", {"a", "s", "zp", "w", "s", "wzp", "s", "zp"}, {"y"});
  qop.output("y", DType::U8);
  CHECK(scheme_of(qop) == "QOperator W8A8");

  ModelBuilder dynamic(13);
  dynamic.input("x", DType::F32, {2, 3});
  dynamic.initializer<int8_t>("w", DType::I8, {3, 2}, {1, 2, 3, 4, 5, 6});
  dynamic.node("DynamicQuantizeLinear", {"x"}, {"xq", "xs", "xzp"});
  dynamic.node("MatMulInteger", {"xq", "w", "xzp"}, {"y"});
  dynamic.output("y", DType::I32);
  CHECK(scheme_of(dynamic) == "dynamic W8A8");
}
