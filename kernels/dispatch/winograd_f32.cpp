// Winograd FP32 convolution (kernels/include/kernels/winograd_f32.h): the kernel table, the
// weight transform and the blocked, threaded driver.
//
// Per image: a zero-padded, phase-split copy of the input (winograd_f32.h), tile-aligned: no
// bounds checks and no permutes in the transforms.
// Then tasks, each a block of strips of NR tiles and a range of output channels:
//   input transform of the block, every input channel  -> V[p][strip][in_channel][NR]
//     (done beforehand with the padding, in parallel over channels, when blocks are split)
//   per transform point p, the GEMM U[p] · V[p]          -> M[p][out_channel][block tiles]
//   output transform, bias, epilogue on output rows      -> y
// Blocks are sized so that their V and M stay in L2; small images are also split across output
// channels so that every thread has work.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/activation_f32.h"
#include "kernels/dispatch/aligned_scratch.h"
#include "kernels/dispatch/winograd_f32_transform.h"
#include "kernels/dispatch/winograd_tasks.h"
#include "kernels/winograd_f32.h"

namespace nibble::kernels {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <Isa I, int Tile, auto Input, auto Output>
WinogradF32Kernel make_kernel(const char* name) {
  return {I, Tile, gemm_f32_kernel(I).nr, name, &gemm_f32_kernel(I), Input, Output};
}

const WinogradF32Kernel* kernel_table() {
  static const WinogradF32Kernel table[] = {
      make_kernel<Isa::Avx512, 4, avx512::winograd_f32_input<4>, avx512::winograd_f32_output<4>>("F(4x4,3x3)"),
      make_kernel<Isa::Avx512, 2, avx512::winograd_f32_input<2>, avx512::winograd_f32_output<2>>("F(2x2,3x3)"),
      make_kernel<Isa::Avx512, 6, avx512::winograd_f32_input<6>, avx512::winograd_f32_output<6>>("F(6x6,3x3)"),
      make_kernel<Isa::Avx2, 4, avx2::winograd_f32_input<4>, avx2::winograd_f32_output<4>>("F(4x4,3x3)"),
      make_kernel<Isa::Avx2, 2, avx2::winograd_f32_input<2>, avx2::winograd_f32_output<2>>("F(2x2,3x3)"),
      make_kernel<Isa::Avx2, 6, avx2::winograd_f32_input<6>, avx2::winograd_f32_output<6>>("F(6x6,3x3)"),
      make_kernel<Isa::Ref, 4, ref::winograd_f32_input<4>, ref::winograd_f32_output<4>>("F(4x4,3x3)"),
      make_kernel<Isa::Ref, 2, ref::winograd_f32_input<2>, ref::winograd_f32_output<2>>("F(2x2,3x3)"),
      make_kernel<Isa::Ref, 6, ref::winograd_f32_input<6>, ref::winograd_f32_output<6>>("F(6x6,3x3)"),
  };
  return table;
}
constexpr int kTableSize = 9;  // rows of kernel_table(), best ISA first

// U = G g Gᵀ in double, one output channel at a time with the input channels innermost: the
// loops vectorize and the stores run along rows of U.
template <int Tile>
void transform_weights(const float* w, int64_t in_channels, int64_t count, float* u,
                       int64_t point_stride, int64_t ldu) {
  using Mx = winograd::Matrices<Tile>;
  constexpr int A = Mx::kAlpha;
  std::vector<double> taps(static_cast<size_t>(9 * in_channels));
  std::vector<double> left(static_cast<size_t>(A * 3 * in_channels));  // (G g)[i][k] per channel
  for (int64_t o = 0; o < count; ++o) {
    const float* g = w + o * in_channels * 9;
    for (int t = 0; t < 9; ++t) {
      for (int64_t c = 0; c < in_channels; ++c) taps[t * in_channels + c] = g[c * 9 + t];
    }
    for (int i = 0; i < A; ++i) {
      for (int k = 0; k < 3; ++k) {
        double* dst = &left[(i * 3 + k) * in_channels];
        const double* r0 = &taps[k * in_channels];
        const double* r1 = &taps[(3 + k) * in_channels];
        const double* r2 = &taps[(6 + k) * in_channels];
        for (int64_t c = 0; c < in_channels; ++c) {
          dst[c] = Mx::G[i][0] * r0[c] + Mx::G[i][1] * r1[c] + Mx::G[i][2] * r2[c];
        }
      }
    }
    for (int i = 0; i < A; ++i) {
      const double* l0 = &left[(i * 3) * in_channels];
      const double* l1 = l0 + in_channels;
      const double* l2 = l1 + in_channels;
      for (int j = 0; j < A; ++j) {
        float* dst = u + (i * A + j) * point_stride + o * ldu;
        for (int64_t c = 0; c < in_channels; ++c) {
          dst[c] = static_cast<float>(l0[c] * Mx::G[j][0] + l1[c] * Mx::G[j][1] + l2[c] * Mx::G[j][2]);
        }
      }
    }
  }
}

// The runs of strip `strip` (lanes of NR consecutive tiles, row-major over tiles_w columns).
int64_t strip_runs(int64_t strip, int64_t lanes, int64_t tiles, int64_t tiles_w, int tile,
                   int64_t pitch, WinogradRun* runs) {
  int64_t count = 0;
  for (int64_t t = strip * lanes; t < std::min(tiles, (strip + 1) * lanes);) {
    const int64_t th = t / tiles_w, tw = t % tiles_w;
    const int64_t n = std::min(tiles_w - tw, std::min(tiles, (strip + 1) * lanes) - t);
    runs[count++] = {t - strip * lanes, n, th * tile * pitch + tw};
    t += n;
  }
  return count;
}

// Phase-splits one zero-padded row (winograd_f32.h): out[p * (pitch / Tile) + q] = row[q * Tile + p].
template <int Tile>
void split_phases(const float* row, int64_t pitch, float* out) {
  const int64_t columns = pitch / Tile;
  for (int64_t q = 0; q < columns; ++q) {
    for (int p = 0; p < Tile; ++p) out[p * columns + q] = row[q * Tile + p];
  }
}

struct PaddedInputScratch {};
struct TransformedInputScratch {};
struct SharedTransformedInputScratch {};
struct ProductScratch {};
struct OutputTileScratch {};
struct RunScratch {};
struct PaddedRowScratch {};

}  // namespace

