// Elementwise ops (engine/ops/elementwise.cpp): broadcasting against a naive reference, integer
// semantics, opset-dependent attributes, Cast conversions and error reporting. The ONNX node
// conformance suite covers the per-op formulas; these cases cover what it does not.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "engine/ops/elementwise_util.h"
#include "tests/engine/test_elementwise_util.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

// Element of `t` (shape `shape`) seen at output coordinates `out` under numpy broadcasting.
float broadcast_at(const Tensor& t, const std::vector<int64_t>& out) {
  int64_t index = 0;
  const size_t lead = out.size() - size_t(t.rank());
  for (size_t d = 0; d < size_t(t.rank()); ++d) {
    const int64_t dim = t.dim(int64_t(d));
    index = index * dim + (dim == 1 ? 0 : out[lead + d]);
  }
  return t.data<float>()[index];
}

Shape numpy_broadcast(const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()), 1);
  for (size_t k = 0; k < out.size(); ++k) {
    const int64_t da = k < a.size() ? a[a.size() - 1 - k] : 1;
    const int64_t db = k < b.size() ? b[b.size() - 1 - k] : 1;
    out[out.size() - 1 - k] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace

TEST_CASE("binary ops broadcast like numpy, serially and across threads") {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{2, 3}, {2, 3}},          {{2, 3, 4, 5}, {3, 1, 5}}, {{1, 3, 1, 5}, {2, 1, 4, 1}},
      {{}, {2, 3}},              {{4, 1}, {1}},             {{6, 1, 1}, {6, 1, 7}},
      {{3, 1, 2}, {1, 4, 1}},    {{0, 3}, {1, 3}},
      // Large enough to be split across threads mid-row.
      {{1, 64, 96, 96}, {1, 64, 1, 1}}, {{1, 3, 200, 201}, {1, 1, 200, 201}},
      {{300, 257}, {}},
  };
  for (const auto& [sa, sb] : cases) {
    const Tensor a = ramp(sa, 0.5f, -3.0f), b = ramp(sb, 0.25f, 1.0f, 17);
    const Shape shape = numpy_broadcast(sa, sb);
    std::vector<double> expected(size_t(shape_numel(shape)));
    for (size_t i = 0; i < expected.size(); ++i) {
      const auto c = coords(int64_t(i), shape);
      expected[i] = double(broadcast_at(a, c)) - double(broadcast_at(b, c));
    }
    for (int threads : {1, 2}) {
      INFO(shape_str(sa) << " - " << shape_str(sb) << " on " << threads << " threads");
      const Tensor y = OpRunner("Sub", 17).input(a).input(b).run(DType::F32, threads);
      CHECK(y.shape() == shape);
      check_values(y, expected);
    }
  }
}

TEST_CASE("variadic Sum, Mean, Max and Min broadcast every input") {
  const Tensor a = make_tensor<double>(DType::F32, {3, 1}, {1, 2, 3});
  const Tensor b = make_tensor<double>(DType::F32, {1, 4}, {10, 20, 30, 40});
  const Tensor c = make_tensor<double>(DType::F32, {4}, {100, 200, 300, 400});
  std::vector<double> sum, mean;
  for (double x : {1, 2, 3}) {
    for (int j = 0; j < 4; ++j) {
      const double s = x + 10 * (j + 1) + 100 * (j + 1);
      sum.push_back(s);
      mean.push_back(s / 3);
    }
  }
  check_values(OpRunner("Sum", 13).input(a).input(b).input(c).run(DType::F32), sum);
  check_values(OpRunner("Mean", 13).input(a).input(b).input(c).run(DType::F32), mean);

  const double nan = std::nan("");
  const Tensor p = make_tensor<double>(DType::F32, {4}, {1, nan, 3, -1});
  const Tensor q = make_tensor<double>(DType::F32, {4}, {2, 0, nan, -2});
  check_values(OpRunner("Max", 13).input(p).input(q).run(DType::F32), {2, nan, nan, -1});
  check_values(OpRunner("Min", 13).input(p).input(q).run(DType::F32), {1, nan, nan, -2});
}

TEST_CASE("integer division truncates toward zero and never traps") {
  constexpr int64_t kMin = std::numeric_limits<int32_t>::min();
  const Tensor a = make_tensor<int64_t>(DType::I32, {6}, {7, -7, 7, -7, 5, kMin});
  const Tensor b = make_tensor<int64_t>(DType::I32, {6}, {2, 2, -2, -2, 0, -1});
  check_values(OpRunner("Div", 14).input(a).input(b).run(DType::I32),
               {3, -3, -3, 3, 0, double(kMin)});
}

