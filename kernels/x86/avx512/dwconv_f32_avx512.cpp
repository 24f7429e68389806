// Depthwise FP32 convolution row kernel for AVX-512: one output row of one channel,
// out[i] = epilogue(sum_t w[t] * in_t[i]), with every tap's input run contiguous (the driver,
// kernels/dispatch/conv_f32.cpp, pads and, for stride 2, de-interleaves the input plane).
//
// 64 outputs at a time in 4 accumulators, so each tap's broadcast weight feeds 4 FMAs and the
// loads (one per FMA) stay the only limit; the row's tail uses lane masks.
#include <immintrin.h>

#include "kernels/conv_f32.h"
#include "kernels/x86/avx512/vec_math_avx512.h"

namespace nibble::kernels::avx512 {

void dwconv_f32_row(int64_t taps, const float* const* inputs, const float* weights,
                    int64_t width, float* out, const TileEpilogue* epilogue) {
  int64_t i = 0;
  for (; i + 64 <= width; i += 64) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    for (int64_t t = 0; t < taps; ++t) {
      const __m512 w = _mm512_set1_ps(weights[t]);
      const float* in = inputs[t] + i;
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[v] = _mm512_fmadd_ps(w, _mm512_loadu_ps(in + 16 * v), acc[v]);
    }
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      __m512 x = acc[v];
      if (epilogue) x = apply_epilogue(*epilogue, x, 0, i + 16 * v, 0xFFFF);
      _mm512_storeu_ps(out + i + 16 * v, x);
    }
  }
  for (; i < width; i += 16) {
    const __mmask16 mask = lanes(width - i);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t t = 0; t < taps; ++t) {
      acc = _mm512_fmadd_ps(_mm512_set1_ps(weights[t]), _mm512_maskz_loadu_ps(mask, inputs[t] + i),
                            acc);
    }
    if (epilogue) acc = apply_epilogue(*epilogue, acc, 0, i, mask);
    _mm512_mask_storeu_ps(out + i, mask, acc);
  }
}

}  // namespace nibble::kernels::avx512
