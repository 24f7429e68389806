#include "tools/nibble/coco/harness.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "frontend/images/image.h"
#include "kernels/cpu_features.h"
#include "nibble/nibble.h"
#include "tools/nibble/coco/visualize.h"

namespace nibble::coco {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double milliseconds_between(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double, std::milli>(end - start).count();
}

// The image folder that goes with instances_<split>.json.
std::string images_dir_for(const std::string& coco_root, const std::string& annotations) {
  const std::string stem = fs::path(annotations).stem().string();
  const std::string prefix = "instances_";
  if (stem.rfind(prefix, 0) == 0 && stem.size() > prefix.size()) {
    const fs::path dir = fs::path(coco_root) / stem.substr(prefix.size());
    std::error_code error;
    if (fs::is_directory(dir, error)) return dir.string();
  }
  return (fs::path(coco_root) / "val2017").string();
}

// The model's image input: one float tensor [1, 3, H, W].
struct ModelInput {
  std::string name;
  DType dtype = DType::F32;
  int height = 0, width = 0;
};

ModelInput model_input(const Session& session, int image_size, const std::string& model_path) {
  const std::vector<TensorInfo>& inputs = session.inputs();
  const bool fits = inputs.size() == 1 && inputs[0].shape.size() == 4 &&
                    (inputs[0].dtype == DType::F32 || inputs[0].dtype == DType::F16) &&
                    (inputs[0].shape[0] == 1 || inputs[0].shape[0] < 0) &&
                    (inputs[0].shape[1] == 3 || inputs[0].shape[1] < 0);
  if (!fits) {
    std::string listing;
    for (const TensorInfo& info : inputs)
      listing += "\n  " + info.name + " " + dtype_name(info.dtype) + " " + shape_str(info.shape);
    throw Error(ErrorKind::InvalidArgument,
                "'" + model_path +
                    "' is not an image detector with one float input [1,3,H,W]; its inputs are:" +
                    listing);
  }
  const TensorInfo& info = inputs[0];
  ModelInput input{info.name, info.dtype, 640, 640};
  if (info.shape[2] > 0) input.height = static_cast<int>(info.shape[2]);
  if (info.shape[3] > 0) input.width = static_cast<int>(info.shape[3]);
  if (image_size > 0) {
    if ((info.shape[2] > 0 && info.shape[2] != image_size) ||
        (info.shape[3] > 0 && info.shape[3] != image_size))
      throw Error(ErrorKind::InvalidArgument,
                  "--imgsz " + std::to_string(image_size) + " does not match the input " +
                      info.name + " " + shape_str(info.shape) + " of '" + model_path + "'");
    input.height = input.width = image_size;
  }
  return input;
}

Tensor as_input_dtype(Tensor tensor, DType dtype) {
  if (dtype == DType::F32) return tensor;
  Tensor half(DType::F16, tensor.shape());
  std::transform(tensor.data<float>(), tensor.data<float>() + tensor.numel(),
                 half.data<uint16_t>(), float_to_half);
  return half;
}

std::string describe_layout(cli::DetectionLayout layout) {
  return layout == cli::DetectionLayout::EndToEnd ? "end-to-end [1,N,6]"
                                                  : "class scores [1,4+C,N] + NMS";
}

// The layout of the model's first output, checked against the categories; decided on the first
// output the model produces, so dynamic output shapes work too.
cli::DetectionLayout output_layout(const Tensor& output, const std::string& output_name,
                                   const cli::DetectionOptions& options, size_t num_categories,
                                   const std::string& model_path) {
  const Shape& shape = output.shape();
  const std::optional<cli::DetectionLayout> layout =
      options.layout ? options.layout : cli::detection_layout(shape);
  const bool fits = layout && shape.size() == 3 && shape[0] == 1 &&
                    (*layout == cli::DetectionLayout::EndToEnd ? shape[2] == 6 : shape[1] > 4);
  if (!fits) {
    std::string expected = "[1,N,6] (end-to-end) or [1,4+classes,N]";
    if (options.layout == cli::DetectionLayout::EndToEnd) expected = "[1,N,6] (--decoder end-to-end)";
    if (options.layout == cli::DetectionLayout::ClassScores) expected = "[1,4+classes,N] (--decoder nms)";
    throw Error(ErrorKind::InvalidArgument, "'" + model_path +
                                                "' is not a YOLO detector: its first output " +
                                                output_name + " " + shape_str(shape) + " is not " +
                                                expected);
  }
  if (*layout == cli::DetectionLayout::ClassScores &&
      static_cast<size_t>(shape[1] - 4) != num_categories)
    throw Error(ErrorKind::InvalidArgument,
                "'" + model_path + "' predicts " + std::to_string(shape[1] - 4) +
                    " classes but the annotations have " + std::to_string(num_categories) +
                    " categories");
  return *layout;
}

}  // namespace

