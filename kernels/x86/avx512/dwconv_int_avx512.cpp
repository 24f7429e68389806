// Integer depthwise row kernel for AVX-512 (kernels/dispatch/dwconv_int_kernels.h): four output
// rows at a time, 16 outputs per step. Each tap's 16 uint8 inputs are zero-extended to int32
// lanes and multiplied by the tap's int16 weight with vpmaddwd (the lanes' high halves are 0, so
// each lane is exactly x * w), four independent accumulator chains per tap. The epilogue is the
// GEMM tiles' (gemm_int_common_avx512.h).
#include <algorithm>

#include "kernels/dispatch/dwconv_int_kernels.h"
#include "kernels/x86/avx512/gemm_int_common_avx512.h"

namespace nibble::kernels::qdw_detail::avx512 {

namespace qd = qgemm_detail;

namespace {
constexpr int kRows = 4;
}

void dwconv_int_plane(const Plane& p, const qd::TileEpilogue& ep) {
  const __m512i comp = _mm512_set1_epi32(ep.comp[p.channel]);
  int32_t* sums = p.sums;
  for (int64_t r = 0; r < p.rows; r += kRows) {
    // Rows past the end recompute the last row (a valid address) and are not stored.
    int64_t row[kRows];
    for (int q = 0; q < kRows; ++q) row[q] = std::min<int64_t>(r + q, p.rows - 1) * p.pitch;
    for (int64_t i = 0; i < p.width; i += 16) {
      const int64_t valid = std::min<int64_t>(p.width - i, 16);
      const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
      __m512i acc[kRows];
#pragma GCC unroll 4
      for (int q = 0; q < kRows; ++q) acc[q] = _mm512_setzero_si512();
      for (int64_t k = 0; k < p.taps; ++k) {
        const __m512i w = _mm512_set1_epi32(p.weights[k]);
        const uint8_t* in = p.inputs[k] + i;
#pragma GCC unroll 4
        for (int q = 0; q < kRows; ++q) {
          const __m512i x = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, in + row[q]));
          acc[q] = _mm512_add_epi32(acc[q], _mm512_madd_epi16(x, w));
        }
      }
#pragma GCC unroll 4
      for (int q = 0; q < kRows; ++q) {
        if (r + q >= p.rows) break;
        _mm512_mask_storeu_epi32(sums + (r + q) * p.width + i, mask,
                                 _mm512_sub_epi32(acc[q], comp));
      }
    }
  }
  // The epilogue over the plane's sums as one row.
  const int64_t count = p.rows * p.width;
  qd::avx512::store_int_rows(sums, count, 1, count, p.channel, p.dst, count, ep);
}

}  // namespace nibble::kernels::qdw_detail::avx512
