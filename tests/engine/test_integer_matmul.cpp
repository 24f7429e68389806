// MatMulInteger and QLinearMatMul with constant B run on the integer GEMM kernels
// (engine/ops/integer_matmul.cpp): exact int32 sums, equal to plain integer loops over tail
// shapes, every signedness, zero points per tensor and per column, batched A; the cases the
// kernels do not take (B at run time, a zero point per row of A, B - zero point outside int8)
// stay exact on the reference loops.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "nibble/nibble.h"
#include "tests/model_builder.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

Tensor random_ints(DType dtype, const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  const bool is_signed = dtype == DType::I8;
  std::uniform_int_distribution<int> dist(is_signed ? -128 : 0, is_signed ? 127 : 255);
  Tensor t(dtype, shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int v = dist(rng);
    if (is_signed)
      t.data<int8_t>()[i] = static_cast<int8_t>(v);
    else
      t.data<uint8_t>()[i] = static_cast<uint8_t>(v);
  }
  return t;
}

// A zero point of `count` values of `dtype` (a scalar when count is 0).
Tensor zero_point(DType dtype, int64_t count, uint32_t seed) {
  return random_ints(dtype, count == 0 ? Shape{} : Shape{count}, seed);
}

struct Case {
  int64_t batches, m, k, n;
  DType a_type, b_type;
  bool a_zero_point, b_zero_point_per_column;
};

// (A - a_zp) · (B - b_zp) for A [batches, M, K], B [K, N], zero points per tensor / column.
std::vector<int64_t> reference(const Case& c, const Tensor& a, const Tensor* a_zp, const Tensor& b,
                               const Tensor& b_zp) {
  std::vector<int64_t> y;
  for (int64_t r = 0; r < c.batches * c.m; ++r) {
    const int64_t az = a_zp ? a_zp->get_i64(a_zp->numel() == 1 ? 0 : r % c.m) : 0;
    for (int64_t col = 0; col < c.n; ++col) {
      const int64_t bz = b_zp.get_i64(b_zp.numel() == 1 ? 0 : col);
      int64_t sum = 0;
      for (int64_t kk = 0; kk < c.k; ++kk)
        sum += (a.get_i64(r * c.k + kk) - az) * (b.get_i64(kk * c.n + col) - bz);
      y.push_back(sum);
    }
  }
  return y;
}

// One MatMulInteger, B an initializer or (b_at_run_time) a graph input.
ModelBuilder matmul_integer_model(const Case& c, const Tensor& b, const Tensor* a_zp,
                                  const Tensor& b_zp, bool b_at_run_time) {
  ModelBuilder m(10);
  m.input("a", c.a_type, {c.batches, c.m, c.k});
  if (b_at_run_time)
    m.input("b", c.b_type, b.shape());
  else
    m.initializer("b", b);
  if (a_zp) m.initializer("a_zp", *a_zp);
  m.initializer("b_zp", b_zp);
  m.node("MatMulInteger", {"a", "b", a_zp ? "a_zp" : "", "b_zp"}, {"y"}, "matmul_integer");
  m.output("y", DType::I32);
  return m;
}

}  // namespace

TEST_CASE("MatMulInteger with constant B runs on the integer GEMM kernels, exactly") {
  const std::vector<Case> cases = {
      {1, 1, 1, 1, DType::U8, DType::I8, true, false},
      {1, 3, 5, 7, DType::U8, DType::U8, true, true},
      {2, 17, 64, 48, DType::I8, DType::I8, true, true},
      {1, 33, 67, 50, DType::U8, DType::I8, false, true},
      {3, 5, 130, 19, DType::I8, DType::U8, true, false},
      {1, 70, 300, 9, DType::U8, DType::I8, true, true},
  };
  uint32_t seed = 1;
  for (const Case& c : cases) {
    CAPTURE(c.batches);
    CAPTURE(c.m);
    CAPTURE(c.k);
    CAPTURE(c.n);
    const Tensor a = random_ints(c.a_type, {c.batches, c.m, c.k}, seed++);
    Tensor b = random_ints(c.b_type, {c.k, c.n}, seed++);
    // uint8 weights with a zero point near the middle (what quantizers write) fit int8.
    Tensor b_zp(c.b_type, c.b_zero_point_per_column ? Shape{c.n} : Shape{});
    for (int64_t i = 0; i < b_zp.numel(); ++i) {
      if (c.b_type == DType::U8)
        b_zp.data<uint8_t>()[i] = static_cast<uint8_t>(127 + i % 3);
      else
        b_zp.data<int8_t>()[i] = 0;
    }
    if (c.b_type == DType::U8) {  // keep every B - zero point within int8
      for (int64_t i = 0; i < b.numel(); ++i)
        b.data<uint8_t>()[i] = static_cast<uint8_t>(std::clamp<int>(b.data<uint8_t>()[i], 2, 254));
    }
    const Tensor a_zp = zero_point(c.a_type, 0, seed++);
    const Tensor* a_zp_ptr = c.a_zero_point ? &a_zp : nullptr;
    const std::vector<int64_t> expected = reference(c, a, a_zp_ptr, b, b_zp);

    const Session packed = matmul_integer_model(c, b, a_zp_ptr, b_zp, false).session();
    const std::string plan = packed.describe();
    INFO(plan);
    CHECK(plan.find("matmul_integer_w8a8") != std::string::npos);
    const Tensor y = packed.run({{"a", a}}).at(0);
    REQUIRE(y.shape() == Shape{c.batches, c.m, c.n});
    CHECK(y.to_i64_vector() == expected);

    // The same product with B fed at run time takes the reference loops.
    const Session runtime_b = matmul_integer_model(c, b, a_zp_ptr, b_zp, true).session();
    CHECK(runtime_b.describe().find("matmul_integer_w8a8") == std::string::npos);
    CHECK(runtime_b.run({{"a", a}, {"b", b}}).at(0).to_i64_vector() == expected);
  }
}

