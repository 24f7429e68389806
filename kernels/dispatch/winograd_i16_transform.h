// The transforms of the integer Winograd F(2x2,3x3) path (kernels/winograd_i16.h), written once
// over a vector width and compiled per ISA (kernels/ref/winograd_i16_ref.cpp,
// kernels/x86/*/winograd_i16_*.cpp).
//
// The vectors are the compiler's vector extension, VU units (int32: one channel pair) wide;
// the input transform adds and subtracts them as int16 lanes, the output transform as uint32
// lanes (wrap-around: exact modulo 2^32, see winograd_i16.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "kernels/dispatch/winograd_i16_internal.h"

namespace nibble::kernels::winograd_i16_detail {

// Internal linkage: each ISA's file instantiates these with its own flags.
namespace {

template <int64_t VU>
struct Vec {
  typedef int16_t I16 __attribute__((vector_size(VU * 4)));
  typedef int32_t I32 __attribute__((vector_size(VU * 4)));
  typedef uint32_t U32 __attribute__((vector_size(VU * 4)));
};

template <class V>
inline __attribute__((always_inline)) V load(const int32_t* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}

template <class V>
inline __attribute__((always_inline)) void store(int32_t* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}

// Stores the first n (<= VU) units of v: a masked store where the ISA has one (a memcpy of
// variable length is a library call).
template <class V>
inline __attribute__((always_inline)) void store_first(int32_t* p, const V& v, int64_t n) {
  constexpr int64_t kUnits = sizeof(V) / 4;
  if (n == kUnits) return store(p, v);
#if defined(__AVX512F__)
  if constexpr (kUnits == 16) {
    return _mm512_mask_storeu_epi32(p, static_cast<__mmask16>((1u << n) - 1), __m512i(v));
  }
#endif
#if defined(__AVX2__)
  if constexpr (kUnits == 8) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_maskstore_epi32(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(n)), lanes), __m256i(v));
  }
#endif
  std::memcpy(p, &v, sizeof(int32_t) * size_t(n));
}

// Lanes 0..VU/2-1 (Half false) or VU/2..VU-1 (Half true) of a and b, interleaved.
template <bool Half, class V, size_t... I>
inline __attribute__((always_inline)) V interleave(const V& a, const V& b, std::index_sequence<I...>) {
  constexpr size_t kLanes = sizeof...(I), kFirst = Half ? kLanes / 2 : 0;
  return __builtin_shufflevector(a, b, (I % 2 ? kLanes + kFirst + I / 2 : kFirst + I / 2)...);
}

inline int32_t pair_unit(int32_t q0, int32_t q1) {
  return static_cast<int32_t>((static_cast<uint32_t>(q0) & 0xFFFFu) | (static_cast<uint32_t>(q1) << 16));
}

template <int64_t VU>
void quantize_row(const float* r0, const float* r1, int64_t width, int64_t pad, float inv_scale,
                  float qmax, int64_t half, int32_t* out) {
  int64_t x = 0;
#if defined(__AVX512F__)
  if constexpr (VU == 16) {
    // 32 columns at a time: units of both channels, then split into the even and odd padded
    // columns (phases) of the row.
    const __m512 inv = _mm512_set1_ps(inv_scale), lo = _mm512_set1_ps(-qmax),
                 hi = _mm512_set1_ps(qmax);
    auto q = [&](const float* p) {
      if (p == nullptr) return _mm512_setzero_si512();
      return _mm512_cvtps_epi32(
          _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_loadu_ps(p), inv), lo), hi));
    };
    auto units = [&](int64_t at) {
      const __m512i q0 = q(r0 + at), q1 = q(r1 ? r1 + at : nullptr);
      return _mm512_or_si512(_mm512_and_si512(q0, _mm512_set1_epi32(0xFFFF)),
                             _mm512_slli_epi32(q1, 16));
    };
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (; x + 32 <= width; x += 32) {
      const __m512i a = units(x), b = units(x + 16);
      const int64_t first = x + pad;  // padded column of unit 0
      _mm512_storeu_si512(out + (first % 2) * half + first / 2,
                          _mm512_permutex2var_epi32(a, even, b));
      _mm512_storeu_si512(out + ((first + 1) % 2) * half + (first + 1) / 2,
                          _mm512_permutex2var_epi32(a, odd, b));
    }
  }
