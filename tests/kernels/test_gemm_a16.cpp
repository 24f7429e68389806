// Weight-only W4A16 / W8A16 on the FP32 micro-kernels (kernels/dispatch/gemm_a16_f32.h) against
// ref::qgemm_reference, on every ISA level this CPU has: the shapes test_gemm_int.cpp does not
// reach — several bands of output rows and several blocks of weight rows in the implicit-GEMM
// convolution, column ranges that cut bands, K blocks whose expansion starts inside a 64-value
// run — and the weight-only depthwise convolution (qdwconv with A16 weights). Float sums differ
// from the reference by summation order only: the tolerance scales with the depth.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/dwconv_int.h"
#include "kernels/gemm_int.h"
#include "nibble/error.h"

using namespace nibble::kernels;

namespace {

std::vector<Isa> isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::Ref, Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni}) {
    if (static_cast<int>(isa) <= static_cast<int>(detected_isa())) out.push_back(isa);
  }
  return out;
}

ref::ConvGeometry conv2d(int64_t channels, int64_t h, int64_t w, int64_t kernel, int64_t stride,
                         int64_t pad, int64_t dilation = 1) {
  ref::ConvGeometry g;
  g.channels = channels;
  g.in[1] = h;
  g.in[2] = w;
  g.kernel[1] = g.kernel[2] = kernel;
  g.stride[1] = g.stride[2] = stride;
  g.pad[1] = g.pad[2] = pad;
  g.dilation[1] = g.dilation[2] = dilation;
  const int64_t span = (kernel - 1) * dilation + 1;
  g.out[1] = (h + 2 * pad - span) / stride + 1;
  g.out[2] = (w + 2 * pad - span) / stride + 1;
  return g;
}

struct Weights {
  std::vector<int8_t> values;  // rows x depth
  std::vector<float> scales;   // rows
};

Weights random_weights(int bits, int64_t rows, int64_t depth, std::mt19937& rng) {
  std::uniform_int_distribution<int> wd(bits == 4 ? -8 : -128, bits == 4 ? 7 : 127);
  std::uniform_real_distribution<float> sd(0.002f, 0.02f);
  Weights w;
  w.values.resize(size_t(rows * depth));
  for (int8_t& v : w.values) v = static_cast<int8_t>(wd(rng));
  w.scales.resize(size_t(rows));
  for (float& s : w.scales) s = sd(rng);
  return w;
}

std::vector<float> random_floats(size_t count, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(-2.0f, 2.0f);
  std::vector<float> v(count);
  for (float& x : v) x = d(rng);
  return v;
}

// Float outputs within a summation-order bound for `depth` products of |w * x| <= w_max * 2
// (a wrong weight or activation shifts a sum by about w_max, far more).
void check_close(const std::vector<float>& got, const std::vector<float>& expected, int64_t depth,
                 float w_max) {
  const double tolerance = 2e-6 * double(depth) * w_max * 2.0 + 1e-6;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool both_sentinel = std::isnan(got[i]) && std::isnan(expected[i]);
    if (both_sentinel) continue;
    if (!(std::fabs(got[i] - expected[i]) <= tolerance + 1e-5 * std::fabs(expected[i]))) {
      if (bad++ == 0) FAIL_CHECK("element ", i, ": ", got[i], " vs reference ", expected[i]);
    }
  }
  CHECK(bad == 0);
}

// qgemm of `rows` random weights over `source` (depth x n) on every ISA against the reference,
// for columns [n_begin, n_end).
void check_source(const QSource& source, int64_t depth, int64_t n, int64_t rows, int bits,
                  int64_t n_begin, int64_t n_end, const QEpilogue& epilogue, std::mt19937& rng) {
  const Weights w = random_weights(bits, rows, depth, rng);
  auto run = [&](Isa isa, bool reference) {
    std::vector<float> y(size_t(rows * n), NAN);  // untouched columns stay NaN
    const QOutput out{QType::F32, y.data(), n, 1, 1.0f, 0};
    if (reference) {
      ref::qgemm_reference(QuantMode::A16, rows, depth, w.values.data(), depth, w.scales.data(),
                           source, n, n_begin, n_end, epilogue, out);
    } else {
      const PackedQWeights packed = pack_qweights(QuantMode::A16, bits, rows, depth,
                                                  w.values.data(), depth, w.scales.data(), true,
                                                  isa);
      INFO("kernel ", packed.kernel);
      qgemm(packed, source, n, n_begin, n_end, epilogue, out);
    }
    return y;
  };
  const std::vector<float> expected = run(Isa::Ref, true);
  const float w_max = *std::max_element(w.scales.begin(), w.scales.end()) * (bits == 4 ? 8 : 128);
  for (Isa isa : isas()) {
    INFO("isa ", isa_name(isa), " rows ", rows, " depth ", depth, " columns [", n_begin, ", ",
         n_end, ") of ", n);
    check_close(run(isa, false), expected, depth, w_max);
  }
}

