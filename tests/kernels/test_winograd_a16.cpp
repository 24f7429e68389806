// Weight-only (W4A16 / W8A16) Winograd convolution (kernels/winograd_a16.h) of every ISA this
// CPU has against the naive double-precision direct convolution of the dequantized weights
// (q · scale, as DequantizeLinear): 4 and 8 bits, per-channel scales, F(2x2) / F(4x4) / F(6x6),
// tail shapes (sides off the tile, channels off MR and the 64-value runs), every epilogue
// including SiLU with a clamp, quantized outputs equal to QuantizeLinear of the float ones,
// batches and threads, packed sizes and bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "engine/exec/thread_pool.h"
#include "kernels/quantize_f32.h"
#include "kernels/winograd_a16.h"
#include "nibble/error.h"
#include "tests/kernels/f32_kernel_testing.h"
#include "tests/kernels/winograd_testing.h"

using namespace nibble::kernels;
using namespace winograd_testing;
using namespace f32_testing;

namespace {

std::string describe(const Case& tc, int bits, int tile) {
  return "w" + std::to_string(bits) + " F" + std::to_string(tile) + " N" +
         std::to_string(tc.batch) + " C" + std::to_string(tc.cin) + " M" +
         std::to_string(tc.cout) + " " + std::to_string(tc.h) + "x" + std::to_string(tc.w) +
         " pad " + std::to_string(tc.pad_begin) + "/" + std::to_string(tc.pad_end);
}

// Quantized weights [cout][cin][3][3] over the bit width's whole range, per-channel scales
// spanning a factor of 10, and their dequantized values.
struct QWeights {
  std::vector<int8_t> q;
  std::vector<float> scales, dequantized;
  float max_abs = 0.0f;
};

QWeights random_qweights(int64_t cout, int64_t cin, int bits, std::mt19937& rng) {
  QWeights w;
  const int lo = bits == 4 ? -8 : -128, hi = bits == 4 ? 7 : 127;
  std::uniform_int_distribution<int> value(lo, hi);
  w.q.resize(size_t(cout * cin * 9));
  for (int8_t& v : w.q) v = static_cast<int8_t>(value(rng));
  w.scales = random_floats(size_t(cout), rng, 0.002f, 0.02f);
  w.dequantized.resize(w.q.size());
  for (size_t i = 0; i < w.q.size(); ++i) {
    w.dequantized[i] = static_cast<float>(w.q[i]) * w.scales[i / size_t(cin * 9)];
    w.max_abs = std::max(w.max_abs, std::fabs(w.dequantized[i]));
  }
  return w;
}

// As test_winograd_f32.cpp: factor(tile) · eps · terms for inputs in [-1, 1], scaled by the
// largest weight, plus a few ulp of the result for the epilogue.
float allowed_error(int tile, int64_t terms, float max_weight, float expected) {
  const double eps = std::numeric_limits<float>::epsilon();
  const double factor = tile == 2 ? 2.0 : tile == 4 ? 16.0 : 64.0;
  return static_cast<float>(factor * eps * double(terms) * max_weight +
                            8.0 * eps * std::fabs(expected));
}

float silu_clamped(float y, const QEpilogue& e) {
  if (e.silu) y = y / (1.0f + std::exp(-y));
  return std::min(std::max(y, e.clamp_min), e.clamp_max);
}

// Runs the weight-only Winograd convolution with F32 output and checks it against the direct
// double-precision convolution of the dequantized weights.
void check(Isa isa, int tile, int bits, const Case& tc, const QEpilogue& base, bool with_bias,
           std::mt19937& rng, nibble::ThreadPool* pool = nullptr) {
  const ConvF32Shape shape = make_shape(tc);
  REQUIRE(winograd_f32_applies(shape));
  const ref::ConvGeometry& g = shape.geometry;
  const QWeights w = random_qweights(tc.cout, tc.cin, bits, rng);
  const std::vector<float> x = random_floats(size_t(tc.batch * tc.cin * g.in_size()), rng);
  const std::vector<float> bias = random_floats(size_t(tc.cout), rng);
  const size_t out_numel = size_t(tc.batch * tc.cout * g.out_size());
  QEpilogue epilogue = base;
  if (with_bias) epilogue.bias = bias.data();

  const WinogradF32Kernel& kernel = winograd_f32_kernel(isa, tile);
  REQUIRE(kernel.isa == isa);
  const WinogradA16Weights packed = winograd_a16_pack(shape, bits, w.q.data(), w.scales.data(), kernel);
  std::vector<float> y(out_numel, -777.0f);
  QOutput out;
  out.data = y.data();
  out.row_stride = g.out_size();
  winograd_a16_conv(shape, packed, x.data(), epilogue, out, pool);

  ConvF32Epilogue bias_only;
  bias_only.bias = epilogue.bias;
  std::vector<float> want(out_numel);
  ref::conv_f32_naive(shape, x.data(), w.dequantized.data(), want.data(), bias_only);
  for (float& v : want) v = silu_clamped(v, epilogue);

  int failures = 0;
  for (size_t i = 0; i < out_numel && failures < 5; ++i) {
    const float allowed = allowed_error(tile, tc.cin * 9, w.max_abs, want[i]);
    if (!(std::fabs(y[i] - want[i]) <= allowed)) {
      ++failures;
      FAIL_CHECK(std::string(isa_name(isa)) << " " << describe(tc, bits, tile)
                 << " silu=" << epilogue.silu << " clamp=[" << epilogue.clamp_min << ", "
                 << epilogue.clamp_max << "] bias=" << with_bias << " at " << i << ": got "
                 << y[i] << ", want " << want[i]);
    }
  }
}

const Case kTailCases[] = {
    {1, 16, 16, 1, 1, 1, 1},    // one output pixel
    {1, 3, 5, 3, 3, 0, 0},      // few channels: one partial panel and run
    {1, 17, 19, 5, 7, 1, 1},    // sides not multiples of 2, 4 or 6
    {1, 8, 13, 12, 12, 1, 0},   // one-sided padding
    {1, 33, 40, 8, 8, 1, 1},    // several panels, the last partial
    {1, 20, 37, 23, 19, 1, 1},  // several strips with runs across tile rows
    {2, 12, 14, 7, 9, 1, 1},    // batch
};

}  // namespace

