// Low-bit GEMM kernels (kernels/gemm_int.h) against the reference (ref::qgemm_reference), on
// every ISA level this CPU has, each called directly by packing for that level: W8A8, W4A8,
// W8A16, W4A16, W8A16i16, W4A16i16. Sizes sweep around the register tiles (MR up to 8, NR up to
// 48), the int16 accumulation group (32 depths) and the K blocks (256 to 2048); convolution
// sources sweep channels, kernels, strides, dilations and padding. Integer sums, requantized
// outputs and float outputs of the integer modes are computed by identical float operations and
// compare exactly; only SiLU (vector exp) and float sums (A16) take a tolerance.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/gemm_int.h"
#include "kernels/quantize_f32.h"
#include "nibble/error.h"

using namespace nibble::kernels;

namespace {

const Isa kAllIsas[] = {Isa::Ref, Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni};

// The ISA levels to test; the ones this CPU lacks are reported once.
std::vector<Isa> isas_to_test() {
  static bool reported = false;
  std::vector<Isa> isas;
  for (Isa isa : kAllIsas) {
    if (static_cast<int>(isa) > static_cast<int>(detected_isa())) {
      if (!reported) MESSAGE("low-bit GEMM: skipping ", isa_name(isa), ", which this CPU lacks");
      continue;
    }
    isas.push_back(isa);
  }
  reported = true;
  return isas;
}

size_t type_size(QType t) { return t == QType::U8 || t == QType::S8 ? 1 : 4; }

// Everything one comparison needs; buffers are sized exactly.
struct Problem {
  QuantMode mode = QuantMode::A8;
  int bits = 8;
  int64_t m = 0, k = 0, n = 0;
  std::vector<int8_t> w;      // m x k
  std::vector<float> scales;  // m, or 1 when per tensor
  bool per_channel = true;
  std::vector<uint8_t> x;  // activations, bytes of the source type
  QSource source;
  std::vector<float> bias;  // empty: none
  QEpilogue epilogue;
  QType out_type = QType::I32;
  int64_t out_row_stride = 0, out_col_stride = 1;
  float out_scale = 1.0f;
  int32_t out_zero_point = 0;
  int64_t n_begin = 0, n_end = 0;
  int64_t conv_taps = 0;  // > 0: weights packed with pack_qconv_weights
};

// Runs the reference (isa == Ref and reference == true) or the packed kernel of `isa` and
// returns the whole output buffer, prefilled with a sentinel so stray writes show up.
std::vector<uint8_t> run(const Problem& p, Isa isa, bool reference, std::string* kernel_name) {
  QSource source = p.source;
  source.data = p.x.data();
  QEpilogue ep = p.epilogue;
  ep.bias = p.bias.empty() ? nullptr : p.bias.data();
  const int64_t elements = (p.m - 1) * p.out_row_stride + (p.n - 1) * p.out_col_stride + 1;
  std::vector<uint8_t> out(size_t(elements) * type_size(p.out_type), 0xA5);
  QOutput o;
  o.type = p.out_type;
  o.data = out.data();
  o.row_stride = p.out_row_stride;
  o.col_stride = p.out_col_stride;
  o.scale = p.out_scale;
  o.zero_point = p.out_zero_point;
  if (reference) {
    std::vector<float> row_scales(size_t(p.m));
    for (int64_t i = 0; i < p.m; ++i) row_scales[size_t(i)] = p.scales[p.per_channel ? i : 0];
    ref::qgemm_reference(p.mode, p.m, p.k, p.w.data(), p.k, row_scales.data(), source, p.n,
                         p.n_begin, p.n_end, ep, o);
  } else {
    const PackedQWeights packed =
        p.conv_taps > 0 ? pack_qconv_weights(p.mode, p.bits, p.m, p.k / p.conv_taps, p.conv_taps,
                                             p.w.data(), p.scales.data(), p.per_channel, isa)
                        : pack_qweights(p.mode, p.bits, p.m, p.k, p.w.data(), p.k, p.scales.data(),
                                        p.per_channel, isa);
    if (kernel_name) *kernel_name = packed.kernel;
    qgemm(packed, source, p.n, p.n_begin, p.n_end, ep, o);
  }
  return out;
}

// Largest |x| of the source data.
double source_abs_max(const Problem& p) {
  double m = 0;
  const size_t count = p.x.size() / type_size(p.source.type);
  for (size_t i = 0; i < count; ++i) {
    double v;
    switch (p.source.type) {
      case QType::U8:
        v = double(p.x[i]) - p.source.zero_point;
        break;
      case QType::S8:
        v = double(int8_t(p.x[i])) - p.source.zero_point;
        break;
      default: {
        float f;
        std::memcpy(&f, p.x.data() + i * 4, 4);
        v = f;
      }
    }
    m = std::max(m, std::fabs(v));
  }
  return m;
}

// Compares kernel output with the reference on every ISA level; exact unless SiLU or float sums.
void check(const Problem& p, const std::string& what) {
  const std::vector<uint8_t> expected = run(p, Isa::Ref, true, nullptr);
  for (Isa isa : isas_to_test()) {
    std::string kernel;
    const std::vector<uint8_t> got = run(p, isa, false, &kernel);
    const bool float_sums = p.mode == QuantMode::A16;
    const bool exact = !p.epilogue.silu && !(float_sums && p.out_type == QType::F32);
    INFO(what, " kernel=", kernel, " m=", p.m, " k=", p.k, " n=", p.n);
    if (exact && !float_sums) {
      if (got != expected) {
        size_t i = 0;
        while (got[i] == expected[i]) ++i;
        FAIL_CHECK("first difference at byte ", i, " of ", got.size());
      }
      continue;
    }
    if (p.out_type != QType::F32) {
      // Requantized after SiLU or float sums: within one quantization step.
      int worst = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        const int a = p.out_type == QType::U8 ? int(got[i]) : int(int8_t(got[i]));
        const int b = p.out_type == QType::U8 ? int(expected[i]) : int(int8_t(expected[i]));
        worst = std::max(worst, std::abs(a - b));
      }
      CHECK(worst <= 1);
      continue;
    }
    // Float outputs: SiLU's vector exp is within a few ulp; float sums of k products differ by
    // rounding, bounded by k * eps * sum |w x| * scale.
    float w_max = 0, s_max = 0;
    for (int8_t v : p.w) w_max = std::max(w_max, std::fabs(float(v)));
    for (float s : p.scales) s_max = std::max(s_max, s);
    const double sum_bound = double(p.k) * w_max * source_abs_max(p) * s_max;
    const double abs_tol = float_sums ? 4e-7 * p.k * sum_bound + 1e-6 : 1e-6;
    const size_t count = got.size() / 4;
    size_t bad = 0;
    for (size_t i = 0; i < count; ++i) {
      float a, b;
      std::memcpy(&a, got.data() + i * 4, 4);
      std::memcpy(&b, expected.data() + i * 4, 4);
      if (std::memcmp(&a, &b, 4) == 0) continue;
      if (!(std::fabs(a - b) <= abs_tol + 1e-5 * std::fabs(b))) {
        if (bad++ == 0) FAIL_CHECK("element ", i, ": ", a, " vs reference ", b);
      }
    }
    CHECK(bad == 0);
  }
}

