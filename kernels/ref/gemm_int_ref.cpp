// Reference low-bit GEMM (kernels/gemm_int.h): plain loops over the logical weights, the oracle
// the packed AVX2/AVX-512 kernels are tested against. B is read element by element (im2col
// included) in column chunks, so the reference also runs whole models in bounded memory.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/gemm_int.h"

namespace nibble::kernels::ref {
namespace {

constexpr int64_t kChunk = 256;  // columns of B materialized at a time

// B[k][n] of a source as a double (exact for every element type), padding included.
double source_value(const QSource& b, int64_t k, int64_t n) {
  int64_t index;
  if (b.conv == nullptr) {
    index = k * b.row_stride + n * b.col_stride;
  } else {
    const ConvGeometry& g = *b.conv;
    const int64_t taps = g.kernel_size();
    const int64_t c = k / taps;
    int64_t t = k % taps;
    const int64_t tap[3] = {t / (g.kernel[1] * g.kernel[2]), (t / g.kernel[2]) % g.kernel[1],
                            t % g.kernel[2]};
    const int64_t o[3] = {n / (g.out[1] * g.out[2]), (n / g.out[2]) % g.out[1], n % g.out[2]};
    int64_t i[3];
    for (int d = 0; d < 3; ++d) {
      i[d] = o[d] * g.stride[d] - g.pad[d] + tap[d] * g.dilation[d];
      if (i[d] < 0 || i[d] >= g.in[d]) return b.type == QType::F32 ? 0.0 : b.zero_point;
    }
    index = c * g.in_size() + (i[0] * g.in[1] + i[1]) * g.in[2] + i[2];
  }
  switch (b.type) {
    case QType::U8:
      return static_cast<const uint8_t*>(b.data)[index];
    case QType::S8:
      return static_cast<const int8_t*>(b.data)[index];
    case QType::F32:
      return static_cast<const float*>(b.data)[index];
    case QType::I32:
      break;
  }
  return 0.0;
}

float silu(float y) { return y / (1.0f + std::exp(-y)); }

// Applies the epilogue to y and stores element (m, n).
void store(const QEpilogue& ep, const QOutput& out, int64_t m, int64_t n, float y) {
  if (ep.silu) y = silu(y);
  y = std::min(std::max(y, ep.clamp_min), ep.clamp_max);
  const int64_t index = m * out.row_stride + n * out.col_stride;
  if (out.type == QType::F32) {
    static_cast<float*>(out.data)[index] = y;
    return;
  }
  const bool is_unsigned = out.type == QType::U8;
  const float lo = (is_unsigned ? 0.0f : -128.0f) - static_cast<float>(out.zero_point);
  const float hi = (is_unsigned ? 255.0f : 127.0f) - static_cast<float>(out.zero_point);
  // As QuantizeLinear: a true division; NaN (max/min keep their first operand on NaN here, so
  // test it) maps to lo like the vector code's clamp.
  const float v = y / out.scale;
  const float t = std::isnan(v) ? lo : std::min(std::max(v, lo), hi);
  const int32_t q = static_cast<int32_t>(std::nearbyint(t)) + out.zero_point;
  if (is_unsigned) {
    static_cast<uint8_t*>(out.data)[index] = static_cast<uint8_t>(q);
  } else {
    static_cast<int8_t*>(out.data)[index] = static_cast<int8_t>(q);
  }
}

}  // namespace

void qgemm_reference(QuantMode mode, int64_t rows, int64_t depth, const int8_t* w,
                     int64_t w_row_stride, const float* row_scales, const QSource& b, int64_t n,
                     int64_t n_begin, int64_t n_end, const QEpilogue& ep, const QOutput& out) {
  (void)n;
  int32_t w_max_abs = 0;
  for (int64_t m = 0; m < rows; ++m) {
    for (int64_t k = 0; k < depth; ++k) {
      w_max_abs = std::max<int32_t>(w_max_abs, std::abs(int32_t{w[m * w_row_stride + k]}));
    }
  }
  const Int16Quantization q16 = int16_quantization(depth, w_max_abs, b.abs_max);

  std::vector<int32_t> bi;  // integer modes: B chunk, [depth][cols]
  std::vector<float> bf;    // A16
  std::vector<int32_t> acc_i;
  std::vector<float> acc_f;
  for (int64_t c0 = n_begin; c0 < n_end; c0 += kChunk) {
    const int64_t cols = std::min(kChunk, n_end - c0);
    if (mode == QuantMode::A16) {
      bf.assign(size_t(depth * cols), 0.0f);
      for (int64_t k = 0; k < depth; ++k) {
        for (int64_t j = 0; j < cols; ++j) {
          bf[size_t(k * cols + j)] = static_cast<float>(source_value(b, k, c0 + j));
        }
      }
    } else {
      bi.assign(size_t(depth * cols), 0);
      for (int64_t k = 0; k < depth; ++k) {
        for (int64_t j = 0; j < cols; ++j) {
          const double x = source_value(b, k, c0 + j);
          int32_t v;
          if (mode == QuantMode::A8) {
            v = static_cast<int32_t>(x) - b.zero_point;
          } else {
            const float t = static_cast<float>(x) * q16.inv_scale;
            const float qmax = static_cast<float>(q16.qmax);
            v = static_cast<int32_t>(std::nearbyint(std::min(std::max(t, -qmax), qmax)));
          }
          bi[size_t(k * cols + j)] = v;
        }
      }
    }

    for (int64_t m = 0; m < rows; ++m) {
      const int8_t* wr = w + m * w_row_stride;
      const float bias = ep.bias ? ep.bias[m] : 0.0f;
      if (mode == QuantMode::A16) {
        // The fake-quant graph's arithmetic: the dequantized weight q * scale times x.
        acc_f.assign(size_t(cols), 0.0f);
        for (int64_t k = 0; k < depth; ++k) {
          const float wk = static_cast<float>(wr[k]) * row_scales[m];
          for (int64_t j = 0; j < cols; ++j) acc_f[size_t(j)] += wk * bf[size_t(k * cols + j)];
        }
        for (int64_t j = 0; j < cols; ++j) store(ep, out, m, c0 + j, acc_f[size_t(j)] + bias);
        continue;
      }
      acc_i.assign(size_t(cols), 0);
      for (int64_t k = 0; k < depth; ++k) {
        const int32_t wk = wr[k];
        for (int64_t j = 0; j < cols; ++j) acc_i[size_t(j)] += wk * bi[size_t(k * cols + j)];
      }
      const float scale = row_scales[m] * (mode == QuantMode::A8 ? b.scale : q16.scale);
      for (int64_t j = 0; j < cols; ++j) {
        const int32_t acc = acc_i[size_t(j)];
        if (out.type == QType::I32) {
          static_cast<int32_t*>(out.data)[m * out.row_stride + (c0 + j) * out.col_stride] = acc;
        } else {
          store(ep, out, m, c0 + j, std::fma(static_cast<float>(acc), scale, bias));
        }
      }
    }
  }
}

}  // namespace nibble::kernels::ref
