// Shared pieces of the AVX2 low-bit GEMM kernels (included only by kernels/x86/avx2/*.cpp, which
// are compiled with -mavx2 -mfma -mf16c): weight panel expansion, the tile epilogue and its SiLU
// (on the exp of vec_math_avx2.h). Everything lives in qgemm_detail::avx2 so that nothing here
// can be merged with the AVX-512 copies at link time.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/dispatch/gemm_int_kernels.h"
#include "kernels/x86/avx2/vec_math_avx2.h"

namespace nibble::kernels::qgemm_detail::avx2 {

#ifndef NIBBLE_INLINE
#define NIBBLE_INLINE inline __attribute__((always_inline))
#endif

// ---- weight expansion (prepare_a) --------------------------------------------------------

// 32 values of a 64-value run as int8: half 0 = values 0..31, half 1 = values 32..63.
NIBBLE_INLINE __m256i load_s8x32(const uint8_t* run, int bits, int half) {
  if (bits == 8) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(run + 32 * half));
  __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(run));
  if (half) v = _mm256_srli_epi16(v, 4);
  // Two's complement nibble v -> (v ^ 8) - 8.
  const __m256i eight = _mm256_set1_epi8(8);
  return _mm256_sub_epi8(_mm256_xor_si256(_mm256_and_si256(v, _mm256_set1_epi8(0x0F)), eight),
                         eight);
}

inline void prepare_s8(const uint8_t* packed, int bits, int64_t count, void* out) {
  int8_t* o = static_cast<int8_t*>(out);
  for (int64_t i = 0; i < count; i += 64) {
    const uint8_t* run = packed + i * bits / 8;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + i), load_s8x32(run, bits, 0));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + i + 32), load_s8x32(run, bits, 1));
  }
}

// w = 16 * hi + lo with lo = ((w + 8) & 15) - 8 in [-8, 7] and hi in [-8, 8]: both halves keep
// vpmaddubsw pair sums within 2 * 255 * 8, so eight of them add up in int16.
inline void prepare_s8_split(const uint8_t* packed, int bits, int64_t count, void* out) {
  int8_t* hi_out = static_cast<int8_t*>(out);
  int8_t* lo_out = hi_out + count;
  const __m256i eight = _mm256_set1_epi16(8), fifteen = _mm256_set1_epi16(15);
  for (int64_t i = 0; i < count; i += 64) {
    const uint8_t* run = packed + i * bits / 8;
    for (int half = 0; half < 2; ++half) {
      const __m256i w = load_s8x32(run, bits, half);
      for (int quarter = 0; quarter < 2; ++quarter) {
        const __m256i w16 = _mm256_cvtepi8_epi16(quarter ? _mm256_extracti128_si256(w, 1)
                                                         : _mm256_castsi256_si128(w));
        const __m256i lo =
            _mm256_sub_epi16(_mm256_and_si256(_mm256_add_epi16(w16, eight), fifteen), eight);
        const __m256i hi = _mm256_srai_epi16(_mm256_sub_epi16(w16, lo), 4);
        // Values fit int8; packs works per 128-bit lane, so fix the order with a permute.
        const int64_t at = i + 32 * half + 16 * quarter;
        const __m128i lo8 =
            _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packs_epi16(lo, lo), 0x08));
        const __m128i hi8 =
            _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packs_epi16(hi, hi), 0x08));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(lo_out + at), lo8);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(hi_out + at), hi8);
      }
    }
  }
}

inline void prepare_s16(const uint8_t* packed, int bits, int64_t count, void* out) {
  int16_t* o = static_cast<int16_t*>(out);
  for (int64_t i = 0; i < count; i += 64) {
    const uint8_t* run = packed + i * bits / 8;
    for (int half = 0; half < 2; ++half) {
      const __m256i w = load_s8x32(run, bits, half);
      int16_t* dst = o + i + 32 * half;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst),
                          _mm256_cvtepi8_epi16(_mm256_castsi256_si128(w)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 16),
                          _mm256_cvtepi8_epi16(_mm256_extracti128_si256(w, 1)));
    }
  }
}

inline void prepare_f32(const uint8_t* packed, int bits, int64_t count, void* out) {
  float* o = static_cast<float*>(out);
  for (int64_t i = 0; i < count; i += 64) {
    const uint8_t* run = packed + i * bits / 8;
    for (int half = 0; half < 2; ++half) {
      const __m256i w = load_s8x32(run, bits, half);
      const __m128i parts[2] = {_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)};
      float* dst = o + i + 32 * half;
      for (int p = 0; p < 2; ++p) {
        _mm256_storeu_ps(dst + 16 * p, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[p])));
        _mm256_storeu_ps(dst + 16 * p + 8,
                         _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(parts[p], 8))));
      }
    }
  }
}

// ---- epilogue --------------------------------------------------------------------------------

// x * sigmoid(x) = x / (1 + e^-x), the reciprocal by vrcpps and one Newton step (about 2 ulp
// away from a division, at a fraction of its cost).
NIBBLE_INLINE __m256 silu(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 d =
      _mm256_add_ps(one, ::nibble::kernels::avx2::exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), x)));
  __m256 r = _mm256_rcp_ps(d);
  r = _mm256_fmadd_ps(r, _mm256_fnmadd_ps(d, r, one), r);
  return _mm256_mul_ps(x, r);
}

