// Winograd transforms of the reference level: the shared lane-loop code
// (kernels/dispatch/winograd_f32_transform.h) over strips of 8 tiles, the reference GEMM's NR,
// built without ISA flags.
#include "kernels/dispatch/winograd_f32_transform.h"

namespace {
struct CopyLanes {
  static constexpr int64_t kOverrun = 0;
  static void copy(float* dst, const float* src, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
  }
};
}  // namespace

NIBBLE_WINOGRAD_DEFINE(ref, 8, CopyLanes)