template <typename T>
std::vector<uint8_t> random_bytes(size_t count, int lo, int hi, std::mt19937& rng) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<uint8_t> v(count * sizeof(T));
  for (size_t i = 0; i < count; ++i) {
    const T x = static_cast<T>(dist(rng));
    std::memcpy(v.data() + i * sizeof(T), &x, sizeof(T));
  }
  return v;
}

std::vector<uint8_t> random_floats(size_t count, float range, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-range, range);
  std::vector<uint8_t> v(count * 4);
  for (size_t i = 0; i < count; ++i) {
    const float x = dist(rng);
    std::memcpy(v.data() + i * 4, &x, 4);
  }
  return v;
}

// Fills weights, scales and a matrix source [k x n] (row stride n + pad) for the mode.
Problem matrix_problem(QuantMode mode, int bits, QType x_type, int64_t m, int64_t k, int64_t n,
                       std::mt19937& rng) {
  Problem p;
  p.mode = mode;
  p.bits = bits;
  p.m = m;
  p.k = k;
  p.n = n;
  const int w_lo = bits == 4 ? -8 : -128, w_hi = bits == 4 ? 7 : 127;
  std::uniform_int_distribution<int> wd(w_lo, w_hi);
  p.w.resize(size_t(m * k));
  for (int8_t& v : p.w) v = static_cast<int8_t>(wd(rng));
  std::uniform_real_distribution<float> sd(0.001f, 0.02f);
  p.scales.resize(size_t(m));
  for (float& s : p.scales) s = sd(rng);
  p.source.type = x_type;
  p.source.row_stride = n + 3;
  p.source.col_stride = 1;
  const size_t count = size_t((k - 1) * p.source.row_stride + n);
  switch (x_type) {
    case QType::U8:
      p.x = random_bytes<uint8_t>(count, 0, 255, rng);
      break;
    case QType::S8:
      p.x = random_bytes<int8_t>(count, -128, 127, rng);
      break;
    default:
      p.x = random_floats(count, 2.0f, rng);
      break;
  }
  p.source.scale = 0.05f;
  if (mode == QuantMode::A16I16) {
    p.source.abs_max = static_cast<float>(source_abs_max(p));
  }
  p.out_row_stride = n;
  p.n_begin = 0;
  p.n_end = n;
  return p;
}