TEST_CASE("winograd_a16 tail shapes, 4 and 8 bits, every tile and ISA") {
  std::mt19937 rng(2024);
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (int bits : {4, 8}) {
      for (int tile : {2, 4, 6}) {
        for (const Case& tc : kTailCases) check(isa, tile, bits, tc, {}, true, rng);
      }
    }
  }
}

TEST_CASE("winograd_a16 epilogues, channels past the GEMM blocks, threads") {
  std::mt19937 rng(77);
  nibble::ThreadPool pool(3);
  QEpilogue silu, relu, clip, silu_clamp;
  silu.silu = true;
  relu.clamp_min = 0.0f;
  clip.clamp_min = -0.25f;
  clip.clamp_max = 0.5f;
  silu_clamp.silu = true;
  silu_clamp.clamp_max = 0.3f;
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (const QEpilogue& e : {QEpilogue{}, silu, relu, clip, silu_clamp}) {
      check(isa, 4, 4, {1, 40, 50, 13, 11, 1, 1}, e, true, rng);
      check(isa, 4, 8, {1, 40, 50, 13, 11, 1, 1}, e, false, rng, &pool);
    }
    check(isa, 4, 4, {1, 520, 13, 6, 7, 1, 1}, {}, true, rng);           // K > every kc
    check(isa, 4, 8, {2, 16, 100, 5, 6, 1, 1}, silu, true, rng, &pool);  // split by channels
    check(isa, 4, 4, {1, 16, 16, 64, 66, 1, 1}, relu, false, rng, &pool);  // many strips
  }
}

