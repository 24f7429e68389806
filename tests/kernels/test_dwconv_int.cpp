// Integer depthwise convolution (kernels/dwconv_int.h) against its reference
// (ref::qdwconv_reference, a one-row qgemm_reference per channel), on every ISA level this CPU
// has, each packed for that level: uint8 and int8 activations with zero points, int8 and int4
// weights, per-channel and per-tensor scales, outputs as int32 sums (exact), requantized
// uint8/int8 (exact without SiLU, within one step with it) and float. Shapes sweep the widths
// around the vector widths (8, 16) and the four-row blocks, kernels 1..7, strides 1..3,
// dilation and asymmetric padding. Buffers are sized exactly, outputs prefilled with a sentinel.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/dwconv_int.h"
#include "nibble/error.h"

using namespace nibble::kernels;

namespace {

std::vector<Isa> isas_to_test() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::Ref, Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni}) {
    if (static_cast<int>(isa) <= static_cast<int>(detected_isa())) isas.push_back(isa);
  }
  return isas;
}

size_t type_size(QType t) { return t == QType::U8 || t == QType::S8 ? 1 : 4; }

struct Case {
  int64_t channels = 3, in_h = 9, in_w = 9, kernel_h = 3, kernel_w = 3;
  int64_t stride_h = 1, stride_w = 1, dilation = 1, pad_top = 1, pad_left = 1, pad_bottom = 1,
          pad_right = 1;
  int bits = 8;
  QType in_type = QType::U8, out_type = QType::I32;
  bool per_channel = true, silu = false, bias = true;
};

struct Result {
  std::vector<uint8_t> ref, got;
};

Result run_case(const Case& c, Isa isa, unsigned seed) {
  std::mt19937 rng(seed);
  ref::ConvGeometry g;
  g.channels = 1;
  g.in[1] = c.in_h;
  g.in[2] = c.in_w;
  g.kernel[1] = c.kernel_h;
  g.kernel[2] = c.kernel_w;
  g.stride[1] = c.stride_h;
  g.stride[2] = c.stride_w;
  g.dilation[1] = g.dilation[2] = c.dilation;
  g.pad[1] = c.pad_top;
  g.pad[2] = c.pad_left;
  g.out[1] = (c.in_h + c.pad_top + c.pad_bottom - (c.kernel_h - 1) * c.dilation - 1) / c.stride_h + 1;
  g.out[2] = (c.in_w + c.pad_left + c.pad_right - (c.kernel_w - 1) * c.dilation - 1) / c.stride_w + 1;
  const int64_t taps = c.kernel_h * c.kernel_w;

  const int w_lo = c.bits == 4 ? -8 : -128, w_hi = c.bits == 4 ? 7 : 127;
  std::uniform_int_distribution<int> wd(w_lo, w_hi), xd(0, 255);
  std::vector<int8_t> w(size_t(c.channels * taps));
  for (int8_t& v : w) v = static_cast<int8_t>(wd(rng));
  std::uniform_real_distribution<float> sd(0.001f, 0.02f), bd(-2.0f, 2.0f);
  std::vector<float> scales(size_t(c.per_channel ? c.channels : 1));
  for (float& s : scales) s = sd(rng);
  std::vector<float> bias(size_t(c.channels));
  for (float& b : bias) b = bd(rng);
  std::vector<uint8_t> x(size_t(c.channels * g.in_size()));
  for (uint8_t& v : x) v = static_cast<uint8_t>(xd(rng));

  QSource src;
  src.type = c.in_type;
  src.data = x.data();
  src.conv = &g;
  src.scale = 0.05f;
  src.zero_point = c.in_type == QType::U8 ? 131 : -7;
  QEpilogue ep;
  ep.bias = c.bias ? bias.data() : nullptr;
  ep.silu = c.silu;
  QOutput out;
  out.type = c.out_type;
  out.row_stride = g.out_size();
  out.scale = 0.03f;
  out.zero_point = c.out_type == QType::U8 ? 100 : -20;

  Result r;
  const size_t bytes = size_t(c.channels * g.out_size()) * type_size(c.out_type);
  r.ref.assign(bytes, 0xA5);
  r.got.assign(bytes, 0xA5);
  std::vector<float> row_scales(size_t(c.channels));
  for (int64_t ch = 0; ch < c.channels; ++ch) row_scales[size_t(ch)] = scales[c.per_channel ? ch : 0];
  out.data = r.ref.data();
  ref::qdwconv_reference(taps, w.data(), row_scales.data(), src, 0, c.channels, ep, out);

  const PackedQDwWeights packed =
      pack_qdwconv_weights(c.bits, c.channels, taps, w.data(), scales.data(), c.per_channel, isa);
  CHECK(packed.isa == isa);
  out.data = r.got.data();
  // Two channel ranges, as threads would split them.
  const int64_t split = c.channels / 2;
  qdwconv(packed, src, 0, split, ep, out);
  qdwconv(packed, src, split, c.channels, ep, out);
  return r;
}

