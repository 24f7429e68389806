// FP32 convolution (im2col + packed GEMM, direct depthwise) of every ISA this CPU has against
// the naive double-precision direct convolution: channel counts {1,3,4,7,8,15,16,17}, kernel
// sizes, strides, leading and trailing padding, dilation, groups, depthwise 3x3/5x5/7x7 with
// row widths around the vector sizes, 1-D and 3-D, batches, fused epilogues and threads.
// Input, weight, bias, residual and output buffers are sized exactly.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/exec/thread_pool.h"
#include "kernels/conv_f32.h"
#include "tests/kernels/f32_kernel_testing.h"

using namespace nibble::kernels;
using namespace f32_testing;

namespace {

struct ConvCase {
  int64_t batch = 1, in_channels = 1, out_channels = 1, groups = 1;
  std::vector<int64_t> in, kernel, stride, dilation, pad_begin, pad_end;  // spatial dims
};

ConvF32Shape make_shape(const ConvCase& tc) {
  ConvF32Shape s;
  s.batch = tc.batch;
  s.in_channels = tc.in_channels;
  s.out_channels = tc.out_channels;
  s.groups = tc.groups;
  ref::ConvGeometry& g = s.geometry;
  g.channels = tc.in_channels / tc.groups;
  const size_t offset = 3 - tc.in.size();
  for (size_t i = 0; i < tc.in.size(); ++i) {
    const int64_t window = (tc.kernel[i] - 1) * tc.dilation[i] + 1;
    g.in[offset + i] = tc.in[i];
    g.kernel[offset + i] = tc.kernel[i];
    g.stride[offset + i] = tc.stride[i];
    g.dilation[offset + i] = tc.dilation[i];
    g.pad[offset + i] = tc.pad_begin[i];
    g.out[offset + i] = (tc.in[i] + tc.pad_begin[i] + tc.pad_end[i] - window) / tc.stride[i] + 1;
  }
  return s;
}

std::string describe(const ConvCase& tc) {
  std::string s = "N" + std::to_string(tc.batch) + " C" + std::to_string(tc.in_channels) + " M" +
                  std::to_string(tc.out_channels) + " g" + std::to_string(tc.groups);
  for (size_t i = 0; i < tc.in.size(); ++i) {
    s += " [in " + std::to_string(tc.in[i]) + " k" + std::to_string(tc.kernel[i]) + " s" +
         std::to_string(tc.stride[i]) + " d" + std::to_string(tc.dilation[i]) + " p" +
         std::to_string(tc.pad_begin[i]) + "/" + std::to_string(tc.pad_end[i]) + "]";
  }
  return s;
}

void check_conv(Isa isa, const ConvCase& tc, const ConvF32Epilogue& base, bool with_bias,
                bool with_residual, std::mt19937& rng, nibble::ThreadPool* pool = nullptr) {
  const ConvF32Shape shape = make_shape(tc);
  const ref::ConvGeometry& g = shape.geometry;
  const int64_t taps = g.kernel_size();
  const std::vector<float> x = random_floats(size_t(tc.batch * tc.in_channels * g.in_size()), rng);
  const std::vector<float> w = random_floats(size_t(tc.out_channels * g.channels * taps), rng);
  const size_t out_numel = size_t(tc.batch * tc.out_channels * g.out_size());
  const std::vector<float> bias = random_floats(size_t(tc.out_channels), rng);
  const std::vector<float> residual = random_floats(out_numel, rng);
  ConvF32Epilogue epilogue = base;
  if (with_bias) epilogue.bias = bias.data();
  if (with_residual) epilogue.residual = residual.data();

  const ConvF32Weights packed = conv_f32_pack(shape, w.data(), isa);
  REQUIRE(bool(packed.depthwise) == shape.direct_depthwise());
  std::vector<float> y(out_numel, -777.0f);
  conv_f32_run(shape, packed, x.data(), y.data(), epilogue, pool);
  std::vector<float> want(out_numel);
  ref::conv_f32_naive(shape, x.data(), w.data(), want.data(), epilogue);

  // Inputs and weights lie in [-1, 1]: a sum of C·taps products has magnitude at most that.
  const int64_t terms = g.channels * taps;
  int failures = 0;
  for (size_t i = 0; i < out_numel && failures < 5; ++i) {
    if (!(std::fabs(y[i] - want[i]) <= tolerance(terms, double(terms), want[i]))) {
      ++failures;
      FAIL_CHECK(std::string(isa_name(isa)) << " " << describe(tc)
                 << " act=" << std::string(activation_name(epilogue.activation)) << " bias=" << with_bias
                 << " residual=" << with_residual << " at " << i << ": got " << y[i]
                 << ", want " << want[i]);
    }
  }
}

ConvCase conv2d(int64_t c, int64_t m, int64_t h, int64_t w, int64_t k, int64_t s, int64_t p,
                int64_t groups = 1, int64_t d = 1) {
  return ConvCase{1, c, m, groups, {h, w}, {k, k}, {s, s}, {d, d}, {p, p}, {p, p}};
}

}  // namespace

