// The logistic kernels (kernels/include/kernels/logistic_f32.h): every ISA gives the bits of the
// scalar kernel, which gives ONNX Runtime's bits on a few recorded inputs; accuracy, in place,
// NaN and the infinities.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <vector>

#include "kernels/logistic_f32.h"
#include "tests/kernels/f32_kernel_testing.h"

using namespace nibble::kernels;
using namespace f32_testing;

TEST_CASE("logistic_f32 reproduces ONNX Runtime's Sigmoid bits") {
  // (x, ONNX Runtime 1.32 CPU Sigmoid(x)) as float bits. Each differs from the correctly rounded
  // sigmoid (the last one is 1 + 1 ulp), so a more accurate formula fails here.
  const uint32_t cases[][2] = {
      {0xc06ccccd, 0x3cc5a600},  // -3.7
      {0x40a00000, 0x3f7e4960},  // 5
      {0xc1400000, 0x36cd0000},  // -12
      {0xc1040000, 0x3988f000},  // -8.25
      {0x418ec083, 0x3f800001},  // 17.844
  };
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (const auto& c : cases) {
      const float x = std::bit_cast<float>(c[0]);
      float y = 0.0f;
      logistic_f32_kernel(isa)(&x, &y, 1);
      CHECK_MESSAGE(std::bit_cast<uint32_t>(y) == c[1], "x=" << x << " got " << y);
    }
  }
}

TEST_CASE("logistic_f32 of every ISA matches the scalar kernel bit for bit") {
  std::mt19937 rng(7);
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (Isa isa : testable_isas()) {
    const LogisticF32Fn kernel = logistic_f32_kernel(isa);
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (int64_t n : {1, 7, 8, 9, 17, 4099}) {
      std::vector<float> x = random_floats(size_t(n), rng, -25.0f, 25.0f);
      if (n == 4099) {
        const float specials[] = {0.0f, -0.0f, kInf, -kInf, 18.0f, -18.0f, 1e-40f, -1e-40f,
                                  3e38f, -3e38f};
        std::copy(std::begin(specials), std::end(specials), x.begin());
      }
      std::vector<float> y(x.size()), want(x.size());
      kernel(x.data(), y.data(), n);
      ref::logistic_f32(x.data(), want.data(), n);
      for (size_t i = 0; i < x.size(); ++i) {
        REQUIRE_MESSAGE(std::bit_cast<uint32_t>(y[i]) == std::bit_cast<uint32_t>(want[i]),
                        "x=" << x[i] << " got " << y[i] << " want " << want[i]);
        const double exact = 1.0 / (1.0 + std::exp(-double(x[i])));
        REQUIRE_MESSAGE(std::fabs(y[i] - exact) <= 2e-7, "x=" << x[i] << " got " << y[i]);
      }
      kernel(x.data(), x.data(), n);  // in place
      CHECK(x == y);
    }
  }
}

TEST_CASE("logistic_f32 keeps NaN and saturates at the infinities") {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    std::vector<float> x(11, std::numeric_limits<float>::quiet_NaN()), y(11);
    x[3] = kInf;
    x[4] = -kInf;
    logistic_f32_kernel(isa)(x.data(), y.data(), 11);
    for (size_t i = 0; i < x.size(); ++i) {
      if (i == 3) CHECK(y[i] == 1.0f);
      else if (i == 4) CHECK(y[i] == 0.0f);
      else CHECK(std::isnan(y[i]));
    }
  }
}
