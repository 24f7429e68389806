// Shared pieces of the AVX2 low-bit GEMM kernels (included only by kernels/x86/avx2/*.cpp, which
// are compiled with -mavx2 -mfma -mf16c): weight panel expansion, the tile epilogue and its SiLU.
// Everything lives in qgemm_detail::avx2 so that nothing here can be merged with the AVX-512
// copies at link time.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/dispatch/gemm_int_kernels.h"

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

// ---- epilogue --------------------------------------------------------------------------------

// x * sigmoid(x), as x / (1 + e) for x >= 0 and x e / (1 + e) for x < 0 with e = e^-|x|, which
// never overflows; e is held at 2^-126 or more so that every step stays on normal floats
// (denormal operands cost a microcode assist each). e = 2^t, t = -|x| log2(e) = n + f with
// |f| <= 1/2: a degree-5 polynomial for 2^f (relative error 2.4e-7) times 2^n built in the
// exponent field. Within about 6e-7 of x sigmoid(x) relative, and cheaper than a
// full-precision exp: the epilogue's main cost when K is small (1x1 convolutions).
NIBBLE_INLINE __m256 silu(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 magnitude = _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF)));
  const __m256 t = _mm256_max_ps(_mm256_mul_ps(magnitude, _mm256_set1_ps(-1.44269504088896341f)),
                                 _mm256_set1_ps(-126.0f));
  const __m256 n = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(t, n);
  __m256 p = _mm256_set1_ps(1.327647129e-3f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.675540961e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550713092e-2f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402212024e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931469440e-1f));
  p = _mm256_fmadd_ps(p, f, one);
  const __m256i exponent =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
  // x e where x is negative: blendv picks by the sign bit of its third operand.
  const __m256 numerator = _mm256_blendv_ps(x, _mm256_mul_ps(x, e), x);
  return _mm256_div_ps(numerator, _mm256_add_ps(one, e));
}

// Lanes [0, valid) set, valid in [1, 8].
NIBBLE_INLINE __m256i lane_mask(int valid) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The epilogue proper, on int32 sums already less the zero-point compensation, one vector of
// a row at a time. It is instantiated per output kind and activation (epilogue::dispatch), so
// that the stores have no branches per vector and keep their constants in registers; tiles
// run it on their accumulators, the depthwise kernel on a plane of sums (store_int_rows).
namespace epilogue {

enum class Out : uint8_t { I32, F32, U8, S8 };

// The per-call constants, in registers.
struct Constants {
  __m256 lo, hi, out_scale, q_lo, q_hi;
  __m256i zero_point;

  NIBBLE_INLINE explicit Constants(const TileEpilogue& ep)
      : lo(_mm256_set1_ps(ep.clamp_min)),
        hi(_mm256_set1_ps(ep.clamp_max)),
        out_scale(_mm256_set1_ps(ep.out_scale)),
        q_lo(_mm256_set1_ps(ep.q_lo)),
        q_hi(_mm256_set1_ps(ep.q_hi)),
        zero_point(_mm256_set1_epi32(ep.out_zero_point)) {}
};

template <Out kOut>
constexpr size_t kOutBytes = kOut == Out::I32 || kOut == Out::F32 ? 4 : 1;

// Stores lanes [0, valid) of the results of `sum` (a row's scale and bias given) at dst.
template <Out kOut, bool kSilu, bool kClamp>
NIBBLE_INLINE void store_vector(__m256i sum, __m256 scale, __m256 bias, const Constants& k,
                                void* dst, int valid) {
  if constexpr (kOut == Out::I32) {
    if (valid == 8) {
      _mm256_storeu_si256(static_cast<__m256i*>(dst), sum);
    } else {
      _mm256_maskstore_epi32(static_cast<int*>(dst), lane_mask(valid), sum);
    }
  } else {
    __m256 y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), scale, bias);
    if constexpr (kSilu) y = silu(y);
    if constexpr (kClamp) y = _mm256_min_ps(_mm256_max_ps(y, k.lo), k.hi);
    if constexpr (kOut == Out::F32) {
      if (valid == 8) {
        _mm256_storeu_ps(static_cast<float*>(dst), y);
      } else {
        _mm256_maskstore_ps(static_cast<float*>(dst), lane_mask(valid), y);
      }
    } else {
      // As QuantizeLinear (quantize_f32.h): a true division, and NaN clamps to q_lo.
      const __m256 q =
          _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(y, k.out_scale), k.q_lo), k.q_hi);
      const __m256i qi = _mm256_add_epi32(_mm256_cvtps_epi32(q), k.zero_point);
      const __m128i w16 =
          _mm_packs_epi32(_mm256_castsi256_si128(qi), _mm256_extracti128_si256(qi, 1));
      const __m128i bytes =
          kOut == Out::U8 ? _mm_packus_epi16(w16, w16) : _mm_packs_epi16(w16, w16);
      if (valid == 8) {
        _mm_storel_epi64(static_cast<__m128i*>(dst), bytes);
      } else {
        alignas(16) int8_t tmp[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bytes);
        std::memcpy(dst, tmp, size_t(valid));
      }
    }
  }
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
      return activation.template operator()<Out::U8>();
    case QType::S8:
      return activation.template operator()<Out::S8>();
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
      const __m256 scale = _mm256_set1_ps(ep.scale[row0 + r]);
      const __m256 bias = _mm256_set1_ps(ep.bias[row0 + r]);
      uint8_t* d = static_cast<uint8_t*>(dst) + size_t(r * dst_ld) * epilogue::kOutBytes<kOut>;
      for (int64_t c = 0; c < cols; c += 8) {
        const int valid = cols - c >= 8 ? 8 : static_cast<int>(cols - c);
        const __m256i sum = valid == 8
                                ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + c))
                                : _mm256_maskload_epi32(s + c, lane_mask(valid));
        epilogue::store_vector<kOut, kSilu, kClamp>(
            sum, scale, bias, k, d + size_t(c) * epilogue::kOutBytes<kOut>, valid);
      }
    }
  });
}

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
  using epilogue::Out;
  epilogue::dispatch(ep, [&]<Out kOut, bool kSilu, bool kClamp>() __attribute__((always_inline)) {
    const epilogue::Constants k(ep);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      if (r >= t.rows) break;
      const int64_t row = t.row0 + r;
      const __m256i comp = _mm256_set1_epi32(ep.comp[row]);
      const __m256 scale = _mm256_set1_ps(ep.scale[row]);
      const __m256 bias = _mm256_set1_ps(ep.bias[row]);
      uint8_t* d = static_cast<uint8_t*>(t.dst) + size_t(r * t.dst_ld) * epilogue::kOutBytes<kOut>;
#pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        const int valid = t.cols - 8 * v < 8 ? t.cols - 8 * v : 8;
        if (valid <= 0) break;
        epilogue::store_vector<kOut, kSilu, kClamp>(_mm256_sub_epi32(acc[r][v], comp), scale,
                                                    bias, k,
                                                    d + size_t(8 * v) * epilogue::kOutBytes<kOut>,
                                                    valid);
      }
    }
  });
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

}  // namespace nibble::kernels::qgemm_detail::avx2
