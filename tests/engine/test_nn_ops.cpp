// Conv, MatMul, Gemm, pooling and Resize through a Session: cases the ONNX node tests do not
// cover (groups, depthwise with bias, runtime weights, several threads, batch broadcasting)
// against naive references, and the errors malformed or unsupported nodes must raise.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/cpu_features.h"
#include "nibble/nibble.h"
#include "tests/model_builder.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

Tensor random_tensor(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Tensor t(DType::F32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

SessionOptions with_threads(int n) {
  SessionOptions o;
  o.num_threads = n;
  return o;
}

double max_abs_diff(const Tensor& a, const std::vector<double>& b) {
  REQUIRE(size_t(a.numel()) == b.size());
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    worst = std::max(worst, std::abs(a.get_f64(i) - b[size_t(i)]));
  return worst;
}

// Naive 2-D convolution, NCHW, symmetric pads.
std::vector<double> naive_conv2d(const Tensor& x, const Tensor& w, const Tensor* bias,
                                 int64_t group, int64_t stride, int64_t pad, int64_t dilation) {
  const int64_t n_img = x.dim(0), c_in = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t m = w.dim(0), cg = w.dim(1), kh = w.dim(2), kw = w.dim(3);
  const int64_t oh = (h + 2 * pad - (kh - 1) * dilation - 1) / stride + 1;
  const int64_t ow = (wd + 2 * pad - (kw - 1) * dilation - 1) / stride + 1;
  std::vector<double> out;
  for (int64_t n = 0; n < n_img; ++n) {
    for (int64_t oc = 0; oc < m; ++oc) {
      const int64_t g = oc / (m / group);
      for (int64_t y = 0; y < oh; ++y) {
        for (int64_t xo = 0; xo < ow; ++xo) {
          double sum = bias ? bias->get_f64(oc) : 0.0;
          for (int64_t c = 0; c < cg; ++c) {
            for (int64_t i = 0; i < kh; ++i) {
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t iy = y * stride - pad + i * dilation,
                              ix = xo * stride - pad + j * dilation;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                sum += x.get_f64(((n * c_in + g * cg + c) * h + iy) * wd + ix) *
                       w.get_f64(((oc * cg + c) * kh + i) * kw + j);
              }
            }
          }
          out.push_back(sum);
        }
      }
    }
  }
  return out;
}

struct ConvCase {
  int64_t c_in, c_out, group, kernel, stride, pad, dilation;
};

Tensor run_conv(const ConvCase& c, const Tensor& x, const Tensor& w, const Tensor& b,
                bool constant_weights, int threads) {
  ModelBuilder m(17);
  m.input("x", DType::F32, x.shape());
  if (constant_weights) {
    m.initializer("w", w);
    m.initializer("b", b);
  } else {
    m.input("w", DType::F32, w.shape());
    m.input("b", DType::F32, b.shape());
  }
  auto& node = m.node("Conv", {"x", "w", "b"}, {"y"});
  ModelBuilder::attr(node, "group", c.group);
  ModelBuilder::attr(node, "strides", std::vector<int64_t>{c.stride, c.stride});
  ModelBuilder::attr(node, "pads", std::vector<int64_t>(4, c.pad));
  ModelBuilder::attr(node, "dilations", std::vector<int64_t>{c.dilation, c.dilation});
  m.output("y", DType::F32);
  Session s = m.session(with_threads(threads));
  if (constant_weights) return s.run({{"x", x}}).at(0);
  return s.run({{"x", x}, {"w", w}, {"b", b}}).at(0);
}

void string_attr(onnx::NodeProto& node, const std::string& key, const std::string& value) {
  auto* a = node.add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(value);
}

// Builds a single-node model and returns the kind of error loading it raises.
ErrorKind load_error(ModelBuilder& m) {
  try {
    m.session();
  } catch (const Error& e) {
    return e.kind();
  }
  FAIL("the model loaded without error");
  return ErrorKind::Internal;
}

}  // namespace

