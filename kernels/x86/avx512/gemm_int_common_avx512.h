// Shared pieces of the AVX-512 low-bit GEMM kernels (included only by kernels/x86/avx512/*.cpp,
// which are compiled with AVX-512 F/BW/VL/DQ + VNNI flags): weight panel expansion, the tile
// epilogue and its SiLU. Everything lives in qgemm_detail::avx512 so that nothing here can be
// merged with the AVX2 copies at link time.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/dispatch/gemm_int_kernels.h"

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

// ---- epilogue --------------------------------------------------------------------------------

// x * sigmoid(x), as x / (1 + e) for x >= 0 and x e / (1 + e) for x < 0 with e = e^-|x|, which
// never overflows; e is held at 2^-126 or more so that every step stays on normal floats
// (denormal operands cost a microcode assist each). e = 2^t, t = -|x| log2(e) = n + f with
// |f| <= 1/2: a degree-5 polynomial for 2^f (relative error 2.4e-7) scaled by 2^n. Within
// about 6e-7 of x sigmoid(x) relative, in 15 instructions: the epilogue's main cost when K is
// small (1x1 convolutions), so this is cheaper than a full-precision exp.
NIBBLE_INLINE __m512 silu(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 magnitude =
      _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF)));
  const __m512 t = _mm512_max_ps(_mm512_mul_ps(magnitude, _mm512_set1_ps(-1.44269504088896341f)),
                                 _mm512_set1_ps(-126.0f));
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(1.327647129e-3f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.675540961e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550713092e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402212024e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931469440e-1f));
  p = _mm512_fmadd_ps(p, f, one);
  const __m512 e = _mm512_scalef_ps(p, n);
  const __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  return _mm512_div_ps(_mm512_mask_mul_ps(x, negative, x, e), _mm512_add_ps(one, e));
}

// The epilogue proper, on int32 sums already less the zero-point compensation, one vector of
// a row at a time. It is instantiated per output kind and activation (epilogue::dispatch), so
// that the stores have no branches per vector and keep their constants in registers; tiles
// run it on their accumulators, the depthwise kernel on a plane of sums (store_int_rows).
namespace epilogue {

enum class Out : uint8_t { I32, F32, Q8 };  // Q8: U8 and S8 alike (the bounds differ)

// The per-call constants, in registers.
struct Constants {
  __m512 lo, hi, out_scale, q_lo, q_hi;
  __m512i zero_point;

  NIBBLE_INLINE explicit Constants(const TileEpilogue& ep)
      : lo(_mm512_set1_ps(ep.clamp_min)),
        hi(_mm512_set1_ps(ep.clamp_max)),
        out_scale(_mm512_set1_ps(ep.out_scale)),
        q_lo(_mm512_set1_ps(ep.q_lo)),
        q_hi(_mm512_set1_ps(ep.q_hi)),
        zero_point(_mm512_set1_epi32(ep.out_zero_point)) {}
};

template <Out kOut>
constexpr size_t kOutBytes = kOut == Out::Q8 ? 1 : 4;

NIBBLE_INLINE __mmask16 first_lanes(int64_t count) {
  return count >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << count) - 1);
}

// A mask with a gap (Tile::kept_columns dropped a lane before a kept one): the kept lanes of x
// moved down to the first lanes, and `mask` made the mask of those.
NIBBLE_INLINE __m512i pack_kept(__m512i x, __mmask16& mask) {
  if ((unsigned(mask) & (unsigned(mask) + 1)) == 0) return x;
  x = _mm512_maskz_compress_epi32(mask, x);
  mask = first_lanes(__builtin_popcount(unsigned(mask)));
  return x;
}

// Stores the lanes `mask` of the results of `sum` (a row's scale and bias given) to consecutive
// elements from dst: lane i at dst[i] when `mask` is a run of first lanes, else packed.
template <Out kOut, bool kSilu, bool kClamp>
NIBBLE_INLINE void store_vector(__m512i sum, __m512 scale, __m512 bias, const Constants& k,
                                void* dst, __mmask16 mask) {
  if constexpr (kOut == Out::I32) {
    sum = pack_kept(sum, mask);
    _mm512_mask_storeu_epi32(dst, mask, sum);
  } else {
    __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scale, bias);
    if constexpr (kSilu) y = silu(y);
    if constexpr (kClamp) y = _mm512_min_ps(_mm512_max_ps(y, k.lo), k.hi);
    if constexpr (kOut == Out::F32) {
      y = _mm512_castsi512_ps(pack_kept(_mm512_castps_si512(y), mask));
      _mm512_mask_storeu_ps(dst, mask, y);
    } else {
      // As QuantizeLinear (quantize_f32.h): a true division, and NaN clamps to q_lo.
      const __m512 q =
          _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(y, k.out_scale), k.q_lo), k.q_hi);
      const __m512i qi = pack_kept(_mm512_add_epi32(_mm512_cvtps_epi32(q), k.zero_point), mask);
      _mm_mask_storeu_epi8(dst, mask, _mm512_cvtepi32_epi8(qi));
    }
  }
}

