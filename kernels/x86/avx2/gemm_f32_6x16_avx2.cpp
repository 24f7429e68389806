// FP32 GEMM micro-kernel for AVX2 + FMA: a 6 x 16 tile of C in 12 ymm accumulators.
//
// Packed operands (kernels/include/kernels/gemm_f32.h): the A panel slice is kc groups of 6
// weights (one column of 6 rows), the B strip kc groups of 16 activations (one row of 16
// columns). Each step of k loads two B vectors, broadcasts the 6 A values and issues 12 FMAs:
// 12 accumulators + 2 B vectors + 1 broadcast fill the 16 registers. The epilogue runs on the
// accumulators before the only store; partial tiles use vmaskmov, full ones plain moves.
#include <immintrin.h>

#include "kernels/x86/avx2/vec_math_avx2.h"

namespace nibble::kernels::avx2 {
namespace {

constexpr int MR = 6;
constexpr int NV = 2;  // vectors of 8 per row
constexpr int NR = NV * 8;

template <bool kFull>
inline void store_tile(__m256 (&acc)[MR][NV], float* c, int64_t ldc, int64_t rows, int64_t cols,
                       bool accumulate, const TileEpilogue* ep) {
  __m256i mask[NV];
  for (int v = 0; v < NV; ++v) mask[v] = lanes(cols - v * 8);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    if (!kFull && r >= rows) break;
    float* row = c + r * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      if (!kFull && v * 8 >= cols) break;
      __m256 x = acc[r][v];
      if (kFull) {
        if (accumulate) x = _mm256_add_ps(x, _mm256_loadu_ps(row + v * 8));
        if (ep) x = apply_epilogue(*ep, x, r, v * 8, nullptr);
        _mm256_storeu_ps(row + v * 8, x);
      } else {
        if (accumulate) x = _mm256_add_ps(x, _mm256_maskload_ps(row + v * 8, mask[v]));
        if (ep) x = apply_epilogue(*ep, x, r, v * 8, &mask[v]);
        _mm256_maskstore_ps(row + v * 8, mask[v], x);
      }
    }
  }
}

}  // namespace

void gemm_f32_ukernel_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                           int64_t rows, int64_t cols, bool accumulate, const TileEpilogue* ep) {
  __m256 acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    if (r < rows) {
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + NR - 1), _MM_HINT_T0);
    }
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
    a += MR;
    b += NR;
  }
  if (rows == MR && cols == NR) {
    store_tile<true>(acc, c, ldc, rows, cols, accumulate, ep);
  } else {
    store_tile<false>(acc, c, ldc, rows, cols, accumulate, ep);
  }
}

}  // namespace nibble::kernels::avx2
