// Mode A16I16's activation quantization (gemm_int_pack_b.h), AVX-512: 16 columns of a row pair
// per step, the last partial step masked, and the strip's zero columns written in the same pass.
#include <immintrin.h>

#include "kernels/dispatch/gemm_int_pack_b.h"

namespace nibble::kernels::qgemm_detail::avx512 {
namespace {

// Lanes [0, count) of 16; count may be negative or exceed 16.
__mmask16 first_lanes(int64_t count) {
  return count >= 16 ? __mmask16(0xFFFF) : count > 0 ? __mmask16((1u << count) - 1) : __mmask16(0);
}

}  // namespace

void interleave_pairs_s16(const float* const* rows, int64_t pairs, int64_t cols, int64_t nr,
                          const Int16Quantization& q, int16_t* strip) {
  const __m512 inv = _mm512_set1_ps(q.inv_scale);
  const __m512 hi = _mm512_set1_ps(static_cast<float>(q.qmax)), lo = _mm512_set1_ps(-static_cast<float>(q.qmax));
  // Rounds as the reference's nearbyint (the MXCSR mode); the clamp comes first, so the int32
  // results fit int16 and a NaN (max/min return their second operand) becomes -qmax.
  auto quantize = [&](__mmask16 mask, const float* x) {
    const __m512 scaled = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x), inv);
    return _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(scaled, lo), hi));
  };
  for (int64_t p = 0; p < pairs; ++p) {
    const float* r0 = rows[2 * p];
    const float* r1 = rows[2 * p + 1];
    int16_t* out = strip + p * nr * 2;
    for (int64_t j = 0; j < nr; j += 16) {
      const __mmask16 load = first_lanes(cols - j), store = first_lanes(nr - j);
      // Row 2p in the low half of each 32-bit pair, row 2p + 1 in the high half.
      const __m512i pair = _mm512_mask_blend_epi16(
          0xAAAAAAAA, quantize(load, r0 + j), _mm512_slli_epi32(quantize(load, r1 + j), 16));
      _mm512_mask_storeu_epi32(out + j * 2, store, pair);
    }
  }
}

}  // namespace nibble::kernels::qgemm_detail::avx512
