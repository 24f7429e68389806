// Winograd FP32 convolution (F(2x2), F(4x4), F(6x6) of every ISA this CPU has) against the
// naive double-precision direct convolution: images whose sides are not multiples of the tile,
// 1x1 and tiny images, channel counts off the GEMM's block sizes (and past its kc), padding 0
// and 1 (also one-sided), every epilogue with and without the residual, batches and threads;
// and which shapes conv_f32_pack hands to Winograd. Buffers are sized exactly.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "engine/exec/thread_pool.h"
#include "kernels/winograd_f32.h"
#include "tests/kernels/f32_kernel_testing.h"
#include "tests/kernels/winograd_testing.h"

using namespace nibble::kernels;
using namespace winograd_testing;
using namespace f32_testing;

namespace {

std::string describe(const Case& tc) {
  return "N" + std::to_string(tc.batch) + " C" + std::to_string(tc.cin) + " M" +
         std::to_string(tc.cout) + " " + std::to_string(tc.h) + "x" + std::to_string(tc.w) +
         " pad " + std::to_string(tc.pad_begin) + "/" + std::to_string(tc.pad_end);
}

// Allowed error: factor(tile) · eps · (input channels · 9) for inputs and weights in [-1, 1],
// plus a few ulp of the result for the epilogue. Measured maxima over yolov10m-like shapes are
// about 0.2 (F(2x2)), 4 (F(4x4)) and 5 (F(6x6)) times eps · terms (direct convolution: 0.6);
// the factors leave 4-10x room, far below the O(1) error of a wrong transform.
float allowed_error(int tile, int64_t terms, float expected) {
  const double eps = std::numeric_limits<float>::epsilon();
  const double factor = tile == 2 ? 2.0 : tile == 4 ? 16.0 : 64.0;
  return static_cast<float>(factor * eps * double(terms) + 8.0 * eps * std::fabs(expected));
}

void check(Isa isa, int tile, const Case& tc, const ConvF32Epilogue& base, bool with_bias,
           bool with_residual, std::mt19937& rng, nibble::ThreadPool* pool = nullptr) {
  const ConvF32Shape shape = make_shape(tc);
  REQUIRE(winograd_f32_applies(shape));
  const ref::ConvGeometry& g = shape.geometry;
  const std::vector<float> x = random_floats(size_t(tc.batch * tc.cin * g.in_size()), rng);
  const std::vector<float> w = random_floats(size_t(tc.cout * tc.cin * 9), rng);
  const size_t out_numel = size_t(tc.batch * tc.cout * g.out_size());
  const std::vector<float> bias = random_floats(size_t(tc.cout), rng);
  const std::vector<float> residual = random_floats(out_numel, rng);
  ConvF32Epilogue epilogue = base;
  if (with_bias) epilogue.bias = bias.data();
  if (with_residual) epilogue.residual = residual.data();

  const WinogradF32Kernel& kernel = winograd_f32_kernel(isa, tile);
  REQUIRE(kernel.tile == tile);
  REQUIRE(kernel.isa == isa);
  const ConvF32Weights packed = winograd_f32_pack(shape, w.data(), kernel);
  std::vector<float> y(out_numel, -777.0f);
  winograd_f32_run(shape, packed, x.data(), y.data(), epilogue, pool);
  std::vector<float> want(out_numel);
  ref::conv_f32_naive(shape, x.data(), w.data(), want.data(), epilogue);

  const int64_t terms = tc.cin * 9;
  int failures = 0;
  for (size_t i = 0; i < out_numel && failures < 5; ++i) {
    const float allowed = allowed_error(tile, terms, want[i]);
    if (!(std::fabs(y[i] - want[i]) <= allowed)) {
      ++failures;
      FAIL_CHECK(std::string(isa_name(isa)) << " " << kernel.name << " " << describe(tc)
                 << " act=" << std::string(activation_name(epilogue.activation))
                 << " bias=" << with_bias << " residual=" << with_residual << " at " << i
                 << ": got " << y[i] << ", want " << want[i]);
    }
  }
}

const Case kTailCases[] = {
    {1, 16, 16, 1, 1, 1, 1},   // one output pixel
    {1, 3, 5, 3, 3, 0, 0},     // one output pixel, no padding, few channels
    {1, 16, 12, 2, 3, 1, 1},   // smaller than one tile
    {1, 17, 19, 5, 7, 1, 1},   // sides not multiples of 2, 4 or 6
    {1, 16, 24, 9, 13, 0, 0},
    {1, 8, 13, 12, 12, 1, 0},  // one-sided padding
    {1, 7, 9, 11, 10, 0, 1},
    {1, 33, 40, 8, 8, 1, 1},   // tiles_w * tiles_h a multiple of no strip width
    {1, 20, 37, 23, 19, 1, 1},  // several strips with runs across tile rows
    {2, 12, 14, 7, 9, 1, 1},   // batch
};

}  // namespace

TEST_CASE("winograd_f32 tail shapes, every tile and ISA") {
  std::mt19937 rng(71);
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (int tile : {2, 4, 6}) {
      CAPTURE(tile);
      for (const Case& tc : kTailCases) check(isa, tile, tc, {}, true, false, rng);
    }
  }
}

