// Shared pieces of the AVX-512 low-bit GEMM kernels (included only by kernels/x86/avx512/*.cpp,
// which are compiled with AVX-512 F/BW/VL/DQ + VNNI flags): weight panel expansion, the tile
// epilogue and its SiLU (on the exp of vec_math_avx512.h). Everything lives in
// qgemm_detail::avx512 so that nothing here can be merged with the AVX2 copies at link time.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/dispatch/gemm_int_kernels.h"
#include "kernels/x86/avx512/vec_math_avx512.h"

namespace nibble::kernels::qgemm_detail::avx512 {

#ifndef NIBBLE_INLINE
#define NIBBLE_INLINE inline __attribute__((always_inline))
#endif

// ---- weight expansion (prepare_a) --------------------------------------------------------

// 64 packed values (one nibble run, or 64 bytes) as int8.
NIBBLE_INLINE __m512i load_s8x64(const uint8_t* packed, int bits) {
  if (bits == 8) return _mm512_loadu_si512(packed);
  const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(packed));
  const __m256i mask = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
  // Two's complement nibble v -> (v ^ 8) - 8.
  const __m256i lo = _mm256_sub_epi8(_mm256_xor_si256(_mm256_and_si256(bytes, mask), eight), eight);
  const __m256i hi = _mm256_sub_epi8(
      _mm256_xor_si256(_mm256_and_si256(_mm256_srli_epi16(bytes, 4), mask), eight), eight);
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

inline void prepare_s8(const uint8_t* packed, int bits, int64_t count, void* out) {
  int8_t* o = static_cast<int8_t*>(out);
  for (int64_t i = 0; i < count; i += 64) {
    _mm512_storeu_si512(o + i, load_s8x64(packed + i * bits / 8, bits));
  }
}

// w = 16 * hi + lo with lo = ((w + 8) & 15) - 8 in [-8, 7] and hi in [-8, 8]: both halves keep
// vpmaddubsw pair sums within 2 * 255 * 8, so eight of them add up in int16.
inline void prepare_s8_split(const uint8_t* packed, int bits, int64_t count, void* out) {
  int8_t* hi_out = static_cast<int8_t*>(out);
  int8_t* lo_out = hi_out + count;
  const __m512i eight = _mm512_set1_epi16(8), fifteen = _mm512_set1_epi16(15);
  for (int64_t i = 0; i < count; i += 64) {
    const __m512i w = load_s8x64(packed + i * bits / 8, bits);
    for (int half = 0; half < 2; ++half) {
      const __m512i w16 =
          _mm512_cvtepi8_epi16(half ? _mm512_extracti64x4_epi64(w, 1) : _mm512_castsi512_si256(w));
      const __m512i lo =
          _mm512_sub_epi16(_mm512_and_si512(_mm512_add_epi16(w16, eight), fifteen), eight);
      const __m512i hi = _mm512_srai_epi16(_mm512_sub_epi16(w16, lo), 4);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo_out + i + 32 * half),
                          _mm512_cvtepi16_epi8(lo));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(hi_out + i + 32 * half),
                          _mm512_cvtepi16_epi8(hi));
    }
  }
}

inline void prepare_s16(const uint8_t* packed, int bits, int64_t count, void* out) {
  int16_t* o = static_cast<int16_t*>(out);
  for (int64_t i = 0; i < count; i += 64) {
    const __m512i w = load_s8x64(packed + i * bits / 8, bits);
    _mm512_storeu_si512(o + i, _mm512_cvtepi8_epi16(_mm512_castsi512_si256(w)));
    _mm512_storeu_si512(o + i + 32, _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(w, 1)));
  }
}

inline void prepare_f32(const uint8_t* packed, int bits, int64_t count, void* out) {
  float* o = static_cast<float*>(out);
  for (int64_t i = 0; i < count; i += 64) {
    const __m512i w = load_s8x64(packed + i * bits / 8, bits);
    _mm512_storeu_ps(o + i, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_castsi512_si128(w))));
    _mm512_storeu_ps(o + i + 16,
                     _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(w, 1))));
    _mm512_storeu_ps(o + i + 32,
                     _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(w, 2))));
    _mm512_storeu_ps(o + i + 48,
                     _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(w, 3))));
  }
}

// ---- epilogue --------------------------------------------------------------------------------

// x * sigmoid(x) = x / (1 + e^-x), the reciprocal by vrcp14ps and one Newton step (about
// 1 ulp away from a division, at a fraction of its cost; the GEMM is fast enough for the
// epilogue to matter).
NIBBLE_INLINE __m512 silu(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 d =
      _mm512_add_ps(one, ::nibble::kernels::avx512::exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), x)));
  __m512 r = _mm512_rcp14_ps(d);
  r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, one), r);
  return _mm512_mul_ps(x, r);
}

NIBBLE_INLINE __mmask16 column_mask(int cols, int vec) {
  const int valid = cols - 16 * vec;
  return valid >= 16 ? __mmask16(0xFFFF) : valid <= 0 ? __mmask16(0) : __mmask16((1u << valid) - 1);
}