TEST_CASE("MatMulInteger cases the kernels do not take stay exact on the reference loops") {
  const Case c{2, 4, 20, 6, DType::U8, DType::U8, true, true};
  const Tensor a = random_ints(c.a_type, {c.batches, c.m, c.k}, 11);
  const Tensor b = random_ints(c.b_type, {c.k, c.n}, 12);
  SUBCASE("B minus its zero point leaves int8") {
    Tensor zeros(DType::U8, {c.n});
    std::memset(zeros.raw(), 0, zeros.nbytes());
    const Tensor a_zp = zero_point(DType::U8, 0, 13);
    const Session s = matmul_integer_model(c, b, &a_zp, zeros, false).session();
    CHECK(s.describe().find("matmul_integer_w8a8") == std::string::npos);
    CHECK(s.run({{"a", a}}).at(0).to_i64_vector() == reference(c, a, &a_zp, b, zeros));
  }
  SUBCASE("a zero point per row of A") {
    Tensor b_zp(DType::U8, {c.n});
    std::memset(b_zp.raw(), 128, b_zp.nbytes());
    const Tensor a_zp = zero_point(DType::U8, c.m, 14);
    const Session s = matmul_integer_model(c, b, &a_zp, b_zp, false).session();
    CHECK(s.describe().find("matmul_integer_w8a8") == std::string::npos);
    CHECK(s.run({{"a", a}}).at(0).to_i64_vector() == reference(c, a, &a_zp, b, b_zp));
  }
}

TEST_CASE("QLinearMatMul with constant B runs on the integer GEMM kernels, requantized as before") {
  // y = saturate(round((A - a_zp)·(B - b_zp) * a_scale * b_scale[n] / y_scale) + y_zp).
  const int64_t m = 9, k = 70, n = 21;
  const Tensor a = random_ints(DType::U8, {m, k}, 21);
  const Tensor b = random_ints(DType::I8, {k, n}, 22);
  std::vector<float> b_scales;
  for (int64_t i = 0; i < n; ++i) b_scales.push_back(0.001f * float(i + 1));
  for (const bool b_at_run_time : {false, true}) {
    CAPTURE(b_at_run_time);
    ModelBuilder mb(10);
    mb.input("a", DType::U8, {m, k});
    mb.initializer<float>("a_scale", DType::F32, {}, {0.02f});
    mb.initializer<uint8_t>("a_zp", DType::U8, {}, {131});
    if (b_at_run_time)
      mb.input("b", DType::I8, {k, n});
    else
      mb.initializer("b", b);
    mb.initializer<float>("b_scale", DType::F32, {n}, b_scales);
    mb.initializer<int8_t>("b_zp", DType::I8, {n}, std::vector<int8_t>(size_t(n), 0));
    mb.initializer<float>("y_scale", DType::F32, {}, {0.05f});
    mb.initializer<int8_t>("y_zp", DType::I8, {}, {-3});
    mb.node("QLinearMatMul", {"a", "a_scale", "a_zp", "b", "b_scale", "b_zp", "y_scale", "y_zp"},
            {"y"}, "qlinear_matmul");
    mb.output("y", DType::I8);
    const Session s = mb.session();
    CHECK((s.describe().find("matmul_integer_w8a8") != std::string::npos) == !b_at_run_time);
    NamedTensors inputs = {{"a", a}};
    if (b_at_run_time) inputs.emplace_back("b", b);
    const Tensor y = s.run(inputs).at(0);
    bool exact = true;
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t col = 0; col < n; ++col) {
        int32_t sum = 0;
        for (int64_t kk = 0; kk < k; ++kk)
          sum += int32_t(a.get_i64(r * k + kk) - 131) * int32_t(b.get_i64(kk * n + col));
        const float multiplier = 0.02f * b_scales[size_t(col)] / 0.05f;
        const double q = std::nearbyint(double(sum) * multiplier) - 3;
        const int64_t expected = int64_t(std::min(127.0, std::max(-128.0, q)));
        exact = exact && y.get_i64(r * n + col) == expected;
      }
    }
    CHECK(exact);
  }
}
