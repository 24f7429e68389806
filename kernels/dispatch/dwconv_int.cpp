// Integer depthwise convolution driver (kernels/dwconv_int.h): weight packing, the kernel per
// ISA and the epilogue constants it shares with the GEMM tiles.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "kernels/conv_f32.h"
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

// The best kernel of ISA level <= isa; null for the reference path.
qdw_detail::ChannelsKernel find_kernel(Isa isa, Isa* chosen) {
#if defined(__x86_64__)
  if (isa >= Isa::Avx512Vnni) {
    *chosen = Isa::Avx512Vnni;
    return qdw_detail::avx512::dwconv_int_channels_vnni;
  }
  if (isa >= Isa::Avx512) {
    *chosen = Isa::Avx512;
    return qdw_detail::avx512::dwconv_int_channels;
  }
  if (isa >= Isa::Avx2) {
    *chosen = Isa::Avx2;
    return qdw_detail::avx2::dwconv_int_channels;
  }
#endif
  *chosen = Isa::Ref;
  return nullptr;
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
    const char* block = p.isa >= Isa::Avx512 ? "4x16 " : p.isa == Isa::Avx2 ? "4x8 " : "";
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
  const qdw_detail::ChannelsKernel kernel = find_kernel(w.isa, &isa);
  const int group_taps = qdw_detail::lane_group_taps(g.stride[2], g.dilation[2], g.kernel[2]);
  if (kernel == nullptr || group_taps == 0) {
    ref::qdwconv_reference(w.taps, w.values.data(), w.scales.data(), x, c_begin, c_end, ep, out);
    return;
  }

  // Epilogue constants, per channel; everything runs in the uint8 domain.
  const bool flip_sign = x.type == QType::S8;
  const int32_t zero_u8 = flip_sign ? x.zero_point + 128 : x.zero_point;
  thread_local std::vector<int32_t> comp;
  thread_local std::vector<float> scale, bias;
  comp.resize(size_t(w.channels));
  scale.resize(size_t(w.channels));
  bias.assign(size_t(w.channels), 0.0f);
  for (int64_t c = c_begin; c < c_end; ++c) {
    comp[size_t(c)] = zero_u8 * w.tap_sums[size_t(c)];
    scale[size_t(c)] = w.scales[size_t(c)] * x.scale;
    if (ep.bias) bias[size_t(c)] = ep.bias[c];
  }
  const qd::TileEpilogue te = qd::tile_epilogue(ep, out, scale.data(), bias.data(), comp.data());

  qdw_detail::Call call;
  call.in_h = g.in[1];
  call.in_w = g.in[2];
  call.out_h = g.out[1];
  call.out_w = g.out[2];
  call.pad_top = g.pad[1];
  call.pad_left = g.pad[2];
  call.stride_h = g.stride[1];
  call.stride_w = g.stride[2];
  call.dilation_h = g.dilation[1];
  call.dilation_w = g.dilation[2];
  call.kernel_h = g.kernel[1];
  call.kernel_w = g.kernel[2];
  call.group_taps = group_taps;
  call.image = static_cast<const uint8_t*>(x.data);
  call.flip_sign = flip_sign;
  call.zero_point = static_cast<uint8_t>(zero_u8);
  call.weights = w.values.data();
  call.dst = out.data;
  call.dst_channel_stride = out.row_stride;
  kernel(call, c_begin, c_end, te);
}

}  // namespace nibble::kernels