// The epilogue constants of one tile, held in locals (the output stores cannot alias them, so
// the compiler keeps them in registers across the tile).
struct TileStore {
  QType out;
  bool silu, clamp;
  __m512 lo, hi, inv_scale, q_lo, q_hi;
  __m512i zero_point;
  void* dst;
  int64_t ld;

  NIBBLE_INLINE TileStore(const Tile& t, const TileEpilogue& ep)
      : out(ep.out),
        silu(ep.silu),
        clamp(ep.clamp_min > -std::numeric_limits<float>::infinity() ||
              ep.clamp_max < std::numeric_limits<float>::infinity()),
        lo(_mm512_set1_ps(ep.clamp_min)),
        hi(_mm512_set1_ps(ep.clamp_max)),
        inv_scale(_mm512_set1_ps(ep.inv_out_scale)),
        q_lo(_mm512_set1_ps(ep.q_lo)),
        q_hi(_mm512_set1_ps(ep.q_hi)),
        zero_point(_mm512_set1_epi32(ep.out_zero_point)),
        dst(t.dst),
        ld(t.dst_ld) {}

  // Activates and stores y, the float result of row r, columns [16 vec, 16 vec + 16).
  NIBBLE_INLINE void operator()(__m512 y, int r, int vec, __mmask16 mask) const {
    if (silu) y = avx512::silu(y);
    if (clamp) y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
    const int64_t offset = r * ld + vec * 16;
    if (out == QType::F32) {
      _mm512_mask_storeu_ps(static_cast<float*>(dst) + offset, mask, y);
      return;
    }
    const __m512 q = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(y, inv_scale), q_lo), q_hi);
    const __m512i qi = _mm512_add_epi32(_mm512_cvtps_epi32(q), zero_point);
    _mm_mask_storeu_epi8(static_cast<int8_t*>(dst) + offset, mask, _mm512_cvtepi32_epi8(qi));
  }
  // Integer sums straight out (QType::I32).
  NIBBLE_INLINE void sums(__m512i s, int r, int vec, __mmask16 mask) const {
    _mm512_mask_storeu_epi32(static_cast<int32_t*>(dst) + r * ld + vec * 16, mask, s);
  }
};

// Epilogue of an integer tile: acc[r][v] holds the int32 sums of row r, columns 16v...
template <int MR, int NV>
NIBBLE_INLINE void finish_int_tile(__m512i (&acc)[MR][NV], const Tile& t, const TileEpilogue& ep) {
  if (!t.last) {
    int32_t* p = static_cast<int32_t*>(t.partial);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) _mm512_storeu_si512(p + r * t.partial_ld + v * 16, acc[r][v]);
    }
    return;
  }
  const TileStore store(t, ep);
  const int rows = t.rows, cols = t.cols;
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    if (r >= rows) continue;
    const int64_t row = t.row0 + r;
    const __m512i comp = _mm512_set1_epi32(ep.comp[row]);
    const __m512 scale = _mm512_set1_ps(ep.scale[row]);
    const __m512 bias = _mm512_set1_ps(ep.bias[row]);
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mask = column_mask(cols, v);
      if (!mask) continue;
      const __m512i sum = _mm512_sub_epi32(acc[r][v], comp);
      if (store.out == QType::I32) {
        store.sums(sum, r, v, mask);
      } else {
        store(_mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scale, bias), r, v, mask);
      }
    }
  }
}

template <int MR, int NV>
NIBBLE_INLINE void start_int_tile(__m512i (&acc)[MR][NV], const Tile& t) {
  const int32_t* p = static_cast<const int32_t*>(t.partial);
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      acc[r][v] =
          t.first ? _mm512_setzero_si512() : _mm512_loadu_si512(p + r * t.partial_ld + v * 16);
    }
  }
}

// Float tiles (mode A16): the same with float sums.
template <int MR, int NV>
NIBBLE_INLINE void finish_f32_tile(__m512 (&acc)[MR][NV], const Tile& t, const TileEpilogue& ep) {
  if (!t.last) {
    float* p = static_cast<float*>(t.partial);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) _mm512_storeu_ps(p + r * t.partial_ld + v * 16, acc[r][v]);
    }
    return;
  }
  const TileStore store(t, ep);
  const int rows = t.rows, cols = t.cols;
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    if (r >= rows) continue;
    const int64_t row = t.row0 + r;
    const __m512 scale = _mm512_set1_ps(ep.scale[row]);
    const __m512 bias = _mm512_set1_ps(ep.bias[row]);
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mask = column_mask(cols, v);
      if (!mask) continue;
      store(_mm512_fmadd_ps(acc[r][v], scale, bias), r, v, mask);
    }
  }
}

template <int MR, int NV>
NIBBLE_INLINE void start_f32_tile(__m512 (&acc)[MR][NV], const Tile& t) {
  const float* p = static_cast<const float*>(t.partial);
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      acc[r][v] = t.first ? _mm512_setzero_ps() : _mm512_loadu_ps(p + r * t.partial_ld + v * 16);
    }
  }
}

}  // namespace nibble::kernels::qgemm_detail::avx512
