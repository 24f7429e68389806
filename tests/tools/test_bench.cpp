// `nibble bench` and the per-node profile behind it (Session::run_profiled).
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "nibble/nibble.h"
#include "tests/model_builder.h"
#include "tools/nibble/zoo/yolov10.h"

namespace fs = std::filesystem;

namespace {

// x [1,2,8,8] -> Conv 3x3 (4 filters) -> Relu -> y
nibble::testing::ModelBuilder conv_relu_model() {
  nibble::testing::ModelBuilder m(17);
  m.input("x", nibble::DType::F32, {1, 2, 8, 8});
  m.initializer<float>("w", nibble::DType::F32, {4, 2, 3, 3}, std::vector<float>(72, 0.1f));
  auto& conv = m.node("Conv", {"x", "w"}, {"c"}, "the_conv");
  m.attr(conv, "pads", std::vector<int64_t>{1, 1, 1, 1});
  m.node("Relu", {"c"}, {"y"}, "the_relu");
  m.output("y", nibble::DType::F32);
  return m;
}

std::string nibble_binary() {
  std::error_code error;
  const fs::path path = fs::read_symlink("/proc/self/exe", error).parent_path() / "nibble";
  return !error && fs::exists(path) ? path.string() : std::string();
}

struct Result {
  int status = -1;
  std::string output;  // stdout and stderr
};

Result shell(const std::string& command) {
  Result result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer;
  for (size_t n; (n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0;)
    result.output.append(buffer.data(), n);
  const int wait_status = pclose(pipe);
  result.status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
  return result;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A small zoo model in a fresh temporary directory.
struct ZooFile {
  fs::path dir = fs::temp_directory_path() / ("nibble_test_bench_" + std::to_string(::getpid()));
  fs::path model = dir / "yolov10n-64.onnx";
  ZooFile() {
    fs::create_directories(dir);
    nibble::zoo::Yolov10Options options;
    options.image_size = 64;
    options.calibrate = false;
    std::ofstream file(model, std::ios::binary);
    REQUIRE(nibble::zoo::build_yolov10(options).model.SerializeToOstream(&file));
  }
  ~ZooFile() { fs::remove_all(dir); }
};

}  // namespace

TEST_CASE("run_profiled: one entry per executed node, with shapes, and the outputs of run()") {
  const nibble::Session session = conv_relu_model().session();
  nibble::Tensor x(nibble::DType::F32, {1, 2, 8, 8});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float(i % 7) - 3.0f;

  std::vector<nibble::NodeProfile> profile;
  const std::vector<nibble::Tensor> profiled = session.run_profiled({{"x", x}}, profile);
  const std::vector<nibble::Tensor> plain = session.run({{"x", x}});
  REQUIRE(profiled.size() == 1);
  CHECK(std::equal(plain[0].data<float>(), plain[0].data<float>() + plain[0].numel(),
                   profiled[0].data<float>()));

  REQUIRE(!profile.empty());
  double total = 0;
  bool conv_seen = false;
  for (const nibble::NodeProfile& node : profile) {
    CHECK(node.seconds >= 0);
    total += node.seconds;
    REQUIRE(!node.output_shapes.empty());
    if (node.name == "the_conv") {  // may have absorbed the Relu when fused
      conv_seen = true;
      REQUIRE(node.input_shapes.size() >= 2);
      CHECK(node.input_shapes[0] == nibble::Shape{1, 2, 8, 8});
      CHECK(node.input_shapes[1] == nibble::Shape{4, 2, 3, 3});
      CHECK(node.output_shapes[0] == nibble::Shape{1, 4, 8, 8});
    }
  }
  CHECK(conv_seen);
  CHECK(profile.back().output_shapes[0] == nibble::Shape{1, 4, 8, 8});

  // A second profiled run replaces the entries instead of appending.
  const size_t count = profile.size();
  session.run_profiled({{"x", x}}, profile);
  CHECK(profile.size() == count);
}

TEST_CASE("nibble bench: statistics, profile, JSON and the --serve protocol") {
  const std::string nibble = nibble_binary();
  if (nibble.empty()) {
    MESSAGE("SKIPPED: the nibble executable is not built next to the tests");
    return;
  }
  const ZooFile zoo;
  const std::string model = "'" + zoo.model.string() + "'";
  const fs::path json_path = zoo.dir / "bench.json";

  Result r = shell("'" + nibble + "' bench " + model + " --threads 1 --iters 3 --warmup 1 " +
                   "--profile --top 5 --json '" + json_path.string() + "'");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(contains(r.output, "latency  median"));
  CHECK(contains(r.output, "images float [1,3,64,64]: uniform 0..1 (seed 0)"));
  CHECK(contains(r.output, "top 5 by time"));
  CHECK(contains(r.output, "by op"));
  CHECK(contains(r.output, "weights  "));
  CHECK(contains(r.output, "scheme FP32"));

  std::ifstream file(json_path);
  const nlohmann::json report = nlohmann::json::parse(file);
  CHECK(report["threads"] == 1);
  CHECK(report["runs_ms"].size() == 3);
  CHECK(report["scheme"] == "FP32");
  CHECK(report["weight_bytes"].get<size_t>() > 0);
  CHECK(report["latency_ms"]["median"].get<double>() > 0);
  CHECK(report["latency_ms"]["min"].get<double>() <= report["latency_ms"]["median"].get<double>());
  CHECK(report["latency_ms"]["median"].get<double>() <= report["latency_ms"]["max"].get<double>());
  int convs = 0;
  for (const nlohmann::json& node : report["profile"]) {
    if (node["op_type"] != "Conv") continue;
    ++convs;
    CHECK(node.contains("gops"));  // convs report their arithmetic rate
  }
  CHECK(convs > 0);

  r = shell("printf '2\\n1\\n' | '" + nibble + "' bench " + model + " --warmup 0 --serve");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  std::istringstream lines(r.output);
  std::string line;
  REQUIRE(std::getline(lines, line));
  CHECK(nlohmann::json::parse(line)["ready"] == true);
  REQUIRE(std::getline(lines, line));
  CHECK(nlohmann::json::parse(line)["runs_ms"].size() == 2);
  REQUIRE(std::getline(lines, line));
  CHECK(nlohmann::json::parse(line)["runs_ms"].size() == 1);
}

TEST_CASE("nibble bench and zoo: command-line errors") {
  const std::string nibble = nibble_binary();
  if (nibble.empty()) {
    MESSAGE("SKIPPED: the nibble executable is not built next to the tests");
    return;
  }
  const ZooFile zoo;
  const std::string model = "'" + zoo.model.string() + "'";
  const std::string bench = "'" + nibble + "' bench " + model;

  Result r = shell(bench + " --serve --profile");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "--serve"));
  r = shell(bench + " --shape images=1x3xQ");
  CHECK(r.status == 2);
  r = shell(bench + " --input nothere=x.npy");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "no input 'nothere'"));
  r = shell("'" + nibble + "' bench '" + (zoo.dir / "missing.onnx").string() + "'");
  CHECK(r.status == 1);

  r = shell("'" + nibble + "' zoo yolov10q --out x.onnx");
  CHECK(r.status == 2);
  r = shell("'" + nibble + "' zoo yolov10n --imgsz 100 --out x.onnx");
  CHECK(r.status == 2);
  CHECK(contains(r.output, "multiple of 32"));
  r = shell("'" + nibble + "' zoo yolov10n --imgsz 64 --out '" + (zoo.dir / "no/dir/x.onnx").string() + "'");
  CHECK(r.status == 1);
  CHECK(contains(r.output, "cannot write"));
}
