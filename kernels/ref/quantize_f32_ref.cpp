// Scalar QuantizeLinear (kernels/include/kernels/quantize_f32.h): MLAS's operations in its order,
// one element at a time. The vector kernels use it for their tails.
#include <cmath>
#include <limits>

#include "kernels/quantize_f32.h"

namespace nibble::kernels::ref {
namespace {

template <typename T>
void quantize(const float* x, T* y, int64_t n, float scale, int32_t zero_point) {
  const float lo = static_cast<float>(int32_t{std::numeric_limits<T>::min()} - zero_point);
  const float hi = static_cast<float>(int32_t{std::numeric_limits<T>::max()} - zero_point);
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] / scale;
    v = v > lo ? v : lo;  // maxps(v, lo): NaN gives lo
    v = v < hi ? v : hi;
    // Default rounding mode: to nearest, ties to even, like cvtps2dq.
    y[i] = static_cast<T>(static_cast<int32_t>(std::nearbyint(v)) + zero_point);
  }
}

}  // namespace

void quantize_f32(const float* x, uint8_t* y, int64_t n, float scale, int32_t zero_point) {
  quantize(x, y, n, scale, zero_point);
}
void quantize_f32(const float* x, int8_t* y, int64_t n, float scale, int32_t zero_point) {
  quantize(x, y, n, scale, zero_point);
}
void quantize_f32(const float* x, uint16_t* y, int64_t n, float scale, int32_t zero_point) {
  quantize(x, y, n, scale, zero_point);
}
void quantize_f32(const float* x, int16_t* y, int64_t n, float scale, int32_t zero_point) {
  quantize(x, y, n, scale, zero_point);
}

}  // namespace nibble::kernels::ref
