// Depthwise FP32 convolution for AVX-512: the output plane of one channel,
// out[r][i] = epilogue(sum_t w[t] * in_t[r * pitch + i]), with every tap's input run contiguous
// (the driver, kernels/dispatch/dwconv_f32.cpp, pads and, for stride 2, de-interleaves the
// input plane).
//
// Four output rows at a time, 16 columns per step: four independent FMA chains per tap, so the
// latency of one row's 9..49 dependent FMAs never stalls the pipes even for narrow rows (20 or
// 40 wide in YOLO's heads), and the loads (one per FMA) stay the limit. Row tails use lane
// masks. The epilogue is instantiated per activation and runs on the four accumulators before
// their stores (interleaving them serializes it, see gemm_f32_12x32_avx512.cpp).
#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include "kernels/conv_f32.h"
#include "kernels/x86/avx512/vec_math_avx512.h"

namespace nibble::kernels::avx512 {
namespace {

constexpr int kRows = 4;

template <Activation A>
void plane(int64_t taps, const float* const* inputs, int64_t pitch, const float* weights,
           int64_t width, int64_t rows, float* out, const TileEpilogue& ep, bool has_epilogue) {
  const __m512 bias = _mm512_set1_ps(has_epilogue && ep.bias ? ep.bias[0] : 0.0f);
  const float* residual = has_epilogue ? ep.residual : nullptr;
  for (int64_t r = 0; r < rows; r += kRows) {
    // Rows past the end recompute the last row (a valid address) and are not stored.
    int64_t row[kRows];
    for (int q = 0; q < kRows; ++q) row[q] = std::min<int64_t>(r + q, rows - 1);
    for (int64_t i = 0; i < width; i += 16) {
      const __mmask16 mask = lanes(width - i);
      __m512 acc[kRows];
#pragma GCC unroll 4
      for (int q = 0; q < kRows; ++q) acc[q] = _mm512_setzero_ps();
      for (int64_t t = 0; t < taps; ++t) {
        const __m512 w = _mm512_set1_ps(weights[t]);
        const float* in = inputs[t] + i;
#pragma GCC unroll 4
        for (int q = 0; q < kRows; ++q) {
          acc[q] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(mask, in + row[q] * pitch), acc[q]);
        }
      }
      if (has_epilogue) {
#pragma GCC unroll 4
        for (int q = 0; q < kRows; ++q) {
          const float* res = residual ? residual + row[q] * width + i : nullptr;
          __m512 x = _mm512_add_ps(acc[q], bias);
          if (res && ep.residual_first) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, res));
          x = activate(A, ep.clip_min, ep.clip_max, x);
          if (res && !ep.residual_first) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, res));
          acc[q] = x;
        }
      }
#pragma GCC unroll 4
      for (int q = 0; q < kRows; ++q) {
        if (r + q < rows) _mm512_mask_storeu_ps(out + (r + q) * width + i, mask, acc[q]);
      }
    }
  }
}

}  // namespace

void dwconv_f32_rows(int64_t taps, const float* const* inputs, int64_t input_pitch,
                     const float* weights, int64_t width, int64_t rows, float* out,
                     const TileEpilogue* epilogue) {
  const TileEpilogue none{nullptr, nullptr, 0, Activation::None, 0.0f, 0.0f, false};
  const TileEpilogue& ep = epilogue ? *epilogue : none;
  const bool has = epilogue != nullptr;
  auto run = [&](auto activation) {
    plane<decltype(activation)::value>(taps, inputs, input_pitch, weights, width, rows, out, ep,
                                       has);
  };
  switch (ep.activation) {
    case Activation::None: return run(std::integral_constant<Activation, Activation::None>{});
    case Activation::Relu: return run(std::integral_constant<Activation, Activation::Relu>{});
    case Activation::Clip: return run(std::integral_constant<Activation, Activation::Clip>{});
    case Activation::Sigmoid:
      return run(std::integral_constant<Activation, Activation::Sigmoid>{});
    case Activation::SiLU: return run(std::integral_constant<Activation, Activation::SiLU>{});
  }
}

}  // namespace nibble::kernels::avx512
