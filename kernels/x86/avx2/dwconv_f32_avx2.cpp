// Depthwise FP32 convolution row kernel for AVX2 + FMA: one output row of one channel,
// out[i] = epilogue(sum_t w[t] * in_t[i]), with every tap's input run contiguous (the driver,
// kernels/dispatch/conv_f32.cpp, pads and, for stride 2, de-interleaves the input plane).
//
// 32 outputs at a time in 4 accumulators, so each tap's broadcast weight feeds 4 FMAs; the
// row's tail loads with vmaskmov and stores through a small buffer (masked stores are slow on
// some CPUs).
#include <immintrin.h>

#include <cstring>

#include "kernels/conv_f32.h"
#include "kernels/x86/avx2/vec_math_avx2.h"

namespace nibble::kernels::avx2 {

void dwconv_f32_row(int64_t taps, const float* const* inputs, const float* weights,
                    int64_t width, float* out, const TileEpilogue* epilogue) {
  int64_t i = 0;
  for (; i + 32 <= width; i += 32) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    for (int64_t t = 0; t < taps; ++t) {
      const __m256 w = _mm256_set1_ps(weights[t]);
      const float* in = inputs[t] + i;
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[v] = _mm256_fmadd_ps(w, _mm256_loadu_ps(in + 8 * v), acc[v]);
    }
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      __m256 x = acc[v];
      if (epilogue) x = apply_epilogue(*epilogue, x, 0, i + 8 * v, nullptr);
      _mm256_storeu_ps(out + i + 8 * v, x);
    }
  }
  for (; i < width; i += 8) {
    const int64_t count = width - i < 8 ? width - i : 8;
    const __m256i mask = lanes(count);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t t = 0; t < taps; ++t) {
      acc = _mm256_fmadd_ps(_mm256_set1_ps(weights[t]), _mm256_maskload_ps(inputs[t] + i, mask),
                            acc);
    }
    if (epilogue) acc = apply_epilogue(*epilogue, acc, 0, i, &mask);
    if (count == 8) {
      _mm256_storeu_ps(out + i, acc);
    } else {
      alignas(32) float buffer[8];
      _mm256_store_ps(buffer, acc);
      std::memcpy(out + i, buffer, static_cast<size_t>(count) * sizeof(float));
    }
  }
}

}  // namespace nibble::kernels::avx2
