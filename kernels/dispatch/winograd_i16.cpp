// Integer Winograd F(2x2,3x3) convolution (kernels/winograd_i16.h): kernel choice, weight
// packing and the blocked, threaded driver, which mirrors the FP32 one
// (kernels/dispatch/winograd_f32.cpp).
//
// Per run: the weights are transformed into U (int16, per transform point in the A16I16 tiles'
// prepared-A layout) in the calling thread's scratch, in parallel over 64-value runs.
// Per image: the input is quantized to int16 into a zero-padded, phase-split plane per channel
// pair (winograd_i16_internal.h). Then tasks, each a block of strips of NR tiles and a range of
// output channels:
//   input transform of the block, every channel pair  -> V[p][strip][pair][NR] (the tiles' B)
//   per transform point p, the GEMM U[p] · V[p]        -> M[p][out_channel][block tiles], int32
//   output transform (Y = Aᵀ M A / 4), epilogue       -> y rows
// Blocks are sized so that their V and M stay in L2.
#include "kernels/winograd_i16.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/dispatch/aligned_scratch.h"
#include "kernels/dispatch/winograd_i16_internal.h"
#include "kernels/dispatch/winograd_tasks.h"
#include "nibble/error.h"

namespace nibble::kernels {
namespace {

namespace qd = qgemm_detail;
namespace wd = winograd_i16_detail;

constexpr int kTile = 2, kPoints = 16;
constexpr int32_t kMaxQ = 8191;                // |V| <= 4 · qmax fits int16
constexpr int64_t kBlockBytes = int64_t{1} << 20;  // a block's V and M: L2
constexpr int64_t kRefMr = 4, kRefLanes = 16;  // the reference level's GEMM shape

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The kernels of ISA level <= isa: the transforms, and the A16I16 GEMM kernel set (null at the
// reference level, which runs plain loops). The tiles read prepared int16 weights, so either
// bit width's set serves; the 8-bit one is used.
struct Target {
  const wd::IsaKernels* transforms;
  const qd::KernelSet* gemm;
};

Target find_target(Isa isa) {
#if defined(__x86_64__)
  if (isa >= Isa::Avx512Vnni) {
    if (const qd::KernelSet* s = qd::avx512::kernel_set(QuantMode::A16I16, 8, true)) {
      return {&wd::avx512::isa_kernels(), s};
    }
  }
  if (isa >= Isa::Avx512) {
    if (const qd::KernelSet* s = qd::avx512::kernel_set(QuantMode::A16I16, 8, false)) {
      return {&wd::avx512::isa_kernels(), s};
    }
  }
  if (isa >= Isa::Avx2) {
    if (const qd::KernelSet* s = qd::avx2::kernel_set(QuantMode::A16I16, 8)) {
      return {&wd::avx2::isa_kernels(), s};
    }
  }
#else
  (void)isa;
#endif
  return {&wd::ref::isa_kernels(), nullptr};
}

// The runs of strip `strip` (lanes of `lanes` consecutive tiles, row-major over tiles_w
// columns), as winograd_f32.cpp's.
int64_t strip_runs(int64_t strip, int64_t lanes, int64_t tiles, int64_t tiles_w, int64_t pitch,
                   WinogradRun* runs) {
  int64_t count = 0;
  const int64_t end = std::min(tiles, (strip + 1) * lanes);
  for (int64_t t = strip * lanes; t < end;) {
    const int64_t th = t / tiles_w, tw = t % tiles_w;
    const int64_t n = std::min(tiles_w - tw, end - t);
    runs[count++] = {t - strip * lanes, n, th * kTile * pitch + tw};
    t += n;
  }
  return count;
}

// M[rows x lanes] = U panel [pairs][mr][2] · V strip [pairs][lanes] units, in uint32
// arithmetic like the tiles' (winograd_i16.h bounds the sums): the reference level's GEMM.
void reference_gemm(const int16_t* u, const int32_t* v, int64_t pairs, int64_t mr, int rows,
                    int64_t lanes, int32_t* m, int64_t m_ld) {
  for (int r = 0; r < rows; ++r) {
    for (int64_t l = 0; l < lanes; ++l) {
      uint32_t sum = 0;
      for (int64_t k = 0; k < pairs; ++k) {
        const auto unit = static_cast<uint32_t>(v[k * lanes + l]);
        const int16_t* w = u + (k * mr + r) * 2;
        sum += static_cast<uint32_t>(w[0] * static_cast<int16_t>(unit & 0xFFFFu)) +
               static_cast<uint32_t>(w[1] * static_cast<int16_t>(unit >> 16));
      }
      m[r * m_ld + l] = static_cast<int32_t>(sum);
    }
  }
}

struct WeightScratch {};
struct PlaneScratch {};
struct TransformedInputScratch {};
struct ProductScratch {};
struct OutputTileScratch {};
struct RunScratch {};

}  // namespace

std::string WinogradI16Weights::tile_name() const {
  return "winograd-int16 F(2x2,3x3) " + std::to_string(mr) + "x" + std::to_string(nr);
}

bool winograd_i16_applies(const ConvF32Shape& shape) { return winograd_f32_applies(shape); }

// Measured (1 thread, Zen 5 with AVX512-VNNI, and the same machine capped at AVX2; time of
// one layer, int16 Winograd / int16 direct and / float Winograd of mode A16, W4): on
// yolov10m's 3x3 stride-1 shapes and a few more, 32 to 576 input channels at 20x20 to
// 160x160, the int16 Winograd is faster than both everywhere its strips are at least 3/4 full:
// VNNI 0.61-0.92 of direct and 0.57-0.85 of float Winograd (e.g. 96x80x80 -> 96: 1.68 vs
// 2.53 and 2.09 ms; 192x40x40 -> 192: 1.53 vs 2.51 and 2.28 ms); AVX2 0.32-0.90 and 0.39-0.99.
// With strips partly empty it still wins on deep layers, not on shallow ones (AVX-512, 20x20:
// 100 tiles in 144 lanes): 576 -> 64 0.84x direct, 128 -> 128 0.92x, 256 -> 256 0.80x, but
// 64 -> 64 1.04x and 32 -> 32 1.22x; at half-full strips 128x14x14 -> 128 1.10x. The reference
// level (plain loops) never takes it.
bool winograd_i16_preferred(const ConvF32Shape& shape, Isa isa) {
  if (!winograd_i16_applies(shape)) return false;
  const qd::KernelSet* gemm = find_target(isa).gemm;
  if (gemm == nullptr) return false;
  const ref::ConvGeometry& g = shape.geometry;
  const int64_t lanes = gemm->nr;
  const int64_t tiles = ceil_div(g.out[1], kTile) * ceil_div(g.out[2], kTile);
  const int64_t filled = ceil_div(tiles, lanes) * lanes;
  if (shape.in_channels < 32 || shape.out_channels < 32) return false;
  return 4 * tiles >= 3 * filled || (shape.in_channels >= 128 && 3 * tiles >= 2 * filled);
}

Int16Quantization winograd_i16_quantization(int64_t in_channels, int32_t weight_max_abs,
                                            float abs_max) {
  Int16Quantization q;
  // The true result 4·Y sums 9 · in_channels products of |4w| <= 4 · max|w| by |q| <= qmax.
  const int64_t worst = 36 * std::max<int64_t>(1, in_channels) * std::max<int32_t>(1, weight_max_abs);
  q.qmax = static_cast<int32_t>(
      std::clamp<int64_t>(std::numeric_limits<int32_t>::max() / worst, 1, kMaxQ));
  if (std::isfinite(abs_max) && abs_max > 0) {
    q.scale = abs_max / static_cast<float>(q.qmax);
    q.inv_scale = 1.0f / q.scale;
  }
  return q;
}

WinogradI16Weights winograd_i16_pack(const ConvF32Shape& shape, int bits, const int8_t* values,
                                     const float* scales, Isa isa) {
  if (!winograd_i16_applies(shape)) {
    throw Error(ErrorKind::InvalidArgument,
                "winograd_i16_pack: not a 3x3 stride-1 one-group convolution with pads <= 1");
  }
  if (bits != 4 && bits != 8) {
    throw Error(ErrorKind::InvalidArgument,
                "winograd_i16_pack: weights must be 4 or 8 bits, got " + std::to_string(bits));
  }
  const Target target = find_target(std::min(isa, detected_isa()));
  WinogradI16Weights w;
  w.isa = target.gemm ? target.gemm->isa : Isa::Ref;
  w.gemm_tile = target.gemm ? target.gemm->name : "reference";
  w.bits = bits;
  w.mr = target.gemm ? target.gemm->mr : kRefMr;
  w.nr = target.gemm ? target.gemm->nr : kRefLanes;
  w.in_channels = shape.in_channels;
  w.out_channels = shape.out_channels;
  w.scales.assign(scales, scales + shape.out_channels);
  for (float s : w.scales) {
    if (!(s > 0.0f) || !std::isfinite(s)) {
      throw Error(ErrorKind::InvalidArgument, "winograd_i16_pack: scales must be finite and positive");
    }
  }
  const int64_t mr = w.mr, cin = w.in_channels, pairs = w.channel_pairs();
  const int64_t section_bytes = w.section_values() * bits / 8;
  w.data.resize(size_t(9 * section_bytes));  // zero: rows and channels past the end
  uint8_t* data = w.data.data();
  for (int64_t o = 0; o < w.out_channels; ++o) {
    for (int64_t c = 0; c < cin; ++c) {
      // Position in one point's U: panel, channel pair, row in panel, channel in pair.
      const int64_t i = (o / mr * pairs + c / 2) * mr * 2 + o % mr * 2 + c % 2;
      for (int t = 0; t < 9; ++t) {
        const int8_t v = values[(o * cin + c) * 9 + t];
        if (bits == 4 && (v < -8 || v > 7)) {
          throw Error(ErrorKind::InvalidArgument,
                      "winograd_i16_pack: 4-bit weight " + std::to_string(v) + " outside [-8, 7]");
        }
        w.max_abs = std::max<int32_t>(w.max_abs, std::abs(int32_t{v}));
        uint8_t* section = data + t * section_bytes;
        if (bits == 8) {
          section[i] = static_cast<uint8_t>(v);
          continue;
        }
        uint8_t& byte = section[i / 64 * 32 + i % 32];
        const auto nibble = static_cast<uint8_t>(v & 0x0F);
        byte = i % 64 < 32 ? uint8_t((byte & 0xF0) | nibble) : uint8_t((byte & 0x0F) | (nibble << 4));
      }
    }
  }
  return w;
}

void winograd_i16_conv(const ConvF32Shape& shape, const WinogradI16Weights& w, const float* x,
                       float abs_max, const QEpilogue& epilogue, const QOutput& out,
                       ThreadPool* pool) {
  const ref::ConvGeometry& g = shape.geometry;
  const int64_t cin = shape.in_channels, cout = shape.out_channels;
  const int64_t in_h = g.in[1], in_w = g.in[2], out_h = g.out[1], out_w = g.out[2];
  if (cin != w.in_channels || cout != w.out_channels || !winograd_i16_applies(shape) ||
      out.col_stride != 1 || out.row_stride != g.out_size()) {
    throw Error(ErrorKind::InvalidArgument,
                "winograd_i16_conv: shape or output layout differs from the packed weights'");
  }
  if ((out.type == QType::U8 || out.type == QType::S8) &&
      !(std::isfinite(out.scale) && out.scale > 0)) {
    throw Error(ErrorKind::InvalidArgument, "winograd_i16_conv: output scale must be finite and positive");
  }
  const Target target = find_target(w.isa);
  const wd::IsaKernels& kernels = *target.transforms;
  const qd::KernelSet* gemm = target.gemm;
  const Int16Quantization q = winograd_i16_quantization(cin, w.max_abs, abs_max);
  const int64_t mr = w.mr, lanes = w.nr, pairs = w.channel_pairs(), panels = w.panels();
  const int64_t tiles_h = ceil_div(out_h, kTile), tiles_w = ceil_div(out_w, kTile);
  const int64_t tiles = tiles_h * tiles_w, strips = ceil_div(tiles, lanes);
  const int64_t half = tiles_w + 1, pitch = kTile * half, plane = (tiles_h * kTile + 2) * pitch;
  const int64_t threads = pool ? pool->num_threads() : 1;
  auto parallel = [&](int64_t count, auto&& body) {
    if (threads > 1 && count > 1) {
      pool->parallel_for(count, body);
    } else {
      body(int64_t{0}, count);
    }
  };

  // U of every transform point in the calling thread's scratch (pool threads get it by
  // pointer). Points a cache line further apart than their size: sizes are often multiples of
  // 4 KiB, and the transform's 16 store streams would then share an L1 set.
  const int64_t u_point = w.section_values() + 32;
  int16_t* const u = thread_scratch<WeightScratch, int16_t>(kPoints * u_point);
  const int64_t section_bytes = w.section_values() * w.bits / 8;
  parallel(w.section_values() / 64, [&](int64_t begin, int64_t end) {
    kernels.transform_weights(w.data.data(), section_bytes, w.bits, begin, end, u, u_point);
  });

  // Epilogue constants: the GEMM tiles store raw sums (I32), the output rows get the A16I16
  // epilogue with scale w_scale · x_scale.
  std::vector<float> scale(size_t(panels * mr), 0.0f), bias(size_t(panels * mr), 0.0f);
  const std::vector<int32_t> comp(size_t(panels * mr), 0);
  for (int64_t o = 0; o < cout; ++o) {
    scale[size_t(o)] = w.scales[size_t(o)] * q.scale;
    if (epilogue.bias) bias[size_t(o)] = epilogue.bias[o];
  }
  const qd::TileEpilogue te_out =
      qgemm_detail::tile_epilogue(epilogue, out, scale.data(), bias.data(), comp.data());
  const qd::TileEpilogue te_sums =
      qgemm_detail::tile_epilogue(QEpilogue{}, QOutput{QType::I32}, scale.data(), bias.data(), comp.data());
  std::vector<int32_t> unit_offsets(static_cast<size_t>(pairs));  // bytes: the strip's K units, in order
  for (int64_t k = 0; k < pairs; ++k) unit_offsets[size_t(k)] = static_cast<int32_t>(k * lanes * 4);

  // Blocks of strips: the block's V and M (all points) within L2; split output channels
  // too when that leaves the pool too few tasks (each split transforms its block's input
  // again: the input transform is a small share of the work).
  const int64_t strip_bytes = kPoints * lanes * 4 * (pairs + cout);
  const WinogradTasks tasks(strips, strip_bytes, kBlockBytes, panels, threads);
  const int64_t block_strips = tasks.block_strips, blocks = tasks.blocks, splits = tasks.splits;
  const int64_t panels_per_split = tasks.panels_per_split;
  const int64_t block_lanes = block_strips * lanes;
  const size_t out_bytes = out.type == QType::U8 || out.type == QType::S8 ? 1 : 4;

  // The input transform's vector loads may read a vector past a run.
  int32_t* const padded = thread_scratch<PlaneScratch, int32_t>(pairs * plane + 64);
  for (int64_t image = 0; image < shape.batch; ++image) {
    const float* src = x + image * cin * in_h * in_w;
    uint8_t* dst = static_cast<uint8_t*>(out.data) + size_t(image * cout * out_h * out_w) * out_bytes;
    parallel(pairs, [&](int64_t begin, int64_t end) {
      for (int64_t pair = begin; pair < end; ++pair) {
        int32_t* p = padded + pair * plane;
        std::memset(p, 0, sizeof(int32_t) * size_t(plane));
        const float* r0 = src + 2 * pair * in_h * in_w;
        const float* r1 = 2 * pair + 1 < cin ? r0 + in_h * in_w : nullptr;
        for (int64_t r = 0; r < in_h; ++r) {
          kernels.quantize_row(r0 + r * in_w, r1 ? r1 + r * in_w : nullptr, in_w, g.pad[2],
                               q.inv_scale, static_cast<float>(q.qmax), half,
                               p + (r + g.pad[1]) * pitch);
        }
      }
    });

    auto run_task = [&](int64_t task) {
      const int64_t block = task / splits, split = task % splits;
      const int64_t o0 = split * panels_per_split * mr;
      const int64_t o1 = std::min(cout, o0 + panels_per_split * mr);
      if (o0 >= o1) return;
      const int64_t s0 = block * block_strips, s1 = std::min(strips, s0 + block_strips);
      const int64_t v_point = pairs * block_lanes, m_point = (o1 - o0) * block_lanes;
      int32_t* v = thread_scratch<TransformedInputScratch, int32_t>(kPoints * v_point);
      int32_t* m = thread_scratch<ProductScratch, int32_t>(kPoints * m_point);
      int32_t* y_tiles = thread_scratch<OutputTileScratch, int32_t>((s1 - s0) * 4 * lanes);
      WinogradRun* runs = thread_scratch<RunScratch, WinogradRun>((s1 - s0) * (lanes + 1));
      std::vector<int64_t> run_counts(size_t(s1 - s0));
      for (int64_t s = s0; s < s1; ++s) {
        WinogradRun* strip = runs + (s - s0) * (lanes + 1);
        run_counts[size_t(s - s0)] = strip_runs(s, lanes, tiles, tiles_w, pitch, strip);
        for (int64_t pair = 0; pair < pairs; ++pair) {
          kernels.input(padded + pair * plane, pitch, strip, run_counts[size_t(s - s0)], lanes,
                        v + (s - s0) * pairs * lanes + pair * lanes, v_point);
        }
      }
      // One GEMM per transform point over the whole depth; the panel's U stays in L1 across
      // the block's strips.
      for (int64_t p = 0; p < kPoints; ++p) {
        for (int64_t row0 = o0; row0 < o1; row0 += mr) {
          const int rows = static_cast<int>(std::min(mr, o1 - row0));
          const int16_t* a = u + p * u_point + row0 * pairs * 2;
          for (int64_t s = s0; s < s1; ++s) {
            const int32_t* b = v + p * v_point + (s - s0) * pairs * lanes;
            int32_t* c = m + p * m_point + (row0 - o0) * block_lanes + (s - s0) * lanes;
            if (gemm == nullptr) {
              reference_gemm(a, b, pairs, mr, rows, lanes, c, block_lanes);
              continue;
            }
            qd::Tile t;
            t.k_units = pairs;
            t.a = a;
            t.b = b;
            t.b_offsets = unit_offsets.data();
            t.row0 = row0;
            t.rows = rows;
            t.cols = static_cast<int>(lanes);
            t.dst = c;
            t.dst_ld = block_lanes;
            gemm->tile(t, te_sums);
          }
        }
      }
      // Output transform, then the epilogue on each output row segment the strip's runs cover.
      for (int64_t o = o0; o < o1; ++o) {
        for (int64_t s = s0; s < s1; ++s) {
          kernels.output(m + (o - o0) * block_lanes + (s - s0) * lanes, m_point, lanes,
                         y_tiles + (s - s0) * 4 * lanes);
        }
        for (int64_t s = s0; s < s1; ++s) {
          const WinogradRun* strip = runs + (s - s0) * (lanes + 1);
          for (int64_t r = 0; r < run_counts[size_t(s - s0)]; ++r) {
            const WinogradRun& run = strip[r];
            const int64_t t0 = s * lanes + run.lane;
            const int64_t oy0 = t0 / tiles_w * kTile, ox0 = t0 % tiles_w * kTile;
            const int64_t width = std::min(run.count * kTile, out_w - ox0);
            for (int64_t a = 0; a < kTile && oy0 + a < out_h; ++a) {
              kernels.store_rows(y_tiles + (s - s0) * 4 * lanes + (a * lanes + run.lane) * kTile,
                                 0, 1, width, o,
                                 dst + size_t((o * out_h + oy0 + a) * out_w + ox0) * out_bytes, 0,
                                 te_out);
            }
          }
        }
      }
    };
    parallel(blocks * splits, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) run_task(task);
    });
  }
}

}  // namespace nibble::kernels