cli::DetectionOptions evaluation_detection_options() {
  cli::DetectionOptions options;
  options.confidence = 0.001f;
  options.iou = 0.7f;
  options.max_detections = 300;
  options.max_candidates = 30000;
  return options;
}

double float_as_decimal(float value) {
  char text[32];
  const std::to_chars_result written = std::to_chars(text, text + sizeof text, value);
  double decimal = value;
  std::from_chars(text, written.ptr, decimal);
  return decimal;
}

Selection select_images(const ImageSet& set) {
  Selection selection;
  selection.annotations_path =
      set.annotations.empty()
          ? (fs::path(set.coco_root) / "annotations" / "instances_val2017.json").string()
          : set.annotations;
  selection.images_dir = images_dir_for(set.coco_root, selection.annotations_path);
  selection.dataset = load_dataset(selection.annotations_path);

  std::map<int64_t, const ImageInfo*> by_id;
  for (const ImageInfo& image : selection.dataset.images) by_id[image.id] = &image;
  if (set.image_ids_file.empty()) {
    for (const auto& [id, image] : by_id) selection.images.push_back(image);
  } else {
    std::set<int64_t> wanted;
    for (int64_t id : load_image_ids(set.image_ids_file)) {
      const auto it = by_id.find(id);
      if (it == by_id.end())
        throw Error(ErrorKind::InvalidArgument, "image id " + std::to_string(id) + " from '" +
                                                    set.image_ids_file + "' is not in '" +
                                                    selection.annotations_path + "'");
      wanted.insert(id);
    }
    for (int64_t id : wanted) selection.images.push_back(by_id[id]);
  }
  if (set.max_images > 0 && selection.images.size() > static_cast<size_t>(set.max_images))
    selection.images.resize(static_cast<size_t>(set.max_images));
  if (selection.images.empty())
    throw Error(ErrorKind::InvalidArgument,
                "no images to evaluate in '" + selection.annotations_path + "'");
  return selection;
}