TEST_CASE("conv_f32 1x1 and kxk over channel counts") {
  std::mt19937 rng(21);
  const int64_t channels[] = {1, 3, 4, 7, 8, 15, 16, 17};
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (int64_t c : channels) {
      for (int64_t m : channels) {
        check_conv(isa, conv2d(c, m, 6, 7, 1, 1, 0), {}, false, false, rng);
        check_conv(isa, conv2d(c, m, 7, 5, 3, 1, 1), {}, true, false, rng);
      }
    }
  }
}

TEST_CASE("conv_f32 strides, padding, dilation, kernel sizes") {
  std::mt19937 rng(22);
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (int64_t k : {1, 2, 3, 5}) {
      for (int64_t s : {1, 2, 3}) {
        for (int64_t p : {0, 1, 2}) {
          if (p >= k + 1) continue;
          check_conv(isa, conv2d(5, 9, 11, 13, k, s, p), {}, true, false, rng);
        }
      }
    }
    // Dilation, asymmetric and trailing-only padding, non-square kernels.
    check_conv(isa, conv2d(4, 6, 12, 10, 3, 1, 2, 1, 2), {}, false, false, rng);
    check_conv(isa, conv2d(4, 6, 12, 10, 3, 2, 3, 1, 3), {}, false, false, rng);
    check_conv(isa, ConvCase{1, 3, 5, 1, {9, 8}, {3, 2}, {2, 1}, {1, 2}, {0, 1}, {2, 0}}, {},
               true, false, rng);
    check_conv(isa, ConvCase{1, 3, 5, 1, {9, 8}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {1, 2}}, {},
               true, false, rng);  // 1x1 with trailing padding is not pointwise
    // Wide outputs: more than one packed block of columns and of K.
    check_conv(isa, conv2d(40, 13, 23, 25, 3, 1, 1), {}, true, false, rng);
  }
}

TEST_CASE("conv_f32 groups, batches, 1-D and 3-D") {
  std::mt19937 rng(23);
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    check_conv(isa, conv2d(8, 12, 9, 7, 3, 1, 1, 4), {}, true, false, rng);
    check_conv(isa, conv2d(6, 6, 9, 7, 3, 2, 1, 3), {}, true, false, rng);
    check_conv(isa, conv2d(4, 8, 9, 7, 3, 1, 1, 4), {}, true, false, rng);  // depth multiplier 2
    ConvCase batch = conv2d(5, 7, 8, 9, 3, 1, 1);
    batch.batch = 3;
    check_conv(isa, batch, {}, true, true, rng);
    check_conv(isa, ConvCase{2, 3, 4, 1, {17}, {3}, {2}, {1}, {1}, {0}}, {}, true, false, rng);
    check_conv(isa, ConvCase{1, 3, 4, 1, {5, 6, 7}, {3, 2, 3}, {1, 2, 1}, {1, 1, 2}, {1, 0, 2},
                             {1, 1, 2}},
               {}, true, false, rng);
  }
}