const int64_t kRows[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17};
const int64_t kCols[] = {1, 7, 8, 15, 16, 17, 47, 48, 49};
const int64_t kDepths[] = {1, 3, 4, 7, 31, 32, 33, 100};

}  // namespace

TEST_CASE("qgemm int32 sums are exact around tile sizes (w8a8, w4a8, w8a16i16, w4a16i16)") {
  std::mt19937 rng(11);
  for (QuantMode mode : {QuantMode::A8, QuantMode::A16I16}) {
    for (int bits : {8, 4}) {
      int variant = 0;
      for (int64_t m : kRows) {
        for (int64_t n : kCols) {
          for (int64_t k : kDepths) {
            const QType x_type = mode == QuantMode::A16I16 ? QType::F32
                                 : (++variant % 2)         ? QType::U8
                                                           : QType::S8;
            Problem p = matrix_problem(mode, bits, x_type, m, k, n, rng);
            const int32_t zero_points_u8[] = {0, 128, 37, 255};
            const int32_t zero_points_s8[] = {0, -128, -5, 127};
            p.source.zero_point =
                x_type == QType::S8 ? zero_points_s8[variant % 4] : zero_points_u8[variant % 4];
            check(p, qgemm_kind_name(mode, bits) + " sums");
          }
        }
      }
    }
  }
}

TEST_CASE("qgemm sums across K blocks and the int16 group (deep K)") {
  std::mt19937 rng(12);
  for (QuantMode mode : {QuantMode::A8, QuantMode::A16I16, QuantMode::A16}) {
    for (int bits : {8, 4}) {
      for (int64_t k : {255, 256, 257, 1023, 1024, 1025, 2047, 2048, 2049, 4100}) {
        const QType x_type = mode == QuantMode::A8 ? QType::U8 : QType::F32;
        Problem p = matrix_problem(mode, bits, x_type, 9, k, 50, rng);
        p.source.zero_point = mode == QuantMode::A8 ? 100 : 0;
        p.out_type = mode == QuantMode::A16 ? QType::F32 : QType::I32;
        check(p, qgemm_kind_name(mode, bits) + " deep");
      }
    }
  }
}

TEST_CASE("qgemm worst-case values do not saturate") {
  // 255 x 127, 255 x -128 and 255 x -8 in every product: int16 pair sums of vpmaddubsw would
  // saturate for int8 weights, and eight int4 pairs sit right at the int16 limit.
  std::mt19937 rng(13);
  for (int bits : {8, 4}) {
    const int extremes[] = {bits == 8 ? 127 : 7, bits == 8 ? -128 : -8};
    for (int w_value : extremes) {
      for (int64_t k : {32, 64, 100, 2049, 4096}) {
        Problem p = matrix_problem(QuantMode::A8, bits, QType::U8, 8, k, 48, rng);
        std::fill(p.w.begin(), p.w.end(), static_cast<int8_t>(w_value));
        // The last row alternates both extremes: products of both signs.
        const int other = w_value > 0 ? (bits == 8 ? -128 : -8) : (bits == 8 ? 127 : 7);
        for (int64_t j = 0; j < k; j += 2) p.w[size_t(7 * k + j)] = static_cast<int8_t>(other);
        std::fill(p.x.begin(), p.x.end(), uint8_t{255});
        p.source.zero_point = 0;
        check(p, "saturation " + std::to_string(w_value));
        // int8 activations: 127 and -128.
        Problem s = p;
        s.source.type = QType::S8;
        std::fill(s.x.begin(), s.x.end(), uint8_t(0x80));
        check(s, "saturation s8 " + std::to_string(w_value));
      }
    }
  }
  // int16 activations at the top of their range against the largest weights.
  for (int bits : {8, 4}) {
    Problem p = matrix_problem(QuantMode::A16I16, bits, QType::F32, 8, 3000, 48, rng);
    std::fill(p.w.begin(), p.w.end(), static_cast<int8_t>(bits == 8 ? -128 : -8));
    const float big = 3.5f;
    for (size_t i = 0; i < p.x.size(); i += 4) std::memcpy(p.x.data() + i, &big, 4);
    p.source.abs_max = big;
    check(p, "int16 range");
  }
}

