// Mode A16I16's activation quantization (gemm_int_pack_b.h), AVX2: 8 columns of a row pair per
// step, the last partial step through a zero-padded copy.
#include <immintrin.h>

#include <cstring>

#include "kernels/dispatch/gemm_int_pack_b.h"

namespace nibble::kernels::qgemm_detail::avx2 {

void interleave_pairs_s16(const float* const* rows, int64_t pairs, int64_t cols, int64_t nr,
                          const Int16Quantization& q, int16_t* strip) {
  const __m256 inv = _mm256_set1_ps(q.inv_scale);
  const __m256 hi = _mm256_set1_ps(static_cast<float>(q.qmax)), lo = _mm256_set1_ps(-static_cast<float>(q.qmax));
  const __m256i low16 = _mm256_set1_epi32(0xFFFF);
  // Rounds as the reference's nearbyint (the MXCSR mode); the clamp comes first, so the int32
  // results fit int16 and a NaN (max/min return their second operand) becomes -qmax.
  auto quantize = [&](const float* x) {
    const __m256 scaled = _mm256_mul_ps(_mm256_loadu_ps(x), inv);
    return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(scaled, lo), hi));
  };
  auto store_pairs = [&](const float* x0, const float* x1, int16_t* out) {
    const __m256i pair = _mm256_or_si256(_mm256_and_si256(quantize(x0), low16),
                                         _mm256_slli_epi32(quantize(x1), 16));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), pair);
  };
  for (int64_t p = 0; p < pairs; ++p) {
    const float* r0 = rows[2 * p];
    const float* r1 = rows[2 * p + 1];
    int16_t* out = strip + p * nr * 2;
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) store_pairs(r0 + j, r1 + j, out + j * 2);
    if (j < cols) {
      alignas(32) float t0[8] = {}, t1[8] = {};
      std::memcpy(t0, r0 + j, size_t(cols - j) * sizeof(float));
      std::memcpy(t1, r1 + j, size_t(cols - j) * sizeof(float));
      alignas(32) int16_t pairs16[16];
      store_pairs(t0, t1, pairs16);
      std::memcpy(out + j * 2, pairs16, size_t(cols - j) * 2 * sizeof(int16_t));
      j = cols;
    }
    std::memset(out + j * 2, 0, size_t((nr - j) * 2) * sizeof(int16_t));
  }
}

}  // namespace nibble::kernels::qgemm_detail::avx2
