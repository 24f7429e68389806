// Element-wise FP32 activations of every ISA this CPU has against std::exp-based scalar code:
// the vectorized exp over its whole range (including the clamped extremes), lengths around the
// vector width, in place, and NaN propagation.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/activation_f32.h"
#include "tests/kernels/f32_kernel_testing.h"

using namespace nibble::kernels;
using namespace f32_testing;

TEST_CASE("activation_f32 matches the scalar definitions") {
  std::mt19937 rng(31);
  const Activation activations[] = {Activation::None, Activation::Relu, Activation::Clip,
                                    Activation::Sigmoid, Activation::SiLU};
  for (Isa isa : testable_isas()) {
    const ActivationF32Kernel& kernel = activation_f32_kernel(isa);
    REQUIRE(kernel.isa == isa);
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (Activation activation : activations) {
      const std::string activation_label = activation_name(activation);
      CAPTURE(activation_label);
      for (int64_t n : {1, 7, 8, 15, 16, 17, 33, 1000}) {
        std::vector<float> x = random_floats(size_t(n), rng, -100.0f, 100.0f);
        if (n == 1000) {  // small arguments, where sigmoid and SiLU bend
          for (int64_t i = 0; i < 500; ++i) x[size_t(i)] /= 50.0f;
        }
        std::vector<float> y(static_cast<size_t>(n)), want(static_cast<size_t>(n));
        kernel.apply(activation, -0.5f, 3.0f, x.data(), y.data(), n);
        ref::activation_f32(activation, -0.5f, 3.0f, x.data(), want.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          // A few ulp of the result, or of 1 where sigmoid's tiny tail underflows differently.
          const float tol = 8.0f * std::numeric_limits<float>::epsilon() *
                            std::max(std::fabs(want[size_t(i)]), 1e-30f) + 1e-37f;
          REQUIRE_MESSAGE(std::fabs(y[size_t(i)] - want[size_t(i)]) <= tol,
                          "x=" << x[size_t(i)] << " got " << y[size_t(i)] << " want "
                               << want[size_t(i)]);
        }
        kernel.apply(activation, -0.5f, 3.0f, x.data(), x.data(), n);  // in place
        CHECK(x == y);
      }
    }
  }
}

TEST_CASE("activation_f32 keeps NaN") {
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (Activation activation : {Activation::Relu, Activation::Clip, Activation::Sigmoid,
                                  Activation::SiLU}) {
      std::vector<float> x(19, std::numeric_limits<float>::quiet_NaN()), y(19);
      activation_f32_kernel(isa).apply(activation, 0.0f, 6.0f, x.data(), y.data(), 19);
      for (float v : y) CHECK(std::isnan(v));
    }
  }
}
