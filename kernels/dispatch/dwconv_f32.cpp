// Driver of the depthwise FP32 kernels (kernels/include/kernels/conv_f32.h): per channel, a
// zero-padded copy of the input plane (none when no tap reads outside the image), de-interleaved
// into even and odd columns for stride 2 so every tap's run is contiguous, then one kernel call
// for all output rows of the channel, with the fused epilogue.
#include <algorithm>
#include <cstring>
#include <iterator>

#include "kernels/dispatch/aligned_scratch.h"
#include "kernels/dispatch/conv_f32_internal.h"

namespace nibble::kernels {
namespace {

const DwConvF32Kernel kDwKernels[] = {
    {Isa::Avx512, avx512::dwconv_f32_rows},
    {Isa::Avx2, avx2::dwconv_f32_rows},
    {Isa::Ref, ref::dwconv_f32_rows},
};

struct PaddedPlaneScratch {};

// The input plane of one depthwise channel as the row kernel reads it: `rows` rows of `stride`
// floats; with stride 2 along the width each row holds its even columns, then its odd ones.
struct PaddedPlane {
  const float* data;
  int64_t stride;     // floats per row
  int64_t odd_start;  // where a row's odd columns begin (stride-2 width only)

  // The run read by a tap whose first output reads padded (row, column).
  const float* tap(int64_t row, int64_t column, int64_t stride_w) const {
    // (row, column) of the padded plane; for stride 2 column `column` of the de-interleaved row
    if (stride_w == 1) return data + row * stride + column;
    return data + row * stride + ((column & 1) ? odd_start : 0) + column / 2;
  }
};

// The plane as the row kernel reads it, in `scratch` (rows x cols floats, plus one padded row for
// the stride-2 split) unless no tap reads outside the image.
PaddedPlane pad_plane(const ref::ConvGeometry& g, const float* plane, float* scratch) {
  const int64_t in_h = g.in[1], in_w = g.in[2];
  const int64_t rows = padded_extent(g, 1), cols = padded_extent(g, 2);
  const int64_t pad_h = g.pad[1], pad_w = g.pad[2];
  if (pad_h == 0 && pad_w == 0 && g.stride[2] == 1 && rows <= in_h && cols <= in_w) {
    return {plane, in_w, 0};  // every tap reads inside the image: no copy
  }
  const bool split = g.stride[2] == 2;
  const int64_t odd_start = split ? (cols + 1) / 2 : 0;
  // Padded columns [lo, hi) hold input columns [lo - pad_w, hi - pad_w).
  const int64_t lo = std::min(pad_w, cols), hi = std::clamp(pad_w + in_w, lo, cols);
  float* row_buffer = scratch + rows * cols;  // a padded row before the stride-2 split
  for (int64_t r = 0; r < rows; ++r) {
    float* dst = scratch + r * cols;
    float* padded = split ? row_buffer : dst;
    const int64_t ih = r - pad_h;
    if (ih < 0 || ih >= in_h) {
      std::fill(padded, padded + cols, 0.0f);
    } else {
      std::fill(padded, padded + lo, 0.0f);
      std::memcpy(padded + lo, plane + ih * in_w + (lo - pad_w),
                  static_cast<size_t>(hi - lo) * sizeof(float));
      std::fill(padded + hi, padded + cols, 0.0f);
    }
    if (split) {  // even columns, then odd ones, in loops the compiler vectorizes
      for (int64_t j = 0; j < odd_start; ++j) dst[j] = padded[2 * j];
      for (int64_t j = 0; j < cols - odd_start; ++j) dst[odd_start + j] = padded[2 * j + 1];
    }
  }
  return {scratch, cols, odd_start};
}

}  // namespace

const DwConvF32Kernel& dwconv_f32_kernel(Isa isa) {
  for (const DwConvF32Kernel& kernel : kDwKernels) {
    if (static_cast<int>(kernel.isa) <= static_cast<int>(isa)) return kernel;
  }
  return kDwKernels[std::size(kDwKernels) - 1];
}

void depthwise_conv(const ConvF32Shape& shape, const ConvF32Weights& weights, const float* x,
                    float* y, const ConvF32Epilogue& epilogue, ThreadPool* pool) {
  const ref::ConvGeometry& g = shape.geometry;
  const int64_t channels = shape.out_channels, taps = g.kernel[1] * g.kernel[2];
  const int64_t in_size = g.in_size(), out_size = g.out_size(), out_w = g.out[2];
  const int64_t scratch_floats = (padded_extent(g, 1) + 1) * padded_extent(g, 2);
  auto run = [&](int64_t begin, int64_t end) {
    float* scratch = thread_scratch<PaddedPlaneScratch>(scratch_floats);
    std::vector<const float*> inputs(static_cast<size_t>(taps));
    for (int64_t task = begin; task < end; ++task) {
      const int64_t c = task % channels;
      const PaddedPlane plane = pad_plane(g, x + task * in_size, scratch);
      const float* w = weights.data.data() + c * taps;
      float* out = y + task * out_size;
      const float* residual = epilogue.residual ? epilogue.residual + task * out_size : nullptr;
      TileEpilogue ep{epilogue.bias ? epilogue.bias + c : nullptr, nullptr, 0,
                      epilogue.activation, epilogue.clip_min, epilogue.clip_max,
                      epilogue.residual_first};
      for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
        for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
          inputs[size_t(kh * g.kernel[2] + kw)] =
              plane.tap(kh * g.dilation[1], kw * g.dilation[2], g.stride[2]);
        }
      }
      ep.residual = residual;
      weights.depthwise->rows(taps, inputs.data(), g.stride[1] * plane.stride, w, out_w, g.out[1],
                              out, &ep);
    }
  };
  const int64_t tasks = shape.batch * channels;
  if (pool) {
    pool->parallel_for(tasks, run);
  } else {
    run(0, tasks);
  }
}

}  // namespace nibble::kernels
