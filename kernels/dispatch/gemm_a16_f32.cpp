// Weight-only qgemm on the FP32 micro-kernels: packing, expansion and the two drivers described
// in gemm_a16_f32.h.
#include "kernels/dispatch/gemm_a16_f32.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <string>

#include "kernels/conv_f32.h"
#include "kernels/dispatch/aligned_scratch.h"
#include "kernels/dispatch/conv_f32_internal.h"
#include "kernels/dispatch/pack_f32.h"
#include "kernels/gemm_f32.h"
#include "nibble/error.h"

namespace nibble::kernels::a16 {
namespace {

struct ExpandedBlockScratch {};
struct ExpandedMatrixScratch {};
struct PackedBScratch {};
struct SumsScratch {};
struct DepthwiseTapsScratch {};

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Largest float copy of a weight matrix run() expands whole (per thread, kept for the next
// call): an L2's worth, so the weights stay a small fraction of what the FP32 path holds.
constexpr int64_t kExpandedWeightsBytes = 1 << 20;

// The expansion of the ISA the weights were packed for.
ExpandFn expand_fn(Isa isa) {
#if defined(__x86_64__)
  if (isa >= Isa::Avx512) return avx512::expand;
  if (isa >= Isa::Avx2) return avx2::expand;
#endif
  (void)isa;
  return nullptr;
}

// Values stored per panel: its depth x MR values, whole 64-value runs.
int64_t panel_values(int64_t depth, int64_t mr) { return round_up(depth * mr, 64); }

// Expands panel slices of one weight matrix (gemm_a16_f32.h's layout) to scaled floats.
class Expander {
 public:
  Expander(const PackedQWeights& w, const GemmF32Kernel& kernel)
      : w_(w),
        mr_(kernel.mr),
        period_(std::lcm<int64_t>(kernel.mr, 16)),
        panel_bytes_(panel_values(w.depth, kernel.mr) * w.bits / 8),
        expand_(expand_fn(w.isa)) {}

  // Floats a slice of kc depths may take in `dst` (it starts up to 63 values before its first
  // depth, on a run boundary).
  int64_t slice_floats(int64_t kc) const { return round_up(kc * mr_, 64) + 128; }

  // Expands depths [k0, k0 + kc) of panel p into dst; returns where depth k0 landed.
  const float* expand(int64_t p, int64_t k0, int64_t kc, float* dst) {
    float pattern[64];
    for (int64_t j = 0; j < period_; ++j) {
      const int64_t row = p * mr_ + j % mr_;
      pattern[j] = row < w_.rows ? w_.scales[size_t(row)] : 0.0f;
    }
    const int64_t first = k0 * mr_ / 64 * 64, last = round_up((k0 + kc) * mr_, 64);
    expand_(w_.data.data() + p * panel_bytes_, w_.bits, first, last - first, pattern, period_,
            dst);
    return dst + (k0 * mr_ - first);
  }

  // Expands every panel, whole, into `dst` in the FP32 packed A layout (gemm_f32.h): panel p at
  // dst + p * MR * depth. dst holds packed_floats().
  void expand_all(float* dst) {
    // Each panel's expansion may run up to 63 floats into the next one's start, which the next
    // expansion then overwrites; the last one into the slack.
    for (int64_t p = 0; p * mr_ < w_.rows; ++p) expand(p, 0, w_.depth, dst + p * mr_ * w_.depth);
  }
  int64_t packed_floats() const { return round_up(w_.rows, mr_) * w_.depth + 64; }

 private:
  const PackedQWeights& w_;
  int64_t mr_, period_, panel_bytes_;
  ExpandFn expand_;
};

// The QEpilogue as the FP32 micro-kernel's, when it has one: SiLU with a clamp has none.
std::optional<Epilogue> fused_epilogue(const QEpilogue& ep) {
  Epilogue e;
  e.bias = ep.bias;
  const bool clamped = ep.clamp_min > -INFINITY || ep.clamp_max < INFINITY;
  if (ep.silu) {
    if (clamped) return std::nullopt;
    e.activation = Activation::SiLU;
  } else if (ep.clamp_min == 0.0f && ep.clamp_max == INFINITY) {
    e.activation = Activation::Relu;
  } else if (clamped) {
    e.activation = Activation::Clip;
    e.clip_min = ep.clamp_min;
    e.clip_max = ep.clamp_max;
  }
  return e;
}

// Applies the whole QEpilogue to float sums (rows x cols, row stride ld) and stores them as
// columns [n0, n0 + cols) of `out`: the path for outputs the micro-kernel cannot write itself
// (requantized, strided, or SiLU with a clamp). Same operations as ref::qgemm_reference.
void store_sums(const float* sums, int64_t ld, int64_t rows, int64_t cols, int64_t n0,
                const QEpilogue& ep, const QOutput& out) {
  const bool is_unsigned = out.type == QType::U8;
  const float q_lo = (is_unsigned ? 0.0f : -128.0f) - static_cast<float>(out.zero_point);
  const float q_hi = (is_unsigned ? 255.0f : 127.0f) - static_cast<float>(out.zero_point);
  const float inv_scale = 1.0f / out.scale;
  for (int64_t m = 0; m < rows; ++m) {
    const float bias = ep.bias ? ep.bias[m] : 0.0f;
    for (int64_t j = 0; j < cols; ++j) {
      float y = sums[m * ld + j] + bias;
      if (ep.silu) y = y / (1.0f + std::exp(-y));
      y = std::min(std::max(y, ep.clamp_min), ep.clamp_max);
      const int64_t index = m * out.row_stride + (n0 + j) * out.col_stride;
      if (out.type == QType::F32) {
        static_cast<float*>(out.data)[index] = y;
        continue;
      }
      const int32_t q =
          static_cast<int32_t>(std::nearbyint(std::min(std::max(y * inv_scale, q_lo), q_hi))) +
          out.zero_point;
      if (is_unsigned) {
        static_cast<uint8_t*>(out.data)[index] = static_cast<uint8_t>(q);
      } else {
        static_cast<int8_t*>(out.data)[index] = static_cast<int8_t>(q);
      }
    }
  }
}

// Packs rows [k0, k0 + kc) and columns [n0, n0 + nc) of B into strips of nr columns.
void pack_b(const QSource& b, int64_t nr, int64_t k0, int64_t kc, int64_t n0, int64_t nc,
            float* packed) {
  const float* x = static_cast<const float*>(b.data);
  if (b.conv != nullptr) {
    im2col_f32_pack(*b.conv, x, nr, k0, kc, n0, nc, packed);
    return;
  }
  if (b.col_stride == 1) {
    pack_b_rows(nr, kc, nc, x + k0 * b.row_stride + n0, b.row_stride, packed, nr * kc);
    return;
  }
  // Columns strided (a MatMul's activations, B transposed): gather column by column.
  for (int64_t s = 0; s < nc; s += nr) {
    float* strip = packed + s * kc;
    const int64_t cols = std::min(nr, nc - s);
    for (int64_t j = 0; j < nr; ++j) {
      const float* column = x + (n0 + s + j) * b.col_stride + k0 * b.row_stride;
      for (int64_t k = 0; k < kc; ++k) {
        strip[k * nr + j] = j < cols ? column[k * b.row_stride] : 0.0f;
      }
    }
  }
}

// GotoBLAS order on packed B blocks: for each block of columns and K, every panel slice is
// expanded into an L1-sized buffer and swept over the block's strips. Sums go straight to the
// output through the micro-kernel's epilogue when `fused` is given, else through a buffer of
// the block (all rows) and store_sums.
void run_packed(const PackedQWeights& w, const GemmF32Kernel& kernel, Expander& expander,
                const QSource& b, int64_t n_begin, int64_t n_end, const QEpilogue& ep,
                const std::optional<Epilogue>& fused, const QOutput& out) {
  const int64_t mr = kernel.mr, nr = kernel.nr, depth = w.depth;
  const int64_t kc_max = std::min(kernel.kc, depth), nc_max = kernel.nc;
  const int64_t panels = (w.rows + mr - 1) / mr;
  float* packed_b = thread_scratch<PackedBScratch>(kc_max * nc_max);
  float* slice = thread_scratch<ExpandedBlockScratch>(expander.slice_floats(kc_max));
  float* sums = fused ? nullptr : thread_scratch<SumsScratch>(panels * mr * nc_max);
  float* y = static_cast<float*>(out.data);
  for (int64_t n0 = n_begin; n0 < n_end; n0 += nc_max) {
    const int64_t nc = std::min(nc_max, n_end - n0);
    for (int64_t k0 = 0; k0 < depth; k0 += kc_max) {
      const int64_t kc = std::min(kc_max, depth - k0);
      const bool last = k0 + kc == depth;
      pack_b(b, nr, k0, kc, n0, nc, packed_b);
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t row0 = p * mr;
        GemmF32Tile tile{};
        tile.kc = kc;
        tile.a = tile.a_next = expander.expand(p, k0, kc, slice);
        tile.rows = std::min(mr, w.rows - row0);
        tile.accumulate = k0 > 0;
        TileEpilogue te{};
        if (fused) {
          te = TileEpilogue{fused->bias ? fused->bias + row0 : nullptr, nullptr, 0,
                            fused->activation, fused->clip_min, fused->clip_max, false};
          tile.ldc = out.row_stride;
          tile.epilogue = last ? &te : nullptr;
        } else {
          tile.ldc = nc_max;
        }
        for (int64_t j = 0; j < nc; j += nr) {
          tile.b = packed_b + j * kc;
          tile.c = fused ? y + row0 * out.row_stride + n0 + j : sums + row0 * nc_max + j;
          tile.outputs = tile_columns(std::min(nr, nc - j));
          kernel.ukernel(tile);
        }
      }
    }
    if (!fused) store_sums(sums, nc_max, w.rows, nc, n0, ep, out);
  }
}

}  // namespace

bool pack(PackedQWeights& p, const int8_t* w, int64_t w_row_stride, Isa isa) {
  const GemmF32Kernel& kernel = gemm_f32_kernel(isa);
  if (expand_fn(kernel.isa) == nullptr) return false;
  const int64_t mr = kernel.mr, per_panel = panel_values(p.depth, mr);
  const int64_t panels = (p.rows + mr - 1) / mr;
  p.isa = kernel.isa;
  p.kernel = qgemm_kind_name(QuantMode::A16, p.bits) + " " + kernel.tile + " " +
             isa_name(kernel.isa);
  p.data.resize(size_t(panels * per_panel * p.bits / 8));
  std::memset(p.data.data(), 0, p.data.size());
  uint8_t* data = p.data.data();
  for (int64_t m = 0; m < p.rows; ++m) {
    for (int64_t k = 0; k < p.depth; ++k) {
      const int64_t i = m / mr * per_panel + k * mr + m % mr;
      const auto v = static_cast<uint8_t>(w[m * w_row_stride + k]);
      if (p.bits == 8) {
        data[i] = v;
        continue;
      }
      // Value j of a 64-value run: low nibble of byte j, or high nibble of byte j - 32.
      uint8_t& byte = data[i / 64 * 32 + i % 32];
      byte = i % 64 < 32 ? uint8_t((byte & 0xF0) | (v & 0x0F)) : uint8_t((byte & 0x0F) | (v << 4));
    }
  }
  return true;
}

void run(const PackedQWeights& w, const QSource& b, int64_t n_begin, int64_t n_end,
         const QEpilogue& ep, const QOutput& out) {
  const GemmF32Kernel& kernel = gemm_f32_kernel(w.isa);
  if (kernel.isa != w.isa || expand_fn(w.isa) == nullptr) {
    throw Error(ErrorKind::InvalidArgument,
                "qgemm: weights were packed for kernel '" + w.kernel + "', which this build lacks");
  }
  Expander expander(w, kernel);
  const std::optional<Epilogue> fused = fused_epilogue(ep);
  const bool direct = fused && out.type == QType::F32 && out.col_stride == 1;
  if (direct && b.conv != nullptr && implicit_gemm_applies(*b.conv)) {
    const int64_t mr = kernel.mr;
    const ImplicitGemmA a = [&](int64_t m0, int64_t m1, int64_t k0, int64_t kc,
                                int64_t* panel_stride) {
      const int64_t stride = expander.slice_floats(kc);
      float* block = thread_scratch<ExpandedBlockScratch>((m1 - m0 + mr - 1) / mr * stride);
      const float* first = nullptr;
      for (int64_t p = m0 / mr; p * mr < m1; ++p) {
        const float* slice = expander.expand(p, k0, kc, block + (p - m0 / mr) * stride);
        if (first == nullptr) first = slice;
      }
      *panel_stride = stride;
      return first;
    };
    implicit_gemm_conv_range(kernel, *b.conv, w.rows, a, static_cast<const float*>(b.data),
                             static_cast<float*>(out.data), out.row_stride, *fused, n_begin,
                             n_end);
    return;
  }
  if (direct && n_end - n_begin > kernel.nc &&
      expander.packed_floats() * int64_t(sizeof(float)) <= kExpandedWeightsBytes) {
    // Columns for several B blocks: run_packed would expand every slice once per block, so the
    // weights are expanded once, whole, and the FP32 driver runs on them as on packed FP32
    // weights (k1s1_192x80x80_192: 25 blocks, ~2% of the time spent expanding).
    float* a = thread_scratch<ExpandedMatrixScratch>(expander.packed_floats());
    expander.expand_all(a);
    gemm_f32_run(
        kernel, w.rows, n_end - n_begin, w.depth, a,
        [&](int64_t k0, int64_t kc, int64_t n0, int64_t nc, float* packed) {
          pack_b(b, kernel.nr, k0, kc, n_begin + n0, nc, packed);
        },
        static_cast<float*>(out.data) + n_begin, out.row_stride, *fused, nullptr);
    return;
  }
  run_packed(w, kernel, expander, b, n_begin, n_end, ep, direct ? fused : std::nullopt, out);
}

void depthwise(const PackedQDwWeights& w, const QSource& x, int64_t c_begin, int64_t c_end,
               const QEpilogue& ep, const QOutput& out) {
  const ref::ConvGeometry& g = *x.conv;
  const int64_t channels = c_end - c_begin, taps = w.taps, out_size = g.out_size();
  if (channels <= 0) return;
  float* expanded = thread_scratch<DepthwiseTapsScratch>(channels * taps);
  for (int64_t c = 0; c < channels; ++c) {
    const float scale = w.scales[size_t(c_begin + c)];
    for (int64_t t = 0; t < taps; ++t) {
      expanded[c * taps + t] = static_cast<float>(w.values[size_t((c_begin + c) * taps + t)]) * scale;
    }
  }
  const float* image = static_cast<const float*>(x.data) + c_begin * g.in_size();
  ConvF32Shape shape;
  shape.in_channels = shape.out_channels = shape.groups = channels;
  shape.geometry = g;
  const std::optional<Epilogue> fused = fused_epilogue(ep);
  if (shape.direct_depthwise() && fused && out.type == QType::F32 &&
      out.row_stride == out_size) {
    thread_local ConvF32Weights weights;
    weights.depthwise = &dwconv_f32_kernel(w.isa);
    weights.data.assign(expanded, expanded + channels * taps);
    ConvF32Epilogue e;
    e.bias = ep.bias ? ep.bias + c_begin : nullptr;
    e.activation = fused->activation;
    e.clip_min = fused->clip_min;
    e.clip_max = fused->clip_max;
    depthwise_conv(shape, weights, image, static_cast<float*>(out.data) + c_begin * out_size, e,
                   nullptr);
    return;
  }
  // Other strides and outputs: the direct loop, then the epilogue.
  float* sums = thread_scratch<SumsScratch>(channels * out_size);
  for (int64_t c = 0; c < channels; ++c) {
    ref::depthwise_conv2d(g, image + c * g.in_size(), expanded + c * taps, sums + c * out_size);
  }
  QEpilogue channel_ep = ep;
  if (ep.bias) channel_ep.bias = ep.bias + c_begin;
  QOutput channel_out = out;
  const size_t out_bytes = out.type == QType::F32 ? 4 : 1;
  channel_out.data = static_cast<uint8_t*>(out.data) + size_t(c_begin * out.row_stride) * out_bytes;
  store_sums(sums, out_size, channels, out_size, 0, channel_ep, channel_out);
}

}  // namespace nibble::kernels::a16
