#include "tools/nibble/detections.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include "nibble/error.h"

namespace nibble::cli {

namespace {

// Ultralytics shifts each class's boxes by class * 7680 pixels (its largest supported image
// side) so that one NMS pass never lets boxes of different classes suppress each other.
constexpr float kClassOffset = 7680.0f;

std::vector<float> to_floats(const Tensor& tensor) {
  std::vector<float> values(static_cast<size_t>(tensor.numel()));
  switch (tensor.dtype()) {
    case DType::F32:
      std::copy_n(tensor.data<float>(), values.size(), values.begin());
      break;
    case DType::F16:
      std::transform(tensor.data<uint16_t>(), tensor.data<uint16_t>() + values.size(),
                     values.begin(), half_to_float);
      break;
    case DType::F64:
      std::transform(tensor.data<double>(), tensor.data<double>() + values.size(), values.begin(),
                     [](double v) { return static_cast<float>(v); });
      break;
    default:
      throw Error(ErrorKind::InvalidArgument,
                  std::string("detection output must be float, not ") + dtype_name(tensor.dtype()));
  }
  return values;
}

float iou(const Detection& a, const Detection& b) {
  const float overlap_w = std::max(0.0f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  const float overlap_h = std::max(0.0f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  const float overlap = overlap_w * overlap_h;
  const float area_a = (a.x2 - a.x1) * (a.y2 - a.y1);
  const float area_b = (b.x2 - b.x1) * (b.y2 - b.y1);
  const float union_area = area_a + area_b - overlap;
  return union_area > 0 ? overlap / union_area : 0.0f;
}

std::vector<Detection> decode_end_to_end(const std::vector<float>& rows, int64_t count,
                                         const DetectionOptions& options) {
  std::vector<Detection> detections;
  for (int64_t i = 0; i < count; ++i) {
    if (static_cast<int64_t>(detections.size()) >= options.max_detections) break;
    const float* row = rows.data() + i * 6;
    const bool valid_class =
        row[5] >= 0 && row[5] < static_cast<float>(std::numeric_limits<int>::max());
    if (!(row[4] > options.confidence) || !valid_class) continue;
    detections.push_back(
        {row[0], row[1], row[2], row[3], row[4], static_cast<int>(std::lround(row[5]))});
  }
  return detections;
}

std::vector<Detection> decode_class_scores(const std::vector<float>& values, int64_t classes,
                                           int64_t anchors, const DetectionOptions& options) {
  // Column i holds anchor i: values[k * anchors + i] for k = cx, cy, w, h, score_0, ...
  auto at = [&](int64_t k, int64_t i) { return values[static_cast<size_t>(k * anchors + i)]; };
  std::vector<Detection> candidates;
  for (int64_t i = 0; i < anchors; ++i) {
    int64_t best = 0;
    for (int64_t c = 1; c < classes; ++c)
      if (at(4 + c, i) > at(4 + best, i)) best = c;
    const float score = at(4 + best, i);
    if (!(score > options.confidence)) continue;
    const float cx = at(0, i), cy = at(1, i), half_w = at(2, i) / 2, half_h = at(3, i) / 2;
    candidates.push_back(
        {cx - half_w, cy - half_h, cx + half_w, cy + half_h, score, static_cast<int>(best)});
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  if (static_cast<int64_t>(candidates.size()) > options.max_candidates)
    candidates.resize(static_cast<size_t>(std::max(0, options.max_candidates)));
  return non_max_suppression(std::move(candidates), options.iou, options.max_detections);
}

}  // namespace

std::optional<DetectionLayout> detection_layout(const Shape& shape) {
  if (shape.size() != 3 || shape[0] != 1 || shape[1] <= 0 || shape[2] <= 0) return std::nullopt;
  if (shape[2] == 6) return DetectionLayout::EndToEnd;
  if (shape[1] > 4) return DetectionLayout::ClassScores;
  return std::nullopt;
}

std::vector<Detection> decode_detections(const Tensor& output, const DetectionOptions& options) {
  const std::optional<DetectionLayout> layout =
      options.layout ? options.layout : detection_layout(output.shape());
  const Shape& shape = output.shape();
  const bool fits = layout && shape.size() == 3 && shape[0] == 1 &&
                    (*layout == DetectionLayout::EndToEnd ? shape[2] == 6 : shape[1] > 4);
  if (!fits) {
    std::string expected = "[1,N,6] or [1,4+classes,N]";
    if (options.layout == DetectionLayout::EndToEnd) expected = "[1,N,6] (end-to-end)";
    if (options.layout == DetectionLayout::ClassScores) expected = "[1,4+classes,N] (class scores)";
    throw Error(ErrorKind::InvalidArgument, "a detection output has shape " + expected + ", not " +
                                                shape_str(shape));
  }
  const std::vector<float> values = to_floats(output);
  if (*layout == DetectionLayout::EndToEnd)
    return decode_end_to_end(values, output.dim(1), options);
  return decode_class_scores(values, output.dim(1) - 4, output.dim(2), options);
}

std::vector<Detection> non_max_suppression(std::vector<Detection> boxes, float iou_threshold,
                                           int max_detections) {
  std::stable_sort(boxes.begin(), boxes.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  // IoU is computed on offset boxes, in float, as Ultralytics does, so borderline overlaps
  // round the same way.
  std::vector<Detection> shifted = boxes;
  for (Detection& box : shifted) {
    const float offset = static_cast<float>(box.class_id) * kClassOffset;
    box.x1 += offset;
    box.y1 += offset;
    box.x2 += offset;
    box.y2 += offset;
  }
  std::vector<Detection> kept;
  std::vector<bool> suppressed(boxes.size(), false);
  for (size_t i = 0; i < boxes.size(); ++i) {
    if (static_cast<int>(kept.size()) >= max_detections) break;
    if (suppressed[i]) continue;
    kept.push_back(boxes[i]);
    for (size_t j = i + 1; j < boxes.size(); ++j)
      if (!suppressed[j] && iou(shifted[i], shifted[j]) > iou_threshold) suppressed[j] = true;
  }
  return kept;
}

void unletterbox(std::vector<Detection>& detections, const images::Letterbox& letterbox,
                 int image_width, int image_height) {
  const auto scale = static_cast<float>(letterbox.scale);
  const auto width = static_cast<float>(image_width);
  const auto height = static_cast<float>(image_height);
  for (Detection& d : detections) {
    d.x1 = std::clamp((d.x1 - letterbox.pad_left) / scale, 0.0f, width);
    d.x2 = std::clamp((d.x2 - letterbox.pad_left) / scale, 0.0f, width);
    d.y1 = std::clamp((d.y1 - letterbox.pad_top) / scale, 0.0f, height);
    d.y2 = std::clamp((d.y2 - letterbox.pad_top) / scale, 0.0f, height);
  }
}

std::vector<std::string> load_class_names(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw Error(ErrorKind::Io, "cannot open '" + path + "': " + std::strerror(errno));
  std::vector<std::string> names;
  for (std::string line; std::getline(file, line);) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    names.push_back(line);
  }
  while (!names.empty() && names.back().empty()) names.pop_back();
  return names;
}

std::string class_label(const std::vector<std::string>& names, int class_id) {
  if (class_id >= 0 && static_cast<size_t>(class_id) < names.size() &&
      !names[static_cast<size_t>(class_id)].empty())
    return names[static_cast<size_t>(class_id)];
  return "class " + std::to_string(class_id);
}

}  // namespace nibble::cli