HarnessRun run_harness(const std::string& model_path, const Selection& selection,
                       const HarnessOptions& options) {
  SessionOptions session_options;
  session_options.num_threads = options.threads;
  session_options.weight_only_activations = options.weight_only_activations;
  const Session session = Session::load(model_path, session_options);
  const ModelInput input = model_input(session, options.image_size, model_path);
  if (session.outputs().empty())
    throw Error(ErrorKind::InvalidArgument, "'" + model_path + "' has no outputs");
  const std::string& output_name = session.outputs()[0].name;
  const std::vector<int64_t> categories = class_to_category(selection.dataset);
  cli::DetectionOptions detection_options = options.detection;

  HarnessRun run;
  run.model_path = model_path;
  run.input_name = input.name;
  run.input_shape = {1, 3, input.height, input.width};
  run.threads = options.threads > 0
                    ? options.threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  run.isa = kernels::isa_name(kernels::active_isa());

  if (!options.save_vis.empty()) {
    std::error_code error;
    fs::create_directories(options.save_vis, error);
    if (error)
      throw Error(ErrorKind::Io,
                  "cannot create directory '" + options.save_vis + "': " + error.message());
  }
  std::vector<std::string> category_names;
  for (const Category& category : selection.dataset.categories)
    category_names.push_back(category.name);

  auto preprocess = [&](const ImageInfo& info, images::Image& image, images::Letterbox& box) {
    image = images::load_image((fs::path(selection.images_dir) / info.file_name).string());
    images::LetterboxedImage boxed = images::letterbox(image, input.width, input.height);
    box = boxed.geometry;
    return as_input_dtype(std::move(boxed.tensor), input.dtype);
  };

  // Fixes the decoder on the first output; later outputs must have the same layout.
  bool layout_checked = false;
  auto decode = [&](const Tensor& output) {
    if (!layout_checked) {
      detection_options.layout = output_layout(output, output_name, options.detection,
                                               categories.size(), model_path);
      run.decoder = describe_layout(*detection_options.layout);
      layout_checked = true;
    }
    return cli::decode_detections(output, detection_options);
  };

  if (options.warmup > 0) {
    images::Image image;
    images::Letterbox box;
    const NamedTensors feed = {{input.name, preprocess(*selection.images[0], image, box)}};
    for (int i = 0; i < options.warmup; ++i) {
      const std::vector<Tensor> outputs = session.run(feed);
      if (i == 0) decode(outputs[0]);  // a model that does not fit fails before the other runs
    }
  }

  std::vector<double> preprocess_ms, model_ms, postprocess_ms;
  ProgressBar progress(options.progress_label, selection.images.size());
  progress.update(0);
  for (size_t n = 0; n < selection.images.size(); ++n) {
    const ImageInfo& info = *selection.images[n];
    const Clock::time_point start = Clock::now();
    images::Image image;
    images::Letterbox box;
    const NamedTensors feed = {{input.name, preprocess(info, image, box)}};
    const Clock::time_point preprocessed = Clock::now();
    const std::vector<Tensor> outputs = session.run(feed);
    const Clock::time_point ran = Clock::now();

    std::vector<cli::Detection> boxes = decode(outputs[0]);
    cli::unletterbox(boxes, box, image.width, image.height);
    for (const cli::Detection& d : boxes) {
      if (d.class_id < 0 || static_cast<size_t>(d.class_id) >= categories.size())
        throw Error(ErrorKind::InvalidArgument,
                    "'" + model_path + "' predicted class " + std::to_string(d.class_id) +
                        " on " + info.file_name + " but the annotations have only " +
                        std::to_string(categories.size()) + " categories");
      Detection result;
      result.image_id = info.id;
      result.category_id = categories[static_cast<size_t>(d.class_id)];
      result.bbox = {float_as_decimal(d.x1), float_as_decimal(d.y1),
                     float_as_decimal(d.x2 - d.x1), float_as_decimal(d.y2 - d.y1)};
      result.score = float_as_decimal(d.score);
      run.detections.push_back(result);
    }
    const Clock::time_point finished = Clock::now();
    preprocess_ms.push_back(milliseconds_between(start, preprocessed));
    model_ms.push_back(milliseconds_between(preprocessed, ran));
    postprocess_ms.push_back(milliseconds_between(ran, finished));
    run.image_ids.push_back(info.id);
    if (image.width != info.width || image.height != info.height)
      run.size_mismatches.push_back(info.file_name);

    if (!options.save_vis.empty()) {
      std::vector<LabeledBox> labeled;
      for (const cli::Detection& d : boxes) {
        if (d.score < options.vis_confidence) continue;
        char score[16];
        std::snprintf(score, sizeof score, " %.2f", static_cast<double>(d.score));
        labeled.push_back({d.x1, d.y1, d.x2, d.y2, d.class_id,
                           cli::class_label(category_names, d.class_id) + score});
      }
      draw_boxes(image, labeled);
      write_image(image,
                  (fs::path(options.save_vis) / fs::path(info.file_name).stem()).string() + ".jpg");
    }
    progress.update(n + 1);
  }
  run.times.preprocess = latency_stats(preprocess_ms);
  run.times.model = latency_stats(model_ms);
  run.times.postprocess = latency_stats(postprocess_ms);

  EvalSelection eval_selection;
  eval_selection.image_ids = run.image_ids;
  run.eval = evaluate_bboxes(selection.dataset, run.detections, eval_selection);
  return run;
}

}  // namespace nibble::coco
