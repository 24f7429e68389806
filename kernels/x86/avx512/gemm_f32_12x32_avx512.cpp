// FP32 GEMM micro-kernel for AVX-512: a 12 x 32 tile of C in 24 zmm accumulators.
//
// Packed operands (kernels/include/kernels/gemm_f32.h): the A panel slice is kc groups of 12
// weights (one column of 12 rows), the B strip kc groups of 32 activations (one row of 32
// columns). Each step of k loads two B vectors, broadcasts the 12 A values and issues 24 FMAs;
// 24 independent accumulators cover the FMA latency of both pipes. The epilogue runs on the
// accumulators before the only store; partial tiles use lane masks.
#include <immintrin.h>

#include "kernels/x86/avx512/vec_math_avx512.h"

namespace nibble::kernels::avx512 {
namespace {

template <int MR, int NV>
inline void ukernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                    int64_t rows, int64_t cols, bool accumulate, const TileEpilogue* ep) {
  constexpr int NR = NV * 16;
  __m512 acc[MR][NV];
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  }
  // The tile's rows of C are written (or read) at the end: start fetching them now.
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r) {
    if (r < rows) {
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + NR - 1), _MM_HINT_T0);
    }
  }
  for (int64_t k = 0; k < kc; ++k) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(b + v * 16);
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
    }
    a += MR;
    b += NR;
  }
  __mmask16 mask[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) mask[v] = lanes(cols - v * 16);
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r) {
    if (r >= rows) break;
    float* row = c + r * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      if (v * 16 >= cols) break;
      __m512 x = acc[r][v];
      if (accumulate) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask[v], row + v * 16));
      if (ep) x = apply_epilogue(*ep, x, r, v * 16, mask[v]);
      _mm512_mask_storeu_ps(row + v * 16, mask[v], x);
    }
  }
}

}  // namespace

void gemm_f32_ukernel_12x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                            int64_t rows, int64_t cols, bool accumulate, const TileEpilogue* ep) {
  ukernel<12, 2>(kc, a, b, c, ldc, rows, cols, accumulate, ep);
}

#define NIBBLE_TILE_EXPERIMENT 1
#ifdef NIBBLE_TILE_EXPERIMENT
#define X(MR, NV) \
  void gemm_f32_ukernel_x##MR##_##NV(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, \
                            int64_t rows, int64_t cols, bool accumulate, const TileEpilogue* ep) { \
    ukernel<MR, NV>(kc, a, b, c, ldc, rows, cols, accumulate, ep); }
X(8, 3) X(14, 2) X(6, 4) X(16, 1) X(24, 1) X(10, 2) X(7, 4)
#endif

}  // namespace nibble::kernels::avx512
