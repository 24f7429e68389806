// Implicit-GEMM FP32 convolution for 1-D and 2-D kernels: no im2col matrix is built. The output
// is computed in bands of output rows. For each band, the input rows it reads are copied once,
// zero-padded and split into stride phases ([channel][phase row][phase column][rows][Wq]: padded
// element (r, c) lies in phase (r % stride_h, c % stride_w) at (r / stride_h, c / stride_w)).
// Output position (oh, ow) of the band, numbered oh * Wq + ow, then reads tap (c, kh, kw) at a
// fixed offset from its own number, so row k of a B strip is a contiguous run of the copy at
// b_offsets[k] and the micro-kernel loads it directly. Positions with ow >= out_w are padding
// columns (Wq - out_w per row, e.g. 2 of 82 for a 3x3 stride-1 conv on 80x80); the micro-kernel
// computes them but stores only the real outputs, packed together.
//
// Against im2col + packing this removes a copy of the input per tap (9x its size for 3x3). Bands
// bound the copy's footprint for large inputs while each band still reuses every panel of A over
// many strips; they are also the unit of parallel work.
#include <algorithm>
#include <cstring>

#include "kernels/dispatch/aligned_scratch.h"
#include "kernels/dispatch/conv_f32_internal.h"

namespace nibble::kernels {
namespace {

struct PhasedBandScratch {};
struct PaddedRowScratch {};
struct RowOffsetsScratch {};

// Size of a band's phased copy. Every band streams all of A again, so small bands (384 KiB, to
// stay in L2) lost up to 20% on YOLOv10m's 3x3 convolutions with many channels; whole images lost
// as much on the 320x320 and 640x640 inputs. 1.5 MiB was best or within noise on all of them.
constexpr int64_t kBandBytes = 1536 * 1024;
// K per block: whole channels, about this many rows.
constexpr int64_t kTargetKc = 1024;
// Rows of A per block (a block is re-read from L2 for every strip of B). Blocks of 1 MiB, that
// is all output channels of nearly every YOLO convolution, measured up to 5% faster than 256 KiB
// ones: the B strip is then read once per block of K.
constexpr int64_t kABlockBytes = 1024 * 1024;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The phased copy of one band of output rows.
struct BandLayout {
  int64_t out_rows;    // output rows per band (the last band may have fewer)
  int64_t rows, cols;  // of one phase: out_rows + the kernel's reach below, Wq
  int64_t phase_size, channel_size;

  BandLayout(const ref::ConvGeometry& g, int64_t band_rows)
      : out_rows(band_rows),
        rows(band_rows + (g.kernel[1] - 1) * g.dilation[1] / g.stride[1]),
        cols(ceil_div(padded_extent(g, 2), g.stride[2])),
        phase_size(rows * cols),
        channel_size(g.stride[1] * g.stride[2] * rows * cols) {}

