// `nibble coco` and `nibble compare` as a user runs them, on the synthetic dataset: exit
// statuses, the files they write and their errors.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "frontend/onnx/onnx_loader.h"
#include "tests/tools/coco_test_data.h"

namespace fs = std::filesystem;
using nibble::testing::kEndToEndRows;
using nibble::testing::SyntheticCoco;

namespace {

// build/bin/nibble, next to this test binary; empty when it was not built.
std::string nibble_binary() {
  std::error_code error;
  const fs::path path = fs::read_symlink("/proc/self/exe", error).parent_path() / "nibble";
  return !error && fs::exists(path) ? path.string() : std::string();
}

struct Result {
  int status = -1;
  std::string output;  // stdout and stderr
};

Result run_nibble(const std::string& arguments) {
  Result result;
  FILE* pipe = popen(("'" + nibble_binary() + "' " + arguments + " 2>&1").c_str(), "r");
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

}  // namespace

TEST_CASE("nibble coco and nibble compare on a synthetic COCO set") {
  if (nibble_binary().empty()) {
    MESSAGE("SKIPPED: the nibble executable is not built next to the tests");
    return;
  }
  SyntheticCoco coco;
  const std::string model = coco.model("e2e.onnx", {1, 3, 6}, kEndToEndRows);
  const std::string root = coco.root().string();
  const std::string out = (coco.root() / "out").string();

  Result result = run_nibble("coco --model " + model + " --coco-root " + root + " --out " + out +
                             " --warmup 1 --threads 1");
  CAPTURE(result.output);
  CHECK(result.status == 0);
  CHECK(contains(result.output, "images   2 from "));
  CHECK(contains(result.output, "IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000"));
  CHECK(!contains(result.output, "\r"));  // no progress bar when stderr is not a terminal
  const nlohmann::json metrics = nlohmann::json::parse(
      nibble::onnx_frontend::read_file((fs::path(out) / "metrics.json").string()));
  CHECK(metrics["metrics"]["mAP_50_95"].get<double>() == doctest::Approx(1.0));
  CHECK(metrics["settings"]["warmup"] == 1);
  CHECK(fs::exists(fs::path(out) / "detections.json"));
  CHECK(fs::exists(fs::path(out) / "summary.md"));

  const std::string compare_out = (coco.root() / "compare").string();
  result = run_nibble("compare --coco-root " + root + " --model a=" + model + " --model " + model +
                      " --out " + compare_out + " --warmup 0 --threads 1");
  CAPTURE(result.output);
  CHECK(result.status == 0);
  CHECK(contains(result.output, "| a | FP32 | 1.0000 | 1.0000 |"));
  for (const char* file : {"compare.md", "compare.csv", "compare.json", "latency_vs_map.svg",
                           "precision_recall.svg", "a/metrics.json", "e2e/metrics.json"})
    CHECK_MESSAGE(fs::exists(fs::path(compare_out) / file), file);

  // Usage errors exit 2, failed work 1.
  CHECK(run_nibble("coco --model " + model + " --coco-root " + root + " --decoder yolo").status ==
        2);
  CHECK(run_nibble("compare --coco-root " + root + " --model a=" + model + " --model a=" + model)
            .status == 2);
  result = run_nibble("coco --model " + model + " --coco-root " + root + " --decoder nms --out " +
                      out);
  CHECK(result.status == 1);
  CHECK(contains(result.output, "is not [1,4+classes,N] (--decoder nms)"));
}
