// Per-ISA parts of the integer Winograd F(2x2,3x3) path (kernels/winograd_i16.h); the driver is
// kernels/dispatch/winograd_i16.cpp, the transforms kernels/dispatch/winograd_i16_transform.h.
//
// Activations travel as channel pairs: one int32 "unit" holds the int16 values of channels 2u
// and 2u + 1 at one pixel, which is the B operand layout of the A16I16 GEMM tiles
// ([pairs][NR][2] int16). The input transform is linear and runs on the 16-bit halves
// independently, so it transforms both channels of a pair at once and writes V straight into
// the tiles' B strips.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/dispatch/gemm_int_kernels.h"
#include "kernels/winograd_f32.h"

namespace nibble::kernels::winograd_i16_detail {

struct IsaKernels {
  // Quantizes one row of channels c (r0) and c + 1 (r1; null: zeros) — `width` floats each —
  // as q = clamp(nearbyint(x · inv_scale), -qmax, qmax) into units of padded columns
  // [pad, pad + width) of a phase-split row (winograd_f32.h; tile 2): padded column X at
  // out[(X % 2) · half + X / 2]. The other columns are left as they are.
  void (*quantize_row)(const float* r0, const float* r1, int64_t width, int64_t pad,
                       float inv_scale, float qmax, int64_t half, int32_t* out);
  // Input transform of one channel pair for one strip of `lanes` tiles (winograd_f32.h's runs
  // over a phase-split plane of units): point p's `lanes` units at v + p · point_stride; lanes
  // outside the runs are zeroed.
  void (*input)(const int32_t* plane, int64_t pitch, const WinogradRun* runs, int64_t num_runs,
                int64_t lanes, int32_t* v, int64_t point_stride);
  // Output transform of one output channel for one strip: reads point p's `lanes` int32 sums at
  // m + p · point_stride and writes Y = (Aᵀ M A) / 4 (exact, wrap-around arithmetic) as 2 rows
  // of 2 · lanes pixels, pixel (r, c) of lane l at out[(r · lanes + l) · 2 + c].
  void (*output)(const int32_t* m, int64_t point_stride, int64_t lanes, int32_t* out);
  // U = G' g G'ᵀ for 64-value runs [run_begin, run_end) of the nine tap sections (packed at
  // `bits`, section_bytes apart): point p's run at u + p · point_stride + 64 · run.
  void (*transform_weights)(const uint8_t* sections, int64_t section_bytes, int bits,
                            int64_t run_begin, int64_t run_end, int16_t* u,
                            int64_t point_stride);
  // The A16I16 epilogue (gemm_int.h) on `rows` rows of `cols` integer sums (row r at
  // sums + r · sums_ld, constants of row row0 + r) into dst + r · dst_ld.
  void (*store_rows)(const int32_t* sums, int64_t sums_ld, int rows, int64_t cols, int64_t row0,
                     void* dst, int64_t dst_ld, const qgemm_detail::TileEpilogue& ep);
};

// q = clamp(nearbyint(x · inv_scale), -qmax, qmax); NaN goes to -qmax like the vector code's
// max (which returns its second operand on NaN).
inline int32_t quantize_value(float x, float inv_scale, float qmax) {
  const float t = x * inv_scale;
  const float lo = t > -qmax ? t : -qmax;
  return static_cast<int32_t>(std::nearbyint(lo < qmax ? lo : qmax));
}

namespace ref {
const IsaKernels& isa_kernels();
}
namespace avx2 {
const IsaKernels& isa_kernels();
}
namespace avx512 {
const IsaKernels& isa_kernels();
}

}  // namespace nibble::kernels::winograd_i16_detail