TEST_CASE("integer Mod takes the divisor's sign unless fmod=1") {
  const Tensor a = make_tensor<int64_t>(DType::I32, {7}, {-4, 7, 5, 4, -7, 8, 3});
  const Tensor b = make_tensor<int64_t>(DType::I32, {7}, {2, -3, 8, -2, 3, 5, 0});
  check_values(OpRunner("Mod", 13).input(a).input(b).run(DType::I32), {0, -2, 5, 0, 2, 3, 0});
  check_values(OpRunner("Mod", 13).input(a).input(b).attr("fmod", 1).run(DType::I32),
               {0, 1, 5, 0, -1, 3, 0});

  const Tensor f = ramp({4});
  try {
    OpRunner("Mod", 13).input(f).input(f).run(DType::F32);
    FAIL("float Mod without fmod=1 was accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::InvalidModel);
  }
}

TEST_CASE("Pow with integer bases and mixed exponent types") {
  const Tensor base = make_tensor<int64_t>(DType::I64, {6}, {2, 3, -2, 1, -1, 2});
  const Tensor exponent = make_tensor<int64_t>(DType::I64, {6}, {10, 0, 3, -1, -3, -2});
  check_values(OpRunner("Pow", 15).input(base).input(exponent).run(DType::I64),
               {1024, 1, -8, 1, -1, 0});

  const Tensor x = make_tensor<double>(DType::F32, {2, 2}, {1.5, -2, 4, 0.5});
  const Tensor e = make_tensor<int64_t>(DType::I32, {2}, {2, 3});
  check_values(OpRunner("Pow", 15).input(x).input(e).run(DType::F32), {2.25, -8, 16, 0.125});
}

TEST_CASE("Where broadcasts condition, X and Y together") {
  const Tensor cond = make_tensor<int>(DType::Bool, {2, 1}, {1, 0});
  const Tensor x = make_tensor<int64_t>(DType::I64, {1, 3}, {1, 2, 3});
  const Tensor y = make_tensor<int64_t>(DType::I64, {}, {-7});
  const Tensor out = OpRunner("Where", 16).input(cond).input(x).input(y).run(DType::I64);
  CHECK(out.shape() == Shape{2, 3});
  check_values(out, {1, 2, 3, -7, -7, -7});
}

TEST_CASE("Clip bounds are attributes before opset 11 and optional inputs from 11") {
  const Tensor x = make_tensor<double>(DType::F32, {5}, {-3, -0.5, 0, 0.5, 3});
  check_values(OpRunner("Clip", 6).input(x).attr("min", -1.0f).attr("max", 1.0f).run(DType::F32),
               {-1, -0.5, 0, 0.5, 1});
  check_values(OpRunner("Clip", 6).input(x).attr("max", 0.25f).run(DType::F32),
               {-3, -0.5, 0, 0.25, 0.25});
  const Tensor hi = make_tensor<double>(DType::F32, {}, {0.25});
  check_values(OpRunner("Clip", 11).input(x).omitted().input(hi).run(DType::F32),
               {-3, -0.5, 0, 0.25, 0.25});

  // Integer clip with min > max: everything becomes max.
  const Tensor i = make_tensor<int64_t>(DType::I8, {3}, {-100, 0, 100});
  const Tensor lo8 = make_tensor<int64_t>(DType::I8, {}, {5});
  const Tensor hi8 = make_tensor<int64_t>(DType::I8, {}, {1});
  check_values(OpRunner("Clip", 13).input(i).input(lo8).input(hi8).run(DType::I8), {1, 1, 1});
}

TEST_CASE("Cast truncates floats, wraps integers and fits int4 into 4 bits") {
  const double nan = std::nan("");
  const Tensor f = make_tensor<double>(DType::F32, {6}, {-9.7, 300, nan, -129, 127.9, 1e30});
  check_values(OpRunner("Cast", 19).input(f).attr("to", int(DType::I8)).run(DType::I8),
               {-9, 44, 0, 127, 127, -1});
  const Tensor zeros = make_tensor<double>(DType::F32, {4}, {0, -0.0, 0.5, nan});
  check_values(OpRunner("Cast", 19).input(zeros).attr("to", int(DType::Bool)).run(DType::Bool),
               {0, 0, 1, 1});

  const Tensor small = make_tensor<double>(DType::F32, {5}, {-9, 15, 16, 3.9, -1});
  check_values(OpRunner("Cast", 21).input(small).attr("to", int(DType::U4)).run(DType::U4),
               {7, 15, 0, 3, 15});
  check_values(OpRunner("Cast", 21).input(small).attr("to", int(DType::I4)).run(DType::I4),
               {7, -1, 0, 3, -1});

  const Tensor h = make_tensor<double>(DType::F16, {3}, {0.5, -2.25, 65504});
  check_values(OpRunner("Cast", 19).input(h).attr("to", int(DType::F32)).run(DType::F32),
               {0.5, -2.25, 65504});
  check_values(OpRunner("CastLike", 19).input(h).input(make_tensor<int64_t>(DType::I64, {1}, {0}))
                   .run(DType::I64),
               {0, -2, 65504});

  for (DType to : {DType::String, DType::BF16}) {
    try {
      OpRunner("Cast", 19).input(f).attr("to", int(to)).run(DType::F32);
      FAIL("Cast to " << dtype_name(to) << " was accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::Unsupported);
    }
  }
}

TEST_CASE("float16 inputs compute in float") {
  const Tensor a = make_tensor<double>(DType::F16, {4}, {0.1, 1000, -3, 2048});
  const Tensor b = make_tensor<double>(DType::F16, {4}, {0.2, 0.5, 3, 1});
  const Tensor sum = OpRunner("Add", 14).input(a).input(b).run(DType::F16);
  check_values(sum, {0.3, 1000.5, 0, 2048}, 1e-3, 0);  // 2049 is not a float16
  check_values(OpRunner("Sigmoid", 13).input(b).run(DType::F16),
               {1 / (1 + std::exp(-0.2)), 1 / (1 + std::exp(-0.5)), 1 / (1 + std::exp(-3.0)),
                1 / (1 + std::exp(-1.0))},
               1e-3, 0);
}

TEST_CASE("exp_fast stays within 2 ulp of std::exp and keeps inf, 0 and NaN") {
  std::vector<float> xs;
  for (float x = -110.0f; x < 100.0f; x += 0.0037f) xs.push_back(x);
  std::vector<float> ys(xs.size());
  ew::map_f32(xs.data(), ys.data(), int64_t(xs.size()), [](float x) { return ew::exp_fast(x); });
  for (size_t i = 0; i < xs.size(); ++i) {
    const double expected = std::exp(double(xs[i]));
    INFO("exp(" << xs[i] << ") = " << ys[i] << ", expected " << expected);
    if (expected > std::numeric_limits<float>::max()) {
      CHECK(std::isinf(ys[i]));
    } else if (expected >= std::numeric_limits<float>::min()) {
      CHECK(std::fabs(ys[i] - expected) <= 2.5e-7 * expected);
    } else {  // subnormal results keep absolute accuracy only
      CHECK(std::fabs(ys[i] - expected) <= 2 * std::numeric_limits<float>::denorm_min());
    }
  }
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(ew::exp_fast(inf) == inf);
  CHECK(ew::exp_fast(-inf) == 0.0f);
  CHECK(std::isnan(ew::exp_fast(std::nanf(""))));
  CHECK(ew::exp_fast(0.0f) == 1.0f);
}

TEST_CASE("activations use the attribute defaults of the spec") {
  const std::vector<double> xs = {-3, -0.5, 0, 0.5, 3};
  const Tensor x = make_tensor<double>(DType::F32, {5}, xs);
  std::vector<double> leaky, hswish, gelu_tanh;
  for (double v : xs) {
    leaky.push_back(v < 0 ? 0.01 * v : v);
    hswish.push_back(v * std::clamp(v / 6 + 0.5, 0.0, 1.0));
    gelu_tanh.push_back(0.5 * v * (1 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))));
  }
  check_values(OpRunner("LeakyRelu", 16).input(x).run(DType::F32), leaky);
  check_values(OpRunner("HardSwish", 14).input(x).run(DType::F32), hswish);
  check_values(OpRunner("Gelu", 20).input(x).attr("approximate", "tanh").run(DType::F32),
               gelu_tanh, 1e-5, 1e-6);
}

TEST_CASE("malformed elementwise nodes are rejected as invalid models") {
  auto kind_of = [](OpRunner& op, DType out) {
    try {
      op.run(out);
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::Internal;  // "accepted"
  };
  const Tensor f = ramp({2, 3});
  const Tensor i = make_tensor<int64_t>(DType::I32, {2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(kind_of(OpRunner("Add", 14).input(f).input(i), DType::F32) == ErrorKind::InvalidModel);
  CHECK(kind_of(OpRunner("Add", 14).input(f).input(ramp({4})), DType::F32) ==
        ErrorKind::InvalidModel);
  CHECK(kind_of(OpRunner("Sqrt", 13).input(i), DType::I32) == ErrorKind::InvalidModel);
  CHECK(kind_of(OpRunner("Gelu", 20).input(f).attr("approximate", "fast"), DType::F32) ==
        ErrorKind::InvalidModel);
  CHECK(kind_of(OpRunner("PRelu", 16).input(ramp({3})).input(f), DType::F32) ==
        ErrorKind::InvalidModel);
  CHECK(kind_of(OpRunner("Clip", 13).input(f).input(ramp({2})), DType::F32) ==
        ErrorKind::InvalidModel);
}
