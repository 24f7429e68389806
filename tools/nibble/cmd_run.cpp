// `nibble run`: load a model, feed it an image or .npy tensors, run it and report outputs,
// timings and (for YOLO models given an image) the detected objects.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "frontend/images/image.h"
#include "nibble/nibble.h"
#include "tools/nibble/coco/latency.h"
#include "tools/nibble/commands.h"
#include "tools/nibble/detections.h"
#include "tools/nibble/npy.h"
#include "tools/nibble/run_common.h"

namespace nibble::cli {

namespace {

namespace fs = std::filesystem;

struct RunOptions {
  std::string model;
  std::string image;
  int image_size = 0;  // 0: the model input's height
  std::vector<std::string> inputs;
  int threads = 0;
  bool reference = false;
  WeightOnlyActivations weight_only_activations = WeightOnlyActivations::Float;
  std::string save_inputs;
  std::string save_outputs;
  int warmup = 0;
  int iters = 1;
  std::string class_names;
  DetectionOptions detection;
};

// Letters, digits, '.', '-' and '_' are kept; anything else would be unsafe in a file name.
std::string file_name_for(const std::string& tensor_name) {
  std::string name = tensor_name.empty() ? "_" : tensor_name;
  for (char& c : name) {
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '-' || c == '_';
    if (!safe) c = '_';
  }
  return name;
}

// Writes DIR/<name>.npy for each tensor; names that sanitize to the same file get a suffix.
void save_tensors(const std::string& dir, const NamedTensors& tensors) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error)
    throw Error(ErrorKind::Io, "cannot create directory '" + dir + "': " + error.message());
  std::set<std::string> used;
  for (const auto& [name, tensor] : tensors) {
    std::string base = file_name_for(name);
    for (int n = 2; used.count(base); ++n) base = file_name_for(name) + "_" + std::to_string(n);
    used.insert(base);
    write_npy((fs::path(dir) / (base + ".npy")).string(), tensor);
  }
}

// coco.names from the shared assets: $NIBBLE_ASSETS, else ../shared next to the source tree the
// binary was built in (<repo>/build/bin/nibble).
std::optional<std::string> find_class_names() {
  std::vector<fs::path> candidates;
  if (const char* assets = std::getenv("NIBBLE_ASSETS"); assets && *assets)
    candidates.push_back(fs::path(assets) / "images" / "coco.names");
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (!error)
    candidates.push_back(exe.parent_path() / ".." / ".." / ".." / "shared" / "images" /
                         "coco.names");
  for (const fs::path& path : candidates)
    if (fs::is_regular_file(path, error)) return path.lexically_normal().string();
  return std::nullopt;
}

// The letterboxed image as the model's single image input.
struct ImageFeed {
  NamedTensors inputs;
  images::Image image;
  images::Letterbox letterbox;
};

ImageFeed feed_image(const Session& session, const RunOptions& options) {
  const std::vector<TensorInfo>& inputs = session.inputs();
  const bool fits = inputs.size() == 1 && inputs[0].shape.size() == 4 &&
                    (inputs[0].dtype == DType::F32 || inputs[0].dtype == DType::F16) &&
                    (inputs[0].shape[0] == 1 || inputs[0].shape[0] < 0) &&
                    (inputs[0].shape[1] == 3 || inputs[0].shape[1] < 0);
  if (!fits) {
    std::string listing;
    for (const TensorInfo& info : inputs) listing += "\n  " + describe(info);
    throw UsageError(
        "--image needs a model with one float input of shape [1,3,H,W]; this one has:" + listing);
  }
  const TensorInfo& input = inputs[0];
  int height = input.shape[2] > 0 ? static_cast<int>(input.shape[2]) : 640;
  int width = input.shape[3] > 0 ? static_cast<int>(input.shape[3]) : 640;
  if (options.image_size > 0) {
    const bool static_mismatch = (input.shape[2] > 0 && input.shape[2] != options.image_size) ||
                                 (input.shape[3] > 0 && input.shape[3] != options.image_size);
    if (static_mismatch)
      throw UsageError("--imgsz " + std::to_string(options.image_size) +
                       " does not match the model input " + describe(input));
    height = width = options.image_size;
  }

  ImageFeed feed;
  feed.image = images::load_image(options.image);
  images::LetterboxedImage boxed = images::letterbox(feed.image, width, height);
  feed.letterbox = boxed.geometry;
  Tensor tensor = std::move(boxed.tensor);
  if (input.dtype == DType::F16) {
    Tensor half(DType::F16, tensor.shape());
    std::transform(tensor.data<float>(), tensor.data<float>() + tensor.numel(),
                   half.data<uint16_t>(), float_to_half);
    tensor = std::move(half);
  }
  feed.inputs.emplace_back(input.name, std::move(tensor));
  return feed;
}

