// Integer depthwise row kernel for AVX2 (kernels/dispatch/dwconv_int_kernels.h): four output
// rows at a time, 8 outputs per step. Each tap's 8 uint8 inputs are zero-extended to int32 lanes
// and multiplied by the tap's int16 weight with vpmaddwd (the lanes' high halves are 0, so each
// lane is exactly x * w), four independent accumulator chains per tap. The epilogue is the GEMM
// tiles' (gemm_int_common_avx2.h). Full 8-byte loads: the driver's plane has slack past the runs.
#include <algorithm>

#include "kernels/dispatch/dwconv_int_kernels.h"
#include "kernels/x86/avx2/gemm_int_common_avx2.h"

namespace nibble::kernels::qdw_detail::avx2 {

namespace qd = qgemm_detail;

namespace {
constexpr int kRows = 4;
}

void dwconv_int_plane(const Plane& p, const qd::TileEpilogue& ep) {
  const __m256i comp = _mm256_set1_epi32(ep.comp[p.channel]);
  int32_t* sums = p.sums;
  for (int64_t r = 0; r < p.rows; r += kRows) {
    // Rows past the end recompute the last row (a valid address) and are not stored.
    int64_t row[kRows];
    for (int q = 0; q < kRows; ++q) row[q] = std::min<int64_t>(r + q, p.rows - 1) * p.pitch;
    for (int64_t i = 0; i < p.width; i += 8) {
      const int valid = static_cast<int>(std::min<int64_t>(p.width - i, 8));
      __m256i acc[kRows];
#pragma GCC unroll 4
      for (int q = 0; q < kRows; ++q) acc[q] = _mm256_setzero_si256();
      for (int64_t k = 0; k < p.taps; ++k) {
        const __m256i w = _mm256_set1_epi32(p.weights[k]);
        const uint8_t* in = p.inputs[k] + i;
#pragma GCC unroll 4
        for (int q = 0; q < kRows; ++q) {
          const __m256i x = _mm256_cvtepu8_epi32(
              _mm_loadl_epi64(reinterpret_cast<const __m128i*>(in + row[q])));
          acc[q] = _mm256_add_epi32(acc[q], _mm256_madd_epi16(x, w));
        }
      }
#pragma GCC unroll 4
      for (int q = 0; q < kRows; ++q) {
        if (r + q >= p.rows) break;
        int32_t* dst = sums + (r + q) * p.width + i;
        const __m256i sum = _mm256_sub_epi32(acc[q], comp);
        if (valid == 8) {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), sum);
        } else {
          _mm256_maskstore_epi32(dst, qd::avx2::lane_mask(valid), sum);
        }
      }
    }
  }
  // The epilogue over the plane's sums as one row.
  const int64_t count = p.rows * p.width;
  qd::avx2::store_int_rows(sums, count, 1, count, p.channel, p.dst, count, ep);
}

}  // namespace nibble::kernels::qdw_detail::avx2
