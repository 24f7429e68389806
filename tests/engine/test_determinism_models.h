// Small models for the concurrency and determinism tests: a float conv net, the QDQ conv
// patterns nibble runs on its integer kernels (W8A8, W4A8) and a ConvInteger model.
#pragma once

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "nibble/nibble.h"
#include "tests/model_builder.h"

namespace nibble::testing {

inline Tensor random_tensor(DType dtype, const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor t(dtype, shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (dtype) {
      case DType::F32: t.data<float>()[i] = std::uniform_real_distribution<float>(-2.f, 2.f)(rng); break;
      case DType::U8: t.data<uint8_t>()[i] = uint8_t(rng() & 0xFF); break;
      case DType::I8: t.data<int8_t>()[i] = int8_t(rng() & 0xFF); break;
      default: throw Error(ErrorKind::Internal, "random_tensor: unhandled dtype");
    }
  }
  return t;
}

inline bool bit_identical(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

constexpr int64_t kDetC = 16, kDetM = 32, kDetH = 12, kDetW = 10;

// Conv 3x3 -> Relu -> Conv 1x1, float. Input x [1, 16, 12, 10].
inline ModelBuilder float_conv_model() {
  ModelBuilder m(17);
  m.input("x", DType::F32, {1, kDetC, kDetH, kDetW});
  m.initializer("w1", random_tensor(DType::F32, {kDetM, kDetC, 3, 3}, 1));
  m.initializer("b1", random_tensor(DType::F32, {kDetM}, 2));
  m.initializer("w2", random_tensor(DType::F32, {kDetC, kDetM, 1, 1}, 3));
  ModelBuilder::attr(m.node("Conv", {"x", "w1", "b1"}, {"c1"}, "conv1"), "pads",
                     std::vector<int64_t>{1, 1, 1, 1});
  m.node("Relu", {"c1"}, {"r1"}, "relu1");
  m.node("Conv", {"r1", "w2"}, {"y"}, "conv2");
  m.output("y", DType::F32, {1, kDetC, kDetH, kDetW});
  return m;
}

// x -> Quantize/Dequantize (int8 activations) -> Conv with per-channel weights int8 -> Clip to
// [weight_min, weight_max] -> Dequantize, + bias -> Relu. weight_min/max -8/7 makes it W4A8.
inline ModelBuilder qdq_conv_model(int weight_min, int weight_max) {
  ModelBuilder m(13);
  m.input("x", DType::F32, {1, kDetC, kDetH, kDetW});
  std::vector<float> scales;
  for (int64_t i = 0; i < kDetM; ++i) scales.push_back(0.01f + 0.001f * float(i));
  m.initializer("w_scale", DType::F32, {kDetM}, scales);
  m.initializer<int8_t>("w_zp", DType::I8, {kDetM}, std::vector<int8_t>(size_t(kDetM), 0));
  m.initializer("w_raw", random_tensor(DType::I8, {kDetM, kDetC, 3, 3}, 4));
  m.initializer("w_min", Tensor::scalar<int8_t>(DType::I8, int8_t(weight_min)));
  m.initializer("w_max", Tensor::scalar<int8_t>(DType::I8, int8_t(weight_max)));
  m.node("Clip", {"w_raw", "w_min", "w_max"}, {"w_int"});
  ModelBuilder::attr(m.node("DequantizeLinear", {"w_int", "w_scale", "w_zp"}, {"w"}), "axis",
                     int64_t{0});
  m.initializer("x_scale", Tensor::scalar<float>(DType::F32, 0.02f));
  m.initializer("x_zp", Tensor::scalar<int8_t>(DType::I8, -3));
  m.node("QuantizeLinear", {"x", "x_scale", "x_zp"}, {"xq"});
  m.node("DequantizeLinear", {"xq", "x_scale", "x_zp"}, {"xd"});
  m.initializer("bias", random_tensor(DType::F32, {kDetM}, 5));
  ModelBuilder::attr(m.node("Conv", {"xd", "w", "bias"}, {"conv"}, "qconv"), "pads",
                     std::vector<int64_t>{1, 1, 1, 1});
  m.node("Relu", {"conv"}, {"y"});
  m.output("y", DType::F32, {1, kDetM, kDetH, kDetW});
  return m;
}

// ConvInteger (uint8 activations with a zero point, int8 weights) -> int32 sums, the form of
// ONNX Runtime's dynamically quantized models.
inline ModelBuilder conv_integer_model() {
  ModelBuilder m(13);
  m.input("x", DType::U8, {1, kDetC, kDetH, kDetW});
  m.initializer("w", random_tensor(DType::I8, {kDetM, kDetC, 3, 3}, 6));
  m.initializer("x_zp", Tensor::scalar<uint8_t>(DType::U8, 117));
  ModelBuilder::attr(m.node("ConvInteger", {"x", "w", "x_zp"}, {"y"}, "conv_integer"), "pads",
                     std::vector<int64_t>{1, 1, 1, 1});
  m.output("y", DType::I32, {1, kDetM, kDetH, kDetW});
  return m;
}

}  // namespace nibble::testing
