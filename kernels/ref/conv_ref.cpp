// Reference convolution helpers: im2col straight into packed GEMM B blocks, and a direct 2-D
// depthwise convolution. Layouts are described in kernels/ref.h.
#include <algorithm>
#include <cstring>

#include "kernels/ref.h"

namespace nibble::kernels::ref {
namespace {

constexpr int64_t NR = kGemmNR;

// Row r of the im2col matrix: channel c and kernel tap (kd, kh, kw).
struct Im2colRow {
  int64_t tap[3];  // tap offsets in input coordinates (tap index x dilation)
  int64_t offset;  // element offset of (c, tap) relative to an output position's origin
};

template <typename T>
void im2col_impl(const ConvGeometry& g, const T* image, float zero, int64_t k0, int64_t kc,
                 int64_t n0, int64_t nc, float* packed) {
  if (g.is_pointwise()) {
    // The im2col matrix is the image itself: rows are channels, columns are contiguous.
    for (int64_t s = 0; s < nc; s += NR) {
      float* strip = packed + (s / NR) * NR * kc;
      const int64_t cols = std::min(NR, nc - s);
      for (int64_t r = 0; r < kc; ++r) {
        const T* src = image + (k0 + r) * g.in_size() + n0 + s;
        float* dst = strip + r * NR;
        for (int64_t j = 0; j < cols; ++j) dst[j] = static_cast<float>(src[j]) - zero;
        for (int64_t j = cols; j < NR; ++j) dst[j] = 0.0f;
      }
    }
    return;
  }

  const int64_t plane = g.in[1] * g.in[2];
  const int64_t taps = g.kernel_size();
  Im2colRow rows[kGemmKC];
  for (int64_t r = 0; r < kc; ++r) {
    const int64_t row = k0 + r;
    const int64_t c = row / taps;
    int64_t t = row % taps;
    Im2colRow& info = rows[r];
    info.tap[2] = (t % g.kernel[2]) * g.dilation[2];
    t /= g.kernel[2];
    info.tap[1] = (t % g.kernel[1]) * g.dilation[1];
    info.tap[0] = (t / g.kernel[1]) * g.dilation[0];
    info.offset = c * g.in_size() + info.tap[0] * plane + info.tap[1] * g.in[2] + info.tap[2];
  }
  const int64_t window[3] = {(g.kernel[0] - 1) * g.dilation[0] + 1,
                             (g.kernel[1] - 1) * g.dilation[1] + 1,
                             (g.kernel[2] - 1) * g.dilation[2] + 1};

  for (int64_t s = 0; s < nc; s += NR) {
    float* strip = packed + (s / NR) * NR * kc;
    const int64_t cols = std::min(NR, nc - s);
    // Input coordinates of each column's window origin; a strip whose windows all lie inside
    // the image needs no bounds checks.
    int64_t origin[3][NR];
    int64_t base[NR];
    bool interior = cols == NR;
    for (int64_t j = 0; j < cols; ++j) {
      int64_t n = n0 + s + j;
      const int64_t o2 = n % g.out[2];
      n /= g.out[2];
      const int64_t o1 = n % g.out[1];
      const int64_t o0 = n / g.out[1];
      origin[0][j] = o0 * g.stride[0] - g.pad[0];
      origin[1][j] = o1 * g.stride[1] - g.pad[1];
      origin[2][j] = o2 * g.stride[2] - g.pad[2];
      for (int d = 0; d < 3; ++d) {
        interior = interior && origin[d][j] >= 0 && origin[d][j] + window[d] <= g.in[d];
      }
      base[j] = origin[0][j] * plane + origin[1][j] * g.in[2] + origin[2][j];
    }
    if (interior) {
      for (int64_t r = 0; r < kc; ++r) {
        const T* src = image + rows[r].offset;
        float* dst = strip + r * NR;
        for (int64_t j = 0; j < NR; ++j) dst[j] = static_cast<float>(src[base[j]]) - zero;
      }
      continue;
    }
    for (int64_t r = 0; r < kc; ++r) {
      const Im2colRow& info = rows[r];
      float* dst = strip + r * NR;
      for (int64_t j = 0; j < cols; ++j) {
        bool inside = true;
        for (int d = 0; d < 3; ++d) {
          const int64_t x = origin[d][j] + info.tap[d];
          inside = inside && x >= 0 && x < g.in[d];
        }
        dst[j] = inside ? static_cast<float>(image[info.offset + base[j]]) - zero : 0.0f;
      }
      for (int64_t j = cols; j < NR; ++j) dst[j] = 0.0f;
    }
  }
}

template <typename TIn, typename TAcc, typename TW>
void depthwise_impl(const ConvGeometry& g, const TIn* image, TAcc x_zero, const TW* weights,
                    TAcc* out) {
  const int64_t in_h = g.in[1], in_w = g.in[2], out_h = g.out[1], out_w = g.out[2];
  const int64_t k_h = g.kernel[1], k_w = g.kernel[2];
  const int64_t s_h = g.stride[1], s_w = g.stride[2];
  const int64_t d_h = g.dilation[1], d_w = g.dilation[2];
  const int64_t p_h = g.pad[1], p_w = g.pad[2];
  std::fill(out, out + out_h * out_w, TAcc{0});
  for (int64_t kw = 0; kw < k_w; ++kw) {
    // Output columns whose input column ow * s_w - p_w + kw * d_w lies inside the image.
    const int64_t shift = kw * d_w - p_w;
    const int64_t ow_begin = shift >= 0 ? 0 : std::min(out_w, (-shift + s_w - 1) / s_w);
    const int64_t ow_end = in_w - shift <= 0 ? 0 : std::min(out_w, (in_w - shift + s_w - 1) / s_w);
    if (ow_begin >= ow_end) continue;
    for (int64_t oh = 0; oh < out_h; ++oh) {
      TAcc* out_row = out + oh * out_w;
      for (int64_t kh = 0; kh < k_h; ++kh) {
        const int64_t ih = oh * s_h - p_h + kh * d_h;
        if (ih < 0 || ih >= in_h) continue;
        const TIn* in_row = image + ih * in_w;
        const TAcc w = static_cast<TAcc>(weights[kh * k_w + kw]);
        if (s_w == 1) {
          for (int64_t ow = ow_begin; ow < ow_end; ++ow) {
            out_row[ow] += w * (static_cast<TAcc>(in_row[ow + shift]) - x_zero);
          }
        } else {
          for (int64_t ow = ow_begin; ow < ow_end; ++ow) {
            out_row[ow] += w * (static_cast<TAcc>(in_row[ow * s_w + shift]) - x_zero);
          }
        }
      }
    }
  }
}

}  // namespace

bool ConvGeometry::is_pointwise() const {
  for (int d = 0; d < 3; ++d) {
    if (kernel[d] != 1 || stride[d] != 1 || pad[d] != 0 || in[d] != out[d]) return false;
  }
  return true;
}

void im2col_pack_b(const ConvGeometry& g, const float* image, int64_t k0, int64_t kc, int64_t n0,
                   int64_t nc, float* packed) {
  im2col_impl(g, image, 0.0f, k0, kc, n0, nc, packed);
}
void im2col_pack_b(const ConvGeometry& g, const uint8_t* image, int32_t zero_point, int64_t k0,
                   int64_t kc, int64_t n0, int64_t nc, float* packed) {
  im2col_impl(g, image, static_cast<float>(zero_point), k0, kc, n0, nc, packed);
}
void im2col_pack_b(const ConvGeometry& g, const int8_t* image, int32_t zero_point, int64_t k0,
                   int64_t kc, int64_t n0, int64_t nc, float* packed) {
  im2col_impl(g, image, static_cast<float>(zero_point), k0, kc, n0, nc, packed);
}

void col2im_add(const ConvGeometry& g, const float* cols, float* image) {
  const int64_t taps = g.kernel_size();
  const int64_t positions = g.out_size();
  for (int64_t row = 0; row < g.im2col_rows(); ++row) {
    const int64_t c = row / taps, t = row % taps;
    const int64_t tap[3] = {(t / (g.kernel[1] * g.kernel[2])) * g.dilation[0],
                            (t / g.kernel[2] % g.kernel[1]) * g.dilation[1],
                            (t % g.kernel[2]) * g.dilation[2]};
    float* channel = image + c * g.in_size();
    const float* src = cols + row * positions;
    for (int64_t o0 = 0; o0 < g.out[0]; ++o0) {
      const int64_t i0 = o0 * g.stride[0] - g.pad[0] + tap[0];
      if (i0 < 0 || i0 >= g.in[0]) continue;
      for (int64_t o1 = 0; o1 < g.out[1]; ++o1) {
        const int64_t i1 = o1 * g.stride[1] - g.pad[1] + tap[1];
        if (i1 < 0 || i1 >= g.in[1]) continue;
        float* dst = channel + (i0 * g.in[1] + i1) * g.in[2];
        const float* col = src + (o0 * g.out[1] + o1) * g.out[2];
        for (int64_t o2 = 0; o2 < g.out[2]; ++o2) {
          const int64_t i2 = o2 * g.stride[2] - g.pad[2] + tap[2];
          if (i2 >= 0 && i2 < g.in[2]) dst[i2] += col[o2];
        }
      }
    }
  }
}

void depthwise_conv2d(const ConvGeometry& g, const float* image, const float* weights, float* out) {
  depthwise_impl(g, image, 0.0f, weights, out);
}
void depthwise_conv2d(const ConvGeometry& g, const uint8_t* image, int32_t x_zero_point,
                      const int32_t* weights, int32_t* out) {
  depthwise_impl(g, image, x_zero_point, weights, out);
}
void depthwise_conv2d(const ConvGeometry& g, const int8_t* image, int32_t x_zero_point,
                      const int32_t* weights, int32_t* out) {
  depthwise_impl(g, image, x_zero_point, weights, out);
}

}  // namespace nibble::kernels::ref