// The lanes of output vector v (columns 16 v ...) that a tile of `cols` columns writes, given
// Tile::kept_columns, and how many elements before them the row writes.
struct KeptLanes {
  __mmask16 mask;
  int offset;
};

NIBBLE_INLINE KeptLanes kept_lanes(uint64_t kept_columns, int cols, int v) {
  const int lanes = cols - 16 * v;
  if (lanes <= 0) return {__mmask16(0), 0};
  return {__mmask16(first_lanes(lanes) & (kept_columns >> (16 * v))),
          __builtin_popcountll(kept_columns & ((uint64_t{1} << (16 * v)) - 1))};
}

// Calls f.template operator()<kOut, kSilu, kClamp>() for the epilogue's output kind and
// activation.
template <typename F>
NIBBLE_INLINE void dispatch(const TileEpilogue& ep, F&& f) {
  const bool clamp = ep.clamp_min > -std::numeric_limits<float>::infinity() ||
                     ep.clamp_max < std::numeric_limits<float>::infinity();
  auto activation = [&]<Out kOut>() __attribute__((always_inline)) {
    if (ep.silu) {
      if (clamp) return f.template operator()<kOut, true, true>();
      return f.template operator()<kOut, true, false>();
    }
    if (clamp) return f.template operator()<kOut, false, true>();
    f.template operator()<kOut, false, false>();
  };
  switch (ep.out) {
    case QType::I32:
      return f.template operator()<Out::I32, false, false>();
    case QType::F32:
      return activation.template operator()<Out::F32>();
    case QType::U8:
    case QType::S8:
      return activation.template operator()<Out::Q8>();
  }
}

}  // namespace epilogue

// `rows` rows of `cols` results from int32 sums (less the compensation), row r from
// sums + r * sums_ld, written to dst + r * dst_ld (elements of the output type), with the
// per-row constants of rows row0 + r.
__attribute__((noinline)) inline void store_int_rows(const int32_t* sums, int64_t sums_ld, int rows,
                                                     int64_t cols, int64_t row0, void* dst,
                                                     int64_t dst_ld, const TileEpilogue& ep) {
  using epilogue::Out;
  epilogue::dispatch(ep, [&]<Out kOut, bool kSilu, bool kClamp>() __attribute__((always_inline)) {
    const epilogue::Constants k(ep);
    for (int r = 0; r < rows; ++r) {
      const int32_t* s = sums + r * sums_ld;
      const __m512 scale = _mm512_set1_ps(ep.scale[row0 + r]);
      const __m512 bias = _mm512_set1_ps(ep.bias[row0 + r]);
      uint8_t* d = static_cast<uint8_t*>(dst) + size_t(r * dst_ld) * epilogue::kOutBytes<kOut>;
      for (int64_t c = 0; c < cols; c += 16) {
        const __mmask16 mask = epilogue::first_lanes(cols - c);
        const __m512i sum = _mm512_maskz_loadu_epi32(mask, s + c);
        epilogue::store_vector<kOut, kSilu, kClamp>(
            sum, scale, bias, k, d + size_t(c) * epilogue::kOutBytes<kOut>, mask);
      }
    }
  });
}

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
  epilogue::KeptLanes lanes[NV];
#pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) lanes[v] = epilogue::kept_lanes(t.kept_columns, t.cols, v);
  using epilogue::Out;
  epilogue::dispatch(ep, [&]<Out kOut, bool kSilu, bool kClamp>() __attribute__((always_inline)) {
    const epilogue::Constants k(ep);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      if (r >= t.rows) break;
      const int64_t row = t.row0 + r;
      const __m512i comp = _mm512_set1_epi32(ep.comp[row]);
      const __m512 scale = _mm512_set1_ps(ep.scale[row]);
      const __m512 bias = _mm512_set1_ps(ep.bias[row]);
      uint8_t* d = static_cast<uint8_t*>(t.dst) + size_t(r * t.dst_ld) * epilogue::kOutBytes<kOut>;
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        if (t.cols <= 16 * v) break;
        epilogue::store_vector<kOut, kSilu, kClamp>(
            _mm512_sub_epi32(acc[r][v], comp), scale, bias, k,
            d + size_t(lanes[v].offset) * epilogue::kOutBytes<kOut>, lanes[v].mask);
      }
    }
  });
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

}  // namespace nibble::kernels::qgemm_detail::avx512
