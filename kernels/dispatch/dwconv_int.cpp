// Integer depthwise convolution driver (kernels/dwconv_int.h): weight packing, the row kernel
// per ISA, and per channel the zero-point-padded uint8 plane the row kernels read.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "kernels/conv_f32.h"
#include "kernels/dispatch/aligned_scratch.h"
#include "kernels/dispatch/dwconv_int_kernels.h"
#include "kernels/dispatch/gemm_a16_f32.h"
#include "kernels/dispatch/qweight_checks.h"
#include "kernels/dwconv_int.h"
#include "nibble/error.h"

namespace nibble::kernels {
namespace qd = qgemm_detail;

namespace {

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorKind::InvalidArgument, "qdwconv: " + message);
}

// The best row kernel of ISA level <= isa; null for the reference path.
qdw_detail::PlaneKernel find_kernel(Isa isa, Isa* chosen) {
#if defined(__x86_64__)
  if (isa >= Isa::Avx512) {
    *chosen = Isa::Avx512;
    return qdw_detail::avx512::dwconv_int_plane;
  }
  if (isa >= Isa::Avx2) {
    *chosen = Isa::Avx2;
    return qdw_detail::avx2::dwconv_int_plane;
  }
#endif
  *chosen = Isa::Ref;
  return nullptr;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Padded extent of spatial dimension d (1 or 2) that the outputs read.
int64_t padded_extent(const ref::ConvGeometry& g, int d) {
  return (g.out[d] - 1) * g.stride[d] + (g.kernel[d] - 1) * g.dilation[d] + 1;
}

// One channel's plane as the row kernels read it: `rows` padded input rows, each stored as its
// stride_w column phases one after another (phase p holds padded columns p, p + s, ...), so that
// a tap's inputs for consecutive outputs are consecutive bytes. Padding holds the zero point;
// int8 inputs are flipped to uint8 (x + 128).
struct PlaneLayout {
  int64_t rows, cols, phase_cols, row_bytes;

  explicit PlaneLayout(const ref::ConvGeometry& g)
      : rows(padded_extent(g, 1)),
        cols(padded_extent(g, 2)),
        phase_cols(ceil_div(cols, g.stride[2])),
        row_bytes(g.stride[2] * phase_cols) {}

  int64_t bytes() const { return rows * row_bytes + cols + qdw_detail::kPlaneSlack; }
};

struct PlaneScratch {};
struct RowScratch {};
struct SumsScratch {};

void build_plane(const ref::ConvGeometry& g, const PlaneLayout& layout, const uint8_t* image,
                 bool flip_sign, uint8_t zero_point, uint8_t* row, uint8_t* plane) {
  const int64_t in_h = g.in[1], in_w = g.in[2], pad_h = g.pad[1], pad_w = g.pad[2];
  const int64_t s = g.stride[2], cols = layout.cols;
  // Padded columns [lo, hi) hold input columns [lo - pad_w, hi - pad_w).
  const int64_t lo = std::min(pad_w, cols), hi = std::clamp(pad_w + in_w, lo, cols);
  const uint8_t flip = flip_sign ? 0x80 : 0x00;
  for (int64_t r = 0; r < layout.rows; ++r) {
    uint8_t* dst = plane + r * layout.row_bytes;
    uint8_t* padded = s == 1 ? dst : row;
    const int64_t ih = r - pad_h;
    if (ih < 0 || ih >= in_h) {
      std::memset(padded, zero_point, size_t(cols));
    } else {
      std::memset(padded, zero_point, size_t(lo));
      const uint8_t* src = image + ih * in_w + (lo - pad_w);
      for (int64_t j = 0; j < hi - lo; ++j) padded[lo + j] = src[j] ^ flip;
      std::memset(padded + hi, zero_point, size_t(cols - hi));
    }
    if (s == 1) continue;
    if (s == 2) {  // the common strided case, in loops the compiler vectorizes
      uint8_t* even = dst;
      uint8_t* odd = dst + layout.phase_cols;
      for (int64_t j = 0; j < cols / 2; ++j) {
        even[j] = row[2 * j];
        odd[j] = row[2 * j + 1];
      }
      if (cols % 2) even[cols / 2] = row[cols - 1];
      continue;
    }
    for (int64_t phase = 0; phase < s; ++phase) {
      uint8_t* out = dst + phase * layout.phase_cols;
      for (int64_t j = 0; phase + j * s < cols; ++j) out[j] = row[phase + j * s];
    }
  }
}

}  // namespace

