// The memory plan of optimized sessions (engine/plan/plan.h): arena reuse, Concat written in
// place by its producers, Split and Reshape as views, and packed weights released. Outputs must
// match the reference path (every tensor allocated on its own) bit for bit.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>

#include "engine/plan/plan.h"
#include "frontend/onnx/onnx_loader.h"
#include "nibble/nibble.h"
#include "tests/model_builder.h"

using namespace nibble;
using nibble::testing::ModelBuilder;

namespace {

// Branches that split, rejoin and pool, the way YOLO's C2f / SPPF blocks do:
//   a = Relu(x); s1, s2 = Split(a, channels); c = s2 * s2 + s1; p = MaxPool5x5(c)
//   cat = Concat(s1, s2, c, p); out = Relu(Concat(cat, x)); flat = Sigmoid(Reshape(cat))
//   side = Concat(c, c) along H (a strided concat with a repeated input: copied).
ModelBuilder branchy_model(bool split_output_is_graph_output) {
  ModelBuilder m(17);
  m.input("x", DType::F32, {1, 8, 6, 6});
  m.initializer<int64_t>("halves", DType::I64, {2}, {4, 4});
  m.initializer<int64_t>("flat_shape", DType::I64, {3}, {1, 16, 36});
  m.node("Relu", {"x"}, {"a"});
  ModelBuilder::attr(m.node("Split", {"a", "halves"}, {"s1", "s2"}), "axis", int64_t{1});
  m.node("Mul", {"s2", "s2"}, {"b"});
  m.node("Add", {"b", "s1"}, {"c"});
  auto& pool = m.node("MaxPool", {"c"}, {"p"});
  ModelBuilder::attr(pool, "kernel_shape", std::vector<int64_t>{5, 5});
  ModelBuilder::attr(pool, "pads", std::vector<int64_t>{2, 2, 2, 2});
  ModelBuilder::attr(m.node("Concat", {"s1", "s2", "c", "p"}, {"cat"}), "axis", int64_t{1});
  ModelBuilder::attr(m.node("Concat", {"cat", "x"}, {"outer"}), "axis", int64_t{1});
  m.node("Relu", {"outer"}, {"out"});
  m.node("Reshape", {"cat", "flat_shape"}, {"r"});
  m.node("Sigmoid", {"r"}, {"flat"});
  ModelBuilder::attr(m.node("Concat", {"c", "c"}, {"side"}), "axis", int64_t{2});
  m.output("out", DType::F32);
  m.output("flat", DType::F32);
  m.output("side", DType::F32);
  if (split_output_is_graph_output) m.output("s1", DType::F32);
  return m;
}

Tensor input_tensor(float phase) {
  Tensor t(DType::F32, {1, 8, 6, 6});
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = float((i * 7) % 23) * 0.25f - 2.5f + phase;
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

std::shared_ptr<const Plan> plan_of(const ModelBuilder& m, const Shape& x_shape = {1, 8, 6, 6}) {
  const std::string bytes = m.bytes();
  const Graph graph = onnx_frontend::load_model(bytes.data(), bytes.size(), {});
  ThreadPool pool(1);
  return build_plan(graph, {{"x", x_shape}}, {}, /*optimize=*/true, size_t{1} << 30, pool);
}

const PlanStep& step_making(const Plan& plan, const std::string& value) {
  const ValueId v = plan.graph.find_value(value);
  for (const PlanStep& step : plan.steps) {
    const auto& outputs = plan.graph.nodes[step.node].outputs;
    if (std::find(outputs.begin(), outputs.end(), v) != outputs.end()) return step;
  }
  FAIL("no step makes " << value);
  return plan.steps.front();
}

}  // namespace

TEST_CASE("an optimized plan gives the reference path's outputs, run after run, on any threads") {
  for (bool split_output : {false, true}) {
    CAPTURE(split_output);
    SessionOptions reference_options;
    reference_options.optimization = OptimizationLevel::None;
    reference_options.num_threads = 1;
    const Session reference = branchy_model(split_output).session(reference_options);
    for (int threads : {1, 3}) {
      CAPTURE(threads);
      SessionOptions options;
      options.num_threads = threads;
      const Session optimized = branchy_model(split_output).session(options);
      // Several runs: later ones reuse the arena, whose bytes still hold the previous run's.
      for (float phase : {0.0f, 1.5f, -0.75f}) {
        CAPTURE(phase);
        const Tensor x = input_tensor(phase);
        const std::vector<Tensor> want = reference.run({{"x", x}});
        const std::vector<Tensor> got = optimized.run({{"x", x}});
        REQUIRE(got.size() == want.size());
        for (size_t i = 0; i < got.size(); ++i) {
          CAPTURE(i);
          CHECK(same_bytes(got[i], want[i]));
        }
      }
    }
  }
}

TEST_CASE("Split, Reshape and channel Concat copy nothing; the arena reuses dead buffers") {
  const auto plan = plan_of(branchy_model(false));
  CHECK(step_making(*plan, "s1").elided);
  CHECK(step_making(*plan, "r").elided);
  CHECK(step_making(*plan, "cat").elided);  // s1, s2 (views of a), c and p write in place
  // `outer` takes x, a graph input, by copy; `cat` itself sits in place at its start.
  CHECK_FALSE(step_making(*plan, "outer").elided);
  CHECK_FALSE(step_making(*plan, "side").elided);  // along H: a strided copy

  const Graph& g = plan->graph;
  auto offset_of = [&](const std::string& name) {
    const ValueId v = g.find_value(name);
    REQUIRE(plan->storage[size_t(v)].kind == ValueStorage::Kind::Arena);
    return plan->storage[size_t(v)].offset;
  };
  const size_t plane = 6 * 6 * sizeof(float);
  CHECK(offset_of("s1") == offset_of("outer"));
  CHECK(offset_of("s2") == offset_of("outer") + 4 * plane);
  CHECK(offset_of("c") == offset_of("outer") + 8 * plane);
  CHECK(offset_of("p") == offset_of("outer") + 12 * plane);
  CHECK(offset_of("r") == offset_of("cat"));

  // Every intermediate alive at once would need this much; lifetimes let buffers share bytes.
  size_t separate = 0;
  for (size_t v = 0; v < g.values.size(); ++v)
    if (plan->storage[v].kind == ValueStorage::Kind::Arena && g.values[v].producer >= 0 &&
        g.nodes[size_t(g.values[v].producer)].op_type != "Split" &&
        g.nodes[size_t(g.values[v].producer)].op_type != "Reshape")
      separate += size_t(shape_numel(*g.values[v].shape)) * dtype_size(g.values[v].dtype);
  CHECK(plan->arenas.bytes() < separate);
}

TEST_CASE("a chain of ops lives in two buffers") {
  ModelBuilder m(17);
  m.input("x", DType::F32, {1, 8, 6, 6});
  std::string previous = "x";
  for (int i = 0; i < 6; ++i) {
    const std::string next = i == 5 ? "y" : "t" + std::to_string(i);
    m.node(i % 2 ? "Relu" : "Sigmoid", {previous}, {next});
    previous = next;
  }
  m.output("y", DType::F32);
  const auto plan = plan_of(m);
  CHECK(plan->arenas.bytes() == 2 * 8 * 6 * 6 * sizeof(float));  // one step's input and output
}

TEST_CASE("an op that may leave elements unwritten gets a zeroed output from the arena") {
  // Pad writes every element itself; here it stands for any op outside the known-complete list.
  ModelBuilder m(17);
  m.input("x", DType::F32, {1, 8, 6, 6});
  m.initializer<int64_t>("pads", DType::I64, {8}, {0, 0, 1, 1, 0, 0, 1, 1});
  m.node("Relu", {"x"}, {"a"});
  m.node("Pad", {"a", "pads"}, {"y"});
  m.node("Relu", {"y"}, {"z"});
  m.output("z", DType::F32);
  const auto plan = plan_of(m);
  CHECK_FALSE(step_making(*plan, "a").zero_outputs);
  CHECK(step_making(*plan, "y").zero_outputs);
}

TEST_CASE("weights packed at load are not kept a second time") {
  ModelBuilder m(17);
  m.input("x", DType::F32, {1, 4, 5, 5});
  std::vector<float> w(8 * 4 * 3 * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(int(i % 5) - 2) * 0.125f;
  m.initializer("W", DType::F32, {8, 4, 3, 3}, w);
  m.node("Conv", {"x", "W"}, {"y"});
  m.output("y", DType::F32);

  const auto plan = plan_of(m, {1, 4, 5, 5});
  const Value& weight = plan->graph.values[size_t(plan->graph.find_value("W"))];
  REQUIRE(weight.constant);
  CHECK(weight.constant->raw() == nullptr);
  CHECK(weight.constant->shape() == Shape{8, 4, 3, 3});

  // The session drops its own copy too, and still runs; other shapes can no longer be planned.
  SessionOptions reference_options;
  reference_options.optimization = OptimizationLevel::None;
  const Session optimized = m.session();
  const Session reference = m.session(reference_options);
  Tensor x(DType::F32, {1, 4, 5, 5});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float(i % 9) - 4.0f;
  const Tensor got = optimized.run({{"x", x}}).at(0);
  const Tensor want = reference.run({{"x", x}}).at(0);
  REQUIRE(got.shape() == want.shape());
  for (int64_t i = 0; i < got.numel(); ++i)
    CHECK(got.data<float>()[i] == doctest::Approx(want.data<float>()[i]).epsilon(1e-5));
  CHECK(optimized.describe().find("Conv") != std::string::npos);
  CHECK_THROWS_AS(optimized.describe({{"x", {1, 4, 7, 7}}}), Error);
}