#endif
  for (; x < width; ++x) {
    const int32_t q0 = quantize_value(r0[x], inv_scale, qmax);
    const int32_t q1 = r1 ? quantize_value(r1[x], inv_scale, qmax) : 0;
    const int64_t column = x + pad;
    out[(column % 2) * half + column / 2] = pair_unit(q0, q1);
  }
}

// V = Bᵀ d B on the int16 halves of the units: |V| <= 4·qmax, no overflow.
template <int64_t VU>
void input(const int32_t* plane, int64_t pitch, const WinogradRun* runs, int64_t num_runs,
           int64_t lanes, int32_t* v, int64_t point_stride) {
  using V = typename Vec<VU>::I16;
  const int64_t half = pitch / 2;
  int64_t covered = 0;
  for (int64_t r = 0; r < num_runs; ++r) {
    const WinogradRun& run = runs[r];
    for (int64_t i = 0; i < run.count; i += VU) {
      // Column j of a tile's window: phase j % 2, one unit further every second column. The
      // loads may read up to VU - 1 units past the run (the plane has room for them).
      const int32_t* base = plane + run.origin + i;
      V t[4][4];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const int32_t* column = base + (j % 2) * half + j / 2;
        const V d0 = load<V>(column), d1 = load<V>(column + pitch),
                d2 = load<V>(column + 2 * pitch), d3 = load<V>(column + 3 * pitch);
        t[0][j] = d0 - d2;
        t[1][j] = d1 + d2;
        t[2][j] = d2 - d1;
        t[3][j] = d1 - d3;
      }
      const int64_t n = std::min(VU, run.count - i);
      int32_t* dst = v + run.lane + i;
#pragma GCC unroll 4
      for (int a = 0; a < 4; ++a) {
        const V out[4] = {t[a][0] - t[a][2], t[a][1] + t[a][2], t[a][2] - t[a][1],
                          t[a][1] - t[a][3]};
#pragma GCC unroll 4
        for (int c = 0; c < 4; ++c) {
          int32_t* point = dst + (4 * a + c) * point_stride;
          store_first(point, out[c], n);
        }
      }
    }
    covered = std::max(covered, run.lane + run.count);
  }
  if (covered < lanes) {
    for (int p = 0; p < 16; ++p) {
      std::memset(v + p * point_stride + covered, 0, sizeof(int32_t) * size_t(lanes - covered));
    }
  }
}

// Y = (Aᵀ M A) / 4 in uint32 lanes (wrap-around), the division an exact arithmetic shift.
template <int64_t VU>
void output(const int32_t* m, int64_t point_stride, int64_t lanes, int32_t* out) {
  using U = typename Vec<VU>::U32;
  using I = typename Vec<VU>::I32;
  for (int64_t l = 0; l < lanes; l += VU) {
    U s0[4], s1[4];  // rows of Aᵀ M
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const U m0 = load<U>(m + j * point_stride + l), m1 = load<U>(m + (4 + j) * point_stride + l),
              m2 = load<U>(m + (8 + j) * point_stride + l),
              m3 = load<U>(m + (12 + j) * point_stride + l);
      s0[j] = m0 + m1 + m2;
      s1[j] = m1 - m2 - m3;
    }
    const I y00 = I(s0[0] + s0[1] + s0[2]) >> 2, y01 = I(s0[1] - s0[2] - s0[3]) >> 2;
    const I y10 = I(s1[0] + s1[1] + s1[2]) >> 2, y11 = I(s1[1] - s1[2] - s1[3]) >> 2;
    // Pixels (r, 0) and (r, 1) of each lane side by side.
    int32_t* row0 = out + l * 2;
    int32_t* row1 = out + (lanes + l) * 2;
    constexpr auto lane_indices = std::make_index_sequence<VU>();
    store(row0, interleave<false>(y00, y01, lane_indices));
    store(row0 + VU, interleave<true>(y00, y01, lane_indices));
    store(row1, interleave<false>(y10, y11, lane_indices));
    store(row1 + VU, interleave<true>(y10, y11, lane_indices));
  }
}