TEST_CASE("Conv with groups, depthwise layouts and bias matches a naive convolution") {
  const ConvCase cases[] = {
      {6, 4, 2, 3, 1, 1, 1},    // grouped GEMM
      {8, 8, 8, 3, 2, 1, 1},    // depthwise, stride 2
      {5, 10, 5, 3, 1, 2, 2},   // depthwise multiplier 2 runs as GEMM per group
      {7, 9, 1, 1, 1, 0, 1},    // pointwise
      {16, 33, 1, 3, 1, 1, 1},  // rows past the register tile
      {4, 4, 4, 7, 1, 3, 1},    // large depthwise kernel
  };
  uint32_t seed = 1;
  for (const ConvCase& c : cases) {
    const Tensor x = random_tensor({2, c.c_in, 13, 11}, seed++);
    const Tensor w = random_tensor({c.c_out, c.c_in / c.group, c.kernel, c.kernel}, seed++);
    const Tensor b = random_tensor({c.c_out}, seed++);
    const std::vector<double> expected =
        naive_conv2d(x, w, &b, c.group, c.stride, c.pad, c.dilation);
    for (bool constant_weights : {true, false}) {
      for (int threads : {1, 2}) {
        CAPTURE(c.c_in);
        CAPTURE(c.group);
        CAPTURE(constant_weights);
        CAPTURE(threads);
        CHECK(max_abs_diff(run_conv(c, x, w, b, constant_weights, threads), expected) < 1e-4);
      }
    }
  }
}

TEST_CASE("MatMul broadcasts batch dimensions and splits work across threads") {
  const Tensor a = random_tensor({3, 1, 37, 70}, 5);
  const Tensor b = random_tensor({4, 70, 45}, 6);
  std::vector<double> expected;
  for (int64_t i = 0; i < 3; ++i) {
    for (int64_t j = 0; j < 4; ++j) {
      for (int64_t r = 0; r < 37; ++r) {
        for (int64_t c = 0; c < 45; ++c) {
          double sum = 0;
          for (int64_t k = 0; k < 70; ++k) {
            sum += a.get_f64((i * 37 + r) * 70 + k) * b.get_f64((j * 70 + k) * 45 + c);
          }
          expected.push_back(sum);
        }
      }
    }
  }
  for (int threads : {1, 2}) {
    ModelBuilder m(13);
    m.input("a", DType::F32, a.shape());
    m.input("b", DType::F32, b.shape());
    m.node("MatMul", {"a", "b"}, {"y"});
    m.output("y", DType::F32);
    const Tensor y = m.session(with_threads(threads)).run({{"a", a}, {"b", b}}).at(0);
    CHECK(y.shape() == Shape{3, 4, 37, 45});
    CHECK(max_abs_diff(y, expected) < 1e-4);
  }
}

namespace {

// Element (i, j) of op(A) · op(B) with each operand given by strides, summed as ONNX Runtime's
// MLAS SGEMM sums: each slice of `depth` values of k is one chain of fused multiply-adds in
// order, and the slices are added up one after another.
std::vector<float> fma_chain_product(const Tensor& a, int64_t a_rs, int64_t a_cs, const Tensor& b,
                                     int64_t b_rs, int64_t b_cs, int64_t m, int64_t n, int64_t k,
                                     int64_t depth = 128) {
  std::vector<float> c(size_t(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      float sum = 0.0f;
      for (int64_t k0 = 0; k0 < k; k0 += depth) {
        float acc = 0.0f;
        for (int64_t p = k0; p < std::min(k, k0 + depth); ++p) {
          acc = std::fma(a.data<float>()[i * a_rs + p * a_cs],
                         b.data<float>()[p * b_rs + j * b_cs], acc);
        }
        sum = k0 == 0 ? acc : sum + acc;
      }
      c[size_t(i * n + j)] = sum;
    }
  }
  return c;
}

// Bitwise equal on AVX2/AVX-512; the reference kernels (NIBBLE_ISA=ref) multiply and add apart.
void check_fma_chain(const Tensor& y, const std::vector<float>& expected) {
  REQUIRE(size_t(y.numel()) == expected.size());
  const bool fused = kernels::active_isa() != kernels::Isa::Ref;
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("element " << i << ": " << y.data<float>()[i] << " vs " << expected[i]);
    if (fused) {
      CHECK(y.data<float>()[i] == expected[i]);
    } else {
      CHECK(std::abs(y.data<float>()[i] - expected[i]) <= 1e-5f);
    }
  }
}

}  // namespace

