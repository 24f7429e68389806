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

// Flat 3x3 planes (conv_f32.h): interior blocks four at a time with unmasked loads and one
// accumulator per tap column, whose left and right sums are then added only in the lanes whose
// neighbour column is inside the row; blocks at the plane's edges one at a time, every load
// masked to the taps inside the image.
template <Activation A>
void flat3x3(const DwFlatPlane& plane, const float* weights, float* out, const TileEpilogue& ep,
             bool has_epilogue) {
  constexpr int kLanes = 16, kBlocks = 4, M = kDwFlatMasksPerBlock;
  const int64_t count = plane.count, blocks = (count + kLanes - 1) / kLanes;
  const uint16_t* masks = plane.masks;
  __m512 w[9];
  for (int t = 0; t < 9; ++t) w[t] = _mm512_set1_ps(weights[t]);
  const __m512 bias = _mm512_set1_ps(has_epilogue && ep.bias ? ep.bias[0] : 0.0f);
  const float* residual = has_epilogue ? ep.residual : nullptr;
  auto finish = [&](__m512 v, int64_t f0, __mmask16 mask) {
    if (has_epilogue) {
      v = _mm512_add_ps(v, bias);
      if (residual && ep.residual_first) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, residual + f0));
      v = activate(A, ep.clip_min, ep.clip_max, v);
      if (residual && !ep.residual_first) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, residual + f0));
    }
    _mm512_mask_storeu_ps(out + f0, mask, v);
  };
  auto interior = [&](int64_t b) {
    return b * kLanes >= plane.lo_margin && (b + 1) * kLanes + plane.hi_margin <= count;
  };
  for (int64_t b = 0; b < blocks;) {
    if (b + kBlocks <= blocks && interior(b) && interior(b + kBlocks - 1)) {
      __m512 acc[kBlocks][3];
#pragma GCC unroll 4
      for (int q = 0; q < kBlocks; ++q) acc[q][0] = acc[q][1] = acc[q][2] = _mm512_setzero_ps();
      for (int dy = 0; dy < 3; ++dy) {
#pragma GCC unroll 3
        for (int dx = 0; dx < 3; ++dx) {
          const float* tap = plane.taps[3 * dy + dx] + b * kLanes;
#pragma GCC unroll 4
          for (int q = 0; q < kBlocks; ++q) {
            acc[q][dx] = _mm512_fmadd_ps(w[3 * dy + dx], _mm512_loadu_ps(tap + q * kLanes), acc[q][dx]);
          }
        }
      }
#pragma GCC unroll 4
      for (int q = 0; q < kBlocks; ++q) {
        const uint16_t* m = masks + (b + q) * M;
        __m512 v = _mm512_mask_add_ps(acc[q][1], m[9], acc[q][1], acc[q][0]);
        v = _mm512_mask_add_ps(v, m[10], v, acc[q][2]);
        finish(v, (b + q) * kLanes, __mmask16(0xFFFF));
      }
      b += kBlocks;
      continue;
    }
    const uint16_t* m = masks + b * M;
    const int64_t f0 = b * kLanes;
    __m512 acc = _mm512_setzero_ps();
    for (int dy = 0; dy < 3; ++dy) {
      for (int dx = 0; dx < 3; ++dx) {
        const float* tap = plane.taps[3 * dy + dx] + f0;  // masked lanes are not read
        acc = _mm512_fmadd_ps(w[3 * dy + dx], _mm512_maskz_loadu_ps(m[3 * dy + dx], tap), acc);
      }
    }
    finish(acc, f0, lanes(count - f0));
    ++b;
  }
}

}  // namespace

void dwconv_f32_flat3x3(const DwFlatPlane& plane, const float* weights, float* out,
                        const TileEpilogue* epilogue) {
  const TileEpilogue none{nullptr, nullptr, 0, Activation::None, 0.0f, 0.0f, false};
  const TileEpilogue& ep = epilogue ? *epilogue : none;
  const bool has = epilogue != nullptr;
  with_activation(ep.activation, [&](auto activation) {
    flat3x3<decltype(activation)::value>(plane, weights, out, ep, has);
  });
}

void dwconv_f32_split_phases(const float* plane, int64_t in_h, int64_t in_w, float* phases) {
  const int64_t out_h = (in_h + 1) / 2, out_w = (in_w + 1) / 2, phase = out_h * out_w;
  const __m512i even_index = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd_index = _mm512_add_epi32(even_index, _mm512_set1_epi32(1));
  for (int64_t r = 0; r < 2 * out_h; ++r) {
    float* even = phases + 2 * (r & 1) * phase + (r >> 1) * out_w;
    float* odd = even + phase;
    for (int64_t j = 0; j < out_w; j += 16) {
      const __mmask16 store = lanes(out_w - j);
      __m512 lo = _mm512_setzero_ps(), hi = lo;
      if (r < in_h) {  // the row past an odd height is padding
        // Input columns past the row read as zeros: the odd phase's padding column.
        const float* row = plane + r * in_w + 2 * j;
        const int64_t left = in_w - 2 * j;
        lo = _mm512_maskz_loadu_ps(lanes(left), row);
        hi = _mm512_maskz_loadu_ps(lanes(std::max<int64_t>(0, left - 16)), row + 16);
      }
      _mm512_mask_storeu_ps(even + j, store, _mm512_permutex2var_ps(lo, even_index, hi));
      _mm512_mask_storeu_ps(odd + j, store, _mm512_permutex2var_ps(lo, odd_index, hi));
    }
  }
}

void dwconv_f32_rows(int64_t taps, const float* const* inputs, int64_t input_pitch,
                     const float* weights, int64_t width, int64_t rows, float* out,
                     const TileEpilogue* epilogue) {
  const TileEpilogue none{nullptr, nullptr, 0, Activation::None, 0.0f, 0.0f, false};
  const TileEpilogue& ep = epilogue ? *epilogue : none;
  const bool has = epilogue != nullptr;
  with_activation(ep.activation, [&](auto activation) {
    plane<decltype(activation)::value>(taps, inputs, input_pitch, weights, width, rows, out, ep,
                                       has);
  });
}

}  // namespace nibble::kernels::avx512
