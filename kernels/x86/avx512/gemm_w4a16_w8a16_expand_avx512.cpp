// W4A16 / W8A16 weight expansion for the FP32 micro-kernels, AVX-512 (kernels/dispatch/
// gemm_a16_f32.h): 64 packed values per step, sign-extended to int32, converted and multiplied
// by their rows' scales (w = q * scale, one rounding, as DequantizeLinear computes it).
#include "kernels/dispatch/gemm_a16_f32.h"
#include "kernels/x86/avx512/gemm_int_common_avx512.h"

namespace nibble::kernels::a16::avx512 {

void expand(const uint8_t* packed, int bits, int64_t first, int64_t count,
            const float* scale_pattern, int64_t period, float* out) {
  using qgemm_detail::avx512::load_s8x64;
  int64_t phase = first % period;
  for (int64_t i = first; i < first + count; i += 64) {
    const __m512i w = load_s8x64(packed + i * bits / 8, bits);
    const __m128i parts[4] = {_mm512_castsi512_si128(w), _mm512_extracti32x4_epi32(w, 1),
                              _mm512_extracti32x4_epi32(w, 2), _mm512_extracti32x4_epi32(w, 3)};
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      const __m512 values = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(parts[q]));
      _mm512_storeu_ps(out + 16 * q,
                       _mm512_mul_ps(values, _mm512_loadu_ps(scale_pattern + phase)));
      phase = phase + 16 == period ? 0 : phase + 16;
    }
    out += 64;
  }
}

}  // namespace nibble::kernels::a16::avx512
