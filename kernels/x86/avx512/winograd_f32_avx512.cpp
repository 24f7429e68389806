// Winograd transforms for AVX-512: the shared lane-loop code
// (kernels/dispatch/winograd_f32_transform.h) over strips of 32 tiles (the 12x32 GEMM's NR), two
// zmm per row of lanes; runs of tiles are copied a whole vector at a time (runs are
// short: a scalar tail loop would dominate).
#include <immintrin.h>

#include "kernels/dispatch/winograd_f32_transform.h"

namespace {
// Whole vectors, past n up to the next multiple of 16 (kOverrun): masked stores are slow on
// AMD cores and block store-to-load forwarding into the transform's loads.
struct CopyLanes {
  static constexpr int64_t kOverrun = 16;
  static void copy(float* dst, const float* src, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
      _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
    }
  }
};
}  // namespace

NIBBLE_WINOGRAD_DEFINE(avx512, 32, CopyLanes)
