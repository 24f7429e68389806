// FP32 convolution (kernels/include/kernels/conv_f32.h): weight packing and the choice of path
// per shape, and the packed-B GEMM path (1x1 convolutions read as they are, 3-D ones through
// im2col). 1-D / 2-D kernels take the implicit GEMM (conv_f32_implicit.cpp), depthwise ones the
// direct kernel (dwconv_f32.cpp), 3x3 stride-1 ones Winograd where it is faster (winograd_f32.cpp).
#include <algorithm>
#include <cstring>
#include <iterator>

#include "kernels/conv_f32.h"
#include "kernels/dispatch/aligned_scratch.h"
#include "kernels/dispatch/conv_f32_internal.h"
#include "kernels/dispatch/pack_f32.h"
#include "kernels/winograd_f32.h"

namespace nibble::kernels {
namespace {

struct Im2colRowScratch {};

// Fills row[0, nc) with im2col row (c, tap) for output positions [n0, n0 + nc), one run of
// output columns at a time; taps outside the image read 0.
void im2col_row(const ref::ConvGeometry& g, const float* image, int64_t c, const int64_t tap[3],
                int64_t n0, int64_t nc, float* row) {
  const int64_t plane = g.in[1] * g.in[2];
  const float* channel = image + c * g.in_size();
  // Output columns whose input column ow * stride - pad + tap lies in [0, in[2]).
  const int64_t shift = tap[2] * g.dilation[2] - g.pad[2], s = g.stride[2];
  const int64_t ow_begin = shift >= 0 ? 0 : std::min(g.out[2], (-shift + s - 1) / s);
  const int64_t ow_end = g.in[2] - shift <= 0 ? 0 : std::min(g.out[2], (g.in[2] - shift + s - 1) / s);
  for (int64_t n = n0; n < n0 + nc;) {
    const int64_t ow = n % g.out[2], oh = n / g.out[2] % g.out[1], od = n / g.out[2] / g.out[1];
    const int64_t run = std::min(g.out[2] - ow, n0 + nc - n);
    float* dst = row + (n - n0);
    const int64_t id = od * g.stride[0] - g.pad[0] + tap[0] * g.dilation[0];
    const int64_t ih = oh * g.stride[1] - g.pad[1] + tap[1] * g.dilation[1];
    if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1]) {
      std::memset(dst, 0, static_cast<size_t>(run) * sizeof(float));
      n += run;
      continue;
    }
    const float* src = channel + id * plane + ih * g.in[2];  // output column x reads x * s + shift
    const int64_t lo = std::clamp(ow_begin, ow, ow + run), hi = std::clamp(ow_end, lo, ow + run);
    std::fill(dst, dst + (lo - ow), 0.0f);
    if (s == 1) {
      std::memcpy(dst + (lo - ow), src + lo + shift, static_cast<size_t>(hi - lo) * sizeof(float));
    } else {
      for (int64_t x = lo; x < hi; ++x) dst[x - ow] = src[x * s + shift];
    }
    std::fill(dst + (hi - ow), dst + run, 0.0f);
    n += run;
  }
}

}  // namespace

bool ConvF32Shape::direct_depthwise() const {
  const ref::ConvGeometry& g = geometry;
  return groups == in_channels && groups == out_channels && g.channels == 1 && g.in[0] == 1 &&
         g.kernel[0] == 1 && g.out[0] == 1 && g.stride[1] <= 2 && g.stride[2] <= 2;
}

ConvF32Weights conv_f32_pack(const ConvF32Shape& shape, const float* w, Isa isa,
                             ConvF32Algorithm algorithm) {
  ConvF32Weights packed;
  const int64_t depth = shape.geometry.im2col_rows();
  if (shape.direct_depthwise()) {
    packed.depthwise = &dwconv_f32_kernel(isa);
    packed.data.assign(w, w + shape.out_channels * depth);
    return packed;
  }
  const WinogradF32Kernel* winograd =
      algorithm == ConvF32Algorithm::Auto ? winograd_f32_choose(shape, isa) : nullptr;
  if (winograd) {
    return winograd_f32_pack(shape, w, *winograd);
  }
  const GemmF32Kernel& kernel = gemm_f32_kernel(isa);
  const int64_t rows = shape.out_channels_per_group();
  packed.gemm = &kernel;
  packed.group_stride = gemm_f32_packed_a_size(kernel, rows, depth);
  packed.data.resize(static_cast<size_t>(shape.groups * packed.group_stride));
  for (int64_t g = 0; g < shape.groups; ++g) {
    gemm_f32_pack_a(kernel, rows, depth, w + g * rows * depth, depth,
                    packed.data.data() + g * packed.group_stride);
  }
  return packed;
}