const WinogradF32Kernel& winograd_f32_kernel(Isa isa, int tile) {
  const WinogradF32Kernel* table = kernel_table();
  for (int i = 0; i < kTableSize; ++i) {
    if (table[i].tile == tile && static_cast<int>(table[i].isa) <= static_cast<int>(isa)) {
      return table[i];
    }
  }
  return table[kTableSize - 3];  // the reference F(4x4)
}

bool winograd_f32_applies(const ConvF32Shape& shape) {
  const ref::ConvGeometry& g = shape.geometry;
  if (shape.groups != 1 || g.in[0] != 1 || g.out[0] != 1 || g.kernel[0] != 1) return false;
  for (int d = 1; d < 3; ++d) {
    // Trailing pad = out - in - leading pad + 2.
    if (g.kernel[d] != 3 || g.stride[d] != 1 || g.dilation[d] != 1 || g.pad[d] < 0 ||
        g.pad[d] > 1 || g.out[d] - g.in[d] - g.pad[d] + 2 > 1 || g.out[d] < 1) {
      return false;
    }
  }
  return true;
}

bool winograd_f32_preferred(const ConvF32Shape& shape, const WinogradF32Kernel& kernel) {
  if (!winograd_f32_applies(shape)) return false;
  // Measured (1 thread, Zen 5, yolov10m's k3s1 shapes and smaller ones): with fewer than 32
  // input or output channels the transforms cost about what the multiplications save, and when
  // under 3/4 of the strips' lanes hold tiles (images of a few tiles) the padding lanes do.
  const ref::ConvGeometry& g = shape.geometry;
  const int64_t tiles = ((g.out[1] + kernel.tile - 1) / kernel.tile) *
                        ((g.out[2] + kernel.tile - 1) / kernel.tile);
  const int64_t lanes = (tiles + kernel.lanes - 1) / kernel.lanes * kernel.lanes;
  return shape.in_channels >= 32 && shape.out_channels >= 32 && 4 * tiles >= 3 * lanes;
}

