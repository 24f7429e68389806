// W4A16 and W8A16 (weight-only) tile, AVX-512F: float FMA on weights expanded in the cache, 8 x 48.
//
//   B:        per depth, 48 float columns at Tile::b_offsets[k] — three zmm
//   A panel:  [k][8 rows] float, the integer weight values (prepare_a expands 4/8-bit weights
//             once per panel and column block; the per-row scale is applied in the epilogue)
//   C tile:   8 rows x 3 zmm (24 accumulators); broadcasts come from memory with the FMA
#include "kernels/x86/avx512/gemm_int_common_avx512.h"

namespace nibble::kernels::qgemm_detail::avx512 {

void tile_a16_8x48(const Tile& t, const TileEpilogue& ep) {
  constexpr int MR = 8, NV = 3;
  __m512 acc[MR][NV];
  start_f32_tile(acc, t);
  const float* a = static_cast<const float*>(t.a);
  const uint8_t* b_base = static_cast<const uint8_t*>(t.b);
  for (int64_t k = 0; k < t.k_units; ++k) {
    const float* b = reinterpret_cast<const float*>(b_base + t.b_offsets[k]);
    const __m512 b0 = _mm512_loadu_ps(b + 0);
    const __m512 b1 = _mm512_loadu_ps(b + 16);
    const __m512 b2 = _mm512_loadu_ps(b + 32);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 w = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(w, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(w, b1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(w, b2, acc[r][2]);
    }
    a += MR;
  }
  finish_f32_tile(acc, t, ep);
}

}  // namespace nibble::kernels::qgemm_detail::avx512
