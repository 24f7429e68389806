// The logistic function 1 / (1 + e^-x) over FP32 arrays, computed the way ONNX Runtime's CPU
// Sigmoid is (MLAS on x86-64 with FMA3), so results match it bit for bit. That matters for the
// dynamic-int8 models: Sigmoid feeds DynamicQuantizeLinear, where a 1-ulp difference can flip a
// uint8 rounding, and the flips grow through the network.
//
// Method (Eigen's float logistic): clamp x to [-18, 18], then
//   sigmoid(x) = x * p(x^2) / q(x^2) + 1/2,   p of degree 4, q of degree 5 (Horner, fused
// multiply-adds), and max(0, .) on the result. NaN stays NaN. There is no clamp at 1: like ONNX
// Runtime, a few inputs near x = 17.9 give 1 + 1 ulp. The absolute error is below 2e-7, but for
// large negative x the relative error grows (the result is a difference of nearly equal terms)
// and it reaches 0 near x = -15.8.
#pragma once

#include <cstdint>

#include "kernels/cpu_features.h"

namespace nibble::kernels {

// The rational approximation's constants.
struct LogisticF32Coeffs {
  static constexpr float kLower = -18.0f, kUpper = 18.0f;
  // p(t) = ((((a9 t + a7) t + a5) t + a3) t + a1)
  static constexpr float kAlpha9 = 4.37031012579801e-11f;
  static constexpr float kAlpha7 = 1.15627324459942e-07f;
  static constexpr float kAlpha5 = 6.08574864600143e-05f;
  static constexpr float kAlpha3 = 8.51377133304701e-03f;
  static constexpr float kAlpha1 = 2.48287947061529e-01f;
  // q(t) = (((((b10 t + b8) t + b6) t + b4) t + b2) t + b0)
  static constexpr float kBeta10 = 6.10247389755681e-13f;
  static constexpr float kBeta8 = 5.76102136993427e-09f;
  static constexpr float kBeta6 = 6.29106785017040e-06f;
  static constexpr float kBeta4 = 1.70198817374094e-03f;
  static constexpr float kBeta2 = 1.16817656904453e-01f;
  static constexpr float kBeta0 = 9.93151921023180e-01f;
};

// y[i] = sigmoid(x[i]) for i in [0, n); x == y is allowed. Every ISA gives identical results.
using LogisticF32Fn = void (*)(const float* x, float* y, int64_t n);
LogisticF32Fn logistic_f32_kernel(Isa isa);

namespace ref {
void logistic_f32(const float* x, float* y, int64_t n);
}
namespace avx2 {
void logistic_f32(const float* x, float* y, int64_t n);
}

}  // namespace nibble::kernels
