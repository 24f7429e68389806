// fuse_qdq_chains: a QConv whose result is only quantized writes the 8-bit tensor itself, and
// data-movement ops between quantized layers run on the 8-bit values. The rewrite must not
// change a single output byte: every positive case is compared bit for bit with the same model
// in which the quantized activation is also a graph output (which keeps QConv in float and the
// standalone QuantizeLinear, since a graph output must keep its node), and the rounding case with
// the graph run as written (OptimizationLevel::None).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "nibble/nibble.h"
#include "tests/model_builder.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

constexpr int64_t kC = 8, kH = 12, kW = 10;

Tensor random_floats(const Shape& shape, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t(DType::F32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

// QDQ graphs of quantized 3x3 convolutions, Brevitas/ORT style.
class QdqModel {
 public:
  ModelBuilder m{13};

  QdqModel() { m.input("x", DType::F32, {1, kC, kH, kW}); }

  // Initializers `tag`_scale and `tag`_zp: a per-tensor int8 (or uint8) quantization.
  void params(const std::string& tag, float scale, int zero_point, bool is_unsigned = false) {
    m.initializer(tag + "_scale", Tensor::scalar<float>(DType::F32, scale));
    if (is_unsigned)
      m.initializer(tag + "_zp", Tensor::scalar<uint8_t>(DType::U8, uint8_t(zero_point)));
    else
      m.initializer(tag + "_zp", Tensor::scalar<int8_t>(DType::I8, int8_t(zero_point)));
  }
  std::string quantize(const std::string& x, const std::string& tag, const std::string& name) {
    m.node("QuantizeLinear", {x, tag + "_scale", tag + "_zp"}, {name}, name + "_node");
    return name;
  }
  // DQ(q) (when tag is not empty) -> Conv(DQ(w_int8)) + bias -> SiLU; returns the float result.
  std::string conv(const std::string& q, const std::string& tag, int64_t in_channels,
                   int64_t out_channels, const std::string& name, int64_t group = 1,
                   uint32_t seed = 1) {
    std::string x = q;
    if (!tag.empty()) {
      m.node("DequantizeLinear", {q, tag + "_scale", tag + "_zp"}, {name + "_x"}, name + "_dqx");
      x = name + "_x";
    }
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> dist(-127, 127);
    std::vector<int8_t> w(size_t(out_channels * in_channels / group * 9));
    for (auto& v : w) v = int8_t(dist(rng));
    m.initializer(name + "_w_int", DType::I8, {out_channels, in_channels / group, 3, 3}, w);
    std::vector<float> scales;
    for (int64_t i = 0; i < out_channels; ++i) scales.push_back(0.002f + 0.0003f * float(i));
    m.initializer(name + "_w_scale", DType::F32, {out_channels}, scales);
    m.initializer<int8_t>(name + "_w_zp", DType::I8, {out_channels},
                          std::vector<int8_t>(size_t(out_channels), 0));
    auto& dq = m.node("DequantizeLinear", {name + "_w_int", name + "_w_scale", name + "_w_zp"},
                      {name + "_w"}, name + "_dqw");
    ModelBuilder::attr(dq, "axis", int64_t{0});
    m.initializer(name + "_b", random_floats({out_channels}, seed + 100, -0.5f, 0.5f));
    auto& c = m.node("Conv", {x, name + "_w", name + "_b"}, {name + "_conv"}, name);
    ModelBuilder::attr(c, "pads", std::vector<int64_t>{1, 1, 1, 1});
    ModelBuilder::attr(c, "group", group);
    m.node("Sigmoid", {name + "_conv"}, {name + "_sig"}, name + "_sigmoid");
    m.node("Mul", {name + "_conv", name + "_sig"}, {name + "_out"}, name + "_silu");
    return name + "_out";
  }
};

SessionOptions options(OptimizationLevel level = OptimizationLevel::All) {
  SessionOptions o;
  o.optimization = level;
  o.num_threads = 2;
  return o;
}

// Lines of the planned graph (Session::describe: "<op> node '<name>' -> ...") whose op is `op`.
int count_op(const std::string& plan, const std::string& op) {
  std::istringstream lines(plan);
  int count = 0;
  for (std::string line; std::getline(lines, line);) count += line.rfind(op + " node '", 0) == 0;
  return count;
}

// QConv lines that quantize their output (the kernel text ends in "-> s8" / "-> u8").
int count_8bit_outputs(const std::string& plan) {
  std::istringstream lines(plan);
  int count = 0;
  for (std::string line; std::getline(lines, line);)
    count += line.find("-> s8,") != std::string::npos || line.find("-> u8,") != std::string::npos;
  return count;
}

// The planned line of node `name`.
std::string plan_line(const std::string& plan, const std::string& name) {
  std::istringstream lines(plan);
  for (std::string line; std::getline(lines, line);)
    if (line.find(" node '" + name + "'") != std::string::npos) return line;
  return "";
}

std::vector<Tensor> run(const ModelBuilder& m, OptimizationLevel level = OptimizationLevel::All) {
  const Tensor x = random_floats({1, kC, kH, kW}, 5, -2.0f, 2.5f);
  return m.session(options(level)).run({{"x", x}});
}

void check_identical(const Tensor& got, const Tensor& want) {
  REQUIRE(got.dtype() == want.dtype());
  REQUIRE(got.shape() == want.shape());
  CHECK(std::memcmp(got.raw(), want.raw(), got.nbytes()) == 0);
}

// Builds the model twice — as given, and with `exposed` (a quantized activation) also a graph
// output, which keeps the standalone QuantizeLinear — and checks the outputs match bit for bit.
template <typename Build>
std::string check_exact(const Build& build, const std::string& exposed, DType exposed_type,
                        const Shape& exposed_shape) {
  QdqModel plain, reference;
  build(plain);
  build(reference);
  reference.m.output(exposed, exposed_type, exposed_shape);
  const std::string plan = plain.m.session(options()).describe();
  const std::string reference_plan = reference.m.session(options()).describe();
  INFO(plan);
  INFO(reference_plan);
  const std::vector<Tensor> got = run(plain.m), want = run(reference.m);
  CHECK(count_8bit_outputs(reference_plan) < count_8bit_outputs(plan));
  for (size_t i = 0; i < got.size(); ++i) check_identical(got[i], want[i]);
  return plan;
}

const Shape kOut{1, 16, kH, kW};

}  // namespace

TEST_CASE("QConv writes int8 / uint8 itself when its only reader is a QuantizeLinear") {
  for (bool is_unsigned : {false, true}) {
    CAPTURE(is_unsigned);
    auto build = [&](QdqModel& q) {
      q.params("in", 0.02f, -3);
      q.params("a", 0.0371f, is_unsigned ? 121 : -5, is_unsigned);
      const std::string a = q.conv(q.quantize("x", "in", "xq"), "in", kC, 16, "conv_a");
      const std::string b = q.conv(q.quantize(a, "a", "aq"), "a", 16, 16, "conv_b", 1, 2);
      q.m.node("Identity", {b}, {"y"}, "out");
      q.m.output("y", DType::F32, kOut);
    };
    const std::string plan = check_exact(build, "aq", is_unsigned ? DType::U8 : DType::I8, kOut);
    INFO(plan);
    CHECK(count_op(plan, "QuantizeLinear") == 1);  // the graph input's
    CHECK(plan_line(plan, "conv_a").find(is_unsigned ? "-> u8," : "-> s8,") != std::string::npos);
    CHECK(count_8bit_outputs(plan_line(plan, "conv_b")) == 0);  // a float graph output
  }
}

TEST_CASE("Depthwise and weight-only QConv quantize their output too") {
  auto build = [](QdqModel& q) {
    q.params("a", 0.043f, 7);
    q.params("d", 0.029f, -1);
    q.params("e", 0.033f, 2);
    // Weight-only (float input) -> int8 -> depthwise -> int8 -> conv, plus a weight-only
    // depthwise -> int8 -> conv branch.
    const std::string a = q.conv("x", "", kC, 16, "conv_a16");
    const std::string d = q.conv(q.quantize(a, "a", "aq"), "a", 16, 16, "conv_dw", 16, 3);
    const std::string b = q.conv(q.quantize(d, "d", "dq"), "d", 16, 16, "conv_b", 1, 4);
    const std::string e = q.conv("x", "", kC, kC, "conv_a16_dw", kC, 5);
    const std::string c = q.conv(q.quantize(e, "e", "eq"), "e", kC, 16, "conv_c", 1, 6);
    q.m.node("Add", {b, c}, {"y"}, "out");
    q.m.output("y", DType::F32, kOut);
  };
  check_exact(build, "aq", DType::I8, kOut);
  check_exact(build, "dq", DType::I8, kOut);
  check_exact(build, "eq", DType::I8, {1, kC, kH, kW});
  QdqModel q;
  build(q);
  const std::string plan = q.m.session(options()).describe();
  INFO(plan);
  CHECK(count_op(plan, "QuantizeLinear") == 0);
  CHECK(plan_line(plan, "conv_a16").find("w8a16") != std::string::npos);
  CHECK(plan_line(plan, "conv_a16_dw").find("dw_w8a16") != std::string::npos);
  CHECK(plan_line(plan, "conv_dw").find("qconv_dw_w8a8") != std::string::npos);
  CHECK(count_8bit_outputs(plan) == 3);
}

TEST_CASE("QConv's quantized output rounds ties like QuantizeLinear (division, half to even)") {
  // Bias-only convolutions (zero weights) put chosen floats y straight into the quantization:
  // values whose y / scale is exactly k + 0.5 while y * (1 / scale) is not, where multiplying
  // by the reciprocal would round the other way.
  const float scale = 0.0371f;
  std::vector<float> ties;
  for (int k = -120; k < 120 && ties.size() < 16; ++k) {
    const float y = (float(k) + 0.5f) * scale;
    if (y / scale == float(k) + 0.5f && std::nearbyint(y * (1.0f / scale)) != std::nearbyint(y / scale))
      ties.push_back(y);
  }
  REQUIRE(ties.size() >= 4);
  const int64_t channels = int64_t(ties.size());
  ModelBuilder m(13);
  m.input("x", DType::F32, {1, kC, kH, kW});
  m.initializer("in_scale", Tensor::scalar<float>(DType::F32, 0.02f));
  m.initializer("in_zp", Tensor::scalar<int8_t>(DType::I8, 0));
  m.initializer("y_scale", Tensor::scalar<float>(DType::F32, scale));
  m.initializer("y_zp", Tensor::scalar<int8_t>(DType::I8, 0));
  m.initializer<int8_t>("w_int", DType::I8, {channels, kC, 1, 1},
                        std::vector<int8_t>(size_t(channels * kC), 0));
  m.initializer("w_scale", Tensor::scalar<float>(DType::F32, 0.01f));
  m.initializer("w_zp", Tensor::scalar<int8_t>(DType::I8, 0));
  m.initializer("bias", DType::F32, {channels}, ties);
  m.node("QuantizeLinear", {"x", "in_scale", "in_zp"}, {"xq"}, "q_in");
  m.node("DequantizeLinear", {"xq", "in_scale", "in_zp"}, {"xd"}, "dq_in");
  m.node("DequantizeLinear", {"w_int", "w_scale", "w_zp"}, {"w"}, "dq_w");
  m.node("Conv", {"xd", "w", "bias"}, {"c"}, "bias_conv");
  m.node("QuantizeLinear", {"c", "y_scale", "y_zp"}, {"cq"}, "q_out");
  m.node("DequantizeLinear", {"cq", "y_scale", "y_zp"}, {"y"}, "dq_out");
  m.output("y", DType::F32, {1, channels, kH, kW});
  const std::string plan = m.session(options()).describe();
  INFO(plan);
  CHECK(plan_line(plan, "bias_conv").find("-> s8,") != std::string::npos);
  check_identical(run(m)[0], run(m, OptimizationLevel::None)[0]);
}

TEST_CASE("Several QuantizeLinear readers with the same parameters share the QConv's int8 output") {
  auto build = [](QdqModel& q) {
    q.params("in", 0.02f, -3);
    q.params("a", 0.0371f, -5);
    q.params("a2", 0.0371f, -5);  // equal values in other initializers
    const std::string a = q.conv(q.quantize("x", "in", "xq"), "in", kC, 16, "conv_a");
    const std::string b = q.conv(q.quantize(a, "a", "aq"), "a", 16, 16, "conv_b", 1, 2);
    const std::string c = q.conv(q.quantize(a, "a2", "aq2"), "a2", 16, 16, "conv_c", 1, 3);
    q.m.node("Add", {b, c}, {"y"}, "out");
    q.m.output("y", DType::F32, kOut);
  };
  const std::string plan = check_exact(build, "aq", DType::I8, kOut);
  INFO(plan);
  CHECK(count_op(plan, "QuantizeLinear") == 1);
  CHECK(plan_line(plan, "conv_a").find("-> s8,") != std::string::npos);
}

TEST_CASE("No rewrite when readers quantize differently or read the float value") {
  SUBCASE("two scales") {
    QdqModel q;
    q.params("in", 0.02f, -3);
    q.params("a", 0.0371f, -5);
    q.params("a2", 0.0372f, -5);
    const std::string a = q.conv(q.quantize("x", "in", "xq"), "in", kC, 16, "conv_a");
    const std::string b = q.conv(q.quantize(a, "a", "aq"), "a", 16, 16, "conv_b", 1, 2);
    const std::string c = q.conv(q.quantize(a, "a2", "aq2"), "a2", 16, 16, "conv_c", 1, 3);
    q.m.node("Add", {b, c}, {"y"}, "out");
    q.m.output("y", DType::F32, kOut);
    const std::string plan = q.m.session(options()).describe();
    INFO(plan);
    CHECK(count_op(plan, "QuantizeLinear") == 3);
    CHECK(count_8bit_outputs(plan) == 0);
  }
  SUBCASE("a residual Add reads the float result") {
    QdqModel q;
    q.params("in", 0.02f, -3);
    q.params("a", 0.0371f, -5);
    const std::string a = q.conv(q.quantize("x", "in", "xq"), "in", kC, 16, "conv_a");
    const std::string b = q.conv(q.quantize(a, "a", "aq"), "a", 16, 16, "conv_b", 1, 2);
    q.m.node("Add", {a, b}, {"y"}, "residual");
    q.m.output("y", DType::F32, kOut);
    const std::string plan = q.m.session(options()).describe();
    INFO(plan);
    CHECK(count_op(plan, "QuantizeLinear") == 2);
    CHECK(count_8bit_outputs(plan) == 0);
  }
  SUBCASE("MaxPool stays in float") {
    QdqModel q;
    q.params("in", 0.02f, -3);
    q.params("a", 0.0371f, -5);
    const std::string a = q.conv(q.quantize("x", "in", "xq"), "in", kC, 16, "conv_a");
    auto& pool = q.m.node("MaxPool", {a}, {"pooled"}, "pool");
    ModelBuilder::attr(pool, "kernel_shape", std::vector<int64_t>{3, 3});
    ModelBuilder::attr(pool, "pads", std::vector<int64_t>{1, 1, 1, 1});
    const std::string b = q.conv(q.quantize("pooled", "a", "aq"), "a", 16, 16, "conv_b", 1, 2);
    q.m.node("Identity", {b}, {"y"}, "out");
    q.m.output("y", DType::F32, kOut);
    const std::string plan = q.m.session(options()).describe();
    INFO(plan);
    CHECK(count_op(plan, "QuantizeLinear") == 2);
    CHECK(count_8bit_outputs(plan) == 0);
  }
}

TEST_CASE("QuantizeLinear moves across Concat into the producers, or onto inputs also read as float") {
  for (bool residual : {false, true}) {
    CAPTURE(residual);
    auto build = [&](QdqModel& q) {
      q.params("in", 0.02f, -3);
      q.params("cat", 0.051f, 4);
      const std::string xq = q.quantize("x", "in", "xq");
      const std::string a = q.conv(xq, "in", kC, 16, "conv_a");
      const std::string b = q.conv(xq, "in", kC, 8, "conv_b", 1, 2);
      auto& cat = q.m.node("Concat", {a, b}, {"cat"}, "concat");
      ModelBuilder::attr(cat, "axis", int64_t{1});
      const std::string c = q.conv(q.quantize("cat", "cat", "catq"), "cat", 24, 16, "conv_c", 1, 3);
      if (residual) {
        q.m.node("Add", {a, c}, {"y"}, "out");  // conv_a's float result is read too
      } else {
        q.m.node("Identity", {c}, {"y"}, "out");
      }
      q.m.output("y", DType::F32, kOut);
    };
    const std::string plan = check_exact(build, "catq", DType::I8, {1, 24, kH, kW});
    INFO(plan);
    CHECK(plan_line(plan, "conv_b").find("-> s8,") != std::string::npos);
    if (residual) {
      CHECK(count_8bit_outputs(plan_line(plan, "conv_a")) == 0);
      CHECK(count_op(plan, "QuantizeLinear") == 2);  // the input's, and conv_a's slice
    } else {
      CHECK(plan_line(plan, "conv_a").find("-> s8,") != std::string::npos);
      CHECK(count_op(plan, "QuantizeLinear") == 1);
    }
  }
}

TEST_CASE("QuantizeLinear moves across Split, Slice, nearest Resize, Transpose and Reshape") {
  auto build = [](QdqModel& q) {
    q.params("in", 0.02f, -3);
    q.params("q", 0.047f, -2);
    const std::string a = q.conv(q.quantize("x", "in", "xq"), "in", kC, 16, "conv_a");
    // Split the channels in halves and swap them; upsample; transpose H and W; flatten back.
    q.m.initializer<int64_t>("halves", DType::I64, {2}, std::vector<int64_t>{8, 8});
    auto& split = q.m.node("Split", {a, "halves"}, {"s0", "s1"}, "split");
    ModelBuilder::attr(split, "axis", int64_t{1});
    auto& cat = q.m.node("Concat", {"s1", "s0"}, {"swapped"}, "concat");
    ModelBuilder::attr(cat, "axis", int64_t{1});
    q.m.initializer("no_roi", DType::F32, {0}, std::vector<float>{});
    q.m.initializer("scales", DType::F32, {4}, std::vector<float>{1, 1, 2, 2});
    q.m.node("Resize", {"swapped", "no_roi", "scales"}, {"up"}, "upsample");
    auto& t = q.m.node("Transpose", {"up"}, {"t"}, "transpose");
    ModelBuilder::attr(t, "perm", std::vector<int64_t>{0, 1, 3, 2});
    q.m.initializer<int64_t>("starts", DType::I64, {1}, std::vector<int64_t>{1});
    q.m.initializer<int64_t>("ends", DType::I64, {1}, std::vector<int64_t>{1 + kW});
    q.m.initializer<int64_t>("axes", DType::I64, {1}, std::vector<int64_t>{2});
    q.m.node("Slice", {"t", "starts", "ends", "axes"}, {"sliced"}, "slice");
    q.m.initializer<int64_t>("shape", DType::I64, {4}, std::vector<int64_t>{1, 16, kW, 2 * kH});
    q.m.node("Reshape", {"sliced", "shape"}, {"r"}, "reshape");
    const std::string b = q.conv(q.quantize("r", "q", "rq"), "q", 16, 16, "conv_b", 1, 2);
    q.m.node("Identity", {b}, {"y"}, "out");
    q.m.output("y", DType::F32, {1, 16, kW, 2 * kH});
  };
  const std::string plan = check_exact(build, "rq", DType::I8, {1, 16, kW, 2 * kH});
  INFO(plan);
  CHECK(count_op(plan, "QuantizeLinear") == 1);
  CHECK(plan_line(plan, "conv_a").find("-> s8,") != std::string::npos);
}