// One convolution through qgemm (all ISAs) against the reference, for columns [n_begin, n_end).
void check_conv(const ref::ConvGeometry& g, int64_t rows, int bits, int64_t n_begin, int64_t n_end,
                const QEpilogue& epilogue, std::mt19937& rng) {
  const std::vector<float> x = random_floats(size_t(g.channels * g.in_size()), rng);
  QSource source;
  source.type = QType::F32;
  source.data = x.data();
  source.conv = &g;
  INFO("conv ", g.channels, " channels, out ", g.out[1], "x", g.out[2]);
  check_source(source, g.im2col_rows(), g.out_size(), rows, bits, n_begin, n_end, epilogue, rng);
}

}  // namespace

TEST_CASE("weight-only conv: several bands of output rows, cut by column ranges") {
  // 48 channels x 3x3 on 150 x 70: each band's input copy (1.5 MiB) holds about 100 rows, so the
  // image takes two bands; the ranges start and end inside rows and bands.
  std::mt19937 rng(31);
  const ref::ConvGeometry g = conv2d(48, 150, 70, 3, 1, 1);
  const int64_t n = g.out_size();
  for (int bits : {4, 8}) {
    check_conv(g, 13, bits, 0, n, {}, rng);
    check_conv(g, 13, bits, 3 * g.out[2] + 5, n - 2 * g.out[2] - 7, {}, rng);
    check_conv(g, 13, bits, n - 1, n, {}, rng);
  }
}

TEST_CASE("weight-only conv: several blocks of weight rows and K blocks off run boundaries") {
  // 130 channels x 9 taps: K blocks of 1017 depths (113 channels), so the second block's
  // expansion starts inside a 64-value run. 300 rows: two blocks of weight rows (1 MiB each).
  std::mt19937 rng(32);
  const ref::ConvGeometry g = conv2d(130, 9, 11, 3, 2, 1);
  QEpilogue relu;
  relu.clamp_min = 0.0f;
  std::vector<float> bias(300);
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.01f * float(i % 17) - 0.08f;
  relu.bias = bias.data();
  check_conv(g, 300, 4, 0, g.out_size(), relu, rng);
  QEpilogue silu;
  silu.silu = true;
  check_conv(g, 25, 8, 7, g.out_size() - 3, silu, rng);
}

TEST_CASE("weight-only conv: every row count around the micro-kernels' heights") {
  std::mt19937 rng(33);
  const ref::ConvGeometry g = conv2d(5, 7, 9, 3, 1, 1);
  const ref::ConvGeometry pointwise = conv2d(37, 5, 13, 1, 1, 0);
  for (int64_t rows = 1; rows <= 25; ++rows) {
    check_conv(g, rows, rows % 2 ? 4 : 8, 0, g.out_size(), {}, rng);
    check_conv(pointwise, rows, rows % 2 ? 8 : 4, 1, pointwise.out_size() - 1, {}, rng);
  }
}

TEST_CASE("weight-only 1x1 conv and matrix: columns over several B blocks, K over several") {
  // More columns than one packed B block (256 or 384) and depth past one K block (512): the
  // weights are expanded whole once per call and run on the FP32 GEMM driver.
  std::mt19937 rng(34);
  QEpilogue silu;
  silu.silu = true;
  std::vector<float> bias(30);
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.02f * float(i % 7) - 0.05f;
  silu.bias = bias.data();
  const ref::ConvGeometry pointwise = conv2d(600, 23, 37, 1, 1, 0);
  const int64_t n = pointwise.out_size();
  check_conv(pointwise, 25, 4, 0, n, silu, rng);
  check_conv(pointwise, 13, 8, 3, n - 5, {}, rng);
  // Matrix sources, row-major and transposed (a MatMul's activations).
  const int64_t depth = 70, columns = 900;
  const std::vector<float> x = random_floats(size_t(depth * columns), rng);
  QSource rows_source;
  rows_source.type = QType::F32;
  rows_source.data = x.data();
  rows_source.row_stride = columns;
  check_source(rows_source, depth, columns, 30, 8, 1, columns - 2, silu, rng);
  QSource columns_source = rows_source;
  columns_source.row_stride = 1;
  columns_source.col_stride = depth;
  check_source(columns_source, depth, columns, 7, 4, 0, columns, {}, rng);
}

