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

// Flat 3x3 planes (conv_f32.h), as the AVX-512 kernel: interior blocks two at a time (four
// spill the 16 ymm registers: 10% slower on 80x80) with unmasked loads and one accumulator per
// tap column (the left and right sums added only where the neighbour column is inside the row),
// edge blocks one at a time with vmaskmov loads.
template <Activation A>
void flat3x3(const DwFlatPlane& plane, const float* weights, float* out, const TileEpilogue& ep,
             bool has_epilogue) {
  constexpr int kLanes = 8, kBlocks = 2, M = kDwFlatMasksPerBlock;
  const int64_t count = plane.count, blocks = (count + kLanes - 1) / kLanes;
  const uint16_t* masks = plane.masks;
  __m256 wv[9];
  for (int t = 0; t < 9; ++t) wv[t] = _mm256_set1_ps(weights[t]);
  const __m256 bias = _mm256_set1_ps(has_epilogue && ep.bias ? ep.bias[0] : 0.0f);
  const float* residual = has_epilogue ? ep.residual : nullptr;
  const __m256i lane_bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  auto vector_mask = [&](uint16_t m) {  // lane l all ones where bit l is set
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(m), lane_bits), lane_bits);
  };
  auto finish = [&](__m256 v, int64_t f0) {
    const int64_t valid = std::min<int64_t>(kLanes, count - f0);
    const __m256i mask = lanes(valid);
    auto load = [&](const float* p) {
      return valid == kLanes ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
    };
    if (has_epilogue) {
      v = _mm256_add_ps(v, bias);
      if (residual && ep.residual_first) v = _mm256_add_ps(v, load(residual + f0));
      v = activate(A, ep.clip_min, ep.clip_max, v);
      if (residual && !ep.residual_first) v = _mm256_add_ps(v, load(residual + f0));
    }
    if (valid == kLanes) {
      _mm256_storeu_ps(out + f0, v);
    } else {
      alignas(32) float buffer[kLanes];
      _mm256_store_ps(buffer, v);
      std::memcpy(out + f0, buffer, static_cast<size_t>(valid) * sizeof(float));
    }
  };
  auto interior = [&](int64_t b) {
    return b * kLanes >= plane.lo_margin && (b + 1) * kLanes + plane.hi_margin <= count;
  };
  for (int64_t b = 0; b < blocks;) {
    if (b + kBlocks <= blocks && interior(b) && interior(b + kBlocks - 1)) {
      __m256 acc[kBlocks][3];
#pragma GCC unroll 4
      for (int q = 0; q < kBlocks; ++q) acc[q][0] = acc[q][1] = acc[q][2] = _mm256_setzero_ps();
      for (int dy = 0; dy < 3; ++dy) {
#pragma GCC unroll 3
        for (int dx = 0; dx < 3; ++dx) {
          const float* tap = plane.taps[3 * dy + dx] + b * kLanes;
#pragma GCC unroll 4
          for (int q = 0; q < kBlocks; ++q) {
            acc[q][dx] = _mm256_fmadd_ps(wv[3 * dy + dx], _mm256_loadu_ps(tap + q * kLanes), acc[q][dx]);
          }
        }
      }
#pragma GCC unroll 4
      for (int q = 0; q < kBlocks; ++q) {
        const uint16_t* m = masks + (b + q) * M;
        __m256 v = _mm256_add_ps(acc[q][1], _mm256_and_ps(acc[q][0], _mm256_castsi256_ps(vector_mask(m[9]))));
        v = _mm256_add_ps(v, _mm256_and_ps(acc[q][2], _mm256_castsi256_ps(vector_mask(m[10]))));
        finish(v, (b + q) * kLanes);
      }
      b += kBlocks;
      continue;
    }
    const uint16_t* m = masks + b * M;
    const int64_t f0 = b * kLanes;
    __m256 acc = _mm256_setzero_ps();
    for (int dy = 0; dy < 3; ++dy) {
      for (int dx = 0; dx < 3; ++dx) {
        const float* tap = plane.taps[3 * dy + dx] + f0;  // masked lanes are not read
        acc = _mm256_fmadd_ps(_mm256_broadcast_ss(weights + 3 * dy + dx),
                              _mm256_maskload_ps(tap, vector_mask(m[3 * dy + dx])), acc);
      }
    }
    finish(acc, f0);
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
  for (int64_t r = 0; r < 2 * out_h; ++r) {
    float* even = phases + 2 * (r & 1) * phase + (r >> 1) * out_w;
    float* odd = even + phase;
    for (int64_t j = 0; j < out_w; j += 8) {
      const int64_t count = std::min<int64_t>(8, out_w - j);
      __m256 lo = _mm256_setzero_ps(), hi = lo;
      if (r < in_h) {  // the row past an odd height is padding
        // Input columns past the row read as zeros: the odd phase's padding column.
        const float* row = plane + r * in_w + 2 * j;
        const int64_t left = in_w - 2 * j;
        lo = left >= 8 ? _mm256_loadu_ps(row) : _mm256_maskload_ps(row, lanes(left));
        hi = left >= 16 ? _mm256_loadu_ps(row + 8) : _mm256_maskload_ps(row + 8, lanes(std::max<int64_t>(0, left - 8)));
      }
      // shuffle_ps picks within 128-bit lanes: [0 2 8 10 | 4 6 12 14]; the permute restores order.
      const __m256 e = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xD8));
      const __m256 o = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)), 0xD8));
      if (count == 8) {
        _mm256_storeu_ps(even + j, e);
        _mm256_storeu_ps(odd + j, o);
      } else {
        alignas(32) float buffer[16];
        _mm256_store_ps(buffer, e);
        _mm256_store_ps(buffer + 8, o);
        std::memcpy(even + j, buffer, static_cast<size_t>(count) * sizeof(float));
        std::memcpy(odd + j, buffer + 8, static_cast<size_t>(count) * sizeof(float));
      }
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

}  // namespace nibble::kernels::avx2
