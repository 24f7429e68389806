// QuantizeLinear for AVX-512, 16 floats per step with a masked tail
// (kernels/include/kernels/quantize_f32.h). The clamp leaves every int32 inside the output
// range, so the saturating down-conversions (vpmov[u]s*) only narrow.
#include <immintrin.h>

#include <limits>

#include "kernels/quantize_f32.h"

namespace nibble::kernels::avx512 {
namespace {

// Calls store(i, mask, int32 values) for each step of 16 (the last one masked).
template <typename T, typename Store>
void quantize(const float* x, int64_t n, float scale, int32_t zero_point, const Store& store) {
  const __m512 vscale = _mm512_set1_ps(scale);
  const __m512 lo =
      _mm512_set1_ps(static_cast<float>(int32_t{std::numeric_limits<T>::min()} - zero_point));
  const __m512 hi =
      _mm512_set1_ps(static_cast<float>(int32_t{std::numeric_limits<T>::max()} - zero_point));
  const __m512i zp = _mm512_set1_epi32(zero_point);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
    __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(mask, x + i), vscale);
    v = _mm512_max_ps(v, lo);  // NaN takes the second operand: lo
    v = _mm512_min_ps(v, hi);
    store(i, mask, _mm512_add_epi32(_mm512_cvtps_epi32(v), zp));
  }
}

}  // namespace

void quantize_f32(const float* x, uint8_t* y, int64_t n, float scale, int32_t zero_point) {
  quantize<uint8_t>(x, n, scale, zero_point, [&](int64_t i, __mmask16 mask, __m512i q) {
    _mm512_mask_cvtusepi32_storeu_epi8(y + i, mask, q);
  });
}

void quantize_f32(const float* x, int8_t* y, int64_t n, float scale, int32_t zero_point) {
  quantize<int8_t>(x, n, scale, zero_point, [&](int64_t i, __mmask16 mask, __m512i q) {
    _mm512_mask_cvtsepi32_storeu_epi8(y + i, mask, q);
  });
}

void quantize_f32(const float* x, uint16_t* y, int64_t n, float scale, int32_t zero_point) {
  quantize<uint16_t>(x, n, scale, zero_point, [&](int64_t i, __mmask16 mask, __m512i q) {
    _mm512_mask_cvtusepi32_storeu_epi16(y + i, mask, q);
  });
}

void quantize_f32(const float* x, int16_t* y, int64_t n, float scale, int32_t zero_point) {
  quantize<int16_t>(x, n, scale, zero_point, [&](int64_t i, __mmask16 mask, __m512i q) {
    _mm512_mask_cvtsepi32_storeu_epi16(y + i, mask, q);
  });
}

}  // namespace nibble::kernels::avx512
