// Per-ISA entry points of the weight-only Winograd path (kernels/winograd_a16.h).
#pragma once

#include <cstdint>

namespace nibble::kernels {

// Dequantizes and transforms one panel (winograd_a16_transform.h): U = G g Gᵀ for F(tile x tile,
// 3x3) over values [0, count) of the nine tap sections at `packed` (section_bytes apart; value j
// scaled by scale_pattern[j % period]), point p of value j at u[p * point_stride + j]. period is
// a multiple of 16 (it covers every ISA's lane count).
#define NIBBLE_WINOGRAD_A16_DECLARE(ns)                                                         \
  namespace ns {                                                                                \
  void winograd_a16_transform_panel(int tile, const uint8_t* packed, int64_t section_bytes,     \
                                    int bits, const float* scale_pattern, int64_t period,       \
                                    int64_t count, float* u, int64_t point_stride);             \
  }
NIBBLE_WINOGRAD_A16_DECLARE(ref)
NIBBLE_WINOGRAD_A16_DECLARE(avx2)
NIBBLE_WINOGRAD_A16_DECLARE(avx512)
#undef NIBBLE_WINOGRAD_A16_DECLARE

}  // namespace nibble::kernels