TEST_CASE("qgemm epilogues: scales, bias, activations, requantization") {
  std::mt19937 rng(14);
  for (QuantMode mode : {QuantMode::A8, QuantMode::A16, QuantMode::A16I16}) {
    for (int bits : {8, 4}) {
      for (QType out : {QType::F32, QType::U8, QType::S8}) {
        for (int act = 0; act < 4; ++act) {
          for (bool per_channel : {true, false}) {
            const QType x_type = mode == QuantMode::A8 ? QType::S8 : QType::F32;
            Problem p = matrix_problem(mode, bits, x_type, 11, 70, 53, rng);
            p.per_channel = per_channel;
            if (!per_channel) p.scales.resize(1);
            p.source.zero_point = mode == QuantMode::A8 ? 3 : 0;
            p.bias.resize(size_t(p.m));
            std::uniform_real_distribution<float> bd(-2.0f, 2.0f);
            for (float& b : p.bias) b = bd(rng);
            if (act == 1) p.epilogue.clamp_min = 0.0f;  // ReLU
            if (act == 2) {                             // Clip
              p.epilogue.clamp_min = -0.5f;
              p.epilogue.clamp_max = 1.5f;
            }
            p.epilogue.silu = act == 3;
            p.out_type = out;
            p.out_scale = 0.03f;
            p.out_zero_point = out == QType::U8 ? 120 : -7;
            check(p, qgemm_kind_name(mode, bits) + " epilogue " + std::to_string(act));
          }
        }
      }
    }
  }
}

TEST_CASE("qgemm column ranges, strided sources and transposed outputs") {
  std::mt19937 rng(15);
  for (QuantMode mode : {QuantMode::A8, QuantMode::A16, QuantMode::A16I16}) {
    const QType x_type = mode == QuantMode::A8 ? QType::U8 : QType::F32;
    Problem p = matrix_problem(mode, 4, x_type, 10, 45, 100, rng);
    p.out_type = QType::F32;
    // Only columns [13, 70): the rest of the output keeps its sentinel.
    p.n_begin = 13;
    p.n_end = 70;
    check(p, "column range");
    // B transposed in memory (a MatMul's activations): element (k, n) at x[n * k_total + k].
    Problem t = matrix_problem(mode, 4, x_type, 10, 45, 100, rng);
    t.source.row_stride = 1;
    t.source.col_stride = 45;
    t.out_type = mode == QuantMode::A16 ? QType::F32 : QType::I32;
    // C transposed too (a MatMul's output rows are the columns here).
    t.out_row_stride = 1;
    t.out_col_stride = t.m;
    check(t, "transposed");
  }
}

TEST_CASE("qgemm convolutions: channels, kernels, strides, dilation, padding") {
  std::mt19937 rng(16);
  struct Geo {
    int64_t kernel, stride, dilation, pad, h, w;
  };
  const Geo geos[] = {{1, 1, 1, 0, 5, 7}, {1, 1, 1, 0, 9, 6},  {3, 1, 1, 1, 6, 9},
                      {3, 2, 1, 1, 9, 8}, {5, 1, 1, 2, 7, 7},  {3, 1, 2, 2, 8, 6},
                      {1, 2, 1, 0, 7, 9}, {3, 2, 1, 0, 11, 5}, {3, 3, 1, 1, 10, 11}};
  const int64_t channels[] = {1, 3, 4, 7, 8, 15, 16, 17};
  int variant = 0;
  for (QuantMode mode : {QuantMode::A8, QuantMode::A16, QuantMode::A16I16}) {
    for (int bits : {8, 4}) {
      for (const Geo& geo : geos) {
        for (int64_t c : channels) {
          ++variant;
          ref::ConvGeometry g;
          g.channels = c;
          g.in[1] = geo.h;
          g.in[2] = geo.w;
          g.kernel[1] = g.kernel[2] = geo.kernel;
          g.stride[1] = g.stride[2] = geo.stride;
          g.dilation[1] = g.dilation[2] = geo.dilation;
          g.pad[1] = g.pad[2] = geo.pad;
          const int64_t span = (geo.kernel - 1) * geo.dilation + 1;
          g.out[1] = (geo.h + 2 * geo.pad - span) / geo.stride + 1;
          g.out[2] = (geo.w + 2 * geo.pad - span) / geo.stride + 1;
          const int64_t out_channels[] = {1, 5, 8, 17};
          const int64_t m = out_channels[variant % 4];
          const QType x_type = mode != QuantMode::A8 ? QType::F32
                               : variant % 2         ? QType::U8
                                                     : QType::S8;
          Problem p = matrix_problem(mode, bits, x_type, m, g.im2col_rows(), g.out_size(), rng);
          const size_t image = size_t(c * g.in_size());
          p.x = x_type == QType::F32  ? random_floats(image, 2.0f, rng)
                : x_type == QType::U8 ? random_bytes<uint8_t>(image, 0, 255, rng)
                                      : random_bytes<int8_t>(image, -128, 127, rng);
          p.source.conv = &g;
          p.source.zero_point = x_type == QType::U8 ? 131 : x_type == QType::S8 ? -9 : 0;
          if (mode == QuantMode::A16I16) p.source.abs_max = float(source_abs_max(p));
          p.out_type = mode == QuantMode::A16 ? QType::F32 : QType::I32;
          const std::string what = "conv k" + std::to_string(geo.kernel) + " s" +
                                   std::to_string(geo.stride) + " c" + std::to_string(c);
          check(p, what + " (im2col)");
          // Convolution weights: mode A8 reads a channel-quad copy of the image instead.
          p.conv_taps = geo.kernel * geo.kernel;
          check(p, what + " (conv weights)");
          // Column ranges that start and end inside output rows (a thread's share).
          p.n_begin = p.n / 3;
          p.n_end = 2 * p.n / 3 + 1;
          check(p, what + " (column range)");
        }
      }
    }
  }
}

