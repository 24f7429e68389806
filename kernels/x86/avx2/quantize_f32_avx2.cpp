// QuantizeLinear for AVX2, 32 floats per step (kernels/include/kernels/quantize_f32.h). The
// clamp leaves every int32 inside the output range, so the saturating packs only narrow. The
// tail (under 32 elements) goes to the scalar kernel, which computes the same bits.
#include <immintrin.h>

#include <limits>

#include "kernels/quantize_f32.h"

namespace nibble::kernels::avx2 {
namespace {

struct Params {
  __m256 scale, lo, hi;
  __m256i zero_point;
};

template <typename T>
Params params(float scale, int32_t zero_point) {
  return {_mm256_set1_ps(scale),
          _mm256_set1_ps(static_cast<float>(int32_t{std::numeric_limits<T>::min()} - zero_point)),
          _mm256_set1_ps(static_cast<float>(int32_t{std::numeric_limits<T>::max()} - zero_point)),
          _mm256_set1_epi32(zero_point)};
}

inline __m256i quantize8(const float* x, const Params& p) {
  __m256 v = _mm256_div_ps(_mm256_loadu_ps(x), p.scale);
  v = _mm256_max_ps(v, p.lo);  // NaN takes the second operand: lo
  v = _mm256_min_ps(v, p.hi);
  return _mm256_add_epi32(_mm256_cvtps_epi32(v), p.zero_point);
}

// Packing works within 128-bit lanes; these permutations put the elements back in order.
inline __m256i bytes_in_order(__m256i packed) {
  return _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}
inline __m256i words_in_order(__m256i packed) {
  return _mm256_permute4x64_epi64(packed, _MM_SHUFFLE(3, 1, 2, 0));
}

}  // namespace

void quantize_f32(const float* x, uint8_t* y, int64_t n, float scale, int32_t zero_point) {
  const Params p = params<uint8_t>(scale, zero_point);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i ab = _mm256_packs_epi32(quantize8(x + i, p), quantize8(x + i + 8, p));
    const __m256i cd = _mm256_packs_epi32(quantize8(x + i + 16, p), quantize8(x + i + 24, p));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                        bytes_in_order(_mm256_packus_epi16(ab, cd)));
  }
  ref::quantize_f32(x + i, y + i, n - i, scale, zero_point);
}

void quantize_f32(const float* x, int8_t* y, int64_t n, float scale, int32_t zero_point) {
  const Params p = params<int8_t>(scale, zero_point);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i ab = _mm256_packs_epi32(quantize8(x + i, p), quantize8(x + i + 8, p));
    const __m256i cd = _mm256_packs_epi32(quantize8(x + i + 16, p), quantize8(x + i + 24, p));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                        bytes_in_order(_mm256_packs_epi16(ab, cd)));
  }
  ref::quantize_f32(x + i, y + i, n - i, scale, zero_point);
}

void quantize_f32(const float* x, uint16_t* y, int64_t n, float scale, int32_t zero_point) {
  const Params p = params<uint16_t>(scale, zero_point);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i ab = _mm256_packus_epi32(quantize8(x + i, p), quantize8(x + i + 8, p));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), words_in_order(ab));
  }
  ref::quantize_f32(x + i, y + i, n - i, scale, zero_point);
}

void quantize_f32(const float* x, int16_t* y, int64_t n, float scale, int32_t zero_point) {
  const Params p = params<int16_t>(scale, zero_point);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i ab = _mm256_packs_epi32(quantize8(x + i, p), quantize8(x + i + 8, p));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), words_in_order(ab));
  }
  ref::quantize_f32(x + i, y + i, n - i, scale, zero_point);
}

}  // namespace nibble::kernels::avx2
