// Decoding of YOLO detection outputs into boxes, following Ultralytics' postprocessing.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "frontend/images/image.h"
#include "nibble/tensor.h"

namespace nibble::cli {

struct Detection {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // corners in pixels
  float score = 0;
  int class_id = 0;
};

enum class DetectionLayout {
  EndToEnd,     // [1, N, 6]: x1, y1, x2, y2, score, class per row, already suppressed (YOLOv10)
  ClassScores,  // [1, 4 + C, N]: cx, cy, w, h and C class scores per column (YOLOv8, YOLO11)
};

// The layout of a YOLO output of this shape, if it is one.
std::optional<DetectionLayout> detection_layout(const Shape& shape);

// Ultralytics' predict defaults.
struct DetectionOptions {
  float confidence = 0.25f;  // keep scores above this
  float iou = 0.7f;          // suppress boxes overlapping a better one of its class by more
  int max_detections = 300;
  int max_candidates = 30000;  // best-scoring boxes that enter NMS
  // How to read the output; unset: from its shape (detection_layout). Set it for a shape that
  // reads both ways, e.g. [1,10,6].
  std::optional<DetectionLayout> layout;
};

// Boxes in the model's input pixels (the letterboxed image), best first. Throws
// Error(InvalidArgument) when the tensor is not a detection output (of the forced layout).
std::vector<Detection> decode_detections(const Tensor& output, const DetectionOptions& options);

// Greedy class-aware NMS: a box is dropped when it overlaps a higher-scoring kept box of the same
// class with IoU > iou. Returns at most max_detections boxes, best first.
std::vector<Detection> non_max_suppression(std::vector<Detection> boxes, float iou,
                                           int max_detections);

// Maps boxes from letterboxed pixels to original-image pixels, clipped to the image.
void unletterbox(std::vector<Detection>& detections, const images::Letterbox& letterbox,
                 int image_width, int image_height);

// One class name per line (Darknet .names files such as coco.names); throws Error(Io).
std::vector<std::string> load_class_names(const std::string& path);
// The class name, or "class <id>" when there is none.
std::string class_label(const std::vector<std::string>& names, int class_id);

}  // namespace nibble::cli
