// Implicit-GEMM FP32 convolution for 1-D and 2-D kernels: no im2col matrix is built. The
// group's input is copied once, zero-padded and split into stride phases
// ([channel][phase row][phase column][Hq][Wq]: padded element (r, c) lies in phase
// (r % stride_h, c % stride_w) at (r / stride_h, c / stride_w)). Then output position
// (oh, ow), numbered oh * Wq + ow, reads tap (c, kh, kw) at a fixed offset from its own number,
// so row k of a B strip is a contiguous run of the copy at b_offsets[k]: the micro-kernel loads
// it directly. Positions with ow >= out_w are padding columns (Wq - out_w of them per row,
// e.g. 2 of 82 for a 3x3 stride-1 conv on 80x80); the micro-kernel computes them but stores only
// the real outputs, packed together.
//
// Compared with im2col + packing on YOLOv10m's 3x3 convolutions this removes a copy of the
// input per tap (9x its size), and a B strip's working set (channels x kernel rows x ~NR floats)
// stays in L1 while the A panels stream from L2.
#include <algorithm>
#include <cstring>

#include "kernels/dispatch/aligned_scratch.h"
#include "kernels/dispatch/conv_f32_internal.h"

namespace nibble::kernels {
namespace {

struct PhasedImageScratch {};

// K per block: whole channels, about this many rows (a 12-row A panel slice of 48 KiB).
constexpr int64_t kTargetKc = 1024;
// Rows of A per block so a block of A (rows x kc) stays in L2 next to the input.
constexpr int64_t kABlockBytes = 384 * 1024;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct PhasedLayout {
  int64_t rows, cols;  // of one phase: Hq, Wq
  int64_t phase_size, channel_size;

  explicit PhasedLayout(const ref::ConvGeometry& g)
      : rows(ceil_div(padded_extent(g, 1), g.stride[1])),
        cols(ceil_div(padded_extent(g, 2), g.stride[2])),
        phase_size(rows * cols),
        channel_size(g.stride[1] * g.stride[2] * rows * cols) {}

  // Floats of the copy of `channels` channels, with room for the strips that run past the last
  // output row (padding columns, the last partial strip).
  int64_t floats(int64_t channels, int64_t nr) const { return channels * channel_size + cols + nr; }
};

// Writes channels [c_begin, c_end) of the phased copy of `image` to `phased`.
void build_phased(const ref::ConvGeometry& g, const PhasedLayout& layout, const float* image,
                  int64_t c_begin, int64_t c_end, float* phased) {
  const int64_t s_h = g.stride[1], s_w = g.stride[2], pad_h = g.pad[1], pad_w = g.pad[2];
  const int64_t in_h = g.in[1], in_w = g.in[2], cols = layout.cols;
  for (int64_t c = c_begin; c < c_end; ++c) {
    for (int64_t ph = 0; ph < s_h; ++ph) {
      for (int64_t i = 0; i < layout.rows; ++i) {
        const int64_t ih = i * s_h + ph - pad_h;
        const float* src = image + c * g.in_size() + ih * in_w;
        for (int64_t pw = 0; pw < s_w; ++pw) {
          float* dst = phased + c * layout.channel_size + (ph * s_w + pw) * layout.phase_size +
                       i * cols;
          if (ih < 0 || ih >= in_h) {
            std::fill(dst, dst + cols, 0.0f);
            continue;
          }
          // Phase columns j whose input column j * s_w + pw - pad_w lies in [0, in_w).
          const int64_t lo = std::min(cols, std::max<int64_t>(0, ceil_div(pad_w - pw, s_w)));
          const int64_t hi = std::clamp(ceil_div(in_w + pad_w - pw, s_w), lo, cols);
          std::fill(dst, dst + lo, 0.0f);
          if (s_w == 1) {
            std::memcpy(dst + lo, src + lo - pad_w, static_cast<size_t>(hi - lo) * sizeof(float));
          } else {
            for (int64_t j = lo; j < hi; ++j) dst[j] = src[j * s_w + pw - pad_w];
          }
          std::fill(dst + hi, dst + cols, 0.0f);
        }
      }
    }
  }
}

// Which columns of the strip starting at position `first` are outputs, and the output index
// of the first of them (-1 when none is).
uint32_t strip_outputs(int64_t first, int64_t nr, int64_t positions, int64_t cols, int64_t out_w,
                       int64_t* out_start) {
  uint32_t mask = 0;
  *out_start = -1;
  int64_t oh = first / cols, ow = first % cols;
  for (int64_t j = 0; j < nr && first + j < positions; ++j) {
    if (ow < out_w) {
      mask |= uint32_t{1} << j;
      if (*out_start < 0) *out_start = oh * out_w + ow;
    }
    if (++ow == cols) {
      ow = 0;
      ++oh;
    }
  }
  return mask;
}

}  // namespace

bool implicit_gemm_applies(const ref::ConvGeometry& g) {
  return g.in[0] == 1 && g.kernel[0] == 1 && g.out[0] == 1 && g.channels > 0 &&
         g.out_size() > 0 && !g.is_pointwise();
}

std::vector<int64_t> implicit_gemm_offsets(const ref::ConvGeometry& g) {
  const PhasedLayout layout(g);
  std::vector<int64_t> offsets;
  offsets.reserve(static_cast<size_t>(g.im2col_rows()));
  for (int64_t c = 0; c < g.channels; ++c) {
    for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
      for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
        const int64_t dh = kh * g.dilation[1], dw = kw * g.dilation[2];
        const int64_t phase = (dh % g.stride[1]) * g.stride[2] + dw % g.stride[2];
        offsets.push_back(c * layout.channel_size + phase * layout.phase_size +
                          dh / g.stride[1] * layout.cols + dw / g.stride[2]);
      }
    }
  }
  return offsets;
}