size_t PackedQDwWeights::packed_bytes() const {
  return values.size() + scales.size() * sizeof(float) + tap_sums.size() * sizeof(int32_t);
}

bool qdwconv_supports(const ref::ConvGeometry& g) {
  return g.channels == 1 && g.in[0] == 1 && g.out[0] == 1 && g.kernel[0] == 1 &&
         g.out_size() > 0 && g.stride[1] > 0 && g.stride[2] > 0;
}

PackedQDwWeights pack_qdwconv_weights(int bits, int64_t channels, int64_t taps, const int8_t* w,
                                      const float* scales, bool per_channel, Isa isa) {
  return pack_qdwconv_weights(QuantMode::A8, bits, channels, taps, w, scales, per_channel, isa);
}

PackedQDwWeights pack_qdwconv_weights(QuantMode mode, int bits, int64_t channels, int64_t taps,
                                      const int8_t* w, const float* scales, bool per_channel,
                                      Isa isa) {
  if (mode == QuantMode::A16I16) invalid("has no int16-activation (a16i16) kernel");
  qweights::check_arguments("qdwconv", bits, channels, taps, isa);
  PackedQDwWeights p;
  p.mode = mode;
  p.bits = bits;
  p.channels = channels;
  p.taps = taps;
  if (mode == QuantMode::A16) {
    p.isa = dwconv_f32_kernel(isa).isa;
    p.kernel = std::string(bits == 4 ? "dw_w4a16 " : "dw_w8a16 ") + "direct " + isa_name(p.isa);
  } else {
    find_kernel(isa, &p.isa);
    // Kind, register block (output rows x vector lanes) and ISA, like the GEMM kernels' names.
    const char* block = p.isa == Isa::Avx512 ? "4x16 " : p.isa == Isa::Avx2 ? "4x8 " : "";
    p.kernel = std::string(bits == 4 ? "dw_w4a8 " : "dw_w8a8 ") + block + isa_name(p.isa);
  }
  qweights::RowStats stats = qweights::row_stats("qdwconv", bits, channels, taps, w, taps, scales,
                                                 per_channel, "channel", "tap");
  p.values.assign(w, w + channels * taps);
  p.scales = std::move(stats.scales);
  p.tap_sums = std::move(stats.sums);
  return p;
}