TEST_CASE("winograd_a16 quantized outputs equal QuantizeLinear of the float ones") {
  std::mt19937 rng(5);
  nibble::ThreadPool pool(2);
  const Case tc{2, 24, 35, 9, 10, 1, 1};
  const ConvF32Shape shape = make_shape(tc);
  const int64_t out_size = shape.geometry.out_size(), rows = tc.batch * tc.cout;
  const QWeights w = random_qweights(tc.cout, tc.cin, 4, rng);
  const std::vector<float> x = random_floats(size_t(tc.batch * tc.cin * shape.geometry.in_size()), rng);
  QEpilogue silu_clamp;
  silu_clamp.silu = true;
  silu_clamp.clamp_max = 0.2f;
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    const WinogradA16Weights packed =
        winograd_a16_pack(shape, 4, w.q.data(), w.scales.data(), winograd_f32_kernel(isa, 4));
    for (const QEpilogue& e : {QEpilogue{}, silu_clamp}) {
      std::vector<float> y(size_t(rows * out_size));
      QOutput f32_out;
      f32_out.data = y.data();
      f32_out.row_stride = out_size;
      winograd_a16_conv(shape, packed, x.data(), e, f32_out, &pool);
      std::vector<uint8_t> want(y.size()), got(y.size(), 0);
      quantize_f32_kernel<uint8_t>(isa)(y.data(), want.data(), int64_t(y.size()), 0.004f, 100);
      QOutput u8_out = f32_out;
      u8_out.type = QType::U8;
      u8_out.data = got.data();
      u8_out.scale = 0.004f;
      u8_out.zero_point = 100;
      winograd_a16_conv(shape, packed, x.data(), e, u8_out, &pool);
      CHECK(got == want);
    }
  }
}

TEST_CASE("winograd_a16 keeps weights at 4/8 bits and rejects bad input") {
  std::mt19937 rng(9);
  const ConvF32Shape shape = make_shape({1, 64, 64, 20, 20, 1, 1});
  const WinogradF32Kernel* kernel = winograd_a16_choose(shape, active_isa());
  REQUIRE(kernel != nullptr);
  CHECK(kernel->tile == 4);
  const QWeights w4 = random_qweights(64, 64, 4, rng);
  const QWeights w8 = random_qweights(64, 64, 8, rng);
  const WinogradA16Weights p4 = winograd_a16_pack(shape, 4, w4.q.data(), w4.scales.data(), *kernel);
  const WinogradA16Weights p8 = winograd_a16_pack(shape, 8, w8.q.data(), w8.scales.data(), *kernel);
  // 64 x 64 x 9 values; panels of MR rows and runs of 64 values add little.
  const size_t values = 64 * 64 * 9;
  CHECK(p8.data.size() >= values);
  CHECK(p8.data.size() < values * 5 / 4);
  CHECK(p4.data.size() * 2 == p8.data.size());
  CHECK(p4.tile_name().find("F(4x4,3x3)") == 0);
  // Few channels, strided and grouped shapes stay on the direct path.
  CHECK(winograd_a16_choose(make_shape({1, 16, 64, 20, 20, 1, 1}), active_isa()) == nullptr);
  ConvF32Shape strided = shape;
  strided.geometry.stride[1] = strided.geometry.stride[2] = 2;
  CHECK(winograd_a16_choose(strided, active_isa()) == nullptr);

  CHECK_THROWS_AS(winograd_a16_pack(shape, 5, w8.q.data(), w8.scales.data(), *kernel), nibble::Error);
  CHECK_THROWS_AS(winograd_a16_pack(shape, 4, w8.q.data(), w8.scales.data(), *kernel), nibble::Error);
  std::vector<float> bad_scales = w4.scales;
  bad_scales[3] = 0.0f;
  CHECK_THROWS_AS(winograd_a16_pack(shape, 4, w4.q.data(), bad_scales.data(), *kernel), nibble::Error);
}
