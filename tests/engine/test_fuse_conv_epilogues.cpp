// fuse_conv_epilogues through a Session: which Conv tails become one nibble:FusedConv
// (Session::describe shows the plan), which must not (a value read elsewhere or a graph
// output), and that OptimizationLevel::All (fused) computes what None (node by node) does.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>

#include "nibble/nibble.h"
#include "tests/model_builder.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

constexpr int64_t kChannels = 5, kSize = 7;
const Shape kImage{2, kChannels, kSize, kSize};

Tensor random_tensor(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Tensor t(DType::F32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

// Inputs x and r [2,5,7,7]; conv = Conv(x, w, b) 3x3 pad 1, 5 -> 5 channels, output "conv".
ModelBuilder conv_model(int64_t opset = 17) {
  ModelBuilder m(opset);
  m.input("x", DType::F32, kImage);
  m.input("r", DType::F32, kImage);
  m.initializer("w", random_tensor({kChannels, kChannels, 3, 3}, 1));
  m.initializer("b", random_tensor({kChannels}, 2));
  auto& conv = m.node("Conv", {"x", "w", "b"}, {"conv"}, "conv");
  ModelBuilder::attr(conv, "pads", std::vector<int64_t>{1, 1, 1, 1});
  return m;
}

size_t count(const std::string& text, const std::string& word) {
  size_t n = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++n;
  return n;
}

// Runs the model at both optimization levels; returns the optimized plan's listing.
std::string check_fused_matches_reference(const ModelBuilder& m) {
  const Tensor x = random_tensor(kImage, 3), r = random_tensor(kImage, 4);
  SessionOptions fused_options, reference_options;
  reference_options.optimization = OptimizationLevel::None;
  const Session fused = m.session(fused_options), reference = m.session(reference_options);
  const NamedTensors inputs{{"x", x}, {"r", r}};
  const std::vector<Tensor> got = fused.run(inputs), want = reference.run(inputs);
  REQUIRE(got.size() == want.size());
  for (size_t o = 0; o < got.size(); ++o) {
    REQUIRE(got[o].shape() == want[o].shape());
    for (int64_t i = 0; i < got[o].numel(); ++i) {
      const float a = got[o].data<float>()[i], b = want[o].data<float>()[i];
      REQUIRE_MESSAGE(std::fabs(a - b) <= 1e-5f * (1.0f + std::fabs(b)),
                      "output " << o << " element " << i << ": fused " << a << ", reference " << b);
    }
  }
  return fused.describe();
}

}  // namespace

TEST_CASE("Conv + SiLU + residual Add fuse into one FusedConv") {
  ModelBuilder m = conv_model();
  m.node("Sigmoid", {"conv"}, {"sig"});
  m.node("Mul", {"sig", "conv"}, {"silu"});  // either operand order
  m.node("Add", {"x", "silu"}, {"y"});
  m.output("y", DType::F32);
  const std::string plan = check_fused_matches_reference(m);
  CHECK(count(plan, "FusedConv node 'conv'") == 1);
  CHECK(plan.find("fused bias + silu + residual") != std::string::npos);
  CHECK(count(plan, "\n") == 1);  // nothing else is left
}

TEST_CASE("A per-channel constant Add after Conv becomes its bias") {
  {  // Ultralytics' export: Conv without bias, Add of the bias reshaped to [1,C,1,1], SiLU
    ModelBuilder m(17);
    m.input("x", DType::F32, kImage);
    m.input("r", DType::F32, kImage);
    m.initializer("w", random_tensor({kChannels, kChannels, 1, 1}, 1));
    m.initializer("c", random_tensor({1, kChannels, 1, 1}, 2));
    m.node("Conv", {"x", "w"}, {"conv"}, "conv");
    m.node("Add", {"conv", "c"}, {"biased"});
    m.node("Sigmoid", {"biased"}, {"sig"});
    m.node("Mul", {"biased", "sig"}, {"y"});
    m.output("y", DType::F32);
    const std::string plan = check_fused_matches_reference(m);
    CHECK(count(plan, "FusedConv") == 1);
    CHECK(plan.find("fused bias + silu") != std::string::npos);
    CHECK(count(plan, "\n") == 1);
  }
  {  // on top of the Conv's own bias: a [C,1,1] constant, then a scalar one stays an Add
    ModelBuilder m = conv_model();
    m.initializer("c", random_tensor({kChannels, 1, 1}, 7));
    m.initializer("s", random_tensor({}, 8));
    m.node("Add", {"c", "conv"}, {"biased"});
    m.node("Add", {"biased", "s"}, {"y"});
    m.output("y", DType::F32);
    const std::string plan = check_fused_matches_reference(m);
    CHECK(count(plan, "FusedConv") == 1);
    CHECK(count(plan, "\n") == 2);
  }
  {  // a constant that varies along the spatial dimensions is not a bias
    ModelBuilder m = conv_model();
    m.initializer("c", random_tensor({1, 1, kSize, kSize}, 9));
    m.node("Add", {"conv", "c"}, {"y"});
    m.output("y", DType::F32);
    CHECK(count(check_fused_matches_reference(m), "FusedConv") == 0);
  }
}

TEST_CASE("Conv + Relu, + Sigmoid, + Clip fuse") {
  for (const char* op : {"Relu", "Sigmoid"}) {
    ModelBuilder m = conv_model();
    m.node(op, {"conv"}, {"y"});
    m.output("y", DType::F32);
    const std::string plan = check_fused_matches_reference(m);
    CHECK(count(plan, "FusedConv") == 1);
    CHECK(count(plan, "\n") == 1);
  }
  ModelBuilder clip11 = conv_model();
  clip11.initializer("lo", DType::F32, {}, std::vector<float>{-0.5f});
  clip11.initializer("hi", DType::F32, {}, std::vector<float>{0.75f});
  clip11.node("Clip", {"conv", "lo", "hi"}, {"y"});
  clip11.output("y", DType::F32);
  CHECK(count(check_fused_matches_reference(clip11), "FusedConv") == 1);

  ModelBuilder clip6 = conv_model(6);  // bounds as attributes, only max given
  auto& clip = clip6.node("Clip", {"conv"}, {"y"});
  ModelBuilder::attr(clip, "max", 0.25f);
  clip6.output("y", DType::F32);
  CHECK(count(check_fused_matches_reference(clip6), "FusedConv") == 1);
}

TEST_CASE("Conv + residual Add + Relu fuses with the residual first") {
  ModelBuilder m = conv_model();
  m.node("Add", {"conv", "r"}, {"sum"});
  m.node("Relu", {"sum"}, {"y"});
  m.output("y", DType::F32);
  const std::string plan = check_fused_matches_reference(m);
  CHECK(count(plan, "FusedConv") == 1);
  CHECK(plan.find("fused bias + residual + relu") != std::string::npos);
}

TEST_CASE("Conv tails read elsewhere or exported are left alone") {
  {  // the conv output is also a graph output
    ModelBuilder m = conv_model();
    m.node("Relu", {"conv"}, {"y"});
    m.output("y", DType::F32);
    m.output("conv", DType::F32);
    CHECK(count(check_fused_matches_reference(m), "FusedConv") == 0);
  }
  {  // the Sigmoid of a SiLU is read by another node too
    ModelBuilder m = conv_model();
    m.node("Sigmoid", {"conv"}, {"sig"});
    m.node("Mul", {"conv", "sig"}, {"silu"});
    m.node("Add", {"silu", "sig"}, {"y"});
    m.output("y", DType::F32);
    CHECK(count(check_fused_matches_reference(m), "FusedConv") == 0);
  }
  {  // an Add of a run-time value that broadcasts is neither a residual nor a bias
    ModelBuilder m = conv_model();
    m.node("ReduceMax", {"r"}, {"c"});
    m.node("Add", {"conv", "c"}, {"y"});
    m.output("y", DType::F32);
    CHECK(count(check_fused_matches_reference(m), "FusedConv") == 0);
  }
  {  // Clip with a bound computed at run time
    ModelBuilder m = conv_model();
    m.node("ReduceMax", {"r"}, {"hi"});
    m.node("Clip", {"conv", "", "hi"}, {"y"});
    m.output("y", DType::F32);
    CHECK(count(check_fused_matches_reference(m), "FusedConv") == 0);
  }
}

TEST_CASE("The sum of two Conv outputs fuses into the first Conv only") {
  ModelBuilder m = conv_model();
  m.initializer("w2", random_tensor({kChannels, kChannels, 1, 1}, 6));
  m.node("Conv", {"r", "w2"}, {"conv2"}, "conv2");
  m.node("Add", {"conv", "conv2"}, {"y"});
  m.output("y", DType::F32);
  const std::string plan = check_fused_matches_reference(m);
  CHECK(count(plan, "FusedConv") == 1);
  CHECK(count(plan, "\n") == 2);  // the second Conv stays and feeds the residual
}
