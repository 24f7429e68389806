// The `nibble` executable as a user runs it: exit statuses, error format and a real detection.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/asset_paths.h"

namespace fs = std::filesystem;

namespace {

// build/bin/nibble, next to this test binary; empty when it was not built.
std::string nibble_binary() {
  std::error_code error;
  const fs::path path = fs::read_symlink("/proc/self/exe", error).parent_path() / "nibble";
  return !error && fs::exists(path) ? path.string() : std::string();
}

std::string quoted(const std::string& path) { return "'" + path + "'"; }

struct Result {
  int status = -1;
  std::string output;  // stdout and stderr
};

Result run_nibble(const std::string& arguments) {
  Result result;
  const std::string command = quoted(nibble_binary()) + " " + arguments + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
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

TEST_CASE("nibble CLI: help, usage errors and failures") {
  if (nibble_binary().empty()) {
    MESSAGE("SKIPPED: the nibble executable is not built next to the tests");
    return;
  }
  Result help = run_nibble("--help");
  CHECK(help.status == 0);
  CHECK(contains(help.output, "run"));

  help = run_nibble("run --help");
  CHECK(help.status == 0);
  CHECK(contains(help.output, "--image"));

  const Result no_command = run_nibble("");
  CHECK(no_command.status == 2);
  CHECK(contains(no_command.output, "nibble: error: "));

  const Result no_input = run_nibble("run model.onnx");
  CHECK(no_input.status == 2);
  CHECK(contains(no_input.output, "nibble: error: give the model an input"));

  const Result bad_number = run_nibble("run model.onnx --image x.jpg --iters 0");
  CHECK(bad_number.status == 2);

  const Result missing_model = run_nibble("run /nonexistent/model.onnx --image x.jpg");
  CHECK(missing_model.status == 1);
  CHECK(contains(missing_model.output, "nibble: error: "));
  CHECK(contains(missing_model.output, "/nonexistent/model.onnx"));
}

TEST_CASE("nibble run detects the objects in bus.jpg with YOLOv10n") {
  const std::string model = nibble::testing::asset("models/yolov10n-640-fp32.onnx");
  const std::string image = nibble::testing::asset("images/bus.jpg");
  if (nibble_binary().empty() || model.empty() || image.empty()) {
    MESSAGE(
        "SKIPPED: needs the nibble executable, models/yolov10n-640-fp32.onnx and "
        "images/bus.jpg under "
        << nibble::testing::assets_dir());
    return;
  }
  const fs::path out_dir = fs::temp_directory_path() / "nibble_test_cli_outputs";
  fs::remove_all(out_dir);
  const Result result = run_nibble("run " + quoted(model) + " --image " + quoted(image) +
                                   " --threads 2 --save-outputs " + quoted(out_dir.string()));
  INFO(result.output);
  REQUIRE(result.status == 0);
  CHECK(contains(result.output, "output   output0 float [1,300,6]"));
  CHECK(contains(result.output, "detections 5 "));
  CHECK(contains(result.output, "  bus "));
  CHECK(contains(result.output, "  person "));
  // [1,300,6] float32 after a 128-byte header.
  CHECK(fs::file_size(out_dir / "output0.npy") == 128 + 300 * 6 * 4);
  fs::remove_all(out_dir);
}