void implicit_gemm_conv(const GemmF32Kernel& kernel, const ref::ConvGeometry& g, int64_t rows,
                        const float* packed_a, const int64_t* b_offsets, const float* image,
                        float* out, const Epilogue& epilogue, ThreadPool* pool) {
  const PhasedLayout layout(g);
  const int64_t mr = kernel.mr, nr = kernel.nr;
  const int64_t depth = g.im2col_rows(), taps = g.kernel_size();
  const int64_t out_w = g.out[2], out_size = g.out_size();
  const int64_t positions = g.out[1] * layout.cols;  // output rows at the phased row pitch
  const int64_t threads = pool ? pool->num_threads() : 1;

  // The copy lives in this thread's scratch; workers read it while this thread waits for them.
  float* phased = thread_scratch<PhasedImageScratch>(layout.floats(g.channels, nr));
  std::fill(phased + g.channels * layout.channel_size,
            phased + layout.floats(g.channels, nr), 0.0f);
  if (threads > 1) {
    pool->parallel_for(g.channels, [&](int64_t begin, int64_t end) {
      build_phased(g, layout, image, begin, end, phased);
    });
  } else {
    build_phased(g, layout, image, 0, g.channels, phased);
  }

  int64_t kc = taps * std::max<int64_t>(1, kTargetKc / taps);
  if (depth <= kc + kc / 4) kc = depth;
  const int64_t mc = std::clamp(kABlockBytes / (kc * int64_t(sizeof(float))) / mr * mr, mr,
                                ceil_div(rows, mr) * mr);
  const int64_t strips = ceil_div(positions, nr);
  const int64_t tasks = std::min(strips, threads > 1 ? 4 * threads : 1);
  const int64_t strips_per_task = ceil_div(strips, tasks);

  auto run_task = [&](int64_t task) {
    const int64_t s_begin = task * strips_per_task;
    const int64_t s_end = std::min(strips, s_begin + strips_per_task);
    GemmF32Tile tile{};
    tile.ldc = out_size;
    TileEpilogue ep{nullptr, nullptr, out_size, epilogue.activation, epilogue.clip_min,
                    epilogue.clip_max, epilogue.residual_first};
    for (int64_t kb = 0; kb < depth; kb += kc) {
      tile.kc = std::min(kc, depth - kb);
      tile.b_offsets = b_offsets + kb;
      tile.accumulate = kb > 0;
      const bool last = kb + kc >= depth;
      for (int64_t mb = 0; mb < rows; mb += mc) {
        for (int64_t s = s_begin; s < s_end; ++s) {
          int64_t out_start;
          tile.outputs = strip_outputs(s * nr, nr, positions, layout.cols, out_w, &out_start);
          if (!tile.outputs) continue;
          tile.b = phased + s * nr;
          for (int64_t p = mb; p < std::min(rows, mb + mc); p += mr) {
            tile.a = packed_a + p * depth + kb * mr;
            tile.rows = std::min(mr, rows - p);
            tile.c = out + p * out_size + out_start;
            if (last) {
              ep.bias = epilogue.bias ? epilogue.bias + p : nullptr;
              ep.residual = epilogue.residual ? epilogue.residual + p * out_size + out_start
                                              : nullptr;
            }
            tile.epilogue = last ? &ep : nullptr;
            kernel.ukernel(tile);
          }
        }
      }
    }
  };
  if (tasks > 1) {
    pool->parallel_for(tasks, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) run_task(t);
    });
  } else {
    run_task(0);
  }
}

}  // namespace nibble::kernels