void im2col_f32_pack(const ref::ConvGeometry& g, const float* image, int64_t nr, int64_t k0,
                     int64_t kc, int64_t n0, int64_t nc, float* packed) {
  if (g.is_pointwise()) {  // the im2col matrix is the image: rows are channels
    pack_b_rows(nr, kc, nc, image + k0 * g.in_size() + n0, g.in_size(), packed, nr * kc);
    return;
  }
  float* row = thread_scratch<Im2colRowScratch>(nc);
  const int64_t taps = g.kernel_size();
  for (int64_t r = 0; r < kc; ++r) {
    const int64_t index = k0 + r, t = index % taps;
    const int64_t tap[3] = {t / (g.kernel[1] * g.kernel[2]), t / g.kernel[2] % g.kernel[1],
                            t % g.kernel[2]};
    im2col_row(g, image, index / taps, tap, n0, nc, row);
    pack_b_rows(nr, 1, nc, row, nc, packed + r * nr, nr * kc);
  }
}

void conv_f32_run(const ConvF32Shape& shape, const ConvF32Weights& weights, const float* x,
                  float* y, const ConvF32Epilogue& epilogue, ThreadPool* pool) {
  if (weights.depthwise) {
    depthwise_conv(shape, weights, x, y, epilogue, pool);
    return;
  }
  if (weights.winograd) {
    winograd_f32_run(shape, weights, x, y, epilogue, pool);
    return;
  }
  const ref::ConvGeometry& g = shape.geometry;
  const GemmF32Kernel& kernel = *weights.gemm;
  const int64_t rows = shape.out_channels_per_group(), depth = g.im2col_rows();
  const int64_t in_size = g.in_size(), out_size = g.out_size();
  auto gemm_one = [&](int64_t unit, ThreadPool* gemm_pool) {
    const int64_t image = unit / shape.groups, group = unit % shape.groups;
    const float* src = x + (image * shape.in_channels + group * g.channels) * in_size;
    const int64_t out_offset = (image * shape.out_channels + group * rows) * out_size;
    const float* a = weights.data.data() + group * weights.group_stride;
    const Epilogue e{epilogue.bias ? epilogue.bias + group * rows : nullptr, epilogue.activation,
                     epilogue.clip_min, epilogue.clip_max,
                     epilogue.residual ? epilogue.residual + out_offset : nullptr, out_size,
                     epilogue.residual_first};
    if (implicit_gemm_applies(g)) {
      implicit_gemm_conv(kernel, g, rows, a, src, y + out_offset, e, gemm_pool);
      return;
    }
    gemm_f32_run(
        kernel, rows, out_size, depth, a,
        [&](int64_t k0, int64_t kc, int64_t n0, int64_t nc, float* packed) {
          im2col_f32_pack(g, src, kernel.nr, k0, kc, n0, nc, packed);
        },
        y + out_offset, out_size, e, gemm_pool);
  };
  // Independent GEMMs (images, groups) are the coarsest parallel work; a single large one is
  // split into tiles instead.
  const int64_t units = shape.batch * shape.groups;
  if (pool && pool->num_threads() > 1 && units >= pool->num_threads()) {
    pool->parallel_for(units, [&](int64_t begin, int64_t end) {
      for (int64_t u = begin; u < end; ++u) gemm_one(u, nullptr);
    });
    return;
  }
  for (int64_t u = 0; u < units; ++u) gemm_one(u, pool);
}

}  // namespace nibble::kernels
