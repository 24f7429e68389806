// Reductions (engine/ops/reduce.cpp): every axis subset against a naive reference, the axes
// attribute/input split across opsets, empty sets, and the axis rules of Softmax and ArgMax.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>

#include "tests/engine/test_elementwise_util.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

// Naive reduction of a float tensor over the axes whose bit is set in `mask`: fold(acc, x) from
// `init`, then finish(acc, count).
std::vector<double> naive_reduce(const Tensor& x, unsigned mask, double init,
                                 const std::function<double(double, double)>& fold,
                                 const std::function<double(double, int64_t)>& finish,
                                 Shape* out_shape) {
  Shape shape;
  for (int64_t d = 0; d < x.rank(); ++d) shape.push_back((mask >> d) & 1 ? 1 : x.dim(d));
  std::vector<double> acc(size_t(shape_numel(shape)), init);
  for (int64_t i = 0; i < x.numel(); ++i) {
    auto c = coords(i, x.shape());
    int64_t o = 0;
    for (size_t d = 0; d < c.size(); ++d) o = o * shape[d] + ((mask >> d) & 1 ? 0 : c[d]);
    acc[size_t(o)] = fold(acc[size_t(o)], double(x.data<float>()[i]));
  }
  const int64_t count = x.numel() / std::max<int64_t>(int64_t(acc.size()), 1);
  for (double& a : acc) a = finish(a, count);
  *out_shape = shape;
  return acc;
}

Tensor axes_tensor(unsigned mask, int64_t rank) {
  std::vector<int64_t> axes;
  for (int64_t d = 0; d < rank; ++d) {
    if ((mask >> d) & 1) axes.push_back(d - rank);  // negative axes on purpose
  }
  return make_tensor<int64_t>(DType::I64, {int64_t(axes.size())}, axes);
}

}  // namespace

TEST_CASE("Reduce* match a naive reduction over every axis subset") {
  struct Kind {
    const char* op;
    double init;
    std::function<double(double, double)> fold;
    std::function<double(double, int64_t)> finish;
  };
  const auto id = [](double a, int64_t) { return a; };
  const std::vector<Kind> kinds = {
      {"ReduceSum", 0, [](double a, double x) { return a + x; }, id},
      {"ReduceMean", 0, [](double a, double x) { return a + x; },
       [](double a, int64_t n) { return a / double(n); }},
      {"ReduceMax", -INFINITY, [](double a, double x) { return std::max(a, x); }, id},
      {"ReduceL2", 0, [](double a, double x) { return a + x * x; },
       [](double a, int64_t) { return std::sqrt(a); }},
      {"ReduceLogSumExp", 0, [](double a, double x) { return a + std::exp(x); },
       [](double a, int64_t) { return std::log(a); }},
  };
  // The last shape has a kept innermost run longer than one block of outputs.
  for (const Shape& shape : {Shape{2, 3, 4, 5}, Shape{3, 1, 7}, Shape{2, 3, 300}}) {
    const Tensor x = ramp(shape, 0.125f, -1.5f, 23);
    const int64_t rank = int64_t(shape.size());
    for (unsigned mask = 1; mask < (1u << rank); ++mask) {
      for (const Kind& k : kinds) {
        Shape keep_shape;
        const auto expected = naive_reduce(x, mask, k.init, k.fold, k.finish, &keep_shape);
        for (int keepdims : {0, 1}) {
          INFO(k.op << " of " << shape_str(shape) << " mask " << mask << " keepdims " << keepdims);
          const Tensor y = OpRunner(k.op, 18).input(x).constant(axes_tensor(mask, rank))
                               .attr("keepdims", keepdims).run(DType::F32, 2);
          Shape dropped;
          for (int64_t d = 0; d < rank; ++d) {
            if (!((mask >> d) & 1)) dropped.push_back(shape[size_t(d)]);
          }
          CHECK(y.shape() == (keepdims ? keep_shape : dropped));
          check_values(y, expected, 1e-5, 1e-5);
        }
      }
    }
  }
}

TEST_CASE("axes are an attribute before opset 18 (13 for ReduceSum)") {
  const Tensor x = make_tensor<double>(DType::F32, {2, 3}, {1, 2, 3, 4, 5, 6});
  check_values(OpRunner("ReduceMean", 13).input(x).attr("axes", std::vector<int64_t>{1})
                   .run(DType::F32), {2, 5});
  check_values(OpRunner("ReduceSum", 11).input(x).attr("axes", std::vector<int64_t>{0})
                   .attr("keepdims", 0).run(DType::F32), {5, 7, 9});
  check_values(OpRunner("ReduceSum", 13).input(x).constant(axes_tensor(2, 2)).run(DType::F32),
               {6, 15});
  check_values(OpRunner("ReduceMax", 13).input(x).run(DType::F32), {6});  // no axes: all
}

