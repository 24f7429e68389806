// The weight transform of the weight-only Winograd path (kernels/winograd_a16.h), written once
// over a lane count and compiled per ISA (kernels/ref/winograd_a16_ref.cpp,
// kernels/x86/*/winograd_a16_*.cpp): U = G g Gᵀ for `count` channel pairs at once, every inner
// loop over contiguous lanes, the matrix loops unrolled against constant coefficients
// (winograd::combine), in float.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/dispatch/winograd_f32_transform.h"

namespace nibble::kernels::winograd {

// U = G g Gᵀ for one group of Lanes channel pairs: taps[t * tap_stride + l] in, point p of
// pair l at dst[p * dst_stride + l].
template <int Tile, int64_t Lanes>
inline __attribute__((always_inline)) void transform_weight_group(const float* taps,
                                                                  int64_t tap_stride, float* dst,
                                                                  int64_t dst_stride) {
  using Mx = Matrices<Tile>;
  constexpr int A = Mx::kAlpha;
  // (G g)[i][l] = Σ_k G[i][k] g[k][l], then U[i][c] = Σ_l (G g)[i][l] G[c][l].
  alignas(64) float left[A][3][Lanes];
#pragma GCC unroll 8
  for (int i = 0; i < A; ++i) {
#pragma GCC unroll 3
    for (int l = 0; l < 3; ++l) {
      combine<3, Lanes>(Mx::G[i], taps + l * tap_stride, 3 * tap_stride, left[i][l]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < A; ++i) {
#pragma GCC unroll 8
    for (int c = 0; c < A; ++c) {
      combine<3, Lanes>(Mx::G[c], left[i][0], Lanes, dst + (i * A + c) * dst_stride);
    }
  }
}

// taps[t * tap_stride + j] is tap t (3·kh + kw) of channel pair j; point p of pair j goes to
// u[p * point_stride + j]. Reads whole groups of Lanes taps (up to count rounded up to Lanes)
// and writes exactly `count` values per point.
template <int Tile, int64_t Lanes>
void transform_weight_lanes(const float* taps, int64_t tap_stride, int64_t count, float* u,
                            int64_t point_stride) {
  constexpr int kPoints = Matrices<Tile>::kAlpha * Matrices<Tile>::kAlpha;
  int64_t j = 0;
  for (; j + Lanes <= count; j += Lanes) {
    transform_weight_group<Tile, Lanes>(taps + j, tap_stride, u + j, point_stride);
  }
  if (j < count) {  // the last, partial group through a buffer
    alignas(64) float tail[kPoints][Lanes];
    transform_weight_group<Tile, Lanes>(taps + j, tap_stride, tail[0], Lanes);
    for (int p = 0; p < kPoints; ++p) {
      std::memcpy(u + p * point_stride + j, tail[p], sizeof(float) * size_t(count - j));
    }
  }
}

}  // namespace nibble::kernels::winograd

// Defines namespace `ns`'s winograd_a16_transform_taps (declared in
// kernels/dispatch/winograd_a16_internal.h) over groups of `lanes` pairs.
#define NIBBLE_WINOGRAD_A16_DEFINE(ns, lanes)                                                   \
  namespace nibble::kernels::ns {                                                               \
  void winograd_a16_transform_taps(int tile, const float* taps, int64_t tap_stride,             \
                                   int64_t count, float* u, int64_t point_stride) {             \
    switch (tile) {                                                                             \
      case 2:                                                                                   \
        return winograd::transform_weight_lanes<2, lanes>(taps, tap_stride, count, u,           \
                                                          point_stride);                        \
      case 4:                                                                                   \
        return winograd::transform_weight_lanes<4, lanes>(taps, tap_stride, count, u,           \
                                                          point_stride);                        \
      default:                                                                                  \
        return winograd::transform_weight_lanes<6, lanes>(taps, tap_stride, count, u,           \
                                                          point_stride);                        \
    }                                                                                           \
  }                                                                                             \
  }