const WinogradF32Kernel* winograd_f32_choose(const ConvF32Shape& shape, Isa isa) {
  for (int tile : {4, 2}) {
    const WinogradF32Kernel& kernel = winograd_f32_kernel(isa, tile);
    if (winograd_f32_preferred(shape, kernel)) return &kernel;
  }
  return nullptr;
}

void winograd_f32_transform_weights(int tile, const float* w, int64_t in_channels, int64_t count,
                                    float* u, int64_t point_stride, int64_t ldu) {
  switch (tile) {
    case 2: return transform_weights<2>(w, in_channels, count, u, point_stride, ldu);
    case 4: return transform_weights<4>(w, in_channels, count, u, point_stride, ldu);
    case 6: return transform_weights<6>(w, in_channels, count, u, point_stride, ldu);
  }
}

ConvF32Weights winograd_f32_pack(const ConvF32Shape& shape, const float* w,
                                 const WinogradF32Kernel& kernel) {
  const int64_t cin = shape.in_channels, cout = shape.out_channels, points = kernel.points();
  std::vector<float> u(static_cast<size_t>(points * cout * cin));
  winograd_f32_transform_weights(kernel.tile, w, cin, cout, u.data(), cout * cin, cin);
  ConvF32Weights packed;
  packed.winograd = &kernel;
  packed.gemm = kernel.gemm;
  packed.group_stride = gemm_f32_packed_a_size(*kernel.gemm, cout, cin);
  packed.data.resize(static_cast<size_t>(points * packed.group_stride));
  for (int64_t p = 0; p < points; ++p) {
    gemm_f32_pack_a(*kernel.gemm, cout, cin, u.data() + p * cout * cin, cin,
                    packed.data.data() + p * packed.group_stride);
  }
  return packed;
}

