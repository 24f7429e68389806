// W4A16 / W8A16 weight expansion for the FP32 micro-kernels, AVX2 (kernels/dispatch/
// gemm_a16_f32.h): 32 packed values per half run, sign-extended to int32, converted and
// multiplied by their rows' scales (w = q * scale, one rounding, as DequantizeLinear computes it).
#include "kernels/dispatch/gemm_a16_f32.h"
#include "kernels/x86/avx2/gemm_int_common_avx2.h"

namespace nibble::kernels::a16::avx2 {

void expand(const uint8_t* packed, int bits, int64_t first, int64_t count,
            const float* scale_pattern, int64_t period, float* out) {
  using qgemm_detail::avx2::load_s8x32;
  int64_t phase = first % period;
  for (int64_t i = first; i < first + count; i += 64) {
    const uint8_t* run = packed + i * bits / 8;
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const __m256i w = load_s8x32(run, bits, half);
      const __m128i parts[4] = {_mm256_castsi256_si128(w),
                                _mm_srli_si128(_mm256_castsi256_si128(w), 8),
                                _mm256_extracti128_si256(w, 1),
                                _mm_srli_si128(_mm256_extracti128_si256(w, 1), 8)};
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        const __m256 values = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[q]));
        _mm256_storeu_ps(out + 8 * q,
                         _mm256_mul_ps(values, _mm256_loadu_ps(scale_pattern + phase)));
        phase = phase + 8 == period ? 0 : phase + 8;
      }
      out += 32;
    }
  }
}

}  // namespace nibble::kernels::a16::avx2