TEST_CASE("pack_qweights stores int4 at half the bytes of int8 and rejects bad weights") {
  std::vector<int8_t> w(size_t(16 * 128), 3);
  const float scale = 0.1f;
  for (Isa isa : isas_to_test()) {
    const PackedQWeights w8 =
        pack_qweights(QuantMode::A8, 8, 16, 128, w.data(), 128, &scale, false, isa);
    const PackedQWeights w4 =
        pack_qweights(QuantMode::A8, 4, 16, 128, w.data(), 128, &scale, false, isa);
    INFO(w8.kernel, " / ", w4.kernel);
    CHECK(w4.data.size() * 2 == w8.data.size());
    CHECK(w4.row_sums[0] == 3 * 128);
  }
  w[5] = 8;  // outside int4
  CHECK_THROWS_AS(pack_qweights(QuantMode::A8, 4, 16, 128, w.data(), 128, &scale, false),
                  nibble::Error);
  CHECK_THROWS_AS(pack_qweights(QuantMode::A8, 2, 16, 128, w.data(), 128, &scale, false),
                  nibble::Error);
  const float bad_scale = -1.0f;
  CHECK_THROWS_AS(pack_qweights(QuantMode::A8, 8, 16, 128, w.data(), 128, &bad_scale, false),
                  nibble::Error);
  CHECK_THROWS_AS(pack_qweights(QuantMode::A8, 8, 0, 128, w.data(), 128, &scale, false),
                  nibble::Error);
}

TEST_CASE("qgemm convolutions deeper than a K block") {
  // 1000 channels x 9 taps: several K blocks of every kernel set (partial sums between them).
  std::mt19937 rng(17);
  ref::ConvGeometry g;
  g.channels = 1000;
  g.in[1] = 6;
  g.in[2] = 7;
  g.out[1] = 6;
  g.out[2] = 7;
  g.kernel[1] = g.kernel[2] = 3;
  g.pad[1] = g.pad[2] = 1;
  for (QuantMode mode : {QuantMode::A8, QuantMode::A16, QuantMode::A16I16}) {
    for (int bits : {8, 4}) {
      const QType x_type = mode == QuantMode::A8 ? QType::U8 : QType::F32;
      Problem p = matrix_problem(mode, bits, x_type, 9, g.im2col_rows(), g.out_size(), rng);
      const size_t image = size_t(g.channels * g.in_size());
      p.x = x_type == QType::F32 ? random_floats(image, 2.0f, rng)
                                 : random_bytes<uint8_t>(image, 0, 255, rng);
      p.source.conv = &g;
      p.source.zero_point = mode == QuantMode::A8 ? 77 : 0;
      if (mode == QuantMode::A16I16) p.source.abs_max = float(source_abs_max(p));
      p.out_type = mode == QuantMode::A16 ? QType::F32 : QType::I32;
      p.conv_taps = 9;
      check(p, qgemm_kind_name(mode, bits) + " deep conv");
    }
  }
}

TEST_CASE("qgemm convolutions whose prepared weight panels split K (many output channels)") {
  // 240 output channels x 3400 channels (1x1): the prepared panels of all rows (816 KB at one
  // byte per weight) would exceed the driver's budget for them, so K splits into blocks
  // shallower than the kernel set's, and the 400 columns span two column blocks, each preparing
  // every K block again.
  std::mt19937 rng(23);
  ref::ConvGeometry g;
  g.channels = 3400;
  g.in[1] = g.out[1] = 4;
  g.in[2] = g.out[2] = 100;
  for (QuantMode mode : {QuantMode::A8, QuantMode::A16I16}) {
    const QType x_type = mode == QuantMode::A8 ? QType::S8 : QType::F32;
    Problem p = matrix_problem(mode, 4, x_type, 240, g.im2col_rows(), g.out_size(), rng);
    const size_t image = size_t(g.channels * g.in_size());
    p.x = x_type == QType::F32 ? random_floats(image, 2.0f, rng)
                               : random_bytes<int8_t>(image, -128, 127, rng);
    p.source.conv = &g;
    p.source.zero_point = mode == QuantMode::A8 ? -5 : 0;
    if (mode == QuantMode::A16I16) p.source.abs_max = float(source_abs_max(p));
    p.out_type = QType::I32;
    p.conv_taps = 1;
    check(p, qgemm_kind_name(mode, 4) + " many-row conv");
  }
}

