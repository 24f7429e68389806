// W4A16i16 and W8A16i16 tile, AVX-512BW (vpmaddwd + vpaddd) and AVX512-VNNI (vpdpwssd), 8 x 48.
//
//   B:        per pair of depths, 48 columns x 2 int16 at Tile::b_offsets[p] — activations
//             quantized per tensor when B is packed or copied; one zmm per 16 columns
//   A panel:  [k/2][8 rows][2] int16 weights — one broadcast dword per row
//   C tile:   8 rows x 3 zmm of int32 (24 accumulators)
// Each vpmaddwd lane multiplies two int16 pairs and adds them into int32: 32 products per
// instruction against 16 for a float FMA. Overflow is ruled out by the activation range
// (int16_quantization bounds depth * max|w| * qmax by 2^31).
#include "kernels/x86/avx512/gemm_int_common_avx512.h"
#include "kernels/x86/avx512/vnni_target.h"

namespace nibble::kernels::qgemm_detail::avx512 {

// The two tiles differ in one instruction; they are two functions, not one template, because
// only the second may be compiled with VNNI (vnni_target.h).

void tile_a16i16_8x48(const Tile& t, const TileEpilogue& ep) {
  constexpr int MR = 8, NV = 3;
  __m512i acc[MR][NV];
  start_int_tile(acc, t);
  const int32_t* a = static_cast<const int32_t*>(t.a);
  const uint8_t* b_base = static_cast<const uint8_t*>(t.b);
  for (int64_t p = 0; p < t.k_units; ++p) {
    const __m512i* b = reinterpret_cast<const __m512i*>(b_base + t.b_offsets[p]);
    const __m512i b0 = _mm512_loadu_si512(b + 0);
    const __m512i b1 = _mm512_loadu_si512(b + 1);
    const __m512i b2 = _mm512_loadu_si512(b + 2);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512i w = _mm512_set1_epi32(a[r]);
      acc[r][0] = _mm512_add_epi32(acc[r][0], _mm512_madd_epi16(b0, w));
      acc[r][1] = _mm512_add_epi32(acc[r][1], _mm512_madd_epi16(b1, w));
      acc[r][2] = _mm512_add_epi32(acc[r][2], _mm512_madd_epi16(b2, w));
    }
    a += MR;
  }
  finish_int_tile(acc, t, ep);
}

NIBBLE_TARGET_VNNI void tile_a16i16_8x48_vnni(const Tile& t, const TileEpilogue& ep) {
  constexpr int MR = 8, NV = 3;
  __m512i acc[MR][NV];
  start_int_tile(acc, t);
  const int32_t* a = static_cast<const int32_t*>(t.a);
  const uint8_t* b_base = static_cast<const uint8_t*>(t.b);
  for (int64_t p = 0; p < t.k_units; ++p) {
    const __m512i* b = reinterpret_cast<const __m512i*>(b_base + t.b_offsets[p]);
    const __m512i b0 = _mm512_loadu_si512(b + 0);
    const __m512i b1 = _mm512_loadu_si512(b + 1);
    const __m512i b2 = _mm512_loadu_si512(b + 2);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512i w = _mm512_set1_epi32(a[r]);
      acc[r][0] = _mm512_dpwssd_epi32(acc[r][0], b0, w);
      acc[r][1] = _mm512_dpwssd_epi32(acc[r][1], b1, w);
      acc[r][2] = _mm512_dpwssd_epi32(acc[r][2], b2, w);
    }
    a += MR;
  }
  finish_int_tile(acc, t, ep);
}

}  // namespace nibble::kernels::qgemm_detail::avx512