TEST_CASE("float MatMul and Gemm sum each output as one fused multiply-add chain over k") {
  // k = 100 as in YOLO11's attention; A batched and B broadcast, Gemm with both transposed.
  const int64_t m = 20, n = 33, k = 100;
  const Tensor a = random_tensor({2, m, k}, 11);
  const Tensor b = random_tensor({k, n}, 12);
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    ModelBuilder mm(13);
    mm.input("a", DType::F32, a.shape());
    mm.input("b", DType::F32, b.shape());
    mm.node("MatMul", {"a", "b"}, {"y"});
    mm.output("y", DType::F32);
    const Tensor y = mm.session(with_threads(threads)).run({{"a", a}, {"b", b}}).at(0);
    std::vector<float> expected = fma_chain_product(a, k, 1, b, n, 1, m, n, k);
    Tensor second_a(DType::F32, {m, k});
    std::memcpy(second_a.raw(), a.data<float>() + m * k, size_t(m * k) * sizeof(float));
    const std::vector<float> second = fma_chain_product(second_a, k, 1, b, n, 1, m, n, k);
    expected.insert(expected.end(), second.begin(), second.end());
    check_fma_chain(y, expected);

    const Tensor at = random_tensor({k, m}, 13);  // A^T
    const Tensor bt = random_tensor({n, k}, 14);  // B^T
    ModelBuilder gemm(13);
    gemm.input("a", DType::F32, at.shape());
    gemm.input("b", DType::F32, bt.shape());
    auto& node = gemm.node("Gemm", {"a", "b"}, {"y"});
    ModelBuilder::attr(node, "transA", int64_t{1});
    ModelBuilder::attr(node, "transB", int64_t{1});
    gemm.output("y", DType::F32);
    const Tensor yg = gemm.session(with_threads(threads)).run({{"a", at}, {"b", bt}}).at(0);
    check_fma_chain(yg, fma_chain_product(at, 1, m, bt, 1, k, m, n, k));
  }
}

TEST_CASE("float MatMul sums deep products in MLAS's slices of k") {
  // Slices of 128 values of k, widened for narrow products: 256 when n <= 64, 512 when n <= 32,
  // 1024 when n <= 16. Slices deeper than the kernels' own blocks of k (256 on AVX2, 512 on
  // AVX-512) must still be one chain, as in MLAS on every CPU.
  const int64_t m = 20;
  for (const auto& [n, k, depth] : {std::tuple<int64_t, int64_t, int64_t>{400, 300, 128},
                                    {40, 300, 256}, {32, 400, 512}, {16, 1100, 1024}}) {
    CAPTURE(n);
    const Tensor a = random_tensor({m, k}, 15);
    const Tensor b = random_tensor({k, n}, 16);
    ModelBuilder mm(13);
    mm.input("a", DType::F32, a.shape());
    mm.input("b", DType::F32, b.shape());
    mm.node("MatMul", {"a", "b"}, {"y"});
    mm.output("y", DType::F32);
    const Tensor y = mm.session(with_threads(2)).run({{"a", a}, {"b", b}}).at(0);
    check_fma_chain(y, fma_chain_product(a, k, 1, b, n, 1, m, n, k, depth));
  }
}

TEST_CASE("Gemm on integer and double types uses the plain loop") {
  ModelBuilder m(13);
  Tensor a(DType::I64, {2, 3}), b(DType::I64, {3, 2});
  for (int64_t i = 0; i < 6; ++i) {
    a.data<int64_t>()[i] = i + 1;
    b.data<int64_t>()[i] = 2 * i - 3;
  }
  m.input("a", DType::I64, a.shape());
  m.initializer("b", b);
  m.node("Gemm", {"a", "b"}, {"y"});
  m.output("y", DType::I64);
  const Tensor y = m.session().run({{"a", a}}).at(0);
  // [[1,2,3],[4,5,6]] x [[-3,-1],[1,3],[5,7]]
  CHECK(y.to_i64_vector() == std::vector<int64_t>{14, 26, 23, 53});
}

TEST_CASE("MaxPool picks the first maximum and reports flat indices") {
  ModelBuilder m(12);
  Tensor x(DType::F32, {1, 1, 2, 4});
  const float values[] = {1, 5, 5, 0, 2, 5, 3, 9};
  std::memcpy(x.raw(), values, sizeof(values));
  m.input("x", DType::F32, x.shape());
  auto& node = m.node("MaxPool", {"x"}, {"y", "i"});
  ModelBuilder::attr(node, "kernel_shape", std::vector<int64_t>{2, 2});
  ModelBuilder::attr(node, "strides", std::vector<int64_t>{2, 2});
  m.output("y", DType::F32);
  m.output("i", DType::I64);
  const auto out = m.session().run({{"x", x}});
  CHECK(out[0].get_f64(0) == 5.0);
  CHECK(out[0].get_f64(1) == 9.0);
  CHECK(out[1].to_i64_vector() == std::vector<int64_t>{1, 7});
}

TEST_CASE("Resize nearest 2x (the YOLO upsampler) repeats every pixel") {
  ModelBuilder m(17);
  const Tensor x = random_tensor({1, 3, 4, 5}, 9);
  m.input("x", DType::F32, x.shape());
  m.initializer<float>("scales", DType::F32, {4}, {1, 1, 2, 2});
  auto& node = m.node("Resize", {"x", "", "scales"}, {"y"});
  string_attr(node, "coordinate_transformation_mode", "asymmetric");
  string_attr(node, "nearest_mode", "floor");
  m.output("y", DType::F32);
  const Tensor y = m.session().run({{"x", x}}).at(0);
  REQUIRE(y.shape() == Shape{1, 3, 8, 10});
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t i = 0; i < 8; ++i) {
      for (int64_t j = 0; j < 10; ++j) {
        CHECK(y.get_f64((c * 8 + i) * 10 + j) == x.get_f64((c * 4 + i / 2) * 5 + j / 2));
      }
    }
  }
}

