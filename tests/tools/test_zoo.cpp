// `nibble zoo`: the YOLOv10 graphs it writes match Ultralytics' exports and run with realistic
// activations.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "nibble/nibble.h"
#include "nibble_onnx/onnx.pb.h"
#include "tests/asset_paths.h"
#include "tools/nibble/zoo/yolov10.h"

namespace {

using nibble::zoo::Yolov10Head;
using nibble::zoo::Yolov10Options;
using nibble::zoo::ZooModel;
using Histogram = std::map<std::string, int>;

Histogram op_histogram(const onnx::GraphProto& graph) {
  Histogram h;
  for (const onnx::NodeProto& node : graph.node()) ++h[node.op_type()];
  return h;
}

// Operators of the real yolov10n-640-fp32.onnx, its Conv biases folded back into the Convs.
const Histogram kYolov10nOps = {
    {"Add", 11},     {"Cast", 1},    {"Concat", 19},   {"Conv", 83},     {"Div", 1},
    {"Flatten", 2},  {"Gather", 1},  {"GatherElements", 2},              {"MatMul", 2},
    {"MaxPool", 3},  {"Mod", 1},     {"Mul", 71},      {"ReduceMax", 1}, {"Reshape", 11},
    {"Resize", 2},   {"Sigmoid", 70}, {"Slice", 2},    {"Softmax", 2},   {"Split", 11},
    {"Sub", 1},      {"Tile", 2},    {"TopK", 2},      {"Transpose", 4}, {"Unsqueeze", 3}};

// The shared model came out of ONNX Runtime's quantizer: each Conv's bias was split off as
// Reshape(bias) + Add. Counting those pairs as the Conv's bias gives the exported histogram.
Histogram histogram_with_conv_bias_folded(const onnx::GraphProto& graph) {
  std::set<std::string> initializers;
  for (const onnx::TensorProto& t : graph.initializer()) initializers.insert(t.name());
  std::map<std::string, std::string> producer_op;
  std::set<std::string> bias_reshapes;
  for (const onnx::NodeProto& node : graph.node()) {
    for (const std::string& out : node.output()) producer_op[out] = node.op_type();
    if (node.op_type() == "Reshape" && initializers.count(node.input(0)))
      bias_reshapes.insert(node.output(0));
  }
  Histogram h = op_histogram(graph);
  for (const onnx::NodeProto& node : graph.node())
    if (node.op_type() == "Add" && node.input_size() == 2 &&
        producer_op[node.input(0)] == "Conv" && bias_reshapes.count(node.input(1))) {
      --h["Add"];
      --h["Reshape"];
    }
  return h;
}

nibble::Session load(const ZooModel& model) {
  const std::string bytes = model.model.SerializeAsString();
  return nibble::Session::load_bytes(bytes.data(), bytes.size());
}

nibble::Tensor uniform_image(int64_t size) {
  nibble::Tensor image(nibble::DType::F32, {1, 3, size, size});
  uint32_t state = 12345;
  for (int64_t i = 0; i < image.numel(); ++i) {
    state = state * 1664525u + 1013904223u;
    image.data<float>()[i] = float(state >> 8) / float(1 << 24);
  }
  return image;
}

}  // namespace

TEST_CASE("zoo: yolov10n has the operators and parameters of the real export") {
  const ZooModel model = nibble::zoo::build_yolov10({});
  CHECK(op_histogram(model.model.graph()) == kYolov10nOps);
  CHECK(model.parameters == 2299264);  // the real yolov10n's Conv weights and biases
  CHECK(model.flops == doctest::Approx(6.757e9).epsilon(0.001));
  CHECK(model.model.opset_import(0).version() == 17);

  const std::string real = nibble::testing::asset("models/yolov10n-640-fp32.onnx");
  if (real.empty()) {
    MESSAGE("SKIPPED comparison with the real model: models/yolov10n-640-fp32.onnx is absent");
    return;
  }
  onnx::ModelProto proto;
  std::ifstream file(real, std::ios::binary);
  REQUIRE(proto.ParseFromIstream(&file));
  CHECK(histogram_with_conv_bias_folded(proto.graph()) == op_histogram(model.model.graph()));
}

