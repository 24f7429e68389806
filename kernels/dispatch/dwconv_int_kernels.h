// Internal interface between the integer depthwise driver (dwconv_int.cpp) and its per-ISA row
// kernels (kernels/x86/avx2, kernels/x86/avx512).
#pragma once

#include <cstdint>

#include "kernels/dispatch/gemm_int_kernels.h"

namespace nibble::kernels::qdw_detail {

// The output plane of one channel: `rows` rows of `width` outputs, output (r, i) summing
//   weights[t] * inputs[t][r * pitch + i]
// over the taps, from a uint8 plane whose padding holds the zero point. Each weight is an int16
// in the low half of its int32 (the high half 0), so that vpmaddwd of a zero-extended uint8 lane
// yields the exact product. Runs must be readable up to the next multiple of the kernel's vector
// width past `width` (the driver's plane has the slack).
struct Plane {
  int64_t taps;
  const uint8_t* const* inputs;
  int64_t pitch;
  const int32_t* weights;
  int64_t width, rows;
  int64_t channel;  // index into the epilogue's per-row arrays (comp, scale, bias)
  void* dst;        // output (r, i) at element r * width + i, of the epilogue's output type
  // rows * width int32 sums (plus a vector of slack), so that the epilogue runs on full vectors
  // of the whole plane rather than on each row's partial last vector (rows of 20 or 40 in YOLO's
  // heads).
  int32_t* sums;
};

using PlaneKernel = void (*)(const Plane& plane, const qgemm_detail::TileEpilogue& epilogue);

namespace avx2 {
void dwconv_int_plane(const Plane& plane, const qgemm_detail::TileEpilogue& epilogue);
}
namespace avx512 {
void dwconv_int_plane(const Plane& plane, const qgemm_detail::TileEpilogue& epilogue);
}

// Bytes a kernel may read past the last run of a plane.
constexpr int64_t kPlaneSlack = 64;

}  // namespace nibble::kernels::qdw_detail