void qdwconv(const PackedQDwWeights& w, const QSource& x, int64_t c_begin, int64_t c_end,
             const QEpilogue& ep, const QOutput& out) {
  if (x.conv == nullptr || !qdwconv_supports(*x.conv)) {
    invalid("needs a 1-D or 2-D convolution source with one channel per group");
  }
  const ref::ConvGeometry& g = *x.conv;
  if (w.mode == QuantMode::A16 && (x.type != QType::F32 || out.type == QType::I32)) {
    invalid("weight-only (a16) weights take float activations and have no int32 sums");
  }
  if (w.mode == QuantMode::A8 && x.type != QType::U8 && x.type != QType::S8) {
    invalid("takes uint8 or int8 activations");
  }
  const int32_t lowest = x.type == QType::U8 ? 0 : -128;
  if (x.zero_point < lowest || x.zero_point > lowest + 255) {
    invalid("activation zero point " + std::to_string(x.zero_point) + " is outside the type");
  }
  if (g.kernel_size() != w.taps) {
    invalid("convolution has " + std::to_string(g.kernel_size()) + " taps, the weights " +
            std::to_string(w.taps));
  }
  if (c_begin < 0 || c_begin > c_end || c_end > w.channels) {
    invalid("channel range [" + std::to_string(c_begin) + ", " + std::to_string(c_end) +
            ") is not inside [0, " + std::to_string(w.channels) + ")");
  }
  if (out.col_stride != 1) invalid("output positions must be contiguous (col_stride 1)");
  if ((out.type == QType::U8 || out.type == QType::S8) &&
      !(std::isfinite(out.scale) && out.scale > 0)) {
    invalid("output scale must be finite and positive");
  }
  if (w.mode == QuantMode::A16) {
    a16::depthwise(w, x, c_begin, c_end, ep, out);
    return;
  }
  Isa isa;
  const qdw_detail::PlaneKernel kernel = find_kernel(w.isa, &isa);
  if (kernel == nullptr) {
    ref::qdwconv_reference(w.taps, w.values.data(), w.scales.data(), x, c_begin, c_end, ep, out);
    return;
  }

  // Epilogue constants, per channel; everything runs in the uint8 domain.
  const bool flip_sign = x.type == QType::S8;
  const int32_t zero_u8 = flip_sign ? x.zero_point + 128 : x.zero_point;
  thread_local std::vector<int32_t> comp, taps;
  thread_local std::vector<float> scale, bias;
  thread_local std::vector<const uint8_t*> inputs;
  comp.resize(size_t(w.channels));
  scale.resize(size_t(w.channels));
  bias.assign(size_t(w.channels), 0.0f);
  for (int64_t c = c_begin; c < c_end; ++c) {
    comp[size_t(c)] = zero_u8 * w.tap_sums[size_t(c)];
    scale[size_t(c)] = w.scales[size_t(c)] * x.scale;
    if (ep.bias) bias[size_t(c)] = ep.bias[c];
  }
  qd::TileEpilogue te;
  te.out = out.type;
  te.comp = comp.data();
  te.scale = scale.data();
  te.bias = bias.data();
  te.silu = ep.silu;
  te.clamp_min = ep.clamp_min;
  te.clamp_max = ep.clamp_max;
  if (out.type == QType::U8 || out.type == QType::S8) {
    const bool is_unsigned = out.type == QType::U8;
    te.out_scale = out.scale;
    te.out_zero_point = out.zero_point;
    te.q_lo = (is_unsigned ? 0.0f : -128.0f) - static_cast<float>(out.zero_point);
    te.q_hi = (is_unsigned ? 255.0f : 127.0f) - static_cast<float>(out.zero_point);
  }

  const PlaneLayout layout(g);
  uint8_t* plane = thread_scratch<PlaneScratch, uint8_t>(layout.bytes());
  uint8_t* row = thread_scratch<RowScratch, uint8_t>(layout.cols);
  int32_t* sums = thread_scratch<SumsScratch, int32_t>(g.out_size() + 16);
  // Bytes past the last row are read by full-vector loads only; keep them defined.
  std::memset(plane + layout.rows * layout.row_bytes, 0, size_t(layout.bytes() - layout.rows * layout.row_bytes));
  taps.resize(size_t(w.taps));
  inputs.resize(size_t(w.taps));
  for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
    for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
      const int64_t dh = kh * g.dilation[1], dw = kw * g.dilation[2];
      inputs[size_t(kh * g.kernel[2] + kw)] =
          plane + dh * layout.row_bytes + (dw % g.stride[2]) * layout.phase_cols + dw / g.stride[2];
    }
  }
  const size_t out_bytes = out.type == QType::U8 || out.type == QType::S8 ? 1 : 4;
  for (int64_t c = c_begin; c < c_end; ++c) {
    build_plane(g, layout, static_cast<const uint8_t*>(x.data) + c * g.in_size(), flip_sign,
                static_cast<uint8_t>(zero_u8), row, plane);
    for (int64_t t = 0; t < w.taps; ++t) {
      // An int16 weight in the low half, 0 in the high half (see qdw_detail::Plane).
      taps[size_t(t)] = static_cast<int32_t>(static_cast<uint16_t>(w.values[size_t(c * w.taps + t)]));
    }
    qdw_detail::Plane p;
    p.taps = w.taps;
    p.inputs = inputs.data();
    p.pitch = g.stride[1] * layout.row_bytes;
    p.weights = taps.data();
    p.width = g.out[2];
    p.rows = g.out[1];
    p.channel = c;
    p.dst = static_cast<uint8_t*>(out.data) + size_t(c * out.row_stride) * out_bytes;
    p.sums = sums;
    kernel(p, te);
  }
}

}  // namespace nibble::kernels
