// W4A16i16 and W8A16i16 tile, AVX2: vpmaddwd + vpaddd, 6 x 16.
//
//   B:        per pair of depths, 16 columns x 2 int16 at Tile::b_offsets[p] — activations
//             quantized per tensor when B is packed or copied; one ymm per 8 columns
//   A panel:  [k/2][6 rows][2] int16 weights — one broadcast dword per row
//   C tile:   6 rows x 2 ymm of int32 (12 accumulators + 2 loads + broadcast + product)
// Each vpmaddwd lane multiplies two int16 pairs and adds them into int32: 16 products per
// instruction against 8 for a float FMA. Overflow is ruled out by the activation range
// (int16_quantization bounds depth * max|w| * qmax by 2^31).
#include "kernels/x86/avx2/gemm_int_common_avx2.h"

namespace nibble::kernels::qgemm_detail::avx2 {

void tile_a16i16_6x16(const Tile& t, const TileEpilogue& ep) {
  constexpr int MR = 6, NV = 2;
  __m256i acc[MR][NV];
  start_int_tile(acc, t);
  const int32_t* a = static_cast<const int32_t*>(t.a);
  const uint8_t* b_base = static_cast<const uint8_t*>(t.b);
  for (int64_t p = 0; p < t.k_units; ++p) {
    const __m256i* b = reinterpret_cast<const __m256i*>(b_base + t.b_offsets[p]);
    const __m256i b0 = _mm256_loadu_si256(b + 0);
    const __m256i b1 = _mm256_loadu_si256(b + 1);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256i w = _mm256_set1_epi32(a[r]);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(b0, w));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(b1, w));
    }
    a += MR;
  }
  finish_int_tile(acc, t, ep);
}

}  // namespace nibble::kernels::qgemm_detail::avx2
