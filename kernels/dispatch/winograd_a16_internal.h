// Per-ISA entry points of the weight-only Winograd path (kernels/winograd_a16.h).
#pragma once

#include <cstdint>

namespace nibble::kernels {

// U = G g Gᵀ for F(tile x tile, 3x3) over `count` channel pairs (winograd_a16_transform.h):
// taps[t * tap_stride + j] in, point p at u[p * point_stride + j] out. taps must hold whole
// groups of the ISA's lane count (16 floats cover every ISA).
#define NIBBLE_WINOGRAD_A16_DECLARE(ns)                                                   \
  namespace ns {                                                                          \
  void winograd_a16_transform_taps(int tile, const float* taps, int64_t tap_stride,       \
                                   int64_t count, float* u, int64_t point_stride);        \
  }
NIBBLE_WINOGRAD_A16_DECLARE(ref)
NIBBLE_WINOGRAD_A16_DECLARE(avx2)
NIBBLE_WINOGRAD_A16_DECLARE(avx512)
#undef NIBBLE_WINOGRAD_A16_DECLARE

}  // namespace nibble::kernels