TEST_CASE("convolution weights take only convolutions of their geometry") {
  std::vector<int8_t> w(size_t(4 * 8 * 9), 1);
  const float scale = 0.1f;
  ref::ConvGeometry g;
  g.channels = 8;
  g.in[1] = g.in[2] = g.out[1] = g.out[2] = 5;
  g.kernel[1] = g.kernel[2] = 3;
  g.pad[1] = g.pad[2] = 1;
  // A 3-D geometry with as many taps.
  ref::ConvGeometry g3 = g;
  g3.kernel[0] = 9;
  g3.kernel[1] = g3.kernel[2] = 1;
  g3.in[0] = g3.out[0] = 9;
  g3.pad[1] = g3.pad[2] = 0;
  g3.in[1] = g3.in[2] = g3.out[1] = g3.out[2] = 1;
  std::vector<float> y(4 * 25);
  const QOutput out{QType::F32, y.data(), 25, 1, 1.0f, 0};
  for (QuantMode mode : {QuantMode::A8, QuantMode::A16, QuantMode::A16I16}) {
    const QType type = mode == QuantMode::A8 ? QType::U8 : QType::F32;
    std::vector<float> x(8 * 5 * 5, 1.0f);  // big enough for either element type
    for (Isa isa : isas_to_test()) {
      const PackedQWeights conv =
          pack_qconv_weights(mode, 8, 4, 8, 9, w.data(), &scale, false, isa);
      INFO(conv.kernel);
      QSource image{type, x.data(), 0, 1, &g, 1.0f, 0, 1.0f};
      CHECK_NOTHROW(qgemm(conv, image, 25, 0, 25, {}, out));
      // A matrix source of the same depth.
      QSource matrix{type, x.data(), 25, 1, nullptr, 1.0f, 0, 1.0f};
      CHECK_THROWS_AS(qgemm(conv, matrix, 25, 0, 25, {}, out), nibble::Error);
      QSource volume{type, x.data(), 0, 1, &g3, 1.0f, 0, 1.0f};
      CHECK_THROWS_AS(qgemm(conv, volume, 9, 0, 9, {}, out), nibble::Error);
    }
  }
}

TEST_CASE("qgemm rejects mismatched types, zero points and column ranges") {
  std::vector<int8_t> w(size_t(4 * 8), 1);
  const float scale = 0.1f;
  const PackedQWeights a8 = pack_qweights(QuantMode::A8, 8, 4, 8, w.data(), 8, &scale, false);
  const PackedQWeights a16 = pack_qweights(QuantMode::A16, 8, 4, 8, w.data(), 8, &scale, false);
  std::vector<float> xf(8 * 4, 1.0f);
  std::vector<uint8_t> xu(8 * 4, 1);
  std::vector<float> yf(4 * 4);
  QOutput out{QType::F32, yf.data(), 4, 1, 1.0f, 0};
  QSource floats{QType::F32, xf.data(), 4, 1, nullptr, 1.0f, 0, 0.0f};
  QSource bytes{QType::U8, xu.data(), 4, 1, nullptr, 1.0f, 0, 0.0f};
  CHECK_THROWS_AS(qgemm(a8, floats, 4, 0, 4, {}, out), nibble::Error);
  CHECK_THROWS_AS(qgemm(a16, bytes, 4, 0, 4, {}, out), nibble::Error);
  QSource bad_zero = bytes;
  bad_zero.zero_point = 300;
  CHECK_THROWS_AS(qgemm(a8, bad_zero, 4, 0, 4, {}, out), nibble::Error);
  CHECK_THROWS_AS(qgemm(a8, bytes, 4, 2, 5, {}, out), nibble::Error);
  QOutput ints{QType::I32, yf.data(), 4, 1, 1.0f, 0};
  CHECK_THROWS_AS(qgemm(a16, floats, 4, 0, 4, {}, ints), nibble::Error);
  CHECK_NOTHROW(qgemm(a8, bytes, 4, 0, 4, {}, out));
}