// --input NAME=FILE.npy (or FILE.npy alone for a single-input model), one for every input.
NamedTensors feed_npy(const Session& session, const std::vector<std::string>& specs) {
  const std::map<std::string, std::string> files = input_files(session.inputs(), specs);
  NamedTensors feeds;
  for (const TensorInfo& info : session.inputs()) {
    const auto file = files.find(info.name);
    if (file == files.end())
      throw UsageError("input '" + info.name + "' is not given (--input " + info.name +
                       "=FILE.npy); expected " + describe(info));
    feeds.emplace_back(info.name, read_npy(file->second));
  }
  return feeds;
}

void print_timing(const std::vector<double>& times_ms, int warmup) {
  if (times_ms.size() == 1) {
    std::printf("time     %.2f ms\n", times_ms[0]);
    return;
  }
  const coco::LatencyStats l = coco::latency_stats(times_ms);
  std::printf(
      "time     median %.2f ms, min %.2f ms, mean %.2f ms, max %.2f ms (%zu runs, %d warmup)\n",
      l.median_ms, l.min_ms, l.mean_ms, l.max_ms, l.count, warmup);
}

std::vector<std::string> class_names(const RunOptions& options) {
  if (!options.class_names.empty()) return load_class_names(options.class_names);
  if (const std::optional<std::string> found = find_class_names()) return load_class_names(*found);
  return {};
}

void print_detections(const Tensor& output, const ImageFeed& feed,
                      const std::vector<std::string>& names, const RunOptions& options) {
  std::vector<Detection> detections = decode_detections(output, options.detection);
  unletterbox(detections, feed.letterbox, feed.image.width, feed.image.height);
  std::printf("detections %zu (score > %g; boxes x1 y1 x2 y2 in image pixels)\n", detections.size(),
              static_cast<double>(options.detection.confidence));
  for (const Detection& d : detections)
    std::printf("  %-16s %.3f  %7.1f %7.1f %7.1f %7.1f\n", class_label(names, d.class_id).c_str(),
                static_cast<double>(d.score), static_cast<double>(d.x1), static_cast<double>(d.y1),
                static_cast<double>(d.x2), static_cast<double>(d.y2));
}