TEST_CASE("weight-only depthwise conv: strides, padding, epilogues and outputs") {
  std::mt19937 rng(34);
  struct Case {
    int64_t kernel, stride, pad, dilation;
  };
  const Case cases[] = {{3, 1, 1, 1}, {3, 2, 1, 1}, {5, 1, 2, 1}, {7, 2, 3, 1},
                        {3, 1, 2, 2}, {3, 3, 1, 1}, {1, 1, 0, 1}};
  const int64_t channels = 11;
  for (const Case& c : cases) {
    for (int variant = 0; variant < 4; ++variant) {
      const int bits = variant % 2 ? 8 : 4;
      ref::ConvGeometry g = conv2d(1, 13, 17, c.kernel, c.stride, c.pad, c.dilation);
      const int64_t taps = g.kernel_size(), n = g.out_size();
      const Weights w = random_weights(bits, channels, taps, rng);
      const std::vector<float> x = random_floats(size_t(channels * g.in_size()), rng);
      std::vector<float> bias(static_cast<size_t>(channels));
      for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.1f * float(i) - 0.5f;
      QEpilogue ep;
      ep.bias = bias.data();
      ep.silu = variant == 1 || variant == 3;
      if (variant == 2) ep.clamp_min = 0.0f;
      if (variant == 3) ep.clamp_max = 0.75f;  // SiLU and a clamp: no fused FP32 epilogue
      QSource source;
      source.type = QType::F32;
      source.data = x.data();
      source.conv = &g;
      const int64_t c_begin = variant, c_end = channels - 1;  // a task's share of the channels
      std::vector<float> expected(size_t(channels * n), NAN);
      for (int64_t ch = c_begin; ch < c_end; ++ch) {
        QSource plane = source;
        plane.data = x.data() + ch * g.in_size();
        QEpilogue plane_ep = ep;
        plane_ep.bias = bias.data() + ch;
        ref::qgemm_reference(QuantMode::A16, 1, taps, w.values.data() + ch * taps, taps,
                             w.scales.data() + ch, plane, n, 0, n, plane_ep,
                             QOutput{QType::F32, expected.data() + ch * n, n, 1, 1.0f, 0});
      }
      for (Isa isa : isas()) {
        const PackedQDwWeights packed =
            pack_qdwconv_weights(QuantMode::A16, bits, channels, taps, w.values.data(),
                                 w.scales.data(), true, isa);
        INFO("kernel ", packed.kernel, " kernel size ", c.kernel, " stride ", c.stride,
             " variant ", variant);
        std::vector<float> got(size_t(channels * n), NAN);
        qdwconv(packed, source, c_begin, c_end, ep, QOutput{QType::F32, got.data(), n, 1, 1.0f, 0});
        check_close(got, expected, taps, 128 * 0.02f);
        // Requantized to uint8: within one step of the reference's float result.
        std::vector<uint8_t> q(size_t(channels * n), 0);
        const float out_scale = 0.02f;
        qdwconv(packed, source, c_begin, c_end, ep, QOutput{QType::U8, q.data(), n, 1, out_scale, 100});
        for (int64_t i = c_begin * n; i < c_end * n; ++i) {
          const float want = std::clamp(std::nearbyint(expected[size_t(i)] / out_scale) + 100, 0.0f, 255.0f);
          CHECK(std::fabs(float(q[size_t(i)]) - want) <= 1.0f);
        }
      }
    }
  }
  // Float weights take float activations only, and no int16 mode exists for depthwise layers.
  const std::vector<int8_t> values(9, 1);
  const float scale = 0.5f;
  const PackedQDwWeights packed = pack_qdwconv_weights(QuantMode::A16, 8, 1, 9, values.data(), &scale, false);
  ref::ConvGeometry g = conv2d(1, 4, 4, 3, 1, 1);
  std::vector<uint8_t> bytes(16, 0);
  std::vector<float> y(16);
  QSource u8{QType::U8, bytes.data(), 0, 1, &g, 1.0f, 0, 0.0f};
  CHECK_THROWS_AS(qdwconv(packed, u8, 0, 1, {}, QOutput{QType::F32, y.data(), 16, 1, 1.0f, 0}),
                  nibble::Error);
  CHECK_THROWS_AS(pack_qdwconv_weights(QuantMode::A16I16, 8, 1, 9, values.data(), &scale, false),
                  nibble::Error);
}
