// `nibble quantize`: post-training quantization of an FP32 ONNX model into QDQ form (Brevitas
// QCDQ or ONNX Runtime QDQ), with activation ranges calibrated on letterboxed images.

#include <algorithm>
#include <cstdio>
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
  std::vector<std::string> keep_8bit;
  int threads = 0;
};

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

std::map<std::string, quantize::Range> calibrate(const onnx::ModelProto& model,
                                                 const std::vector<std::string>& tensors,
                                                 const QuantizeCliOptions& options) {
  quantize::Calibrator calibrator(quantize::parse_calib_method(options.calib_method), tensors);
  const std::string bytes = calibrator.instrument(model).SerializeAsString();
  SessionOptions session_options;
  session_options.num_threads = options.threads;
  const std::string base_dir = fs::absolute(options.model).parent_path().string();
  Session session = Session::load_bytes(bytes.data(), bytes.size(), session_options, base_dir);
  const std::vector<TensorInfo>& inputs = session.inputs();
  if (inputs.size() != 1 || inputs[0].shape.size() != 4 || inputs[0].dtype != DType::F32)
    throw UsageError("--calib-images needs a model with one float input [N,3,H,W]");
  const int height = inputs[0].shape[2] > 0 ? int(inputs[0].shape[2]) : 640;
  const int width = inputs[0].shape[3] > 0 ? int(inputs[0].shape[3]) : 640;
  const std::vector<std::string> files = list_images(options.calib_images, options.calib_count);
  for (const std::string& file : files) {
    images::LetterboxedImage boxed = images::letterbox(images::load_image(file), width, height);
    calibrator.observe(session.run({{inputs[0].name, boxed.tensor}}));
  }
  std::printf("calibrated %zu activation tensors on %zu images (%s)\n", tensors.size(),
              calibrator.runs(), options.calib_method.c_str());
  return calibrator.ranges();
}

int run_quantize(const QuantizeCliOptions& options) {
  quantize::QuantizeOptions q;
  q.scheme = quantize::parse_scheme(options.scheme);
  q.format = quantize::parse_format(options.format);
  q.per_tensor = options.per_tensor;
  q.keep_8bit.insert(options.keep_8bit.begin(), options.keep_8bit.end());
  quantize::parse_calib_method(options.calib_method);  // validate before the slow part

  onnx::ModelProto model;
  const std::string bytes = onnx_frontend::read_file(options.model);
  if (!model.ParseFromString(bytes))
    throw Error(ErrorKind::InvalidModel, "'" + options.model + "' is not an ONNX model");

  const std::vector<std::string> tensors = quantize::activation_tensors(model, q);
  std::map<std::string, quantize::Range> ranges;
  if (!tensors.empty()) {
    if (options.calib_images.empty())
      throw UsageError("--scheme " + options.scheme +
                       " quantizes activations: give --calib-images DIR to calibrate their ranges");
    ranges = calibrate(model, tensors, options);
  }
  const onnx::ModelProto quantized = quantize::quantize_model(model, q, ranges);
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
                  "Directory of images for activation ranges (w8a8, w4a8)");
  cmd->add_option("--calib-count", options->calib_count, "Images used from --calib-images")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--calib-method", options->calib_method, "minmax, percentile or mse")
      ->capture_default_str();
  cmd->add_option("--keep-8bit", options->keep_8bit, "Nodes whose weights stay 8-bit (w4 schemes)")
      ->delimiter(',');
  cmd->add_option("--threads", options->threads, "Threads for calibration (0: all)");
  cmd->add_option("--out", options->out, "Output ONNX model")->required();
  return Command{cmd, [options] { return run_quantize(*options); }};
}

}  // namespace nibble::cli
