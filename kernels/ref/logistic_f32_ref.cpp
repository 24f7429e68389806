// Scalar logistic: the same operations in the same order as the AVX2 kernel, one lane at a time,
// with std::fma for its fused multiply-adds, so both give the same bits.
#include <cmath>

#include "kernels/logistic_f32.h"

namespace nibble::kernels::ref {
namespace {

// The x86 max/min instructions' semantics: the second operand when either is NaN, which lets a
// NaN input through the clamps.
float max_ps(float a, float b) { return a > b ? a : b; }
float min_ps(float a, float b) { return a < b ? a : b; }

}  // namespace

void logistic_f32(const float* x, float* y, int64_t n) {
  using C = LogisticF32Coeffs;
  for (int64_t i = 0; i < n; ++i) {
    const float v = min_ps(C::kUpper, max_ps(C::kLower, x[i]));
    const float t = v * v;
    float p = std::fma(t, C::kAlpha9, C::kAlpha7);
    p = std::fma(t, p, C::kAlpha5);
    p = std::fma(t, p, C::kAlpha3);
    p = std::fma(t, p, C::kAlpha1);
    float q = std::fma(t, C::kBeta10, C::kBeta8);
    q = std::fma(t, q, C::kBeta6);
    q = std::fma(t, q, C::kBeta4);
    q = std::fma(t, q, C::kBeta2);
    q = std::fma(t, q, C::kBeta0);
    y[i] = max_ps(0.0f, (v * p) / q + 0.5f);
  }
}

}  // namespace nibble::kernels::ref