TEST_CASE("empty axes reduce everything, or nothing with noop_with_empty_axes") {
  const Tensor x = make_tensor<double>(DType::F32, {2, 2}, {1, -2, 3, -4});
  const Tensor none = make_tensor<int64_t>(DType::I64, {0}, std::vector<int64_t>{});
  const Tensor all = OpRunner("ReduceSum", 13).input(x).constant(none).run(DType::F32);
  CHECK(all.shape() == Shape{1, 1});
  check_values(all, {-2});
  const Tensor same = OpRunner("ReduceSum", 13).input(x).constant(none)
                          .attr("noop_with_empty_axes", 1).run(DType::F32);
  CHECK(same.shape() == Shape{2, 2});
  check_values(same, {1, -2, 3, -4});
}

TEST_CASE("reductions over an empty set give the identity of the reduction") {
  const Tensor x(DType::F32, {2, 0, 3});
  const Tensor axis = make_tensor<int64_t>(DType::I64, {1}, {1});
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<std::pair<const char*, double>> cases = {
      {"ReduceSum", 0}, {"ReduceProd", 1}, {"ReduceMax", -inf}, {"ReduceMin", inf},
      {"ReduceL2", 0},  {"ReduceLogSum", -inf}, {"ReduceLogSumExp", -inf}};
  for (const auto& [op, value] : cases) {
    INFO(op);
    const Tensor y = OpRunner(op, 18).input(x).constant(axis).run(DType::F32);
    CHECK(y.shape() == Shape{2, 1, 3});
    check_values(y, std::vector<double>(6, value));
  }
  const Tensor ints(DType::I32, {0, 2});
  const double lowest = std::numeric_limits<int32_t>::min();
  check_values(OpRunner("ReduceMax", 18).input(ints)
                   .constant(make_tensor<int64_t>(DType::I64, {1}, {0})).run(DType::I32),
               {lowest, lowest});
}

