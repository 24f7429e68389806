// Integer Winograd F(2x2,3x3) without ISA extensions: the transforms of the driver's reference
// level (kernels/dispatch/winograd_i16_transform.h over 4-unit vectors), a scalar epilogue, and
// ref::winograd_i16_reference, the test oracle: the algorithm of kernels/winograd_i16.h in plain
// loops.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/dispatch/winograd_i16_transform.h"
#include "kernels/winograd_i16.h"

namespace nibble::kernels {
namespace {

float silu(float y) { return y / (1.0f + std::exp(-y)); }

// gemm_int.h's A16I16 epilogue on one integer sum, stored at dst[index].
void store_value(int32_t sum, float scale, float bias, const qgemm_detail::TileEpilogue& ep,
                 void* dst, int64_t index) {
  if (ep.out == QType::I32) {
    static_cast<int32_t*>(dst)[index] = sum;
    return;
  }
  float y = std::fma(static_cast<float>(sum), scale, bias);
  if (ep.silu) y = silu(y);
  // Clamps as the vector code's max/min, which return their second operand on NaN.
  y = y > ep.clamp_min ? y : ep.clamp_min;
  y = y < ep.clamp_max ? y : ep.clamp_max;
  if (ep.out == QType::F32) {
    static_cast<float*>(dst)[index] = y;
    return;
  }
  // As QuantizeLinear: a true division, NaN to the low bound.
  float t = y / ep.out_scale;
  t = t > ep.q_lo ? t : ep.q_lo;
  t = t < ep.q_hi ? t : ep.q_hi;
  const int32_t q = static_cast<int32_t>(std::nearbyint(t)) + ep.out_zero_point;
  if (ep.out == QType::U8) {
    static_cast<uint8_t*>(dst)[index] = static_cast<uint8_t>(q);
  } else {
    static_cast<int8_t*>(dst)[index] = static_cast<int8_t>(q);
  }
}

void store_rows(const int32_t* sums, int64_t sums_ld, int rows, int64_t cols, int64_t row0,
                void* dst, int64_t dst_ld, const qgemm_detail::TileEpilogue& ep) {
  for (int r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      store_value(sums[r * sums_ld + c] - ep.comp[row0 + r], ep.scale[row0 + r],
                  ep.bias[row0 + r], ep, dst, r * dst_ld + c);
    }
  }
}

}  // namespace

namespace winograd_i16_detail::ref {
using kernels::store_rows;
}  // namespace winograd_i16_detail::ref