  // Floats of the copy, with room for the strips that run past the last output row (padding
  // columns, the last partial strip).
  int64_t floats(int64_t channels, int64_t nr) const { return channels * channel_size + cols + nr; }
};

// Output rows per band: the copy within kBandBytes, and at least one band per thread.
int64_t band_rows(const ref::ConvGeometry& g, int64_t threads) {
  const BandLayout one_row(g, 1);
  const int64_t per_row = g.channels * g.stride[1] * g.stride[2] * one_row.cols * 4;
  const int64_t reach = one_row.rows - 1;
  const int64_t fits = kBandBytes / std::max<int64_t>(per_row, 1) - reach;
  return std::clamp(fits, int64_t{1}, ceil_div(g.out[1], threads));
}

// Writes the phased copy of the band starting at output row `first_row` to `phased`. Each
// padded input row is assembled in `row` (s_w * cols floats), then split into its s_w column
// phases; for stride 1 the row is assembled in place.
void build_band(const ref::ConvGeometry& g, const BandLayout& layout, const float* image,
                int64_t first_row, float* row, float* phased) {
  const int64_t s_h = g.stride[1], s_w = g.stride[2], pad_h = g.pad[1], pad_w = g.pad[2];
  const int64_t in_h = g.in[1], in_w = g.in[2], cols = layout.cols, width = s_w * cols;
  // Padded columns [lo, hi) hold input columns [lo - pad_w, hi - pad_w).
  const int64_t lo = std::min(pad_w, width), hi = std::clamp(pad_w + in_w, lo, width);
  for (int64_t c = 0; c < g.channels; ++c) {
    for (int64_t ph = 0; ph < s_h; ++ph) {
      float* phase_row = phased + c * layout.channel_size + ph * s_w * layout.phase_size;
      for (int64_t i = 0; i < layout.rows; ++i, phase_row += cols) {
        const int64_t ih = (first_row + i) * s_h + ph - pad_h;
        float* padded = s_w == 1 ? phase_row : row;
        if (ih < 0 || ih >= in_h) {
          std::fill(padded, padded + width, 0.0f);
        } else {
          std::fill(padded, padded + lo, 0.0f);
          std::memcpy(padded + lo, image + c * g.in_size() + ih * in_w + (lo - pad_w),
                      static_cast<size_t>(hi - lo) * sizeof(float));
          std::fill(padded + hi, padded + width, 0.0f);
        }
        if (s_w == 2) {  // the common strided case, in a loop the compiler vectorizes
          float* even = phase_row;
          float* odd = phase_row + layout.phase_size;
          for (int64_t j = 0; j < cols; ++j) {
            even[j] = row[2 * j];
            odd[j] = row[2 * j + 1];
          }
        } else if (s_w > 2) {
          for (int64_t pw = 0; pw < s_w; ++pw) {
            float* dst = phase_row + pw * layout.phase_size;
            for (int64_t j = 0; j < cols; ++j) dst[j] = row[j * s_w + pw];
          }
        }
      }
    }
  }
}

// Where row k of B (channel, tap) starts in a band's copy, relative to the output position.
void row_offsets(const ref::ConvGeometry& g, const BandLayout& layout, int64_t* offsets) {
  for (int64_t c = 0; c < g.channels; ++c) {
    for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
      for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
        const int64_t dh = kh * g.dilation[1], dw = kw * g.dilation[2];
        const int64_t phase = (dh % g.stride[1]) * g.stride[2] + dw % g.stride[2];
        *offsets++ = c * layout.channel_size + phase * layout.phase_size +
                     dh / g.stride[1] * layout.cols + dw / g.stride[2];
      }
    }
  }
}

