// The weight transform of the weight-only Winograd path (kernels/winograd_a16.h), written once
// over a lane count and compiled per ISA (kernels/ref/winograd_a16_ref.cpp,
// kernels/x86/*/winograd_a16_*.cpp): for a group of Lanes channel pairs at a time, the nine taps
// are dequantized straight from the packed 4/8-bit sections into registers (w = q · scale, as
// DequantizeLinear), then U = G g Gᵀ is computed in float and stored into the per-point packed
// A. The lanes are values of the compiler's vector extension (the ISA's registers where Lanes
// matches them: plain lane loops over arrays came out scalar or through the stack here), and
// the matrix loops are unrolled against the constant coefficients of G.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "kernels/dispatch/winograd_f32_transform.h"

// Internal linkage: each ISA's file instantiates these templates with its own flags, and files
// that share a lane count would otherwise share symbols, of which the linker keeps only one.
namespace nibble::kernels::winograd {
namespace {

template <int64_t Lanes>
struct LaneTypes {
  typedef float F32 __attribute__((vector_size(Lanes * sizeof(float))));
  typedef int32_t I32 __attribute__((vector_size(Lanes * sizeof(int32_t))));
};

// out[l] = scale_pattern[l] · q[l] for values [first, first + Lanes) of one tap section
// (gemm_a16_f32.h's run encoding): a byte per value at 8 bits; at 4 bits value j of a 64-value
// run in the low nibble of byte j (High false: first % 64 < 32) or the high nibble of byte
// j - 32 (High true). first is a multiple of Lanes, Lanes divides 32. The int8 -> int32
// widening is spelled out for the ISAs' lane counts: the compilers leave it scalar.
template <int Bits, bool High, int64_t Lanes>
inline __attribute__((always_inline)) void dequantize_lanes(const uint8_t* section, int64_t first,
                                                            const float* scale_pattern,
                                                            typename LaneTypes<Lanes>::F32& out) {
  using I32 = typename LaneTypes<Lanes>::I32;
  using F32 = typename LaneTypes<Lanes>::F32;
  const uint8_t* bytes = Bits == 8 ? section + first : section + first / 64 * 32 + first % 32;
  I32 q;
#if defined(__AVX512F__)
  if constexpr (Lanes == 16) {
    // The zero-masking form: GCC 12 warns about the plain one's undefined merge source.
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes));
    q = I32(_mm512_maskz_cvtepi8_epi32(0xFFFF, packed));
  } else
#endif
#if defined(__AVX2__)
  if constexpr (Lanes == 8) {
    q = I32(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes))));
  } else
#endif
  {
    for (int64_t l = 0; l < Lanes; ++l) q[l] = static_cast<int8_t>(bytes[l]);
  }
  if constexpr (Bits == 4) q = High ? q >> 4 : (q << 28) >> 28;  // sign-extended nibbles
  F32 scales;
  std::memcpy(&scales, scale_pattern, sizeof(scales));
  out = __builtin_convertvector(q, F32) * scales;
}

// out[r] = Σ_k G[r][k] · in[k] for every row r of G. Rows r, r + 1 of G that differ only in the
// sign of the middle coefficient (the ±x interpolation points) share their even part: out =
// even ± odd, 2 operations instead of 3 each. Zero coefficients cost nothing (constants after
// unrolling).
template <int Tile, class V>
inline __attribute__((always_inline)) void apply_g(const V (&in)[3],
                                                   V (&out)[Matrices<Tile>::kAlpha]) {
  using Mx = Matrices<Tile>;
  constexpr int A = Mx::kAlpha;
  auto term = [&](const double* g, int k) { return in[k] * static_cast<float>(g[k]); };
#pragma GCC unroll 8
  for (int r = 0; r < A; ++r) {
    const double* g = Mx::G[r];
    const bool paired = r + 1 < A && g[1] != 0 && Mx::G[r + 1][0] == g[0] &&
                        Mx::G[r + 1][1] == -g[1] && Mx::G[r + 1][2] == g[2];
    const bool pair_second = r > 0 && Mx::G[r - 1][1] != 0 && Mx::G[r - 1][0] == g[0] &&
                             Mx::G[r - 1][1] == -g[1] && Mx::G[r - 1][2] == g[2];
    if (pair_second) continue;  // written with row r - 1
    if (paired) {
      const V even = term(g, 0) + term(g, 2), odd = term(g, 1);
      out[r] = even + odd;
      out[r + 1] = even - odd;
      continue;
    }
    V sum = {};
    bool empty = true;
#pragma GCC unroll 3
    for (int k = 0; k < 3; ++k) {
      if (g[k] == 0) continue;
      const V t = g[k] == 1 ? in[k] : term(g, k);
      sum = empty ? t : sum + t;
      empty = false;
    }
    out[r] = sum;
  }
}