namespace ref {

void winograd_i16_reference(const ConvF32Shape& shape, const int8_t* values, const float* scales,
                            const float* x, float abs_max, const QEpilogue& epilogue,
                            const QOutput& out) {
  const ref::ConvGeometry& g = shape.geometry;
  const int64_t cin = shape.in_channels, cout = shape.out_channels;
  const int64_t in_h = g.in[1], in_w = g.in[2], out_h = g.out[1], out_w = g.out[2];
  int32_t max_abs = 0;
  for (int64_t i = 0; i < cout * cin * 9; ++i) max_abs = std::max<int32_t>(max_abs, std::abs(values[i]));
  const Int16Quantization q = winograd_i16_quantization(cin, max_abs, abs_max);
  const float qmax = static_cast<float>(q.qmax);

  std::vector<float> scale(static_cast<size_t>(cout)), bias(static_cast<size_t>(cout), 0.0f);
  std::vector<int32_t> comp(size_t(cout), 0);
  for (int64_t o = 0; o < cout; ++o) {
    scale[size_t(o)] = scales[o] * q.scale;
    if (epilogue.bias) bias[size_t(o)] = epilogue.bias[o];
  }
  const qgemm_detail::TileEpilogue te =
      qgemm_detail::tile_epilogue(epilogue, out, scale.data(), bias.data(), comp.data());

  // U = G' g G'ᵀ per (output, input) channel pair, int32.
  static constexpr int kG[4][3] = {{2, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 2}};
  std::vector<int32_t> u(size_t(cout * cin * 16));
  for (int64_t oc = 0; oc < cout * cin; ++oc) {
    const int8_t* w = values + oc * 9;
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 4; ++j) {
        int32_t sum = 0;
        for (int kh = 0; kh < 3; ++kh) {
          for (int kw = 0; kw < 3; ++kw) sum += kG[i][kh] * w[kh * 3 + kw] * kG[j][kw];
        }
        u[size_t(oc * 16 + i * 4 + j)] = sum;
      }
    }
  }
  static constexpr int kBt[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr int kAt[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
  const size_t out_bytes = out.type == QType::U8 || out.type == QType::S8 ? 1 : 4;
  std::vector<int32_t> quantized(size_t(cin * in_h * in_w));
  std::vector<int32_t> v(size_t(cin * 16));
  for (int64_t image = 0; image < shape.batch; ++image) {
    const float* src = x + image * cin * in_h * in_w;
    for (size_t i = 0; i < quantized.size(); ++i) {
      quantized[i] = winograd_i16_detail::quantize_value(src[i], q.inv_scale, qmax);
    }
    for (int64_t ty = 0; ty < out_h; ty += 2) {
      for (int64_t tx = 0; tx < out_w; tx += 2) {
        // V = Bᵀ d B per input channel, d the 4x4 window at (ty - pad, tx - pad), zero outside.
        for (int64_t c = 0; c < cin; ++c) {
          int32_t d[4][4];
          for (int i = 0; i < 4; ++i) {
            for (int j = 0; j < 4; ++j) {
              const int64_t y = ty - g.pad[1] + i, xx = tx - g.pad[2] + j;
              d[i][j] = y >= 0 && y < in_h && xx >= 0 && xx < in_w
                            ? quantized[size_t((c * in_h + y) * in_w + xx)]
                            : 0;
            }
          }
          for (int i = 0; i < 4; ++i) {
            for (int j = 0; j < 4; ++j) {
              int32_t sum = 0;
              for (int a = 0; a < 4; ++a) {
                for (int b = 0; b < 4; ++b) sum += kBt[i][a] * d[a][b] * kBt[j][b];
              }
              v[size_t(c * 16 + i * 4 + j)] = sum;
            }
          }
        }
        for (int64_t o = 0; o < cout; ++o) {
          // uint32 arithmetic: the output transform's sums of these may wrap around (signed
          // overflow would be undefined behaviour); its result is exact modulo 2^32 and fits.
          uint32_t m[16] = {};
          for (int64_t c = 0; c < cin; ++c) {
            for (int p = 0; p < 16; ++p) {
              m[p] += static_cast<uint32_t>(u[size_t((o * cin + c) * 16 + p)]) *
                      static_cast<uint32_t>(v[size_t(c * 16 + p)]);
            }
          }
          for (int r = 0; r < 2 && ty + r < out_h; ++r) {
            for (int s = 0; s < 2 && tx + s < out_w; ++s) {
              uint32_t four_y = 0;
              for (int a = 0; a < 4; ++a) {
                for (int b = 0; b < 4; ++b) {
                  four_y += static_cast<uint32_t>(kAt[r][a] * kAt[s][b]) * m[a * 4 + b];
                }
              }
              const int32_t y = static_cast<int32_t>(four_y) / 4;  // exact: 4 divides it
              uint8_t* dst = static_cast<uint8_t*>(out.data) +
                             size_t(image * cout * out.row_stride) * out_bytes;
              store_value(y, scale[size_t(o)], bias[size_t(o)], te, dst,
                          o * out.row_stride + (ty + r) * out_w + tx + s);
            }
          }
        }
      }
    }
  }
}

}  // namespace ref
}  // namespace nibble::kernels

NIBBLE_WINOGRAD_I16_DEFINE(ref, 4, store_rows)
