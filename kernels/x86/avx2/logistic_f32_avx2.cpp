// Logistic for AVX2 + FMA, 8 lanes at a time (kernels/include/kernels/logistic_f32.h). The tail
// goes through a small buffer; lanes are independent, so it computes the same bits.
#include <immintrin.h>

#include <cstring>

#include "kernels/logistic_f32.h"

namespace nibble::kernels::avx2 {
namespace {

inline __m256 logistic(__m256 x) {
  using C = LogisticF32Coeffs;
  // max/min return their second operand when either is NaN: x goes second so NaN survives.
  const __m256 v = _mm256_min_ps(_mm256_set1_ps(C::kUpper),
                                 _mm256_max_ps(_mm256_set1_ps(C::kLower), x));
  const __m256 t = _mm256_mul_ps(v, v);
  __m256 p = _mm256_fmadd_ps(t, _mm256_set1_ps(C::kAlpha9), _mm256_set1_ps(C::kAlpha7));
  p = _mm256_fmadd_ps(t, p, _mm256_set1_ps(C::kAlpha5));
  p = _mm256_fmadd_ps(t, p, _mm256_set1_ps(C::kAlpha3));
  p = _mm256_fmadd_ps(t, p, _mm256_set1_ps(C::kAlpha1));
  __m256 q = _mm256_fmadd_ps(t, _mm256_set1_ps(C::kBeta10), _mm256_set1_ps(C::kBeta8));
  q = _mm256_fmadd_ps(t, q, _mm256_set1_ps(C::kBeta6));
  q = _mm256_fmadd_ps(t, q, _mm256_set1_ps(C::kBeta4));
  q = _mm256_fmadd_ps(t, q, _mm256_set1_ps(C::kBeta2));
  q = _mm256_fmadd_ps(t, q, _mm256_set1_ps(C::kBeta0));
  const __m256 y = _mm256_add_ps(_mm256_div_ps(_mm256_mul_ps(v, p), q), _mm256_set1_ps(0.5f));
  return _mm256_max_ps(_mm256_setzero_ps(), y);
}

}  // namespace

void logistic_f32(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, logistic(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float buffer[8] = {};
    std::memcpy(buffer, x + i, static_cast<size_t>(n - i) * sizeof(float));
    _mm256_store_ps(buffer, logistic(_mm256_load_ps(buffer)));
    std::memcpy(y + i, buffer, static_cast<size_t>(n - i) * sizeof(float));
  }
}

}  // namespace nibble::kernels::avx2
