// What `nibble run` and `nibble bench` share: reading --input files against the model's inputs,
// generated inputs, timed runs and the integer option check.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "nibble/nibble.h"

namespace nibble::cli {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start);

// "images float [1,3,640,640]"
std::string describe(const TensorInfo& info);

// "NAME=VALUE" -> {NAME, VALUE}; `option` names the option in the UsageError.
std::pair<std::string, std::string> split_assignment(const std::string& spec, const char* option);

// --input specs checked against the model's inputs: input name -> .npy path. Each spec is
// NAME=FILE.npy naming an input at most once; a model with one input also takes FILE.npy alone.
// Throws UsageError naming the spec at fault and listing the model's inputs.
std::map<std::string, std::string> input_files(const std::vector<TensorInfo>& inputs,
                                               const std::vector<std::string>& specs);

// Inputs made up for benchmarking. Random: floats (F32, F16) uniform in [0, 1) like a
// normalized image, other types zero; Zeros: all zero. The stream of random numbers continues
// from input to input, so a generator seeded alike makes the same inputs in the same order.
class InputGenerator {
 public:
  enum class Fill { Random, Zeros };
  InputGenerator(Fill fill, uint64_t seed) : fill_(fill), seed_(seed), state_(seed) {}

  // Throws UsageError when the shape has dynamic dims (fixed by bench's --shape).
  Tensor make(const TensorInfo& info);
  // "uniform 0..1 (seed S)" or "zeros", for the report.
  std::string describe(DType dtype) const;

 private:
  double uniform();  // splitmix64, 53 bits

  Fill fill_;
  uint64_t seed_;
  uint64_t state_;
};

// Calls run_once `warmup` times untimed, then `iters` times timed: the wall times in ms.
template <class RunOnce>
std::vector<double> timed_runs(int warmup, int iters, RunOnce&& run_once) {
  for (int i = 0; i < warmup; ++i) run_once();
  std::vector<double> times;
  times.reserve(static_cast<size_t>(iters > 0 ? iters : 0));
  for (int i = 0; i < iters; ++i) {
    const Clock::time_point start = Clock::now();
    run_once();
    times.push_back(ms_since(start));
  }
  return times;
}

// An integer option's lower bound (CLI11's own number validators print their range with
// DBL_MAX spelled out).
CLI::Validator at_least(int minimum);

// --weight-only-activations float|int16: SessionOptions::weight_only_activations.
CLI::Option* add_weight_only_activations_option(CLI::App& command, WeightOnlyActivations& value);

}  // namespace nibble::cli
