// The QuantizeLinear kernels (kernels/include/kernels/quantize_f32.h): every ISA gives the bits
// of the scalar kernel over all tail lengths, and the scalar kernel follows the ONNX formula:
// division (not multiplication by 1/scale), ties to even, saturation, NaN to the range minimum.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/quantize_f32.h"
#include "tests/kernels/f32_kernel_testing.h"

using namespace nibble::kernels;
using namespace f32_testing;

namespace {

template <typename T>
std::vector<T> quantize(Isa isa, const std::vector<float>& x, float scale, int32_t zero_point) {
  std::vector<T> y(x.size());
  quantize_f32_kernel<T>(isa)(x.data(), y.data(), int64_t(x.size()), scale, zero_point);
  return y;
}

// Inputs that exercise every branch: ties at x.5 (with scale 1 and with a scale that makes
// x / scale land on them), both saturation sides, NaN and the infinities, signed zeros.
std::vector<float> special_inputs(size_t n, std::mt19937& rng, float scale, float range) {
  std::vector<float> x = random_floats(n, rng, -range, range);
  const float specials[] = {0.5f * scale,  1.5f * scale,  2.5f * scale, -0.5f * scale,
                            -1.5f * scale, -2.5f * scale, 126.5f * scale, -127.5f * scale,
                            std::numeric_limits<float>::quiet_NaN(),
                            -std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), 0.0f, -0.0f, 1e30f, -1e30f,
                            1e-40f};
  for (size_t i = 0; i < n; ++i) {
    if (i % 3 == 0) x[i] = specials[(i / 3) % std::size(specials)];
  }
  return x;
}

template <typename T>
void check_isas_match_ref(float scale, int32_t zero_point, float range) {
  std::mt19937 rng(11);
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (int64_t n : {0, 1, 7, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 1000, 4099}) {
      CAPTURE(n);
      const std::vector<float> x = special_inputs(size_t(n), rng, scale, range);
      const std::vector<T> got = quantize<T>(isa, x, scale, zero_point);
      std::vector<T> want(x.size());
      ref::quantize_f32(x.data(), want.data(), n, scale, zero_point);
      for (size_t i = 0; i < x.size(); ++i) {
        REQUIRE_MESSAGE(got[i] == want[i], "x=" << x[i] << " got " << int(got[i]) << " want "
                                                << int(want[i]));
      }
    }
  }
}

}  // namespace

TEST_CASE("quantize_f32 of every ISA matches the scalar kernel bit for bit") {
  SUBCASE("uint8") { check_isas_match_ref<uint8_t>(0.02f, 128, 4.0f); }
  SUBCASE("uint8, zero point 0") { check_isas_match_ref<uint8_t>(0.0123f, 0, 4.0f); }
  SUBCASE("int8") { check_isas_match_ref<int8_t>(0.031f, -3, 5.0f); }
  SUBCASE("uint16") { check_isas_match_ref<uint16_t>(1e-4f, 30000, 5.0f); }
  SUBCASE("int16") { check_isas_match_ref<int16_t>(3e-4f, 17, 12.0f); }
}

TEST_CASE("quantize_f32 follows the ONNX formula") {
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    // Repeated so the vector loops see them, not only the scalar tail.
    auto repeat = [](std::vector<float> v) {
      std::vector<float> out;
      for (int r = 0; r < 8; ++r) out.insert(out.end(), v.begin(), v.end());
      return out;
    };
    const std::vector<float> x = repeat(
        {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 300.0f, -300.0f, kNaN, kInf, -kInf, 0.49f});
    const std::vector<int> want_s8 = {0, 2, 2, 0, -2, -2, 127, -128, -128, 127, -128, 0};
    const std::vector<int> want_u8 = {10, 12, 12, 10, 8, 8, 255, 0, 0, 255, 0, 10};
    const std::vector<int8_t> s8 = quantize<int8_t>(isa, x, 1.0f, 0);
    const std::vector<uint8_t> u8 = quantize<uint8_t>(isa, x, 1.0f, 10);
    for (size_t i = 0; i < x.size(); ++i) {
      CAPTURE(x[i]);
      CHECK(int(s8[i]) == want_s8[i % want_s8.size()]);
      CHECK(int(u8[i]) == want_u8[i % want_u8.size()]);
    }
    // Inputs where x / scale and x * (1 / scale) round to different integers: the kernels
    // divide, as the ONNX reference and MLAS do.
    const float scale = 0.1f;
    const std::vector<float> near_ties = repeat({-0x1.3cccccp+2f, -0x1.f99998p+1f, -0x1.a00002p+1f,
                                                 -0x1.2cccccp+1f, -0x1.8cccccp+0f});
    const std::vector<int16_t> s16 = quantize<int16_t>(isa, near_ties, scale, 0);
    for (size_t i = 0; i < near_ties.size(); ++i) {
      CAPTURE(near_ties[i]);
      const float by_division = std::nearbyint(near_ties[i] / scale);
      REQUIRE(by_division != std::nearbyint(near_ties[i] * (1.0f / scale)));
      CHECK(s16[i] == int16_t(by_division));
    }
  }
}
