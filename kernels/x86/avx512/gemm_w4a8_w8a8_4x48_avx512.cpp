// W4A8 and W8A8 tile, AVX-512BW without VNNI: vpmaddubsw with int16 accumulation, 4 x 48.
//
//   B:        per K quad, 48 columns x 4 uint8 at Tile::b_offsets[q] — one zmm per 16 columns
//   A panel:  [k/4][4 rows][4] int8, every value in [-8, 8] — one broadcast dword per row
//   C tile:   4 rows x 3 zmm, int32 sums plus as many int16 running sums (24 + 3 loads + 1)
// vpmaddubsw(uint8 x, int8 w) gives per column two int16 pair sums, each at most
// 2 * 255 * 8 = 4080 in magnitude, so eight steps (32 depths) add up in int16 with vpaddw
// (8 * 4080 = 32640 < 32767) before one vpmaddwd widens them to int32: an int4 product costs
// about one vpmaddubsw + one vpaddw, against three instructions for a general int8 product.
// W8A8 stays exact with the same loop: prepare_a splits each int8 weight into w = 16 * hi + lo
// (both in [-8, 8]) and the tile runs the hi panel (widened with weight 16) and then the lo panel.
#include "kernels/x86/avx512/gemm_int_common_avx512.h"

namespace nibble::kernels::qgemm_detail::avx512 {
namespace {

constexpr int MR = 4, NV = 3;
constexpr int64_t kInt16Steps = 8;  // steps of 4 depths whose pair sums fit int16

// acc += widen * (A panel . B), widen being 1 or 16 per int16 lane pair.
NIBBLE_INLINE void accumulate(__m512i (&acc)[MR][NV], const int32_t* a, const uint8_t* b_base,
                              const int32_t* b_offsets, int64_t k_units, __m512i widen) {
  for (int64_t q0 = 0; q0 < k_units; q0 += kInt16Steps) {
    const int64_t steps = k_units - q0 < kInt16Steps ? k_units - q0 : kInt16Steps;
    __m512i sum16[MR][NV];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) sum16[r][v] = _mm512_setzero_si512();
    }
    for (int64_t q = 0; q < steps; ++q) {
      const __m512i* b = reinterpret_cast<const __m512i*>(b_base + b_offsets[q0 + q]);
      const __m512i b0 = _mm512_loadu_si512(b + 0);
      const __m512i b1 = _mm512_loadu_si512(b + 1);
      const __m512i b2 = _mm512_loadu_si512(b + 2);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        const __m512i w = _mm512_set1_epi32(a[r]);
        sum16[r][0] = _mm512_add_epi16(sum16[r][0], _mm512_maddubs_epi16(b0, w));
        sum16[r][1] = _mm512_add_epi16(sum16[r][1], _mm512_maddubs_epi16(b1, w));
        sum16[r][2] = _mm512_add_epi16(sum16[r][2], _mm512_maddubs_epi16(b2, w));
      }
      a += MR;
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        acc[r][v] = _mm512_add_epi32(acc[r][v], _mm512_madd_epi16(sum16[r][v], widen));
      }
    }
  }
}

}  // namespace

void tile_w4a8_4x48(const Tile& t, const TileEpilogue& ep) {
  __m512i acc[MR][NV];
  start_int_tile(acc, t);
  accumulate(acc, static_cast<const int32_t*>(t.a), static_cast<const uint8_t*>(t.b), t.b_offsets,
             t.k_units, _mm512_set1_epi16(1));
  finish_int_tile(acc, t, ep);
}

void tile_w8a8_split_4x48(const Tile& t, const TileEpilogue& ep) {
  __m512i acc[MR][NV];
  start_int_tile(acc, t);
  // prepare_a wrote the hi panel, then the lo panel, each MR * round_up(depth, 64) values.
  const int8_t* hi = static_cast<const int8_t*>(t.a);
  const int8_t* lo = hi + MR * ((t.k_units * 4 + 63) / 64 * 64);
  const uint8_t* b = static_cast<const uint8_t*>(t.b);
  accumulate(acc, reinterpret_cast<const int32_t*>(hi), b, t.b_offsets, t.k_units,
             _mm512_set1_epi16(16));
  accumulate(acc, reinterpret_cast<const int32_t*>(lo), b, t.b_offsets, t.k_units,
             _mm512_set1_epi16(1));
  finish_int_tile(acc, t, ep);
}

}  // namespace nibble::kernels::qgemm_detail::avx512
