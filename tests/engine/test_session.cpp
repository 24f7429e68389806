// Session API behaviour: input/output metadata, dynamic shapes, concurrent runs, folding.
#include <doctest/doctest.h>

#include <thread>

#include "nibble/nibble.h"
#include "tests/model_builder.h"

using namespace nibble;
using nibble::testing::ModelBuilder;

namespace {

// y = Relu(MatMul(x, W) + b), with W and b initializers; x has a dynamic batch dimension.
ModelBuilder mlp_model(int64_t k, int64_t n) {
  ModelBuilder m(17);
  m.input("x", DType::F32, {-1, k});
  std::vector<float> w(static_cast<size_t>(k * n));
  std::vector<float> b(static_cast<size_t>(n));
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(int(i % 7) - 3) * 0.25f;
  for (size_t i = 0; i < b.size(); ++i) b[i] = float(i) * 0.5f - 1.0f;
  m.initializer("W", DType::F32, {k, n}, w);
  m.initializer("b", DType::F32, {n}, b);
  m.node("MatMul", {"x", "W"}, {"xw"});
  m.node("Add", {"xw", "b"}, {"pre"});
  m.node("Relu", {"pre"}, {"y"});
  m.output("y", DType::F32);
  return m;
}

Tensor ramp(Shape shape, float step) {
  Tensor t(DType::F32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(i % 13) * step - 1.0f;
  return t;
}

}  // namespace

TEST_CASE("inputs and outputs are described") {
  Session s = mlp_model(8, 5).session();
  REQUIRE(s.inputs().size() == 1);
  CHECK(s.inputs()[0].name == "x");
  CHECK(s.inputs()[0].dtype == DType::F32);
  CHECK(s.inputs()[0].shape == Shape{-1, 8});
  REQUIRE(s.outputs().size() == 1);
  CHECK(s.outputs()[0].name == "y");
}

TEST_CASE("a dynamic dimension is planned per shape, and fixed shapes plan at load") {
  Session s = mlp_model(8, 5).session();
  for (int64_t batch : {1, 3, 1, 7}) {
    Tensor y = s.run({{"x", ramp({batch, 8}, 0.1f)}}).at(0);
    CHECK(y.shape() == Shape{batch, 5});
  }
  SessionOptions fixed;
  fixed.input_shapes["x"] = {2, 8};
  Session f = mlp_model(8, 5).session(fixed);
  CHECK(f.inputs()[0].shape == Shape{2, 8});
  CHECK(f.outputs()[0].shape == Shape{2, 5});
  CHECK_THROWS_AS(f.run({{"x", ramp({3, 8}, 0.1f)}}), Error);
}

TEST_CASE("results are correct and computed from caller memory without copies") {
  Session s = mlp_model(3, 2).session();
  float x[2 * 3] = {1, 2, 3, -1, 0, 1};
  Tensor y = s.run({{"x", Tensor::view(DType::F32, {2, 3}, x)}}).at(0);
  // W[k][n] = ((k*2+n) % 7 - 3) * 0.25: [[-0.75,-0.5],[-0.25,0],[0.25,0.5]], b = [-1,-0.5]
  CHECK(y.data<float>()[0] == doctest::Approx(0.0f));   // max(0, -0.75-0.5+0.75-1)
  CHECK(y.data<float>()[1] == doctest::Approx(0.5f));   // max(0, -0.5+0+1.5-0.5)
  CHECK(y.data<float>()[2] == doctest::Approx(0.0f));
  CHECK(y.data<float>()[3] == doctest::Approx(0.5f));   // 0.5+0+0.5-0.5
}

TEST_CASE("one session runs from 8 threads at once with the serial results") {
  SessionOptions options;
  options.num_threads = 2;
  Session s = mlp_model(64, 48).session(options);
  std::vector<Tensor> inputs, expected;
  for (int i = 0; i < 8; ++i) {
    inputs.push_back(ramp({16, 64}, 0.01f * float(i + 1)));
    expected.push_back(s.run({{"x", inputs.back()}}).at(0));
  }
  std::vector<Tensor> got(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int rep = 0; rep < 20; ++rep) got[size_t(i)] = s.run({{"x", inputs[size_t(i)]}}).at(0);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 8; ++i) {
    REQUIRE(got[size_t(i)].numel() == expected[size_t(i)].numel());
    CHECK(std::memcmp(got[size_t(i)].raw(), expected[size_t(i)].raw(), expected[size_t(i)].nbytes()) == 0);
  }
}

TEST_CASE("constant subgraphs fold at load; Shape-driven Reshape gets a static shape") {
  ModelBuilder m(17);
  m.input("x", DType::F32, {2, 3, 4});
  m.node("Shape", {"x"}, {"s"});
  m.initializer<int64_t>("start", DType::I64, {1}, {0});
  m.initializer<int64_t>("end", DType::I64, {1}, {1});
  m.node("Slice", {"s", "start", "end"}, {"batch"});
  m.initializer<int64_t>("minus1", DType::I64, {1}, {-1});
  m.node("Concat", {"batch", "minus1"}, {"new_shape"}).add_attribute()->CopyFrom([] {
    onnx::AttributeProto a;
    a.set_name("axis");
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(0);
    return a;
  }());
  m.node("Reshape", {"x", "new_shape"}, {"y"});
  m.output("y", DType::F32);
  Session s = m.session();
  CHECK(s.outputs()[0].shape == Shape{2, 12});
  std::string plan = s.describe();
  CHECK(plan.find("Shape") == std::string::npos);  // folded away
  CHECK(plan.find("Reshape") != std::string::npos);
}
