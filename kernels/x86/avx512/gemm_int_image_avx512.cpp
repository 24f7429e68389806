// Pixel interleave of the integer convolution input copy (gemm_int_pack_b.h), AVX-512BW: 64
// pixels per step, the last partial step masked — of one row, of a stride-2 phase row (sampled
// on the way) or of a whole stride-1 plane. Byte unpacks interleave within 128-bit lanes; a
// 4 x 4 transpose of the lanes puts the pixels back in order.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/dispatch/gemm_int_pack_b.h"

namespace nibble::kernels::qgemm_detail::avx512 {
namespace {

__mmask64 first_bytes(int64_t count) {
  return count >= 64 ? ~__mmask64(0) : (__mmask64(1) << count) - 1;
}

// Stores pixels j ... j + min(64, left) - 1 (at out + 4 j) of four channel vectors x, byte k
// of x[i] being channel i of pixel j + k.
inline void store_quads(const __m512i (&x)[4], int64_t left, uint8_t* out) {
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
    _mm512_mask_storeu_epi32(out + 64 * k, mask, pixels[k]);
  }
}

}  // namespace

void interleave_quad_u8(const uint8_t* const* rows, int64_t count, uint8_t flip, uint8_t* out) {
  const __m512i f = _mm512_set1_epi8(static_cast<char>(flip));
  for (int64_t j = 0; j < count; j += 64) {
    const int64_t left = count - j;
    const __mmask64 in_mask = first_bytes(left);
    __m512i x[4];
    for (int i = 0; i < 4; ++i) {
      x[i] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(in_mask, rows[i] + j), f);
    }
    store_quads(x, left, out + j * 4);
  }
}

// Stride-2 phases: the even bytes of 128 input bytes are the low bytes of their 64 words
// (vpmovwb), so sampling and interleaving take one pass instead of a copy of the samples.
void interleave_quad_even_u8(const uint8_t* const* rows, int64_t count, uint8_t flip,
                             uint8_t* out) {
  const __m512i f = _mm512_set1_epi8(static_cast<char>(flip));
  for (int64_t j = 0; j < count; j += 64) {
    const int64_t left = count - j;
    // Bytes up to the step's last sample (2 left - 1 of them) and not one past it: that one may
    // lie past the end of the input.
    const int64_t bytes = std::min<int64_t>(128, 2 * left - 1);
    const __mmask64 low_mask = first_bytes(bytes);
    const __mmask64 high_mask = bytes > 64 ? first_bytes(bytes - 64) : __mmask64(0);
    __m512i x[4];
    for (int i = 0; i < 4; ++i) {
      const uint8_t* src = rows[i] + 2 * j;
      const __m256i low = _mm512_cvtepi16_epi8(_mm512_maskz_loadu_epi8(low_mask, src));
      const __m256i high = _mm512_cvtepi16_epi8(_mm512_maskz_loadu_epi8(high_mask, src + 64));
      x[i] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1), f);
    }
    store_quads(x, left, out + j * 4);
  }
}

// Stride-1 planes: 64 pixels per step across row ends, each row's part of a step one masked
// load from its input row (the pad pixels keep the padding value), instead of a step per row
// that a 40-pixel row leaves part empty.
void interleave_quad_plane_u8(const uint8_t* const* rows, int64_t in_w, int64_t count,
                              const PlaneRows& layout, uint8_t pad, uint8_t flip, uint8_t* out) {
  const __m512i f = _mm512_set1_epi8(static_cast<char>(flip));
  const __m512i padding = _mm512_set1_epi8(static_cast<char>(pad));
  const int64_t wg = layout.wg, lo = layout.lo, hi = layout.hi, total = count * wg;
  for (int64_t p0 = 0; p0 < total; p0 += 64) {
    const int64_t n = std::min<int64_t>(64, total - p0);
    __m512i x[4] = {padding, padding, padding, padding};
    for (int64_t r = p0 / wg; r * wg < p0 + n; ++r) {
      // Lanes [a, b) are row r's columns [lo, hi); lane k reads input column p0 + k - r wg - lo.
      const int64_t a = std::max<int64_t>(r * wg + lo - p0, 0);
      const int64_t b = std::min<int64_t>(r * wg + hi - p0, n);
      if (a >= b) continue;
      const __mmask64 mask = first_bytes(b) & ~first_bytes(a);
      // Lane 0's address, which may lie before the row: only lanes [a, b) are read.
      const int64_t offset = r * in_w + p0 - r * wg - lo;
      for (int i = 0; i < 4; ++i) {
        const uintptr_t lane0 = reinterpret_cast<uintptr_t>(rows[i]) + uintptr_t(offset);
        x[i] = _mm512_mask_loadu_epi8(x[i], mask, reinterpret_cast<const void*>(lane0));
      }
    }
    for (int i = 0; i < 4; ++i) x[i] = _mm512_xor_si512(x[i], f);
    store_quads(x, n, out + p0 * 4);
  }
}

}  // namespace nibble::kernels::qgemm_detail::avx512