TEST_CASE("qgemm convolutions on rows around the input copy's vector widths (A8)") {
  // The channel-quad copy interleaves 32 (AVX2) or 64 (AVX-512) pixels per step with a tail:
  // rows around those widths, unpadded 1x1 planes copied as one run, padded rows, stride 2
  // (phase rows of 32 +- 1 and 64 +- 1 pixels, odd and even input widths, the last sample at the
  // input row's end), padded stride-1 planes copied in steps across row ends (rows of 6 and 41
  // pixels); requantized with SiLU and exact int32 sums.
  std::mt19937 rng(18);
  struct Geo {
    int64_t kernel, stride, pad, h, w;
  };
  const Geo geos[] = {{1, 1, 0, 2, 31}, {1, 1, 0, 3, 33},  {1, 1, 0, 1, 64},  {1, 1, 0, 2, 65},
                      {3, 1, 1, 3, 63}, {3, 1, 1, 2, 97},  {3, 2, 1, 4, 130}, {1, 1, 0, 5, 40},
                      {1, 2, 0, 2, 66}, {3, 2, 0, 3, 65},  {3, 2, 1, 2, 127}, {1, 2, 0, 2, 129},
                      {3, 2, 1, 3, 194}, {3, 2, 0, 2, 131}, {3, 1, 1, 9, 5},   {3, 1, 1, 7, 40}};
  int variant = 0;
  for (int bits : {8, 4}) {
    for (const Geo& geo : geos) {
      ++variant;
      ref::ConvGeometry g;
      g.channels = variant % 2 ? 6 : 9;
      g.in[1] = geo.h;
      g.in[2] = geo.w;
      g.kernel[1] = g.kernel[2] = geo.kernel;
      g.stride[1] = g.stride[2] = geo.stride;
      g.pad[1] = g.pad[2] = geo.pad;
      g.out[1] = (geo.h + 2 * geo.pad - geo.kernel) / geo.stride + 1;
      g.out[2] = (geo.w + 2 * geo.pad - geo.kernel) / geo.stride + 1;
      const QType x_type = variant % 3 ? QType::U8 : QType::S8;
      Problem p = matrix_problem(QuantMode::A8, bits, x_type, 11, g.im2col_rows(), g.out_size(),
                                 rng);
      const size_t image = size_t(g.channels * g.in_size());
      p.x = x_type == QType::U8 ? random_bytes<uint8_t>(image, 0, 255, rng)
                                : random_bytes<int8_t>(image, -128, 127, rng);
      p.source.conv = &g;
      p.source.zero_point = x_type == QType::U8 ? 120 : 5;
      p.conv_taps = geo.kernel * geo.kernel;
      const std::string what = "k" + std::to_string(geo.kernel) + " s" +
                               std::to_string(geo.stride) + " w" + std::to_string(geo.w);
      p.out_type = QType::I32;
      check(p, what + " sums");
      p.out_type = QType::U8;
      p.out_scale = 0.05f;
      p.out_zero_point = 100;
      p.bias.assign(size_t(p.m), 0.25f);
      p.epilogue.silu = true;
      check(p, what + " silu");
      // SiLU far out on both sides (e^-|y| held at 2^-126 there), as float.
      p.out_type = QType::F32;
      for (size_t r = 0; r < p.bias.size(); ++r) p.bias[r] = r % 2 ? 100.0f : -100.0f;
      check(p, what + " silu far out");
    }
  }
}

TEST_CASE("qgemm requantized outputs equal QuantizeLinear on the float outputs, bit for bit") {
  // The fused epilogue divides by the output scale as QuantizeLinear does (quantize_f32.h), so
  // a QConv that writes 8-bit values itself is the QConv + QuantizeLinear pair exactly, SiLU
  // included (both sides take the same float y). A scale whose reciprocal is inexact and
  // outputs spread over many steps make multiply-by-reciprocal rounding differences show up.
  std::mt19937 rng(19);
  for (int bits : {8, 4}) {
    for (int variant = 0; variant < 3; ++variant) {
      const bool silu = variant == 1, ties = variant == 2;
      for (QType out : {QType::U8, QType::S8}) {
        Problem p = matrix_problem(QuantMode::A8, bits, QType::U8, 120, 150, 45, rng);
        p.source.zero_point = 128;
        p.source.scale = 0.37f;
        p.bias.resize(size_t(p.m));
        std::uniform_real_distribution<float> bd(-3.0f, 3.0f);
        for (float& b : p.bias) b = bd(rng);
        p.out_scale = 0.0113f;
        if (ties) {
          // y = bias = (r - 59.5) * out_scale rounded to float: halfway cases, where y times
          // 1 / out_scale rounds to the other integer for about one row in eight.
          std::fill(p.w.begin(), p.w.end(), int8_t{0});
          for (int64_t r = 0; r < p.m; ++r) p.bias[size_t(r)] = float((r - 59.5) * 0.0113f);
        }
        p.epilogue.silu = silu;
        p.out_zero_point = out == QType::U8 ? 77 : -5;
        for (Isa isa : isas_to_test()) {
          p.out_type = QType::F32;
          const std::vector<uint8_t> floats = run(p, isa, false, nullptr);
          p.out_type = out;
          std::string kernel;
          const std::vector<uint8_t> fused = run(p, isa, false, &kernel);
          INFO(kernel, " variant=", variant);
          const int64_t count = p.m * p.n;
          std::vector<uint8_t> expected(static_cast<size_t>(count));
          const float* y = reinterpret_cast<const float*>(floats.data());
          if (out == QType::U8) {
            quantize_f32_kernel<uint8_t>(Isa::Ref)(y, expected.data(), count, p.out_scale,
                                                   p.out_zero_point);
          } else {
            quantize_f32_kernel<int8_t>(Isa::Ref)(y, reinterpret_cast<int8_t*>(expected.data()),
                                                  count, p.out_scale, p.out_zero_point);
          }
          CHECK(fused == expected);
        }
      }
    }
  }
}