TEST_CASE("conv_f32 depthwise 3x3, 5x5, 7x7 with stride 1 and 2") {
  std::mt19937 rng(24);
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (int64_t k : {3, 5, 7}) {
      for (int64_t s : {1, 2}) {
        // Output widths around the 8/16-lane vectors and the 32/64-wide blocks.
        for (int64_t w : {1, 5, 8, 17, 33, 70, 131}) {
          ConvCase tc = conv2d(3, 3, 6, w, k, s, k / 2, 3);
          if (tc.in[1] + 2 * (k / 2) < k) continue;
          check_conv(isa, tc, {}, true, false, rng);
        }
      }
    }
    check_conv(isa, conv2d(4, 4, 9, 11, 3, 1, 0, 4), {}, false, false, rng);     // no padding
    check_conv(isa, conv2d(4, 4, 9, 11, 3, 2, 2, 4, 2), {}, true, false, rng);   // dilation
    check_conv(isa, ConvCase{2, 5, 5, 5, {10, 9}, {3, 3}, {2, 1}, {1, 1}, {1, 0}, {0, 2}}, {},
               true, false, rng);                                               // asymmetric
    check_conv(isa, ConvCase{1, 4, 4, 4, {19}, {5}, {2}, {1}, {2}, {2}}, {}, true, false, rng);
    check_conv(isa, conv2d(2, 2, 9, 9, 3, 3, 1, 2), {}, true, false, rng);  // stride 3: GEMM
  }
}

// 3x3 with one pad at the top and left, stride 1 ("same") or 2 (ceil(in / 2) outputs), runs on
// the flat kernels where an ISA has them: the plane (stride 2: its four phase planes) as one run
// of vectors that span rows, with per-lane masks at row ends and the first and last rows.
// Heights and widths around the 8/16-lane blocks and the block groups; stride 2 also without
// the trailing pad (flat on even sizes, the row kernel on odd ones).
TEST_CASE("conv_f32 depthwise 3x3 flat planes, stride 1 and 2") {
  std::mt19937 rng(26);
  nibble::ThreadPool pool(2);
  ConvF32Epilogue silu;
  silu.activation = Activation::SiLU;
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (int64_t s : {1, 2}) {
      for (int64_t h : {1, 2, 3, 5, 20, 41}) {
        for (int64_t w : {1, 2, 3, 15, 16, 17, 20, 31, 33, 40, 64, 80}) {
          ConvCase tc = conv2d(3, 3, h, w, 3, s, 1, 3);
          tc.batch = 2;
          check_conv(isa, tc, silu, true, w % 2 == 1, rng, h == 20 ? &pool : nullptr);
          if (s == 2 && h > 1 && w > 1) {
            tc.pad_end = {0, 0};
            check_conv(isa, tc, {}, true, false, rng);
          }
        }
      }
    }
  }
}

TEST_CASE("conv_f32 fused epilogues, threaded") {
  std::mt19937 rng(25);
  nibble::ThreadPool pool(3);
  ConvF32Epilogue silu;
  silu.activation = Activation::SiLU;
  ConvF32Epilogue relu_first;
  relu_first.activation = Activation::Relu;
  relu_first.residual_first = true;
  ConvF32Epilogue clip;
  clip.activation = Activation::Clip;
  clip.clip_min = 0.0f;
  clip.clip_max = 0.6f;
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (const ConvF32Epilogue& ep : {silu, relu_first, clip}) {
      check_conv(isa, conv2d(16, 17, 15, 21, 3, 1, 1), ep, true, true, rng, &pool);
      check_conv(isa, conv2d(15, 8, 9, 40, 1, 1, 0), ep, true, true, rng, &pool);
      check_conv(isa, conv2d(17, 17, 15, 21, 3, 2, 1, 17), ep, true, true, rng, &pool);
      ConvCase groups = conv2d(8, 8, 7, 9, 3, 1, 1, 2);
      groups.batch = 3;
      check_conv(isa, groups, ep, true, true, rng, &pool);
    }
  }
}
