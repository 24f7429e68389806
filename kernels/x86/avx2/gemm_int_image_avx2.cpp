// Pixel interleave of the integer convolution input copy (gemm_int_pack_b.h), AVX2: 32 pixels
// per step. Byte unpacks interleave within 128-bit lanes, so each step ends with a lane
// permute that puts the pixels back in order.
#include <immintrin.h>

#include "kernels/dispatch/gemm_int_pack_b.h"

namespace nibble::kernels::qgemm_detail::avx2 {

void interleave_quad_u8(const uint8_t* const* rows, int64_t count, uint8_t flip, uint8_t* out) {
  const uint8_t* r0 = rows[0];
  const uint8_t* r1 = rows[1];
  const uint8_t* r2 = rows[2];
  const uint8_t* r3 = rows[3];
  const __m256i f = _mm256_set1_epi8(static_cast<char>(flip));
  auto load = [&](const uint8_t* row, int64_t j) {
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + j)), f);
  };
  int64_t j = 0;
  for (; j + 32 <= count; j += 32) {
    const __m256i a = load(r0, j), b = load(r1, j), c = load(r2, j), d = load(r3, j);
    const __m256i ab_lo = _mm256_unpacklo_epi8(a, b), ab_hi = _mm256_unpackhi_epi8(a, b);
    const __m256i cd_lo = _mm256_unpacklo_epi8(c, d), cd_hi = _mm256_unpackhi_epi8(c, d);
    // Pixels {0-3, 16-19}, {4-7, 20-23}, {8-11, 24-27}, {12-15, 28-31} (lane 0, lane 1).
    const __m256i q0 = _mm256_unpacklo_epi16(ab_lo, cd_lo);
    const __m256i q1 = _mm256_unpackhi_epi16(ab_lo, cd_lo);
    const __m256i q2 = _mm256_unpacklo_epi16(ab_hi, cd_hi);
    const __m256i q3 = _mm256_unpackhi_epi16(ab_hi, cd_hi);
    __m256i* o = reinterpret_cast<__m256i*>(out + j * 4);
    _mm256_storeu_si256(o + 0, _mm256_permute2x128_si256(q0, q1, 0x20));
    _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(q2, q3, 0x20));
    _mm256_storeu_si256(o + 2, _mm256_permute2x128_si256(q0, q1, 0x31));
    _mm256_storeu_si256(o + 3, _mm256_permute2x128_si256(q2, q3, 0x31));
  }
  for (; j < count; ++j) {
    out[j * 4 + 0] = r0[j] ^ flip;
    out[j * 4 + 1] = r1[j] ^ flip;
    out[j * 4 + 2] = r2[j] ^ flip;
    out[j * 4 + 3] = r3[j] ^ flip;
  }
}

}  // namespace nibble::kernels::qgemm_detail::avx2
