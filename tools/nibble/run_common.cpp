#include "tools/nibble/run_common.h"

#include <algorithm>
#include <set>

#include "tools/nibble/commands.h"

namespace nibble::cli {

namespace {

std::string input_listing(const std::vector<TensorInfo>& inputs) {
  std::string listing;
  for (const TensorInfo& info : inputs) listing += "\n  " + describe(info);
  return listing;
}

}  // namespace

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string describe(const TensorInfo& info) {
  return info.name + " " + dtype_name(info.dtype) + " " + shape_str(info.shape);
}

std::pair<std::string, std::string> split_assignment(const std::string& spec, const char* option) {
  const size_t equals = spec.find('=');
  if (equals == std::string::npos || equals == 0)
    throw UsageError(std::string(option) + " expects NAME=VALUE, got '" + spec + "'");
  return {spec.substr(0, equals), spec.substr(equals + 1)};
}

std::map<std::string, std::string> input_files(const std::vector<TensorInfo>& inputs,
                                               const std::vector<std::string>& specs) {
  std::set<std::string> known;
  for (const TensorInfo& info : inputs) known.insert(info.name);
  std::map<std::string, std::string> files;
  for (const std::string& spec : specs) {
    std::string name, path;
    if (spec.find('=') != std::string::npos) {
      std::tie(name, path) = split_assignment(spec, "--input");
    } else if (inputs.size() == 1) {
      name = inputs[0].name;
      path = spec;
    } else {
      throw UsageError("--input expects NAME=FILE.npy for a model with several inputs, got '" +
                       spec + "'");
    }
    if (!known.count(name))
      throw UsageError("the model has no input '" + name + "'; its inputs are:" +
                       input_listing(inputs));
    if (!files.emplace(name, path).second)
      throw UsageError("input '" + name + "' is given twice");
  }
  return files;
}

double InputGenerator::uniform() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}

Tensor InputGenerator::make(const TensorInfo& info) {
  for (int64_t d : info.shape)
    if (d < 0)
      throw UsageError("input '" + info.name + "' has shape " + shape_str(info.shape) +
                       "; fix it with --shape " + info.name + "=D1xD2x... or give --input");
  Tensor tensor(info.dtype, info.shape);  // zeros
  if (fill_ == Fill::Zeros) return tensor;
  if (info.dtype == DType::F32) {
    float* data = tensor.data<float>();
    for (int64_t i = 0; i < tensor.numel(); ++i) data[i] = static_cast<float>(uniform());
  } else if (info.dtype == DType::F16) {
    uint16_t* data = tensor.data<uint16_t>();
    for (int64_t i = 0; i < tensor.numel(); ++i)
      data[i] = float_to_half(static_cast<float>(uniform()));
  }
  return tensor;
}

std::string InputGenerator::describe(DType dtype) const {
  const bool random_floats = fill_ == Fill::Random && (dtype == DType::F32 || dtype == DType::F16);
  return random_floats ? "uniform 0..1 (seed " + std::to_string(seed_) + ")" : "zeros";
}

CLI::Option* add_weight_only_activations_option(CLI::App& command, WeightOnlyActivations& value) {
  return command
      .add_option_function<std::string>(
          "--weight-only-activations",
          [&value](const std::string& name) {
            value = name == "int16" ? WeightOnlyActivations::Int16 : WeightOnlyActivations::Float;
          },
          "Activations of W4A16 / W8A16 layers: float (default; the fake-quant arithmetic) or "
          "int16 (quantized per tensor at run time: faster, near-lossless)")
      ->check(CLI::IsMember({"float", "int16"}))
      ->option_text("float|int16");
}

CLI::Validator at_least(int minimum) {
  return CLI::Validator(
      [minimum](std::string& value) {
        int number = 0;
        if (!CLI::detail::lexical_cast(value, number) || number < minimum)
          return "expected an integer >= " + std::to_string(minimum) + ", got '" + value + "'";
        return std::string();
      },
      ">=" + std::to_string(minimum));
}

}  // namespace nibble::cli
