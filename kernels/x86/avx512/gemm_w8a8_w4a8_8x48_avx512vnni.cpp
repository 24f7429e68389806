// W8A8 and W4A8 tile, AVX512-VNNI: uint8 activations x int8 weights with vpdpbusd, 8 x 48.
//
//   B:        per K quad, 48 columns x 4 uint8 at Tile::b_offsets[q] — one zmm per 16 columns
//   A panel:  [k/4][8 rows][4] int8 — 4 depths of a row are one broadcast dword
//   C tile:   8 rows x 3 zmm of int32 (24 accumulators)
// vpdpbusd adds the four uint8 x int8 products of each dword lane straight into int32, so there
// is no int16 saturation to avoid. Int4 weights are expanded to int8 by prepare_a (once per panel
// and column block), so W4A8 runs this same loop; on this ISA int4 saves memory, not arithmetic
// (the vpmaddubsw int16 path of gemm_w4a8_w8a8_4x48_avx512.cpp needs more instructions per
// product than vpdpbusd).
#include "kernels/x86/avx512/gemm_int_common_avx512.h"

namespace nibble::kernels::qgemm_detail::avx512 {

void tile_a8_8x48_vnni(const Tile& t, const TileEpilogue& ep) {
  constexpr int MR = 8, NV = 3;
  __m512i acc[MR][NV];
  start_int_tile(acc, t);
  const int32_t* a = static_cast<const int32_t*>(t.a);
  const uint8_t* b_base = static_cast<const uint8_t*>(t.b);
  for (int64_t q = 0; q < t.k_units; ++q) {
    const __m512i* b = reinterpret_cast<const __m512i*>(b_base + t.b_offsets[q]);
    const __m512i b0 = _mm512_loadu_si512(b + 0);
    const __m512i b1 = _mm512_loadu_si512(b + 1);
    const __m512i b2 = _mm512_loadu_si512(b + 2);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512i w = _mm512_set1_epi32(a[r]);
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], b0, w);
      acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], b1, w);
      acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], b2, w);
    }
    a += MR;
  }
  finish_int_tile(acc, t, ep);
}

}  // namespace nibble::kernels::qgemm_detail::avx512