TEST_CASE("winograd_f32 epilogues, residual order and aliasing") {
  std::mt19937 rng(72);
  ConvF32Epilogue silu, relu, clip, sigmoid;
  silu.activation = Activation::SiLU;
  relu.activation = Activation::Relu;
  relu.residual_first = true;
  clip.activation = Activation::Clip;
  clip.clip_min = -0.5f;
  clip.clip_max = 0.75f;
  sigmoid.activation = Activation::Sigmoid;
  const Case shape{1, 24, 20, 10, 14, 1, 1};
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (const ConvF32Epilogue& e : {ConvF32Epilogue{}, silu, relu, clip, sigmoid}) {
      check(isa, 4, shape, e, false, false, rng);
      check(isa, 4, shape, e, true, true, rng);
    }
  }
  // y may be the residual itself (an in-place residual add).
  const ConvF32Shape s = make_shape(shape);
  const std::vector<float> x = random_floats(size_t(shape.cin * s.geometry.in_size()), rng);
  const std::vector<float> w = random_floats(size_t(shape.cout * shape.cin * 9), rng);
  const std::vector<float> residual = random_floats(size_t(shape.cout * s.geometry.out_size()), rng);
  ConvF32Epilogue e = silu;
  e.residual = residual.data();
  std::vector<float> want(residual.size());
  ref::conv_f32_naive(s, x.data(), w.data(), want.data(), e);
  for (Isa isa : testable_isas()) {
    std::vector<float> y = residual;
    e.residual = y.data();
    winograd_f32_run(s, winograd_f32_pack(s, w.data(), winograd_f32_kernel(isa)), x.data(), y.data(),
                     e, nullptr);
    for (size_t i = 0; i < y.size(); ++i) {
      REQUIRE(std::fabs(y[i] - want[i]) <= allowed_error(4, shape.cin * 9, want[i]));
    }
  }
}

TEST_CASE("winograd_f32 channel counts past the GEMM blocks, and threads") {
  std::mt19937 rng(73);
  nibble::ThreadPool pool(3);
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    check(isa, 4, {1, 520, 13, 6, 7, 1, 1}, {}, true, false, rng);  // K > every kc
    check(isa, 4, {1, 40, 50, 30, 29, 1, 1}, {}, true, true, rng, &pool);
    check(isa, 4, {2, 16, 100, 5, 6, 1, 1}, {}, true, false, rng, &pool);  // split by channels
    check(isa, 4, {1, 16, 16, 64, 66, 1, 1}, {}, false, false, rng, &pool);  // many strips
  }
}

TEST_CASE("conv_f32 runs Winograd on 3x3 stride-1 shapes with enough channels only") {
  std::mt19937 rng(74);
  auto pack = [&](const Case& tc, auto&& tweak) {
    ConvF32Shape shape = make_shape(tc);
    tweak(shape);
    const std::vector<float> w =
        random_floats(size_t(shape.out_channels * shape.geometry.im2col_rows()), rng);
    return conv_f32_pack(shape, w.data(), detected_isa());
  };
  const auto none = [](ConvF32Shape&) {};
  CHECK(pack({1, 64, 64, 20, 20, 1, 1}, none).winograd != nullptr);
  CHECK(pack({1, 64, 64, 20, 20, 0, 0}, none).winograd != nullptr);
  CHECK(pack({1, 16, 64, 20, 20, 1, 1}, none).winograd == nullptr);  // few input channels
  CHECK(pack({1, 64, 16, 20, 20, 1, 1}, none).winograd == nullptr);  // few output channels
  CHECK(pack({1, 64, 64, 2, 2, 1, 1}, none).winograd == nullptr);    // tiny image
  if (detected_isa() == Isa::Avx512) {  // 9 F(4x4) tiles in 32 lanes, 25 F(2x2) ones
    const ConvF32Weights small = pack({1, 64, 64, 10, 10, 1, 1}, none);
    REQUIRE(small.winograd != nullptr);
    CHECK(small.winograd->tile == 2);
  }
  CHECK(pack({1, 64, 64, 20, 20, 1, 1}, none).winograd->tile == 4);
  CHECK(pack({1, 64, 64, 20, 20, 1, 1}, [](ConvF32Shape& s) {        // stride 2
          s.geometry.stride[1] = s.geometry.stride[2] = 2;
          s.geometry.out[1] = s.geometry.out[2] = 10;
        }).winograd == nullptr);
  CHECK(pack({1, 64, 64, 20, 20, 2, 2}, none).winograd == nullptr);  // pad 2
  CHECK(pack({1, 64, 64, 20, 20, 1, 1}, [](ConvF32Shape& s) {        // dilation 2
          s.geometry.dilation[1] = s.geometry.dilation[2] = 2;
          s.geometry.out[1] = s.geometry.out[2] = 18;
        }).winograd == nullptr);
  CHECK(pack({1, 64, 64, 20, 20, 1, 1}, [](ConvF32Shape& s) {  // two groups
          s.groups = 2;
          s.geometry.channels = 32;
        }).winograd == nullptr);
}