int run(const RunOptions& options) {
  if (options.image.empty() && options.inputs.empty())
    throw UsageError("give the model an input: --image IMG or --input NAME=FILE.npy");

  SessionOptions session_options;
  session_options.num_threads = options.threads;
  session_options.optimization =
      options.reference ? OptimizationLevel::None : OptimizationLevel::All;
  session_options.weight_only_activations = options.weight_only_activations;
  const Clock::time_point load_start = Clock::now();
  const Session session = Session::load(options.model, session_options);
  std::printf("model    %s (loaded in %.1f ms)\n", options.model.c_str(), ms_since(load_start));

  std::optional<ImageFeed> image_feed;
  std::vector<std::string> names;
  NamedTensors inputs;
  if (!options.image.empty()) {
    names = class_names(options);
    image_feed = feed_image(session, options);
    inputs = image_feed->inputs;
    const images::Letterbox& box = image_feed->letterbox;
    std::printf("input    %s <- %s %dx%d, letterbox scale %.4f, pad left %d top %d\n",
                describe(session.inputs()[0]).c_str(), options.image.c_str(),
                image_feed->image.width, image_feed->image.height, box.scale, box.pad_left,
                box.pad_top);
  } else {
    inputs = feed_npy(session, options.inputs);
    for (const auto& [name, tensor] : inputs)
      std::printf("input    %s %s %s\n", name.c_str(), dtype_name(tensor.dtype()),
                  shape_str(tensor.shape()).c_str());
  }
  if (!options.save_inputs.empty()) save_tensors(options.save_inputs, inputs);

  std::vector<Tensor> outputs;
  const std::vector<double> times_ms =
      timed_runs(options.warmup, options.iters, [&] { outputs = session.run(inputs); });

  const std::vector<TensorInfo>& output_infos = session.outputs();
  NamedTensors named_outputs;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const std::string& name = output_infos[i].name;
    std::printf("output   %s %s %s\n", name.c_str(), dtype_name(outputs[i].dtype()),
                shape_str(outputs[i].shape()).c_str());
    named_outputs.emplace_back(name, outputs[i]);
  }
  print_timing(times_ms, options.warmup);
  if (!options.save_outputs.empty()) save_tensors(options.save_outputs, named_outputs);

  // Only single-output models: a second output (e.g. segmentation masks) changes the meaning.
  if (image_feed && outputs.size() == 1 && detection_layout(outputs[0].shape()))
    print_detections(outputs[0], *image_feed, names, options);
  return 0;
}

}  // namespace

Command add_run_command(CLI::App& nibble) {
  auto options = std::make_shared<RunOptions>();
  CLI::App* cmd = nibble.add_subcommand(
      "run", "Run a model on an image or .npy inputs; print outputs, time and detections");
  cmd->add_option("model", options->model, "ONNX model file")->required()->option_text("MODEL");

  CLI::Option* image =
      cmd->add_option("--image", options->image, "Image letterboxed into the model's input")
          ->option_text("IMG");
  CLI::Option* input =
      cmd->add_option("--input", options->inputs, "Input tensor (repeat for each input)")
          ->allow_extra_args(false)
          ->option_text("NAME=FILE.npy");
  image->excludes(input);
  cmd->add_option("--imgsz", options->image_size, "Letterbox size (default: the input's height)")
      ->check(at_least(1))
      ->option_text("N");
  cmd->add_option("--threads", options->threads, "Threads per run (default: all cores)")
      ->check(at_least(0))
      ->option_text("T");
  cmd->add_flag("--reference", options->reference, "Unoptimized reference path (no fusion)");
  add_weight_only_activations_option(*cmd, options->weight_only_activations);
  cmd->add_option("--save-inputs", options->save_inputs, "Write inputs as DIR/<name>.npy")
      ->option_text("DIR");
  cmd->add_option("--save-outputs", options->save_outputs, "Write outputs as DIR/<name>.npy")
      ->option_text("DIR");
  cmd->add_option("--warmup", options->warmup, "Untimed runs first (default 0)")
      ->check(at_least(0))
      ->option_text("N");
  cmd->add_option("--iters", options->iters, "Timed runs (default 1)")
      ->check(at_least(1))
      ->option_text("N");
  cmd->add_option("--conf", options->detection.confidence, "Score threshold (default 0.25)")
      ->check(CLI::Range(0.0, 1.0))
      ->option_text("X");
  cmd->add_option("--iou", options->detection.iou, "NMS IoU threshold (default 0.7)")
      ->check(CLI::Range(0.0, 1.0))
      ->option_text("X");
  cmd->add_option("--max-det", options->detection.max_detections,
                  "Most detections shown (default 300)")
      ->check(at_least(1))
      ->option_text("N");
  cmd->add_option("--names", options->class_names, "Class names, one per line")
      ->option_text("FILE");
  cmd->footer(
      "Give either --image (YOLO detection outputs are decoded and printed; class names default\n"
      "to coco.names from the shared assets) or one --input per model input (FILE.npy alone\n"
      "for a single-input model).\n"
      "\nExamples:\n"
      "  nibble run yolov10n-640-fp32.onnx --image bus.jpg\n"
      "  nibble run model.onnx --input x=x.npy --save-outputs out/ --warmup 3 --iters 20");
  return {cmd, [options] { return run(*options); }};
}

}  // namespace nibble::cli