void compare(const Case& c, const Result& r) {
  if (c.out_type == QType::I32 || (!c.silu && c.out_type != QType::F32)) {
    CHECK(r.ref == r.got);
    return;
  }
  const size_t n = r.ref.size() / type_size(c.out_type);
  int bad = 0;
  for (size_t i = 0; i < n; ++i) {
    if (c.out_type == QType::F32) {
      float a, b;
      std::memcpy(&a, r.ref.data() + 4 * i, 4);
      std::memcpy(&b, r.got.data() + 4 * i, 4);
      if (!(std::fabs(a - b) <= 1e-5f * (1.0f + std::fabs(a)))) ++bad;
    } else {
      const int a = c.out_type == QType::U8 ? r.ref[i] : int8_t(r.ref[i]);
      const int b = c.out_type == QType::U8 ? r.got[i] : int8_t(r.got[i]);
      if (std::abs(a - b) > 1) ++bad;
    }
  }
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("qdwconv matches the reference over widths, kernels, strides and padding") {
  unsigned seed = 1;
  for (Isa isa : isas_to_test()) {
    for (int64_t width : {1, 5, 8, 9, 15, 16, 17, 20, 33, 40}) {
      for (int64_t kernel : {1, 3, 5, 7}) {
        for (int64_t stride : {1, 2}) {
          Case c;
          c.channels = 3;
          c.in_w = width;
          c.in_h = 6 + width % 5;  // row counts around the four-row blocks
          c.kernel_h = c.kernel_w = kernel;
          c.pad_top = c.pad_left = c.pad_bottom = c.pad_right = kernel / 2;
          c.stride_h = c.stride_w = stride;
          const std::string isa_label = isa_name(isa);
          CAPTURE(isa_label);
          CAPTURE(width);
          CAPTURE(kernel);
          CAPTURE(stride);
          compare(c, run_case(c, isa, seed++));
        }
      }
    }
  }
}

// The kernels' lanes hold runs of up to four horizontal taps read through two shuffles, with
// windows that start before the row and end past it: every width up to 40 (the 16-lane vector,
// its tails and the four-row blocks), horizontal strides 1..4 and dilations that change the run
// length, kernels from 1 to 7 wide, asymmetric padding, both activation types and weight widths.
// Stride 5 takes the reference path.
TEST_CASE("qdwconv lane runs: widths 1..40, strides, dilations, kernel widths and padding") {
  unsigned seed = 1000;
  for (Isa isa : isas_to_test()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (int64_t width = 1; width <= 40; ++width) {
      for (int64_t stride = 1; stride <= 5; ++stride) {
        Case c;
        c.channels = 2;
        c.in_w = width;
        c.in_h = 3 + (width + stride) % 6;
        c.kernel_w = 1 + (width + stride) % 7;
        c.kernel_h = stride % 2 == 1 ? 3 : 1 + width % 4;
        c.stride_w = stride;
        c.stride_h = 1 + (width + stride) % 2;
        c.dilation = 1 + (width % 5 == 0) + 2 * (width % 11 == 0);
        c.pad_left = width % 3;
        c.pad_right = (width / 3) % 3;
        c.pad_top = stride % 3;
        c.pad_bottom = (width + 1) % 2;
        c.in_type = (width + stride) % 2 ? QType::S8 : QType::U8;
        c.bits = width % 4 == 1 ? 4 : 8;
        const int64_t span_w = c.in_w + c.pad_left + c.pad_right - (c.kernel_w - 1) * c.dilation;
        const int64_t span_h = c.in_h + c.pad_top + c.pad_bottom - (c.kernel_h - 1) * c.dilation;
        if (span_w < 1 || span_h < 1) continue;
        CAPTURE(width);
        CAPTURE(stride);
        CAPTURE(c.kernel_h);
        CAPTURE(c.kernel_w);
        CAPTURE(c.stride_h);
        CAPTURE(c.dilation);
        compare(c, run_case(c, isa, seed++));
      }
    }
  }
}

TEST_CASE("qdwconv: activation and weight types, outputs, epilogue and odd geometries") {
  unsigned seed = 100;
  for (Isa isa : isas_to_test()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (QType in_type : {QType::U8, QType::S8}) {
      for (int bits : {8, 4}) {
        for (QType out_type : {QType::I32, QType::U8, QType::S8, QType::F32}) {
          for (bool silu : {false, true}) {
            Case c;
            c.channels = 5;
            c.in_h = 11;
            c.in_w = 19;
            c.in_type = in_type;
            c.bits = bits;
            c.out_type = out_type;
            c.silu = silu;
            c.per_channel = bits == 8;
            c.bias = !silu || out_type != QType::F32;
            CAPTURE(int(in_type));
            CAPTURE(bits);
            CAPTURE(int(out_type));
            CAPTURE(silu);
            compare(c, run_case(c, isa, seed++));
          }
        }
      }
    }
    // Stride 3, dilation 2, asymmetric padding, non-square kernels, 1-D, a large plane.
    Case odd;
    odd.channels = 4;
    odd.in_h = 13;
    odd.in_w = 23;
    odd.kernel_h = 3;
    odd.kernel_w = 5;
    odd.stride_h = 2;
    odd.stride_w = 3;
    odd.dilation = 2;
    odd.pad_top = 0;
    odd.pad_left = 3;
    odd.pad_bottom = 2;
    odd.pad_right = 1;
    compare(odd, run_case(odd, isa, seed++));
    Case one_d;
    one_d.in_h = 1;
    one_d.in_w = 37;
    one_d.kernel_h = 1;
    one_d.kernel_w = 3;
    one_d.pad_top = one_d.pad_bottom = 0;
    compare(one_d, run_case(one_d, isa, seed++));
    // A plane of more sums than one epilogue batch holds (channels converted one at a time).
    Case large;
    large.in_h = large.in_w = 72;
    large.out_type = QType::U8;
    compare(large, run_case(large, isa, seed++));
    Case unpadded;
    unpadded.pad_top = unpadded.pad_left = unpadded.pad_bottom = unpadded.pad_right = 0;
    unpadded.in_h = unpadded.in_w = 12;
    compare(unpadded, run_case(unpadded, isa, seed++));
  }
}

TEST_CASE("qdwconv rejects bad weights and arguments") {
  const int8_t w[9] = {1, 2, 3, 4, 9, 6, 7, 8, 0};
  const float scale = 0.1f, bad_scale = 0.0f;
  CHECK_THROWS_AS(pack_qdwconv_weights(4, 1, 9, w, &scale, false, Isa::Ref), nibble::Error);
  CHECK_THROWS_AS(pack_qdwconv_weights(6, 1, 9, w, &scale, false, Isa::Ref), nibble::Error);
  CHECK_THROWS_AS(pack_qdwconv_weights(8, 1, 9, w, &bad_scale, false, Isa::Ref), nibble::Error);
  CHECK_THROWS_AS(pack_qdwconv_weights(8, 0, 9, w, &scale, false, Isa::Ref), nibble::Error);
  const PackedQDwWeights p = pack_qdwconv_weights(8, 1, 9, w, &scale, false);
  ref::ConvGeometry g;
  g.channels = 1;
  g.in[1] = g.in[2] = 4;
  g.out[1] = g.out[2] = 2;
  g.kernel[1] = g.kernel[2] = 3;
  std::vector<uint8_t> x(16, 0);
  std::vector<int32_t> y(4);
  QSource src;
  src.data = x.data();
  src.conv = &g;
  QOutput out{QType::I32, y.data(), 4, 1, 1.0f, 0};
  CHECK_NOTHROW(qdwconv(p, src, 0, 1, QEpilogue{}, out));
  CHECK_THROWS_AS(qdwconv(p, src, 0, 2, QEpilogue{}, out), nibble::Error);  // channels
  QSource floats = src;
  floats.type = QType::F32;
  CHECK_THROWS_AS(qdwconv(p, floats, 0, 1, QEpilogue{}, out), nibble::Error);
  QSource bad_zero = src;
  bad_zero.zero_point = 300;
  CHECK_THROWS_AS(qdwconv(p, bad_zero, 0, 1, QEpilogue{}, out), nibble::Error);
  ref::ConvGeometry five = g;
  five.kernel[2] = 5;
  five.out[2] = 1;
  QSource wrong_taps = src;
  wrong_taps.conv = &five;
  CHECK_THROWS_AS(qdwconv(p, wrong_taps, 0, 1, QEpilogue{}, out), nibble::Error);
}