TEST_CASE("Resize scales fed at run time are planned per value") {
  ModelBuilder m(13);
  m.input("x", DType::F32, {1, 1, 4, 4});
  m.input("scales", DType::F32, {4});
  m.node("Resize", {"x", "", "scales"}, {"y"});
  m.output("y", DType::F32);
  const Session s = m.session();
  const Tensor x = random_tensor({1, 1, 4, 4}, 3);
  Tensor scales(DType::F32, {4});
  for (float factor : {2.0f, 3.0f}) {
    const float values[] = {1, 1, factor, factor};
    std::memcpy(scales.raw(), values, sizeof(values));
    const Tensor y = s.run({{"x", x}, {"scales", scales}}).at(0);
    const int64_t side = int64_t(4 * factor);
    REQUIRE(y.shape() == Shape{1, 1, side, side});
    // half_pixel + round_prefer_floor at an integer factor picks pixel floor(i / factor).
    CHECK(y.get_f64(side * side - 1) == x.get_f64(15));
    CHECK(y.get_f64(0) == x.get_f64(0));
  }
}

TEST_CASE("malformed nodes are InvalidModel, unimplemented ones Unsupported") {
  SUBCASE("Conv weight channels do not match the input") {
    ModelBuilder m(17);
    m.input("x", DType::F32, {1, 4, 5, 5});
    m.initializer("w", random_tensor({2, 3, 3, 3}, 1));
    m.node("Conv", {"x", "w"}, {"y"});
    m.output("y", DType::F32);
    CHECK(load_error(m) == ErrorKind::InvalidModel);
  }
  SUBCASE("Conv window larger than the padded input") {
    ModelBuilder m(17);
    m.input("x", DType::F32, {1, 1, 2, 2});
    m.initializer("w", random_tensor({1, 1, 3, 3}, 1));
    m.node("Conv", {"x", "w"}, {"y"});
    m.output("y", DType::F32);
    CHECK(load_error(m) == ErrorKind::InvalidModel);
  }
  SUBCASE("Gemm inner dimensions differ") {
    ModelBuilder m(13);
    m.input("a", DType::F32, {2, 3});
    m.input("b", DType::F32, {4, 2});
    m.node("Gemm", {"a", "b"}, {"y"});
    m.output("y", DType::F32);
    CHECK(load_error(m) == ErrorKind::InvalidModel);
  }
  SUBCASE("MaxPool pads of the wrong length") {
    ModelBuilder m(12);
    m.input("x", DType::F32, {1, 1, 4, 4});
    auto& node = m.node("MaxPool", {"x"}, {"y"});
    ModelBuilder::attr(node, "kernel_shape", std::vector<int64_t>{2, 2});
    ModelBuilder::attr(node, "pads", std::vector<int64_t>{1, 1});
    m.output("y", DType::F32);
    CHECK(load_error(m) == ErrorKind::InvalidModel);
  }
  SUBCASE("Resize given both scales and sizes") {
    ModelBuilder m(13);
    m.input("x", DType::F32, {1, 1, 4, 4});
    m.initializer<float>("scales", DType::F32, {4}, {1, 1, 2, 2});
    m.initializer<int64_t>("sizes", DType::I64, {4}, {1, 1, 8, 8});
    m.node("Resize", {"x", "", "scales", "sizes"}, {"y"});
    m.output("y", DType::F32);
    CHECK(load_error(m) == ErrorKind::InvalidModel);
  }
  SUBCASE("LpNormalization of a scalar (fuzz finding: read past the shape)") {
    ModelBuilder m(13);
    m.input("x", DType::F32, {});
    auto& node = m.node("LpNormalization", {"x"}, {"y"});
    ModelBuilder::attr(node, "axis", int64_t{0});
    m.output("y", DType::F32);
    CHECK(load_error(m) == ErrorKind::InvalidModel);
  }
  SUBCASE("Conv on int32 data") {
    ModelBuilder m(17);
    m.input("x", DType::I32, {1, 1, 4, 4});
    m.input("w", DType::I32, {1, 1, 3, 3});
    m.node("Conv", {"x", "w"}, {"y"});
    m.output("y", DType::I32);
    CHECK(load_error(m) == ErrorKind::Unsupported);
  }
}