// Lanes [0, valid) set, valid in [1, 8].
NIBBLE_INLINE __m256i lane_mask(int valid) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The epilogue constants of one tile, held in locals (the output stores cannot alias them, so
// the compiler keeps them in registers across the tile).
struct TileStore {
  QType out;
  bool silu, clamp;
  __m256 lo, hi, inv_scale, q_lo, q_hi;
  __m256i zero_point;
  void* dst;
  int64_t ld;

  NIBBLE_INLINE TileStore(const Tile& t, const TileEpilogue& ep)
      : out(ep.out),
        silu(ep.silu),
        clamp(ep.clamp_min > -std::numeric_limits<float>::infinity() ||
              ep.clamp_max < std::numeric_limits<float>::infinity()),
        lo(_mm256_set1_ps(ep.clamp_min)),
        hi(_mm256_set1_ps(ep.clamp_max)),
        inv_scale(_mm256_set1_ps(ep.inv_out_scale)),
        q_lo(_mm256_set1_ps(ep.q_lo)),
        q_hi(_mm256_set1_ps(ep.q_hi)),
        zero_point(_mm256_set1_epi32(ep.out_zero_point)),
        dst(t.dst),
        ld(t.dst_ld) {}

  // Activates and stores y, the float result of row r, columns [8 vec, 8 vec + valid).
  NIBBLE_INLINE void operator()(__m256 y, int r, int vec, int valid) const {
    if (silu) y = avx2::silu(y);
    if (clamp) y = _mm256_min_ps(_mm256_max_ps(y, lo), hi);
    const int64_t offset = r * ld + vec * 8;
    if (out == QType::F32) {
      float* d = static_cast<float*>(dst) + offset;
      if (valid == 8) {
        _mm256_storeu_ps(d, y);
      } else {
        _mm256_maskstore_ps(d, lane_mask(valid), y);
      }
      return;
    }
    const __m256 q = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(y, inv_scale), q_lo), q_hi);
    const __m256i qi = _mm256_add_epi32(_mm256_cvtps_epi32(q), zero_point);
    const __m128i w16 =
        _mm_packs_epi32(_mm256_castsi256_si128(qi), _mm256_extracti128_si256(qi, 1));
    const __m128i bytes = out == QType::U8 ? _mm_packus_epi16(w16, w16) : _mm_packs_epi16(w16, w16);
    int8_t* d = static_cast<int8_t*>(dst) + offset;
    if (valid == 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d), bytes);
    } else {
      alignas(16) int8_t tmp[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bytes);
      std::memcpy(d, tmp, size_t(valid));
    }
  }
  // Integer sums straight out (QType::I32).
  NIBBLE_INLINE void sums(__m256i s, int r, int vec, int valid) const {
    int32_t* d = static_cast<int32_t*>(dst) + r * ld + vec * 8;
    if (valid == 8) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), s);
    } else {
      _mm256_maskstore_epi32(d, lane_mask(valid), s);
    }
  }
};

// Epilogue of an integer tile: acc[r][v] holds the int32 sums of row r, columns 8v...
template <int MR, int NV>
NIBBLE_INLINE void finish_int_tile(__m256i (&acc)[MR][NV], const Tile& t, const TileEpilogue& ep) {
  if (!t.last) {
    int32_t* p = static_cast<int32_t*>(t.partial);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + r * t.partial_ld + v * 8), acc[r][v]);
      }
    }
    return;
  }
  const TileStore store(t, ep);
  const int rows = t.rows, cols = t.cols;
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    if (r >= rows) continue;
    const int64_t row = t.row0 + r;
    const __m256i comp = _mm256_set1_epi32(ep.comp[row]);
    const __m256 scale = _mm256_set1_ps(ep.scale[row]);
    const __m256 bias = _mm256_set1_ps(ep.bias[row]);
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      const int valid = cols - 8 * v < 8 ? cols - 8 * v : 8;
      if (valid <= 0) continue;
      const __m256i sum = _mm256_sub_epi32(acc[r][v], comp);
      if (store.out == QType::I32) {
        store.sums(sum, r, v, valid);
      } else {
        store(_mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), scale, bias), r, v, valid);
      }
    }
  }
}

template <int MR, int NV>
NIBBLE_INLINE void start_int_tile(__m256i (&acc)[MR][NV], const Tile& t) {
  const int32_t* p = static_cast<const int32_t*>(t.partial);
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      acc[r][v] =
          t.first
              ? _mm256_setzero_si256()
              : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + r * t.partial_ld + v * 8));
    }
  }
}

// Float tiles (mode A16): the same with float sums.
template <int MR, int NV>
NIBBLE_INLINE void finish_f32_tile(__m256 (&acc)[MR][NV], const Tile& t, const TileEpilogue& ep) {
  if (!t.last) {
    float* p = static_cast<float*>(t.partial);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) _mm256_storeu_ps(p + r * t.partial_ld + v * 8, acc[r][v]);
    }
    return;
  }
  const TileStore store(t, ep);
  const int rows = t.rows, cols = t.cols;
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    if (r >= rows) continue;
    const int64_t row = t.row0 + r;
    const __m256 scale = _mm256_set1_ps(ep.scale[row]);
    const __m256 bias = _mm256_set1_ps(ep.bias[row]);
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      const int valid = cols - 8 * v < 8 ? cols - 8 * v : 8;
      if (valid <= 0) continue;
      store(_mm256_fmadd_ps(acc[r][v], scale, bias), r, v, valid);
    }
  }
}

template <int MR, int NV>
NIBBLE_INLINE void start_f32_tile(__m256 (&acc)[MR][NV], const Tile& t) {
  const float* p = static_cast<const float*>(t.partial);
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      acc[r][v] = t.first ? _mm256_setzero_ps() : _mm256_loadu_ps(p + r * t.partial_ld + v * 8);
    }
  }
}

}  // namespace nibble::kernels::qgemm_detail::avx2
