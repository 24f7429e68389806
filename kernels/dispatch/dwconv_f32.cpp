// Driver of the depthwise FP32 kernels (kernels/include/kernels/conv_f32.h). 3x3 planes with a
// pad of 1 at stride 1 or 2 (all of YOLO's depthwise layers) run on the flat kernels, with lane
// masks computed once per call: stride 1 reads the input in place, stride 2 one copy split into
// its four row/column phases per channel. Other shapes: per channel, a zero-padded copy of the
// input plane (none when no tap reads outside the image), de-interleaved into even and odd
// columns for stride 2 so every tap's run is contiguous, then one kernel call for all output rows
// of the channel, with the fused epilogue.
#include <algorithm>
#include <cstring>
#include <iterator>
#include <vector>

#include "kernels/dispatch/aligned_scratch.h"
#include "kernels/dispatch/conv_f32_internal.h"

namespace nibble::kernels {
namespace {

const DwConvF32Kernel kDwKernels[] = {
    {Isa::Avx512, avx512::dwconv_f32_rows, avx512::dwconv_f32_flat3x3,
     avx512::dwconv_f32_split_phases, 16},
    {Isa::Avx2, avx2::dwconv_f32_rows, avx2::dwconv_f32_flat3x3, avx2::dwconv_f32_split_phases, 8},
    {Isa::Ref, ref::dwconv_f32_rows},
};

struct PaddedPlaneScratch {};
struct PhasesScratch {};

// Planes the flat 3x3 kernels take (conv_f32.h): 3x3, dilation 1, one pad at the top and left,
// and stride 1 with the output the input's size or stride 2 with the output ceil(in / 2).
int flat3x3_stride(const ref::ConvGeometry& g) {
  if (g.kernel[1] != 3 || g.kernel[2] != 3 || g.dilation[1] != 1 || g.dilation[2] != 1 ||
      g.pad[1] != 1 || g.pad[2] != 1 || g.stride[1] != g.stride[2]) {
    return 0;
  }
  const int64_t s = g.stride[1];
  if (s == 1 && g.out[1] == g.in[1] && g.out[2] == g.in[2]) return 1;
  if (s == 2 && g.out[1] == (g.in[1] + 1) / 2 && g.out[2] == (g.in[2] + 1) / 2) return 2;
  return 0;
}

// Lanes [lo, hi) of a block, clamped to [0, lanes).
uint16_t lane_range(int64_t lo, int64_t hi, int lanes) {
  lo = std::clamp<int64_t>(lo, 0, lanes);
  hi = std::clamp<int64_t>(hi, lo, lanes);
  return static_cast<uint16_t>(((1u << hi) - 1) & ~((1u << lo) - 1));
}

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

void dwconv_f32_flat_masks(int64_t out_h, int64_t out_w, int stride, int lanes, uint16_t* masks) {
  const int64_t count = out_h * out_w, blocks = (count + lanes - 1) / lanes;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t f0 = b * lanes;
    // Rows: tap row dy = 0 reads inside for outputs past the first row; dy = 2 (stride 1) before
    // the last one. (At stride 2 it reads the zero rows of the phase planes past the image.)
    const uint16_t valid = lane_range(0, count - f0, lanes);
    const int64_t last_row = stride == 1 ? count - out_w : count;
    const uint16_t rows[3] = {static_cast<uint16_t>(valid & lane_range(out_w - f0, lanes, lanes)),
                              valid,
                              static_cast<uint16_t>(valid & lane_range(0, last_row - f0, lanes))};
    // Columns: clear the lanes at the first (left) and last (right, stride 1) column of a row.
    uint16_t left = 0xFFFF, right = 0xFFFF;
    for (int64_t l = (out_w - f0 % out_w) % out_w; l < lanes; l += out_w) left &= ~(1u << l);
    if (stride == 1) {
      for (int64_t l = out_w - 1 - f0 % out_w; l < lanes; l += out_w) right &= ~(1u << l);
    }
    const uint16_t columns[3] = {left, 0xFFFF, right};
    uint16_t* m = masks + b * kDwFlatMasksPerBlock;
    for (int dy = 0; dy < 3; ++dy) {
      for (int dx = 0; dx < 3; ++dx) m[3 * dy + dx] = rows[dy] & columns[dx];
    }
    m[9] = left;
    m[10] = right;
  }
}

namespace {

// The calling thread's masks for the plane, recomputed only when the geometry changes (the
// weight-only path calls in blocks of a few channels).
const uint16_t* flat_masks(int64_t out_h, int64_t out_w, int stride, int lanes) {
  thread_local std::vector<uint16_t> masks;
  thread_local int64_t key[4] = {-1, -1, -1, -1};
  const int64_t want[4] = {out_h, out_w, stride, lanes};
  if (!std::equal(key, key + 4, want)) {
    masks.resize(size_t((out_h * out_w + lanes - 1) / lanes * kDwFlatMasksPerBlock));
    dwconv_f32_flat_masks(out_h, out_w, stride, lanes, masks.data());
    std::copy(want, want + 4, key);
  }
  return masks.data();
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
  const DwConvF32Kernel& kernel = *weights.depthwise;
  if (const int stride = flat3x3_stride(g); kernel.flat3x3 && stride != 0) {
    const uint16_t* masks = flat_masks(g.out[1], out_w, stride, kernel.flat_lanes);
    auto run_flat = [&](int64_t begin, int64_t end) {
      DwFlatPlane plane;
      plane.count = out_size;
      plane.masks = masks;
      float* phases = stride == 2 ? thread_scratch<PhasesScratch>(4 * out_size) : nullptr;
      for (int64_t task = begin; task < end; ++task) {
        const int64_t c = task % channels;
        const float* in = x + task * in_size;
        for (int dy = 0; dy < 3; ++dy) {
          for (int dx = 0; dx < 3; ++dx) {
            // Pointers before the plane for the first row/column: lanes that would read there
            // are masked.
            plane.taps[3 * dy + dx] =
                stride == 1 ? in + (dy - 1) * out_w + (dx - 1)
                            : phases + (2 * (dy != 1) + (dx != 1)) * out_size -
                                  (dy == 0 ? out_w : 0) - (dx == 0 ? 1 : 0);
          }
        }
        if (stride == 2) kernel.split_phases(in, g.in[1], g.in[2], phases);
        plane.lo_margin = out_w + 1;
        plane.hi_margin = stride == 1 ? out_w + 1 : 0;
        const TileEpilogue ep{epilogue.bias ? epilogue.bias + c : nullptr,
                              epilogue.residual ? epilogue.residual + task * out_size : nullptr, 0,
                              epilogue.activation, epilogue.clip_min, epilogue.clip_max,
                              epilogue.residual_first};
        kernel.flat3x3(plane, weights.data.data() + c * taps, y + task * out_size, &ep);
      }
    };
    const int64_t tasks = shape.batch * channels;
    pool ? pool->parallel_for(tasks, run_flat) : run_flat(0, tasks);
    return;
  }
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