// U = G' g G'ᵀ per 64-value run; |U| <= 9·128, int16. Plain loops over the run's values,
// which the compiler vectorizes with the file's ISA.
template <int Bits>
void transform_weight_runs(const uint8_t* sections, int64_t section_bytes, int64_t run_begin,
                           int64_t run_end, int16_t* u, int64_t point_stride) {
  for (int64_t run = run_begin; run < run_end; ++run) {
    int16_t g[9][64];
    for (int t = 0; t < 9; ++t) {
      const uint8_t* bytes = sections + t * section_bytes + run * 64 * Bits / 8;
      if constexpr (Bits == 8) {
        for (int j = 0; j < 64; ++j) g[t][j] = static_cast<int8_t>(bytes[j]);
      } else {
        for (int j = 0; j < 32; ++j) {
          g[t][j] = static_cast<int16_t>(static_cast<int8_t>(static_cast<uint8_t>(bytes[j] << 4)) >> 4);
          g[t][32 + j] = static_cast<int16_t>(static_cast<int8_t>(bytes[j]) >> 4);
        }
      }
    }
    // left[i][kw] = Σ_kh G'[i][kh] g[kh][kw]
    int16_t left[4][3][64];
    for (int kw = 0; kw < 3; ++kw) {
      for (int j = 0; j < 64; ++j) {
        const int16_t a = g[kw][j], b = g[3 + kw][j], c = g[6 + kw][j];
        left[0][kw][j] = static_cast<int16_t>(2 * a);
        left[1][kw][j] = static_cast<int16_t>(a + b + c);
        left[2][kw][j] = static_cast<int16_t>(a - b + c);
        left[3][kw][j] = static_cast<int16_t>(2 * c);
      }
    }
    // U[i][k] = Σ_kw left[i][kw] G'[k][kw]
    for (int i = 0; i < 4; ++i) {
      int16_t* dst = u + 4 * i * point_stride + run * 64;
      for (int j = 0; j < 64; ++j) {
        const int16_t a = left[i][0][j], b = left[i][1][j], c = left[i][2][j];
        dst[j] = static_cast<int16_t>(2 * a);
        dst[point_stride + j] = static_cast<int16_t>(a + b + c);
        dst[2 * point_stride + j] = static_cast<int16_t>(a - b + c);
        dst[3 * point_stride + j] = static_cast<int16_t>(2 * c);
      }
    }
  }
}

void transform_weights(const uint8_t* sections, int64_t section_bytes, int bits, int64_t run_begin,
                       int64_t run_end, int16_t* u, int64_t point_stride) {
  if (bits == 8) {
    transform_weight_runs<8>(sections, section_bytes, run_begin, run_end, u, point_stride);
  } else {
    transform_weight_runs<4>(sections, section_bytes, run_begin, run_end, u, point_stride);
  }
}

}  // namespace
}  // namespace nibble::kernels::winograd_i16_detail

// Defines namespace `ns`'s isa_kernels() (winograd_i16_internal.h) over vectors of `vu` units,
// with the epilogue `store_rows`.
#define NIBBLE_WINOGRAD_I16_DEFINE(ns, vu, store_rows)                                          \
  namespace nibble::kernels::winograd_i16_detail::ns {                                          \
  const IsaKernels& isa_kernels() {                                                             \
    static const IsaKernels kernels{quantize_row<vu>, input<vu>, output<vu>, transform_weights, \
                                    store_rows};                                                \
    return kernels;                                                                             \
  }                                                                                             \
  }
