// W4A8 and W8A8 tile, AVX2: vpmaddubsw with int16 accumulation, 3 x 16.
//
//   B:        per K quad, 16 columns x 4 uint8 at Tile::b_offsets[q] — one ymm per 8 columns
//   A panel:  [k/4][3 rows][4] int8, every value in [-8, 8] — one broadcast dword per row
//   C tile:   3 rows x 2 ymm, int32 sums plus as many int16 running sums
//             (12 + 2 loads + broadcast + product = 16 registers)
// vpmaddubsw(uint8 x, int8 w) gives per column two int16 pair sums, each at most
// 2 * 255 * 8 = 4080 in magnitude, so eight steps (32 depths) add up in int16 with vpaddw
// (8 * 4080 = 32640 < 32767) before one vpmaddwd widens them to int32: an int4 product costs
// about one vpmaddubsw + one vpaddw, against vpmaddubsw + vpmaddwd + vpaddd for int8 (which
// could also saturate: 2 * 255 * 127 > 32767).
// W8A8 stays exact with the same loop: prepare_a splits each int8 weight into w = 16 * hi + lo
// (both in [-8, 8]) and the tile runs the hi panel (widened with weight 16), then the lo panel.
#include "kernels/x86/avx2/gemm_int_common_avx2.h"

namespace nibble::kernels::qgemm_detail::avx2 {
namespace {

constexpr int MR = 3, NV = 2;
constexpr int64_t kInt16Steps = 8;  // steps of 4 depths whose pair sums fit int16

// acc += widen * (A panel . B), widen being 1 or 16 per int16 lane pair.
NIBBLE_INLINE void accumulate(__m256i (&acc)[MR][NV], const int32_t* a, const uint8_t* b_base,
                              const int32_t* b_offsets, int64_t k_units, __m256i widen) {
  for (int64_t q0 = 0; q0 < k_units; q0 += kInt16Steps) {
    const int64_t steps = k_units - q0 < kInt16Steps ? k_units - q0 : kInt16Steps;
    __m256i sum16[MR][NV];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) sum16[r][v] = _mm256_setzero_si256();
    }
    for (int64_t q = 0; q < steps; ++q) {
      const __m256i* b = reinterpret_cast<const __m256i*>(b_base + b_offsets[q0 + q]);
      const __m256i b0 = _mm256_loadu_si256(b + 0);
      const __m256i b1 = _mm256_loadu_si256(b + 1);
#pragma GCC unroll 3
      for (int r = 0; r < MR; ++r) {
        const __m256i w = _mm256_set1_epi32(a[r]);
        sum16[r][0] = _mm256_add_epi16(sum16[r][0], _mm256_maddubs_epi16(b0, w));
        sum16[r][1] = _mm256_add_epi16(sum16[r][1], _mm256_maddubs_epi16(b1, w));
      }
      a += MR;
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(sum16[r][v], widen));
      }
    }
  }
}

}  // namespace

void tile_w4a8_3x16(const Tile& t, const TileEpilogue& ep) {
  __m256i acc[MR][NV];
  start_int_tile(acc, t);
  accumulate(acc, static_cast<const int32_t*>(t.a), static_cast<const uint8_t*>(t.b), t.b_offsets,
             t.k_units, _mm256_set1_epi16(1));
  finish_int_tile(acc, t, ep);
}

void tile_w8a8_split_3x16(const Tile& t, const TileEpilogue& ep) {
  __m256i acc[MR][NV];
  start_int_tile(acc, t);
  // prepare_a wrote the hi panel, then the lo panel, each MR * round_up(depth, 64) values.
  const int8_t* hi = static_cast<const int8_t*>(t.a);
  const int8_t* lo = hi + MR * ((t.k_units * 4 + 63) / 64 * 64);
  const uint8_t* b = static_cast<const uint8_t*>(t.b);
  accumulate(acc, reinterpret_cast<const int32_t*>(hi), b, t.b_offsets, t.k_units,
             _mm256_set1_epi16(16));
  accumulate(acc, reinterpret_cast<const int32_t*>(lo), b, t.b_offsets, t.k_units,
             _mm256_set1_epi16(1));
  finish_int_tile(acc, t, ep);
}

}  // namespace nibble::kernels::qgemm_detail::avx2