TEST_CASE("qgemm convolution weights equal the im2col GEMM bit for bit (deferred epilogues)") {
  // Convolution weights read the input copy in place, and kernel sets that can run a tile's
  // epilogue during the next tile's K loop do so; the im2col GEMM path runs each epilogue at
  // once. Same sums, same epilogue arithmetic: the outputs must agree to the bit, for every
  // output kind, over several panels and strips, grids whose rows share their padding
  // (stride 1) and column ranges that start and end inside rows. Tiles that skip the grid's
  // dropped columns themselves meet several in one vector (rows of 4) and tiles with none
  // kept (dilation 50: 50 dropped grid columns after every 2 kept ones).
  std::mt19937 rng(20);
  struct Geo {
    int64_t kernel, stride, dilation, pad, h, w;
  };
  const Geo geos[] = {{3, 1, 1, 1, 9, 45}, {1, 1, 1, 0, 7, 50}, {3, 2, 1, 1, 11, 37},
                      {5, 1, 1, 2, 6, 23}, {3, 1, 2, 2, 5, 41}, {3, 1, 1, 0, 8, 30},
                      {3, 1, 1, 1, 9, 4},  {3, 1, 50, 50, 13, 2}};
  for (int bits : {8, 4}) {
    for (const Geo& geo : geos) {
      ref::ConvGeometry g;
      g.channels = 13;
      g.in[1] = geo.h;
      g.in[2] = geo.w;
      g.kernel[1] = g.kernel[2] = geo.kernel;
      g.stride[1] = g.stride[2] = geo.stride;
      g.dilation[1] = g.dilation[2] = geo.dilation;
      g.pad[1] = g.pad[2] = geo.pad;
      const int64_t span = (geo.kernel - 1) * geo.dilation + 1;
      g.out[1] = (geo.h + 2 * geo.pad - span) / geo.stride + 1;
      g.out[2] = (geo.w + 2 * geo.pad - span) / geo.stride + 1;
      Problem p = matrix_problem(QuantMode::A8, bits, QType::U8, 21, g.im2col_rows(), g.out_size(),
                                 rng);
      p.x = random_bytes<uint8_t>(size_t(g.channels * g.in_size()), 0, 255, rng);
      p.source.conv = &g;
      p.source.zero_point = 119;
      p.bias.resize(size_t(p.m));
      std::uniform_real_distribution<float> bd(-2.0f, 2.0f);
      for (float& b : p.bias) b = bd(rng);
      p.epilogue.silu = true;
      p.out_scale = 0.0113f;
      p.out_zero_point = 60;
      const std::string what = "k" + std::to_string(geo.kernel) + " s" +
                               std::to_string(geo.stride) + " d" + std::to_string(geo.dilation) +
                               " w" + std::to_string(geo.w);
      for (QType out : {QType::U8, QType::S8, QType::F32, QType::I32}) {
        for (int range = 0; range < 2; ++range) {
          p.out_type = out;
          p.n_begin = range ? p.n / 3 + 1 : 0;
          p.n_end = range ? 2 * p.n / 3 + 5 : p.n;
          for (Isa isa : isas_to_test()) {
            std::string kernel;
            p.conv_taps = 0;
            const std::vector<uint8_t> gemm = run(p, isa, false, nullptr);
            p.conv_taps = geo.kernel * geo.kernel;
            const std::vector<uint8_t> conv = run(p, isa, false, &kernel);
            INFO(what, " kernel=", kernel, " out=", int(out), " range=", range);
            CHECK(conv == gemm);
          }
        }
      }
    }
  }
}