TEST_CASE("reduce axes fed at run time plan per value; bad axes are invalid") {
  auto kind_of = [](OpRunner& op) {
    try {
      op.run(DType::F32);
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::Internal;  // "accepted"
  };
  const Tensor x = ramp({2, 3});
  // A run-time `axes` input is accepted: the session plans once per value it sees.
  CHECK(kind_of(OpRunner("ReduceSum", 13).input(x).input(axes_tensor(1, 2))) ==
        ErrorKind::Internal);
  CHECK(kind_of(OpRunner("ReduceMean", 18).input(x).constant(
            make_tensor<int64_t>(DType::I64, {2}, {1, -1}))) == ErrorKind::InvalidModel);
  CHECK(kind_of(OpRunner("ReduceMean", 13).input(x).attr("axes", std::vector<int64_t>{2})) ==
        ErrorKind::InvalidModel);
}

TEST_CASE("Softmax coerces to 2-D before opset 13 and uses one axis from 13") {
  const Shape shape = {2, 3, 4};
  const Tensor x = ramp(shape, 0.3f, -1.0f, 7);
  const float* v = x.data<float>();
  // Opset 11, axis 1: each of the 2 rows of 12 values is normalized.
  std::vector<double> coerced(24), single(24);
  for (int b = 0; b < 2; ++b) {
    double sum = 0;
    for (int i = 0; i < 12; ++i) sum += std::exp(double(v[b * 12 + i]));
    for (int i = 0; i < 12; ++i) {
      coerced[size_t(b * 12 + i)] = std::exp(double(v[b * 12 + i])) / sum;
    }
  }
  // Opset 13, axis 1: each (b, k) column of 3 values.
  for (int b = 0; b < 2; ++b) {
    for (int k = 0; k < 4; ++k) {
      double sum = 0;
      for (int j = 0; j < 3; ++j) sum += std::exp(double(v[b * 12 + j * 4 + k]));
      for (int j = 0; j < 3; ++j) {
        single[size_t(b * 12 + j * 4 + k)] = std::exp(double(v[b * 12 + j * 4 + k])) / sum;
      }
    }
  }
  check_values(OpRunner("Softmax", 11).input(x).attr("axis", 1).run(DType::F32), coerced);
  check_values(OpRunner("Softmax", 13).input(x).attr("axis", 1).run(DType::F32), single);
  std::vector<double> log_single = single;
  for (double& s : log_single) s = std::log(s);
  check_values(OpRunner("LogSoftmax", 13).input(x).attr("axis", -2).run(DType::F32), log_single,
               1e-5, 1e-6);
}

TEST_CASE("float Softmax and LogSoftmax give ONNX Runtime's bits, along any axis") {
  // 37 values: two full groups of 16 lanes and a tail. The expected bits are ONNX Runtime 1.32's
  // (CPU, MLAS AVX-512F kernel) output for this row; MLAS's FMA3 kernel (AVX2 CPUs) gives the
  // same bits for it (tests/e2e/mlas_softmax_reference.py). test_mlas_softmax.cpp pins rows
  // where the two differ.
  std::vector<double> row(37);
  for (size_t i = 0; i < row.size(); ++i) row[i] = double((i * 37) % 101) * 0.125 - 6.0;
  const uint32_t softmax_bits[37] = {
      0x359d477au, 0x38faaba9u, 0x3c47c22fu, 0x36893d56u, 0x39dabb47u, 0x3d2e4e73u,
      0x376f81b3u, 0x3abedcaeu, 0x3e1818e9u, 0x3850fd75u, 0x3ba68b22u, 0x35e4d703u,
      0x39365c9cu, 0x3c9152cfu, 0x36c7aeb4u, 0x3a1f2053u, 0x3d7d9d48u, 0x37ae3d73u,
      0x3b0ad9efu, 0x3e5d4ce0u, 0x38980a14u, 0x3bf251c1u, 0x36267ae4u, 0x3984aadau,
      0x3cd371c4u, 0x371144a3u, 0x3a678700u, 0x3db880ddu, 0x37fd848cu, 0x3b4a0707u,
      0x3ea0feb9u, 0x38dd374bu, 0x3c30494au, 0x36723a1fu, 0x39c107a8u, 0x3d19d32du,
      0x37535d26u};
  const uint32_t log_softmax_bits[37] = {
      0xc15a82dfu, 0xc11082dfu, 0xc08d05beu, 0xc14682dfu, 0xc0f905beu, 0xc04a0b7du,
      0xc13282dfu, 0xc0d105beu, 0xbff416fau, 0xc11e82dfu, 0xc0a905beu, 0xc15482dfu,
      0xc10a82dfu, 0xc08105beu, 0xc14082dfu, 0xc0ed05beu, 0xc0320b7du, 0xc12c82dfu,
      0xc0c505beu, 0xbfc416fau, 0xc11882dfu, 0xc09d05beu, 0xc14e82dfu, 0xc10482dfu,
      0xc06a0b7du, 0xc13a82dfu, 0xc0e105beu, 0xc01a0b7du, 0xc12682dfu, 0xc0b905beu,
      0xbf9416fau, 0xc11282dfu, 0xc09105beu, 0xc14882dfu, 0xc0fd05beu, 0xc0520b7du,
      0xc13482dfu};
  // The row as a [1, 37] row and as a column of a [37, 3] tensor (the strided path).
  std::vector<double> columns;
  for (double v : row) columns.insert(columns.end(), {v, -v, 0.5 * v});
  const Tensor as_row = make_tensor(DType::F32, {1, 37}, row);
  const Tensor as_column = make_tensor(DType::F32, {37, 3}, columns);
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    CAPTURE(op);
    const uint32_t* expected = std::string(op) == "Softmax" ? softmax_bits : log_softmax_bits;
    const Tensor y_row = OpRunner(op, 13).input(as_row).attr("axis", -1).run(DType::F32);
    const Tensor y_column = OpRunner(op, 13).input(as_column).attr("axis", 0).run(DType::F32);
    for (size_t i = 0; i < row.size(); ++i) {
      CAPTURE(i);
      CHECK(std::bit_cast<uint32_t>(y_row.data<float>()[i]) == expected[i]);
      CHECK(std::bit_cast<uint32_t>(y_column.data<float>()[i * 3]) == expected[i]);
    }
  }
}

TEST_CASE("ArgMax/ArgMin break ties by first or last index, Hardmax by the first") {
  const Tensor x = make_tensor<double>(DType::F32, {2, 4}, {1, 3, 3, 0, 2, 2, -1, -1});
  check_values(OpRunner("ArgMax", 13).input(x).attr("axis", 1).run(DType::I64), {1, 0});
  check_values(OpRunner("ArgMax", 13).input(x).attr("axis", 1).attr("select_last_index", 1)
                   .run(DType::I64), {2, 1});
  check_values(OpRunner("ArgMin", 13).input(x).attr("axis", -1).attr("keepdims", 0)
                   .attr("select_last_index", 1).run(DType::I64), {3, 3});
  const Tensor along0 = OpRunner("ArgMin", 13).input(x).run(DType::I64);
  CHECK(along0.shape() == Shape{1, 4});
  check_values(along0, {0, 1, 1, 1});
  check_values(OpRunner("Hardmax", 13).input(x).run(DType::F32), {0, 1, 0, 0, 1, 0, 0, 0});
}
