// W4A16 and W8A16 (weight-only) tile, AVX2 + FMA, 6 x 16: float FMA on weights expanded in cache.
//
//   B:        per depth, 16 float columns at Tile::b_offsets[k] — two ymm
//   A panel:  [k][6 rows] float, the integer weight values (prepare_a expands 4/8-bit weights
//             once per panel and column block; the per-row scale is applied in the epilogue)
//   C tile:   6 rows x 2 ymm (12 accumulators + 2 loads + 1 broadcast)
#include "kernels/x86/avx2/gemm_int_common_avx2.h"

namespace nibble::kernels::qgemm_detail::avx2 {

void tile_a16_6x16(const Tile& t, const TileEpilogue& ep) {
  constexpr int MR = 6, NV = 2;
  __m256 acc[MR][NV];
  start_f32_tile(acc, t);
  const float* a = static_cast<const float*>(t.a);
  const uint8_t* b_base = static_cast<const uint8_t*>(t.b);
  for (int64_t k = 0; k < t.k_units; ++k) {
    const float* b = reinterpret_cast<const float*>(b_base + t.b_offsets[k]);
    const __m256 b0 = _mm256_loadu_ps(b + 0);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256 w = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(w, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(w, b1, acc[r][1]);
    }
    a += MR;
  }
  finish_f32_tile(acc, t, ep);
}

}  // namespace nibble::kernels::qgemm_detail::avx2