TEST_CASE("zoo: every scale is within 2% of the published parameters and GFLOPs") {
  struct Published {
    const char* scale;
    double params_m, gflops;
  };
  for (const Published& p : {Published{"s", 7.2, 21.6}, Published{"m", 15.4, 59.1},
                             Published{"b", 19.1, 92.0}, Published{"l", 24.4, 120.3},
                             Published{"x", 29.5, 160.4}}) {
    CAPTURE(p.scale);
    Yolov10Options options;
    options.scale = p.scale;
    options.calibrate = false;  // counts only
    const ZooModel model = nibble::zoo::build_yolov10(options);
    CHECK(double(model.parameters) / 1e6 == doctest::Approx(p.params_m).epsilon(0.02));
    CHECK(model.flops / 1e9 == doctest::Approx(p.gflops).epsilon(0.02));
  }
}

TEST_CASE("zoo: outputs of both heads have the declared shapes and realistic values") {
  Yolov10Options options;
  options.image_size = 160;  // anchors 20x20 + 10x10 + 5x5

  SUBCASE("end to end: [1,300,6] boxes, scores in (0,1), class ids") {
    const nibble::Session session = load(nibble::zoo::build_yolov10(options));
    REQUIRE(session.outputs().size() == 1);
    CHECK(session.outputs()[0].shape == nibble::Shape{1, 300, 6});
    const nibble::Tensor out = session.run({{"images", uniform_image(160)}})[0];
    REQUIRE(out.shape() == nibble::Shape{1, 300, 6});
    const float* rows = out.data<float>();
    for (int64_t r = 0; r < 300; ++r) {
      const float* row = rows + r * 6;
      for (int i = 0; i < 6; ++i) REQUIRE(std::isfinite(row[i]));
      CHECK(row[4] > 0.0f);
      CHECK(row[4] < 0.5f);  // untrained: low scores, near Ultralytics' prior
      if (r > 0) CHECK(row[4] <= rows[(r - 1) * 6 + 4]);
      CHECK(row[5] == std::floor(row[5]));
      CHECK(row[5] >= 0.0f);
      CHECK(row[5] < 80.0f);
      CHECK(row[0] < row[2]);
      CHECK(row[1] < row[3]);
    }
  }
  SUBCASE("one to many: [1,84,525], no inf, NaN or denormal") {
    options.head = Yolov10Head::OneToMany;
    const nibble::Session session = load(nibble::zoo::build_yolov10(options));
    CHECK(session.outputs()[0].shape == nibble::Shape{1, 84, 525});
    const nibble::Tensor out = session.run({{"images", uniform_image(160)}})[0];
    const float* data = out.data<float>();
    for (int64_t i = 0; i < out.numel(); ++i) {
      REQUIRE(std::isfinite(data[i]));
      REQUIRE(std::fpclassify(data[i]) != FP_SUBNORMAL);
    }
    for (int64_t i = 4 * 525; i < out.numel(); ++i) CHECK(data[i] < 0.5f);  // class scores
  }
}

TEST_CASE("zoo: weights depend on the seed only, not on the image size") {
  Yolov10Options options;
  options.image_size = 64;
  const ZooModel a = nibble::zoo::build_yolov10(options);
  CHECK(a.model.SerializeAsString() == nibble::zoo::build_yolov10(options).model.SerializeAsString());

  auto weight = [](const ZooModel& m, const std::string& name) {
    for (const onnx::TensorProto& t : m.model.graph().initializer())
      if (t.name() == name) return t.raw_data();
    return std::string();
  };
  const std::string name = "model.22.m.0.cv1.2.conv.weight";  // deep in the network
  REQUIRE(!weight(a, name).empty());
  options.image_size = 96;
  CHECK(weight(nibble::zoo::build_yolov10(options), name) == weight(a, name));
  options.seed = 1;
  CHECK(weight(nibble::zoo::build_yolov10(options), name) != weight(a, name));
}

TEST_CASE("zoo: bad scales and image sizes are refused") {
  Yolov10Options options;
  options.scale = "q";
  CHECK_THROWS_WITH_AS(nibble::zoo::build_yolov10(options), doctest::Contains("scale 'q'"),
                       nibble::Error);
  options.scale = "n";
  for (int64_t size : {0, -32, 100}) {
    options.image_size = size;
    CHECK_THROWS_WITH_AS(nibble::zoo::build_yolov10(options),
                         doctest::Contains("multiple of 32"), nibble::Error);
  }
}
