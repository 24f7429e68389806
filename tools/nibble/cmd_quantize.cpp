// `nibble quantize`: post-training quantization of an FP32 ONNX model into QDQ form (Brevitas
// QCDQ or ONNX Runtime QDQ), with activation ranges and the GPTQ Hessians of 4-bit layers
// calibrated on letterboxed images.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "frontend/images/image.h"
#include "frontend/onnx/onnx_loader.h"
#include "nibble/nibble.h"
#include "tools/nibble/commands.h"
#include "tools/nibble/quantize/quantize.h"

namespace nibble::cli {

namespace {

namespace fs = std::filesystem;

struct QuantizeCliOptions {
  std::string model;
  std::string out;
  std::string scheme;
  std::string format = "qcdq";
  bool per_tensor = false;
  std::string calib_images;
  int calib_count = 32;
  std::string calib_method = "minmax";
  std::string weight_rounding = "gptq";
  std::vector<std::string> keep_8bit = {"auto"};
  int threads = 0;
};

// Default calibration images: the shared assets' images/ ($NIBBLE_ASSETS, else ../shared next to
// the source tree the binary was built in, <repo>/build/bin/nibble); "" when absent.
std::string default_calib_images() {
  std::vector<fs::path> candidates;
  if (const char* assets = std::getenv("NIBBLE_ASSETS"); assets && *assets)
    candidates.push_back(fs::path(assets) / "images");
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (!error) candidates.push_back(exe.parent_path() / ".." / ".." / ".." / "shared" / "images");
  for (const fs::path& path : candidates)
    if (fs::is_directory(path, error)) return path.lexically_normal().string();
  return "";
}

// --keep-8bit: "auto" stands for quantize::default_8bit_layers(), "none" for no layer.
void apply_keep_8bit(const std::vector<std::string>& values, quantize::QuantizeOptions& q) {
  q.keep_boundary_8bit = false;
  for (const std::string& v : values) {
    if (v == "auto")
      q.keep_boundary_8bit = true;
    else if (v != "none")
      q.keep_8bit.insert(v);
  }
}

// Image files of a directory (by extension), sorted by name so runs are reproducible.
std::vector<std::string> list_images(const std::string& dir, int count) {
  static const std::set<std::string> extensions = {".jpg", ".jpeg", ".png", ".bmp"};
  std::error_code error;
  if (!fs::is_directory(dir, error))
    throw UsageError("--calib-images '" + dir + "' is not a directory");
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    if (entry.is_regular_file() && extensions.count(ext)) files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw UsageError("--calib-images '" + dir + "' holds no .jpg/.png/.bmp images");
  if (int(files.size()) > count) files.resize(size_t(count));
  return files;
}

// The image tensor [N, C, H, W] flipped left to right.
Tensor mirror(const Tensor& image) {
  Tensor flipped(DType::F32, image.shape());
  const int64_t width = image.shape().back();
  const float* src = image.data<float>();
  float* dst = flipped.data<float>();
  for (int64_t row = 0; row < image.numel() / width; ++row)
    std::reverse_copy(src + row * width, src + (row + 1) * width, dst + row * width);
  return flipped;
}

// What calibration measures: activation ranges (A8 schemes) and the layer Hessians that GPTQ
// rounds 4-bit weights with.
struct Calibration {
  std::map<std::string, quantize::Range> ranges;
  std::map<std::string, quantize::LayerHessian> hessians;
};

Calibration calibrate(const onnx::ModelProto& model, const std::vector<std::string>& activations,
                      const std::vector<std::string>& four_bit_layers,
                      const QuantizeCliOptions& options) {
  quantize::HessianCollector collector(model, four_bit_layers);
  // The model is instrumented with the activations (last, as the Calibrator expects them) and,
  // before them, the other inputs of the 4-bit layers.
  std::vector<std::string> outputs;
  for (const std::string& name : collector.input_tensors())
    if (std::find(activations.begin(), activations.end(), name) == activations.end())
      outputs.push_back(name);
  const size_t extra = outputs.size();
  outputs.insert(outputs.end(), activations.begin(), activations.end());
  const std::string bytes = quantize::with_extra_outputs(model, outputs).SerializeAsString();
  quantize::Calibrator ranges(quantize::parse_calib_method(options.calib_method), activations);

  SessionOptions session_options;
  session_options.num_threads = options.threads;
  const std::string base_dir = fs::absolute(options.model).parent_path().string();
  Session session = Session::load_bytes(bytes.data(), bytes.size(), session_options, base_dir);
  const std::vector<TensorInfo>& inputs = session.inputs();
  if (inputs.size() != 1 || inputs[0].shape.size() != 4 || inputs[0].dtype != DType::F32)
    throw UsageError("calibration needs a model with one float input [N,3,H,W]");
  const int height = inputs[0].shape[2] > 0 ? int(inputs[0].shape[2]) : 640;
  const int width = inputs[0].shape[3] > 0 ? int(inputs[0].shape[3]) : 640;
  const std::vector<std::string> files = list_images(options.calib_images, options.calib_count);
  for (const std::string& file : files) {
    images::LetterboxedImage boxed = images::letterbox(images::load_image(file), width, height);
    std::vector<Tensor> results = session.run({{inputs[0].name, boxed.tensor}});
    const size_t first = results.size() - outputs.size();
    std::map<std::string, const Tensor*> values;
    for (size_t i = 0; i < outputs.size(); ++i) values[outputs[i]] = &results[first + i];
    collector.observe(values);
    if (!activations.empty()) {
      results.erase(results.begin() + std::ptrdiff_t(first), results.begin() + std::ptrdiff_t(first + extra));
      ranges.observe(results);
    }
    // GPTQ also sees each image mirrored: twice the samples for the Hessians of the deep layers,
    // whose small feature maps give few columns per image.
    if (!four_bit_layers.empty()) {
      const std::vector<Tensor> mirrored = session.run({{inputs[0].name, mirror(boxed.tensor)}});
      std::map<std::string, const Tensor*> mirrored_values;
      for (size_t i = 0; i < outputs.size(); ++i) mirrored_values[outputs[i]] = &mirrored[first + i];
      collector.observe(mirrored_values);
    }
  }
  std::printf("calibrated on %zu images: %zu activation ranges (%s), %zu GPTQ layers\n",
              files.size(), activations.size(), options.calib_method.c_str(),
              collector.hessians().size());
  Calibration result;
  if (!activations.empty()) result.ranges = ranges.ranges();
  result.hessians = collector.hessians();
  return result;
}

int run_quantize(const QuantizeCliOptions& options) {
  quantize::QuantizeOptions q;
  q.scheme = quantize::parse_scheme(options.scheme);
  q.format = quantize::parse_format(options.format);
  q.per_tensor = options.per_tensor;
  apply_keep_8bit(options.keep_8bit, q);
  quantize::parse_calib_method(options.calib_method);  // validate before the slow part
  if (options.weight_rounding != "gptq" && options.weight_rounding != "nearest")
    throw UsageError("--weight-rounding must be gptq or nearest, not '" + options.weight_rounding + "'");

  onnx::ModelProto model;
  const std::string bytes = onnx_frontend::read_file(options.model);
  if (!model.ParseFromString(bytes))
    throw Error(ErrorKind::InvalidModel, "'" + options.model + "' is not an ONNX model");

  const std::vector<std::string> tensors = quantize::activation_tensors(model, q);
  // Round-to-nearest needs no Hessians: no 4-bit layer is calibrated for GPTQ.
  const std::vector<std::string> four_bit = options.weight_rounding == "gptq"
                                                ? quantize::four_bit_layers(model, q)
                                                : std::vector<std::string>{};
  Calibration calibration;
  if (!tensors.empty() || !four_bit.empty()) {
    QuantizeCliOptions calib = options;
    if (calib.calib_images.empty()) calib.calib_images = default_calib_images();
    if (calib.calib_images.empty())
      throw UsageError("--scheme " + options.scheme +
                       " needs calibration images (activation ranges, GPTQ): give --calib-images "
                       "DIR (no default: $NIBBLE_ASSETS/images not found)");
    calibration = calibrate(model, tensors, four_bit, calib);
  }
  if (q.keep_boundary_8bit && quantize::weight_bits(q.scheme) == 4) {
    const std::vector<std::string> kept = quantize::default_8bit_layers(model);
    std::printf("keeping %zu layers at 8 bits (first, output and exact-at-8-bit layers):\n",
                kept.size());
    for (const std::string& name : kept) std::printf("  %s\n", name.c_str());
  }
  const onnx::ModelProto quantized = quantize::quantize_model(model, q, calibration.ranges, calibration.hessians);
  std::ofstream file(options.out, std::ios::binary);
  if (!file || !quantized.SerializeToOstream(&file))
    throw Error(ErrorKind::Io, "cannot write '" + options.out + "'");
  auto count_dequantize = [](const onnx::ModelProto& m) {
    return size_t(std::count_if(m.graph().node().begin(), m.graph().node().end(),
                                [](const auto& n) { return n.op_type() == "DequantizeLinear"; }));
  };
  const size_t weights = count_dequantize(quantized) - count_dequantize(model) - tensors.size();
  std::printf("wrote %s: %s %s, %zu quantized weights, %zu quantized activations\n",
              options.out.c_str(), options.scheme.c_str(), options.format.c_str(), weights,
              tensors.size());
  return 0;
}

}  // namespace

Command add_quantize_command(CLI::App& nibble) {
  auto options = std::make_shared<QuantizeCliOptions>();
  CLI::App* cmd = nibble.add_subcommand(
      "quantize", "Post-training quantization of an FP32 ONNX model into QDQ form");
  cmd->add_option("model", options->model, "FP32 ONNX model")->required()->check(CLI::ExistingFile);
  cmd->add_option("--scheme", options->scheme, "w8a16, w8a8, w4a8 or w4a16")->required();
  cmd->add_option("--format", options->format,
                  "qcdq (Brevitas: int8 + Clip, opset 13+) or qdq (ONNX Runtime: INT4, opset 21+)")
      ->capture_default_str();
  cmd->add_flag("--per-tensor", options->per_tensor, "One weight scale per tensor (default: per channel)");
  cmd->add_option("--calib-images", options->calib_images,
                  "Directory of calibration images: activation ranges (w8a8, w4a8) and GPTQ "
                  "rounding of 4-bit weights (default: "
                  "$NIBBLE_ASSETS/images or ../shared/images next to the build tree)");
  cmd->add_option("--calib-count", options->calib_count, "Images used from --calib-images")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--weight-rounding", options->weight_rounding,
                  "How 4-bit weights are rounded: gptq (calibrated, accurate) or nearest (fast; "
                  "for models that are only timed)")
      ->capture_default_str();
  cmd->add_option("--calib-method", options->calib_method, "minmax, percentile or mse")
      ->capture_default_str();
  cmd->add_option("--keep-8bit", options->keep_8bit,
                  "Nodes whose weights stay 8-bit in w4 schemes; 'auto' stands for the first, "
                  "output and integer-weight layers, 'none' for no layer (e.g. auto,NODE extends "
                  "the default, NODE replaces it)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--threads", options->threads, "Threads for calibration (0: all)");
  cmd->add_option("--out", options->out, "Output ONNX model")->required();
  return Command{cmd, [options] { return run_quantize(*options); }};
}

}  // namespace nibble::cli
