// Pixel interleave of the integer convolution input copy (gemm_int_pack_b.h), AVX-512BW: 64
// pixels per step, the last partial step masked. Byte unpacks interleave within 128-bit lanes;
// a 4 x 4 transpose of the lanes puts the pixels back in order.
#include <immintrin.h>

#include "kernels/dispatch/gemm_int_pack_b.h"

namespace nibble::kernels::qgemm_detail::avx512 {

void interleave_quad_u8(const uint8_t* const* rows, int64_t count, uint8_t flip, uint8_t* out) {
  const __m512i f = _mm512_set1_epi8(static_cast<char>(flip));
  for (int64_t j = 0; j < count; j += 64) {
    const int64_t left = count - j;
    const __mmask64 in_mask = left >= 64 ? ~__mmask64(0) : (__mmask64(1) << left) - 1;
    __m512i x[4];
    for (int i = 0; i < 4; ++i) {
      x[i] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(in_mask, rows[i] + j), f);
    }
    const __m512i ab_lo = _mm512_unpacklo_epi8(x[0], x[1]);
    const __m512i ab_hi = _mm512_unpackhi_epi8(x[0], x[1]);
    const __m512i cd_lo = _mm512_unpacklo_epi8(x[2], x[3]);
    const __m512i cd_hi = _mm512_unpackhi_epi8(x[2], x[3]);
    // Lane L of q0..q3: pixels 16 L + {0-3}, {4-7}, {8-11}, {12-15}.
    const __m512i q0 = _mm512_unpacklo_epi16(ab_lo, cd_lo);
    const __m512i q1 = _mm512_unpackhi_epi16(ab_lo, cd_lo);
    const __m512i q2 = _mm512_unpacklo_epi16(ab_hi, cd_hi);
    const __m512i q3 = _mm512_unpackhi_epi16(ab_hi, cd_hi);
    const __m512i t0 = _mm512_shuffle_i32x4(q0, q1, 0x44);  // q0 lanes 0-1, q1 lanes 0-1
    const __m512i t1 = _mm512_shuffle_i32x4(q2, q3, 0x44);
    const __m512i t2 = _mm512_shuffle_i32x4(q0, q1, 0xEE);  // q0 lanes 2-3, q1 lanes 2-3
    const __m512i t3 = _mm512_shuffle_i32x4(q2, q3, 0xEE);
    // Pixels 16 k ... 16 k + 15: lane k of q0, q1, q2, q3.
    const __m512i pixels[4] = {
        _mm512_shuffle_i32x4(t0, t1, 0x88), _mm512_shuffle_i32x4(t0, t1, 0xDD),
        _mm512_shuffle_i32x4(t2, t3, 0x88), _mm512_shuffle_i32x4(t2, t3, 0xDD)};
    for (int k = 0; k < 4; ++k) {
      const int64_t valid = left - 16 * k;
      if (valid <= 0) break;
      const __mmask16 mask = valid >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << valid) - 1);
      _mm512_mask_storeu_epi32(out + (j + 16 * k) * 4, mask, pixels[k]);
    }
  }
}

}  // namespace nibble::kernels::qgemm_detail::avx512
