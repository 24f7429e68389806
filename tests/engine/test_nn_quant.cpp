// Quantization ops through a Session: rounding and saturation of QuantizeLinear, blocked int4
// round trips, DynamicQuantizeLinear edge cases, and ConvInteger / MatMulInteger against exact
// integer references (per-channel zero points, depthwise, runtime activation zero points).
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <vector>

#include "nibble/nibble.h"
#include "tests/model_builder.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

template <typename T>
Tensor make(DType dtype, const Shape& shape, const std::vector<T>& values) {
  Tensor t(dtype, shape);
  REQUIRE(size_t(t.numel()) == values.size());
  if (!values.empty()) std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

template <typename T>
Tensor random_ints(DType dtype, const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(std::numeric_limits<T>::min(),
                                          std::numeric_limits<T>::max());
  Tensor t(dtype, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = static_cast<T>(dist(rng));
  return t;
}

}  // namespace

TEST_CASE("QuantizeLinear rounds half to even, adds the zero point after rounding, saturates") {
  ModelBuilder m(13);
  m.input("x", DType::F32, {8});
  m.initializer<float>("scale", DType::F32, {}, {1.0f});
  m.initializer<int8_t>("zp", DType::I8, {}, {1});
  m.node("QuantizeLinear", {"x", "scale", "zp"}, {"y"});
  m.output("y", DType::I8);
  const Tensor x =
      make<float>(DType::F32, {8}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 300.0f, -300.0f, 126.5f});
  const Tensor y = m.session().run({{"x", x}}).at(0);
  CHECK(y.to_i64_vector() == std::vector<int64_t>{1, 3, 3, 1, -1, 127, -128, 127});
}

TEST_CASE("blocked int4 QuantizeLinear and DequantizeLinear round-trip") {
  // x [2, 5], blocks of 2 along axis 1 (the last block is short): scale [2, 3].
  ModelBuilder m(21);
  m.input("x", DType::F32, {2, 5});
  m.initializer<float>("scale", DType::F32, {2, 3}, {0.5f, 1.0f, 2.0f, 0.25f, 4.0f, 1.0f});
  // A graph input: tensors hold int4 one element per byte, initializers would need packing.
  m.input("zp", DType::I4, {2, 3});
  auto& q = m.node("QuantizeLinear", {"x", "scale", "zp"}, {"q"});
  ModelBuilder::attr(q, "axis", int64_t{1});
  ModelBuilder::attr(q, "block_size", int64_t{2});
  auto& dq = m.node("DequantizeLinear", {"q", "scale", "zp"}, {"y"});
  ModelBuilder::attr(dq, "axis", int64_t{1});
  ModelBuilder::attr(dq, "block_size", int64_t{2});
  m.output("q", DType::I4);
  m.output("y", DType::F32);
  const Tensor x = make<float>(DType::F32, {2, 5},
                               {1.0f, -1.2f, 3.0f, 9.0f, -20.0f, 0.3f, 0.6f, 10.0f, -3.0f, 7.0f});
  const Tensor zp = make<int8_t>(DType::I4, {2, 3}, {0, 1, -1, 2, 0, -8});
  const auto out = m.session().run({{"x", x}, {"zp", zp}});
  // q = clamp(round(x / scale) + zp, -8, 7)
  CHECK(out[0].to_i64_vector() == std::vector<int64_t>{2, -2, 4, 7, -8, 3, 4, 2, -1, -1});
  std::vector<double> expected = {1.0, -1.0, 3.0, 6.0, -14.0, 0.25, 0.5, 8.0, -4.0, 7.0};
  for (int64_t i = 0; i < 10; ++i) CHECK(out[1].get_f64(i) == expected[size_t(i)]);
}

TEST_CASE("DynamicQuantizeLinear of an all-zero tensor has scale 1 and zero point 0") {
  ModelBuilder m(11);
  m.input("x", DType::F32, {4});
  m.node("DynamicQuantizeLinear", {"x"}, {"y", "scale", "zp"});
  m.output("y", DType::U8);
  m.output("scale", DType::F32);
  m.output("zp", DType::U8);
  const auto out = m.session().run({{"x", make<float>(DType::F32, {4}, {0, 0, 0, 0})}});
  CHECK(out[0].to_i64_vector() == std::vector<int64_t>{0, 0, 0, 0});
  CHECK(out[1].get_f64(0) == 1.0);
  CHECK(out[2].get_i64(0) == 0);
}

