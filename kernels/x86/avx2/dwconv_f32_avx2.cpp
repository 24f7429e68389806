// Depthwise FP32 convolution for AVX2 + FMA: the output plane of one channel,
// out[r][i] = epilogue(sum_t w[t] * in_t[r * pitch + i]), with every tap's input run contiguous
// (the driver, kernels/dispatch/dwconv_f32.cpp, pads and, for stride 2, de-interleaves the
// input plane).
//
// Four output rows at a time, 8 columns per step: four independent FMA chains per tap, so the
// latency of one row's dependent FMAs never stalls the pipes even for narrow rows. The epilogue
// is instantiated per activation and runs on the four accumulators before their stores
// (interleaving them serializes it). Row tails load with vmaskmov and store through a small
// buffer (masked stores are slow on some CPUs).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/conv_f32.h"
#include "kernels/x86/avx2/vec_math_avx2.h"

namespace nibble::kernels::avx2 {
namespace {

constexpr int kRows = 4;

template <Activation A>
void plane(int64_t taps, const float* const* inputs, int64_t pitch, const float* weights,
           int64_t width, int64_t rows, float* out, const TileEpilogue& ep, bool has_epilogue) {
  const __m256 bias = _mm256_set1_ps(has_epilogue && ep.bias ? ep.bias[0] : 0.0f);
  const float* residual = has_epilogue ? ep.residual : nullptr;
  for (int64_t r = 0; r < rows; r += kRows) {
    // Rows past the end recompute the last row (a valid address) and are not stored.
    int64_t row[kRows];
    for (int q = 0; q < kRows; ++q) row[q] = std::min<int64_t>(r + q, rows - 1);
    for (int64_t i = 0; i < width; i += 8) {
      const int64_t count = std::min<int64_t>(8, width - i);
      const __m256i mask = lanes(count);
      auto load = [&](const float* p) {
        return count == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
      };
      __m256 acc[kRows];
#pragma GCC unroll 4
      for (int q = 0; q < kRows; ++q) acc[q] = _mm256_setzero_ps();
      for (int64_t t = 0; t < taps; ++t) {
        const __m256 w = _mm256_set1_ps(weights[t]);
        const float* in = inputs[t] + i;
#pragma GCC unroll 4
        for (int q = 0; q < kRows; ++q) acc[q] = _mm256_fmadd_ps(w, load(in + row[q] * pitch), acc[q]);
      }
      if (has_epilogue) {
#pragma GCC unroll 4
        for (int q = 0; q < kRows; ++q) {
          const float* res = residual ? residual + row[q] * width + i : nullptr;
          __m256 x = _mm256_add_ps(acc[q], bias);
          if (res && ep.residual_first) x = _mm256_add_ps(x, load(res));
          x = activate(A, ep.clip_min, ep.clip_max, x);
          if (res && !ep.residual_first) x = _mm256_add_ps(x, load(res));
          acc[q] = x;
        }
      }
      for (int q = 0; q < kRows && r + q < rows; ++q) {
        float* dst = out + (r + q) * width + i;
        if (count == 8) {
          _mm256_storeu_ps(dst, acc[q]);
        } else {
          alignas(32) float buffer[8];
          _mm256_store_ps(buffer, acc[q]);
          std::memcpy(dst, buffer, static_cast<size_t>(count) * sizeof(float));
        }
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

}  // namespace nibble::kernels::avx2