void winograd_f32_run(const ConvF32Shape& shape, const ConvF32Weights& weights, const float* x,
                      float* y, const ConvF32Epilogue& epilogue, ThreadPool* pool) {
  const WinogradF32Kernel& kernel = *weights.winograd;
  const GemmF32Kernel& gemm = *kernel.gemm;
  const ActivationF32Kernel& activation = activation_f32_kernel(gemm.isa);
  const ref::ConvGeometry& g = shape.geometry;
  const int tile = kernel.tile;
  const int64_t lanes = kernel.lanes, points = kernel.points(), mr = gemm.mr;
  const int64_t cin = shape.in_channels, cout = shape.out_channels;
  const int64_t in_h = g.in[1], in_w = g.in[2], out_h = g.out[1], out_w = g.out[2];
  const int64_t tiles_h = ceil_div(out_h, tile), tiles_w = ceil_div(out_w, tile);
  const int64_t tiles = tiles_h * tiles_w, strips = ceil_div(tiles, lanes);
  const int64_t pitch = (tiles_w + 1) * tile, plane = (tiles_h * tile + 2) * pitch;
  const int64_t threads = pool ? pool->num_threads() : 1;

  // Blocks of strips: the block's V and M (all transform points) within the 1 MiB L2. Each
  // block streams all of U from L3 instead (prefetched by the micro-kernel), which measured
  // faster on yolov10m's shapes than larger blocks with V and M in L3 (e.g. 96x80x80: 2.1 vs
  // 2.3-3.9 ms). Split output channels share their block's V, which costs its trip through L3.
  const int64_t strip_bytes =
      points * lanes * static_cast<int64_t>(sizeof(float)) * (cin + cout);
  const int64_t panels = ceil_div(cout, mr);
  const WinogradTasks tasks(strips, strip_bytes, int64_t{1} << 20, panels, threads);
  const int64_t block_strips = tasks.block_strips, blocks = tasks.blocks, splits = tasks.splits;
  const int64_t panels_per_split = tasks.panels_per_split;
  const int64_t block_lanes = block_strips * lanes;

  // The transforms' vector copies may read up to 16 floats past a run (winograd_f32_transform.h).
  float* padded = thread_scratch<PaddedInputScratch>(cin * plane + 16);
  float* shared_v = splits > 1 ? thread_scratch<SharedTransformedInputScratch>(
                                     blocks * points * cin * block_lanes)
                               : nullptr;
  for (int64_t image = 0; image < shape.batch; ++image) {
    const float* src = x + image * cin * in_h * in_w;
    float* dst = y + image * cout * out_h * out_w;
    const float* residual = epilogue.residual ? epilogue.residual + image * cout * out_h * out_w : nullptr;
    auto pad_channels = [&](int64_t begin, int64_t end) {
      float* padded_row = thread_scratch<PaddedRowScratch>(pitch);
      const int64_t cols = std::min(in_w, pitch - g.pad[2]);
      for (int64_t c = begin; c < end; ++c) {
        float* p = padded + c * plane;
        for (int64_t r = 0; r < tiles_h * tile + 2; ++r) {
          const int64_t in_row = r - g.pad[1];
          if (in_row < 0 || in_row >= in_h) {
            std::memset(p + r * pitch, 0, sizeof(float) * static_cast<size_t>(pitch));
            continue;
          }
          std::memset(padded_row, 0, sizeof(float) * static_cast<size_t>(pitch));
          std::memcpy(padded_row + g.pad[2], src + (c * in_h + in_row) * in_w,
                      sizeof(float) * static_cast<size_t>(cols));
          switch (tile) {
            case 2: split_phases<2>(padded_row, pitch, p + r * pitch); break;
            case 4: split_phases<4>(padded_row, pitch, p + r * pitch); break;
            case 6: split_phases<6>(padded_row, pitch, p + r * pitch); break;
          }
        }
      }
    };
    if (!shared_v) {
      if (threads > 1) {
        pool->parallel_for(cin, pad_channels);
      } else {
        pad_channels(0, cin);
      }
    }

    // The runs of the block's strips, (lanes + 1) apart in `runs`; their counts in `run_counts`.
    auto block_runs = [&](int64_t block, WinogradRun* runs, int64_t* run_counts) {
      const int64_t s0 = block * block_strips, s1 = std::min(strips, s0 + block_strips);
      for (int64_t s = s0; s < s1; ++s) {
        run_counts[s - s0] =
            strip_runs(s, lanes, tiles, tiles_w, tile, pitch, runs + (s - s0) * (lanes + 1));
      }
    };
    // Input transform of channels [c0, c1) of a block: strip s, channel c lands at row c of the
    // strip's B layout.
    auto transform_input = [&](int64_t block, int64_t c0, int64_t c1, const WinogradRun* runs,
                               const int64_t* run_counts, float* v) {
      const int64_t s0 = block * block_strips, s1 = std::min(strips, s0 + block_strips);
      for (int64_t s = s0; s < s1; ++s) {
        for (int64_t c = c0; c < c1; ++c) {
          kernel.input(padded + c * plane, pitch, runs + (s - s0) * (lanes + 1), run_counts[s - s0],
                       v + (s - s0) * cin * lanes + c * lanes, cin * block_lanes);
        }
      }
    };
    // With output-channel splits, V is padded and transformed once, in parallel over channels,
    // into a buffer all splits read (small: only small images are split).
    const int64_t block_v = points * cin * block_lanes;
    if (shared_v) {
      const int64_t chunks = std::min(cin, 2 * threads);
      pool->parallel_for(chunks, [&](int64_t begin, int64_t end) {
        WinogradRun* runs = thread_scratch<RunScratch, WinogradRun>(block_strips * (lanes + 1));
        std::vector<int64_t> run_counts(static_cast<size_t>(block_strips));
        const int64_t c0 = cin * begin / chunks, c1 = cin * end / chunks;
        pad_channels(c0, c1);
        for (int64_t block = 0; block < blocks; ++block) {
          block_runs(block, runs, run_counts.data());
          transform_input(block, c0, c1, runs, run_counts.data(), shared_v + block * block_v);
        }
      });
    }

    auto run_task = [&](int64_t task) {
      const int64_t block = task / splits, split = task % splits;
      const int64_t o0 = split * panels_per_split * mr;
      const int64_t o1 = std::min(cout, o0 + panels_per_split * mr);
      if (o0 >= o1) return;
      const int64_t s0 = block * block_strips, s1 = std::min(strips, s0 + block_strips);
      const int64_t v_point = cin * block_lanes, m_point = (o1 - o0) * block_lanes;
      float* m = thread_scratch<ProductScratch>(points * m_point);
      float* out_tile = thread_scratch<OutputTileScratch>((s1 - s0) * tile * tile * lanes);
      WinogradRun* runs = thread_scratch<RunScratch, WinogradRun>((s1 - s0) * (lanes + 1));
      std::vector<int64_t> run_counts(static_cast<size_t>(s1 - s0));
      block_runs(block, runs, run_counts.data());
      float* v = shared_v ? shared_v + block * block_v
                          : thread_scratch<TransformedInputScratch>(block_v);
      if (!shared_v) transform_input(block, 0, cin, runs, run_counts.data(), v);
      // One GEMM per transform point; the A panel slice stays in L1 across the block's strips.
      GemmF32Tile t{0, nullptr, nullptr, nullptr, nullptr, nullptr, block_lanes, 0,
                    tile_columns(lanes), false, nullptr};
      for (int64_t p = 0; p < points; ++p) {
        const float* u = weights.data.data() + p * weights.group_stride;
        for (int64_t i = o0; i < o1; i += mr) {
          t.rows = std::min(mr, o1 - i);
          for (int64_t k0 = 0; k0 < cin; k0 += gemm.kc) {
            t.kc = std::min(gemm.kc, cin - k0);
            t.accumulate = k0 > 0;
            t.a = u + i * cin + k0 * mr;
            for (int64_t s = s0; s < s1; ++s) {
              t.a_next = s + 1 < s1 || i + mr >= o1 ? t.a : t.a + mr * cin;
              t.b = v + p * v_point + (s - s0) * cin * lanes + k0 * lanes;
              t.c = m + p * m_point + (i - o0) * block_lanes + (s - s0) * lanes;
              gemm.ukernel(t);
            }
          }
        }
      }
      // Output transform, then the epilogue on each output row the strip's runs cover.
      // All strips first: the row copies then read stores that have left the store buffer.
      const int64_t strip_pixels = tile * tile * lanes;
      for (int64_t o = o0; o < o1; ++o) {
        const float bias = epilogue.bias ? epilogue.bias[o] : 0.0f;
        for (int64_t s = s0; s < s1; ++s) {
          kernel.output(m + (o - o0) * block_lanes + (s - s0) * lanes, m_point, bias,
                        out_tile + (s - s0) * strip_pixels);
        }
        for (int64_t s = s0; s < s1; ++s) {
          const WinogradRun* strip = runs + (s - s0) * (lanes + 1);
          for (int64_t r = 0; r < run_counts[s - s0]; ++r) {
            const WinogradRun& run = strip[r];
            const int64_t t0 = s * lanes + run.lane;
            const int64_t oy0 = t0 / tiles_w * tile, ox0 = t0 % tiles_w * tile;
            const int64_t width = std::min(run.count * tile, out_w - ox0);
            for (int64_t a = 0; a < tile && oy0 + a < out_h; ++a) {
              float* row = out_tile + (s - s0) * strip_pixels + (a * lanes + run.lane) * tile;
              const int64_t offset = (o * out_h + oy0 + a) * out_w + ox0;
              const float* res = residual ? residual + offset : nullptr;
              float* out = dst + offset;
              if (res && epilogue.residual_first) {
                for (int64_t i = 0; i < width; ++i) row[i] += res[i];
              }
              // The last step writes y (which may alias the residual: each element of it is
              // read before the same element of y is written).
              const bool add_after = res && !epilogue.residual_first;
              if (epilogue.activation != Activation::None) {
                activation.apply(epilogue.activation, epilogue.clip_min, epilogue.clip_max, row,
                                 add_after ? row : out, width);
              } else if (!add_after) {
                std::memcpy(out, row, sizeof(float) * static_cast<size_t>(width));
              }
              if (add_after) {
                for (int64_t i = 0; i < width; ++i) out[i] = row[i] + res[i];
              }
            }
          }
        }
      }
    };
    const int64_t tasks = blocks * splits;
    if (threads > 1 && tasks > 1) {
      pool->parallel_for(tasks, [&](int64_t begin, int64_t end) {
        for (int64_t task = begin; task < end; ++task) run_task(task);
      });
    } else {
      for (int64_t task = 0; task < tasks; ++task) run_task(task);
    }
  }
}

}  // namespace nibble::kernels