// Which columns of the strip starting at band position `first` are outputs, and the output
// index of the first of them (-1 when none is). Band position 0 is output row `first_row`;
// positions from `positions` on are not read.
uint32_t strip_outputs(int64_t first, int64_t nr, int64_t positions, int64_t cols, int64_t out_w,
                       int64_t first_row, int64_t* out_start) {
  uint32_t mask = 0;
  *out_start = -1;
  int64_t oh = first_row + first / cols, ow = first % cols;
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

// Output positions [n_begin, n_end) that lie in the band of output rows starting at first_row.
void run_band(const GemmF32Kernel& kernel, const ref::ConvGeometry& g, const BandLayout& layout,
              int64_t rows, const ImplicitGemmA& a, const float* image, float* out, int64_t out_ld,
              const Epilogue& epilogue, int64_t first_row, int64_t n_begin, int64_t n_end) {
  const int64_t mr = kernel.mr, nr = kernel.nr;
  const int64_t depth = g.im2col_rows(), taps = g.kernel_size();
  const int64_t out_w = g.out[2], out_size = g.out_size();
  int64_t kc = taps * std::max<int64_t>(1, kTargetKc / taps);
  if (depth <= kc + kc / 4) kc = depth;
  const int64_t mc = std::clamp(kABlockBytes / (kc * int64_t(sizeof(float))) / mr * mr, mr,
                                ceil_div(rows, mr) * mr);
  // The outputs to compute, as band positions [begin, end) (padding columns in between).
  const int64_t lo = std::max(n_begin, first_row * out_w);
  const int64_t hi = std::min(n_end, std::min(first_row + layout.out_rows, g.out[1]) * out_w);
  if (lo >= hi) return;
  auto position = [&](int64_t o) { return (o / out_w - first_row) * layout.cols + o % out_w; };
  const int64_t begin = position(lo), end = position(hi - 1) + 1;

  float* phased = thread_scratch<PhasedBandScratch>(layout.floats(g.channels, nr));
  int64_t* b_offsets = thread_scratch<RowOffsetsScratch, int64_t>(depth);
  float* row = thread_scratch<PaddedRowScratch>(g.stride[2] * layout.cols);
  build_band(g, layout, image, first_row, row, phased);
  std::fill(phased + g.channels * layout.channel_size, phased + layout.floats(g.channels, nr),
            0.0f);
  row_offsets(g, layout, b_offsets);

  GemmF32Tile tile{};
  tile.ldc = out_ld;
  TileEpilogue ep{nullptr, nullptr, out_size, epilogue.activation, epilogue.clip_min,
                  epilogue.clip_max, epilogue.residual_first};
  for (int64_t kb = 0; kb < depth; kb += kc) {
    tile.kc = std::min(kc, depth - kb);
    tile.b_offsets = b_offsets + kb;
    tile.accumulate = kb > 0;
    const bool last = kb + kc >= depth;
    for (int64_t mb = 0; mb < rows; mb += mc) {
      const int64_t m1 = std::min(rows, mb + mc);
      int64_t panel_stride = 0;
      const float* block = a(mb, m1, kb, tile.kc, &panel_stride);
      for (int64_t first = begin; first < end; first += nr) {
        int64_t out_start;
        tile.outputs = strip_outputs(first, nr, end, layout.cols, out_w, first_row, &out_start);
        if (!tile.outputs) continue;
        tile.b = phased + first;
        for (int64_t p = mb; p < m1; p += mr) {
          tile.a = block + (p - mb) / mr * panel_stride;
          tile.a_next = p + mr < m1 ? tile.a + panel_stride : tile.a;
          tile.rows = std::min(mr, rows - p);
          tile.c = out + p * out_ld + out_start;
          if (last) {
            ep.bias = epilogue.bias ? epilogue.bias + p : nullptr;
            ep.residual =
                epilogue.residual ? epilogue.residual + p * out_size + out_start : nullptr;
          }
          tile.epilogue = last ? &ep : nullptr;
          kernel.ukernel(tile);
        }
      }
    }
  }
}

}  // namespace

bool implicit_gemm_applies(const ref::ConvGeometry& g) {
  return g.in[0] == 1 && g.kernel[0] == 1 && g.out[0] == 1 && g.channels > 0 &&
         g.out_size() > 0 && !g.is_pointwise();
}

void implicit_gemm_conv(const GemmF32Kernel& kernel, const ref::ConvGeometry& g, int64_t rows,
                        const float* packed_a, const float* image, float* out,
                        const Epilogue& epilogue, ThreadPool* pool) {
  const int64_t threads = pool ? pool->num_threads() : 1;
  const BandLayout layout(g, band_rows(g, threads));
  const int64_t depth = g.im2col_rows(), out_size = g.out_size();
  const ImplicitGemmA a = [&](int64_t m0, int64_t, int64_t k0, int64_t, int64_t* panel_stride) {
    *panel_stride = kernel.mr * depth;
    return packed_a + m0 * depth + k0 * kernel.mr;
  };
  auto run = [&](int64_t band) {
    run_band(kernel, g, layout, rows, a, image, out, out_size, epilogue, band * layout.out_rows, 0,
             out_size);
  };
  const int64_t bands = ceil_div(g.out[1], layout.out_rows);
  if (pool && threads > 1 && bands > 1) {
    pool->parallel_for(bands, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) run(b);
    });
  } else {
    for (int64_t b = 0; b < bands; ++b) run(b);
  }
}

void implicit_gemm_conv_range(const GemmF32Kernel& kernel, const ref::ConvGeometry& g,
                              int64_t rows, const ImplicitGemmA& a, const float* image, float* out,
                              int64_t out_ld, const Epilogue& epilogue, int64_t n_begin,
                              int64_t n_end) {
  if (n_begin >= n_end) return;
  const BandLayout layout(g, band_rows(g, 1));
  const int64_t out_w = g.out[2];
  const int64_t last_row = (n_end - 1) / out_w;
  for (int64_t first_row = n_begin / out_w; first_row <= last_row; first_row += layout.out_rows) {
    run_band(kernel, g, layout, rows, a, image, out, out_ld, epilogue, first_row, n_begin, n_end);
  }
}

}  // namespace nibble::kernels
