// The input preparation and timing shared by `nibble run` and `nibble bench`.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tools/nibble/commands.h"
#include "tools/nibble/run_common.h"

using nibble::DType;
using nibble::TensorInfo;
using nibble::cli::InputGenerator;
using nibble::cli::UsageError;

namespace {

const std::vector<TensorInfo> kOneInput = {{"images", DType::F32, {1, 3, 4, 4}}};
const std::vector<TensorInfo> kTwoInputs = {{"x", DType::F32, {2, 3}}, {"n", DType::I64, {2}}};

std::string usage_error(const std::vector<TensorInfo>& inputs,
                        const std::vector<std::string>& specs) {
  try {
    nibble::cli::input_files(inputs, specs);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("input_files: NAME=FILE per input, FILE alone for a single-input model") {
  auto files = nibble::cli::input_files(kTwoInputs, {"x=a.npy", "n=dir/b=c.npy"});
  CHECK(files.size() == 2);
  CHECK(files["x"] == "a.npy");
  CHECK(files["n"] == "dir/b=c.npy");  // only the first '=' separates

  files = nibble::cli::input_files(kOneInput, {"frame.npy"});
  CHECK(files.size() == 1);
  CHECK(files["images"] == "frame.npy");
  CHECK(nibble::cli::input_files(kTwoInputs, {}).empty());
}

TEST_CASE("input_files: errors name the spec and list the model's inputs") {
  std::string error = usage_error(kTwoInputs, {"y=a.npy"});
  CHECK(error.find("no input 'y'") != std::string::npos);
  CHECK(error.find("x float [2,3]") != std::string::npos);
  CHECK(error.find("n int64 [2]") != std::string::npos);

  error = usage_error(kTwoInputs, {"a.npy"});
  CHECK(error.find("several inputs") != std::string::npos);
  CHECK(usage_error(kTwoInputs, {"x=a.npy", "x=b.npy"}).find("given twice") != std::string::npos);
  CHECK(usage_error(kOneInput, {"=a.npy"}).find("NAME=VALUE") != std::string::npos);
}

TEST_CASE("InputGenerator: seeded uniform floats in [0, 1), zeros for other types") {
  const TensorInfo info{"images", DType::F32, {1, 3, 8, 8}};
  InputGenerator first(InputGenerator::Fill::Random, 7), again(InputGenerator::Fill::Random, 7),
      other(InputGenerator::Fill::Random, 8);
  const nibble::Tensor a = first.make(info), b = again.make(info), c = other.make(info);
  REQUIRE(a.shape() == nibble::Shape{1, 3, 8, 8});
  bool all_equal = true, differs_from_other_seed = false;
  double sum = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const float v = a.data<float>()[i];
    CHECK(v >= 0.0f);
    CHECK(v < 1.0f);
    sum += v;
    all_equal = all_equal && v == b.data<float>()[i];
    differs_from_other_seed = differs_from_other_seed || v != c.data<float>()[i];
  }
  CHECK(all_equal);
  CHECK(differs_from_other_seed);
  CHECK(sum / double(a.numel()) == doctest::Approx(0.5).epsilon(0.1));
  // The stream goes on: a second input is not a copy of the first.
  const nibble::Tensor next = first.make(info);
  CHECK(next.data<float>()[0] != a.data<float>()[0]);
  CHECK(first.describe(DType::F32) == "uniform 0..1 (seed 7)");

  const nibble::Tensor half = first.make({"h", DType::F16, {16}});
  for (int64_t i = 0; i < half.numel(); ++i) {
    const float v = nibble::half_to_float(half.data<uint16_t>()[i]);
    CHECK(v >= 0.0f);
    CHECK(v <= 1.0f);  // rounding to half may reach 1.0
  }
  const nibble::Tensor ints = first.make({"n", DType::I64, {4}});
  for (int64_t i = 0; i < ints.numel(); ++i) CHECK(ints.data<int64_t>()[i] == 0);
  CHECK(first.describe(DType::I64) == "zeros");

  InputGenerator zeros(InputGenerator::Fill::Zeros, 7);
  const nibble::Tensor z = zeros.make(info);
  for (int64_t i = 0; i < z.numel(); ++i) CHECK(z.data<float>()[i] == 0.0f);
  CHECK(zeros.describe(DType::F32) == "zeros");
}

TEST_CASE("InputGenerator: a dynamic dimension asks for --shape") {
  InputGenerator generator(InputGenerator::Fill::Random, 0);
  try {
    generator.make({"images", DType::F32, {-1, 3, 640, 640}});
    FAIL("a dynamic shape was accepted");
  } catch (const UsageError& e) {
    CHECK(std::string(e.what()).find("--shape images=") != std::string::npos);
  }
}

TEST_CASE("timed_runs: warmup runs untimed, then one time per timed run") {
  int calls = 0;
  const std::vector<double> times = nibble::cli::timed_runs(2, 3, [&] { ++calls; });
  CHECK(calls == 5);
  REQUIRE(times.size() == 3);
  for (double t : times) CHECK(t >= 0);
  CHECK(nibble::cli::timed_runs(1, 0, [&] { ++calls; }).empty());
  CHECK(calls == 6);
}

TEST_CASE("at_least: integers at or above the bound") {
  const CLI::Validator positive = nibble::cli::at_least(1);
  std::string value = "3";
  CHECK(positive(value).empty());
  value = "0";
  CHECK(positive(value).find(">= 1") != std::string::npos);
  value = "two";
  CHECK(!positive(value).empty());
}