TEST_CASE("ConvInteger with per-channel weight zero points is exact, depthwise included") {
  for (int64_t group : {1, 6}) {
    const Tensor x = random_ints<uint8_t>(DType::U8, {1, 6, 7, 9}, 1);
    const Tensor w = random_ints<int8_t>(DType::I8, {6, 6 / group, 3, 3}, 2);
    const Tensor w_zp = make<int8_t>(DType::I8, {6}, {0, -3, 5, 127, -128, 9});
    const Tensor x_zp = make<uint8_t>(DType::U8, {}, {117});
    ModelBuilder m(10);
    m.input("x", DType::U8, x.shape());
    m.input("x_zp", DType::U8, {});  // runtime, as DynamicQuantizeLinear produces it
    m.initializer("w", w);
    m.initializer("w_zp", w_zp);
    auto& node = m.node("ConvInteger", {"x", "w", "x_zp", "w_zp"}, {"y"});
    ModelBuilder::attr(node, "group", group);
    ModelBuilder::attr(node, "pads", std::vector<int64_t>{1, 1, 1, 1});
    ModelBuilder::attr(node, "strides", std::vector<int64_t>{1, 2});
    m.output("y", DType::I32);
    const Tensor y = m.session().run({{"x", x}, {"x_zp", x_zp}}).at(0);
    REQUIRE(y.shape() == Shape{1, 6, 7, 5});
    const int64_t cg = 6 / group;
    bool exact = true;
    for (int64_t oc = 0; oc < 6; ++oc) {
      const int64_t g = oc / (6 / group);
      for (int64_t oy = 0; oy < 7; ++oy) {
        for (int64_t ox = 0; ox < 5; ++ox) {
          int64_t sum = 0;
          for (int64_t c = 0; c < cg; ++c) {
            for (int64_t i = 0; i < 3; ++i) {
              for (int64_t j = 0; j < 3; ++j) {
                const int64_t iy = oy - 1 + i, ix = ox * 2 - 1 + j;
                if (iy < 0 || iy >= 7 || ix < 0 || ix >= 9) continue;  // pads hold the zero point
                sum += (x.get_i64(((g * cg + c) * 7 + iy) * 9 + ix) - 117) *
                       (w.get_i64(((oc * cg + c) * 3 + i) * 3 + j) - w_zp.get_i64(oc));
              }
            }
          }
          exact = exact && y.get_i64((oc * 7 + oy) * 5 + ox) == sum;
        }
      }
    }
    CAPTURE(group);
    CHECK(exact);
  }
}

TEST_CASE("MatMulInteger with per-row and per-column zero points is exact") {
  const Tensor a = random_ints<int8_t>(DType::I8, {2, 3, 300}, 3);
  const Tensor b = random_ints<uint8_t>(DType::U8, {300, 5}, 4);
  const Tensor a_zp = make<int8_t>(DType::I8, {3}, {-128, 0, 127});
  const Tensor b_zp = make<uint8_t>(DType::U8, {5}, {0, 1, 128, 254, 255});
  ModelBuilder m(10);
  m.input("a", DType::I8, a.shape());
  m.initializer("b", b);
  m.initializer("a_zp", a_zp);
  m.initializer("b_zp", b_zp);
  m.node("MatMulInteger", {"a", "b", "a_zp", "b_zp"}, {"y"});
  m.output("y", DType::I32);
  const Tensor y = m.session().run({{"a", a}}).at(0);
  REQUIRE(y.shape() == Shape{2, 3, 5});
  bool exact = true;
  for (int64_t n = 0; n < 2; ++n) {
    for (int64_t r = 0; r < 3; ++r) {
      for (int64_t c = 0; c < 5; ++c) {
        int64_t sum = 0;
        for (int64_t k = 0; k < 300; ++k) {
          sum += (a.get_i64((n * 3 + r) * 300 + k) - a_zp.get_i64(r)) *
                 (b.get_i64(k * 5 + c) - b_zp.get_i64(c));
        }
        exact = exact && y.get_i64((n * 3 + r) * 5 + c) == sum;
      }
    }
  }
  CHECK(exact);
}

TEST_CASE("quantization nodes reject inconsistent inputs") {
  SUBCASE("per-axis scale of the wrong length") {
    ModelBuilder m(13);
    m.input("x", DType::F32, {2, 3});
    m.initializer<float>("scale", DType::F32, {2}, {1.0f, 2.0f});
    m.node("QuantizeLinear", {"x", "scale"}, {"y"});
    m.output("y", DType::U8);
    CHECK_THROWS_AS(m.session(), Error);
  }
  SUBCASE("per-axis scale on a scalar input") {
    ModelBuilder m(13);
    m.input("x", DType::F32, {});
    m.initializer<float>("scale", DType::F32, {2}, {1.0f, 2.0f});
    auto& node = m.node("QuantizeLinear", {"x", "scale"}, {"y"});
    ModelBuilder::attr(node, "axis", int64_t{0});
    m.output("y", DType::U8);
    try {
      m.session();
      FAIL("loaded");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::InvalidModel);
      CHECK(std::string(e.what()).find("rank >= 1") != std::string::npos);
    }
  }
  SUBCASE("zero point dtype differs from output_dtype") {
    ModelBuilder m(21);
    m.input("x", DType::F32, {2});
    m.initializer<float>("scale", DType::F32, {}, {1.0f});
    m.initializer<int8_t>("zp", DType::I8, {}, {0});
    auto& node = m.node("QuantizeLinear", {"x", "scale", "zp"}, {"y"});
    ModelBuilder::attr(node, "output_dtype", int64_t(DType::U8));
    m.output("y", DType::U8);
    try {
      m.session();
      FAIL("loaded");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::InvalidModel);
    }
  }
}