// U = G g Gᵀ for the Lanes channel pairs starting at value `first` of the nine tap sections
// (tap t = 3·kh + kw at packed + t * section_bytes): point p of pair l at dst[p * dst_stride + l].
template <int Tile, int Bits, bool High, int64_t Lanes>
void transform_weight_group(const uint8_t* packed, int64_t section_bytes, int64_t first,
                            const float* scale_pattern, float* dst, int64_t dst_stride) {
  using V = typename LaneTypes<Lanes>::F32;
  constexpr int A = Matrices<Tile>::kAlpha;
  // (G g)[i][l] = Σ_k G[i][k] g[k][l] (column l of the kernel), then
  // U[i][c] = Σ_l (G g)[i][l] G[c][l].
  V left[3][A];
#pragma GCC unroll 3
  for (int l = 0; l < 3; ++l) {
    V column[3];
#pragma GCC unroll 3
    for (int k = 0; k < 3; ++k) {
      dequantize_lanes<Bits, High, Lanes>(packed + (3 * k + l) * section_bytes, first,
                                          scale_pattern, column[k]);
    }
    apply_g<Tile>(column, left[l]);
  }
#pragma GCC unroll 8
  for (int i = 0; i < A; ++i) {
    const V row[3] = {left[0][i], left[1][i], left[2][i]};
    V u[A];
    apply_g<Tile>(row, u);
#pragma GCC unroll 8
    for (int c = 0; c < A; ++c) std::memcpy(dst + (i * A + c) * dst_stride, &u[c], sizeof(V));
  }
}

// The group's transform for its bit width and nibble half.
template <int Tile, int64_t Lanes>
inline void transform_weight_group(const uint8_t* packed, int64_t section_bytes, int bits,
                                   int64_t first, const float* scale_pattern, float* dst,
                                   int64_t dst_stride) {
  if (bits == 8) {
    transform_weight_group<Tile, 8, false, Lanes>(packed, section_bytes, first, scale_pattern, dst,
                                                  dst_stride);
  } else if (first % 64 < 32) {
    transform_weight_group<Tile, 4, false, Lanes>(packed, section_bytes, first, scale_pattern, dst,
                                                  dst_stride);
  } else {
    transform_weight_group<Tile, 4, true, Lanes>(packed, section_bytes, first, scale_pattern, dst,
                                                 dst_stride);
  }
}

// Values [0, count) of one panel's nine tap sections (each section_bytes long, whole 64-value
// runs, so whole groups of Lanes are readable past `count`), value j scaled by
// scale_pattern[j % period] (period a multiple of Lanes): point p of value j goes to
// u[p * point_stride + j], exactly `count` values per point.
template <int Tile, int64_t Lanes>
void transform_weight_lanes(const uint8_t* packed, int64_t section_bytes, int bits,
                            const float* scale_pattern, int64_t period, int64_t count, float* u,
                            int64_t point_stride) {
  constexpr int kPoints = Matrices<Tile>::kAlpha * Matrices<Tile>::kAlpha;
  int64_t j = 0;
  for (; j + Lanes <= count; j += Lanes) {
    transform_weight_group<Tile, Lanes>(packed, section_bytes, bits, j, scale_pattern + j % period,
                                        u + j, point_stride);
  }
  if (j < count) {  // the last, partial group through a buffer
    alignas(64) float tail[kPoints][Lanes];
    transform_weight_group<Tile, Lanes>(packed, section_bytes, bits, j, scale_pattern + j % period,
                                        tail[0], Lanes);
    for (int p = 0; p < kPoints; ++p) {
      std::memcpy(u + p * point_stride + j, tail[p], sizeof(float) * size_t(count - j));
    }
  }
}

}  // namespace
}  // namespace nibble::kernels::winograd

// Defines namespace `ns`'s winograd_a16_transform_panel (declared in
// kernels/dispatch/winograd_a16_internal.h) over groups of `lanes` pairs.
#define NIBBLE_WINOGRAD_A16_DEFINE(ns, lanes)                                                   \
  namespace nibble::kernels::ns {                                                               \
  void winograd_a16_transform_panel(int tile, const uint8_t* packed, int64_t section_bytes,     \
                                    int bits, const float* scale_pattern, int64_t period,       \
                                    int64_t count, float* u, int64_t point_stride) {            \
    switch (tile) {                                                                             \
      case 2:                                                                                   \
        return winograd::transform_weight_lanes<2, lanes>(packed, section_bytes, bits,          \
                                                          scale_pattern, period, count, u,      \
                                                          point_stride);                        \
      case 4:                                                                                   \
        return winograd::transform_weight_lanes<4, lanes>(packed, section_bytes, bits,          \
                                                          scale_pattern, period, count, u,      \
                                                          point_stride);                        \
      default:                                                                                  \
        return winograd::transform_weight_lanes<6, lanes>(packed, section_bytes, bits,          \
                                                          scale_pattern, period, count, u,      \
                                                          point_stride);                        \
    }                                                                                           \
  }                                                                                             \
  }
