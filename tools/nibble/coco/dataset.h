// COCO ground truth (instances_*.json) and detection results (the COCO results format), as
// pycocotools reads them for bounding-box evaluation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nibble::coco {

// COCO box: left, top, width, height in original-image pixels.
struct Box {
  double x = 0, y = 0, width = 0, height = 0;
};

struct ImageInfo {
  int64_t id = 0;
  std::string file_name;
  int width = 0;
  int height = 0;
};

struct Category {
  int64_t id = 0;
  std::string name;
};

struct Annotation {
  int64_t id = 0;
  int64_t image_id = 0;
  int64_t category_id = 0;
  Box bbox;
  double area = 0;  // the file's 'area' (of the segmentation, not the box), as pycocotools uses it
  bool iscrowd = false;
};

struct Dataset {
  std::vector<ImageInfo> images;         // in file order
  std::vector<Category> categories;      // sorted by id
  std::vector<Annotation> annotations;   // in file order (pycocotools keeps it per image)
};

// One detection in the COCO results format.
struct Detection {
  int64_t image_id = 0;
  int64_t category_id = 0;
  Box bbox;
  double score = 0;
};

// Parses instances_*.json. Throws Error(Io) when the file cannot be read and
// Error(InvalidArgument) naming the file and the entry at fault when it is malformed
// (duplicate image or annotation ids, missing fields, wrong types).
Dataset load_dataset(const std::string& path);
// Same, from the JSON text; `what` names it in error messages.
Dataset parse_dataset(const std::string& json_text, const std::string& what);

// Reads a COCO results file: a JSON array of {image_id, category_id, bbox, score}.
std::vector<Detection> load_detections(const std::string& path);
std::vector<Detection> parse_detections(const std::string& json_text, const std::string& what);
// The COCO results format, one object per detection (what load_detections reads back).
std::string detections_to_json(const std::vector<Detection>& detections);

// Model class index -> COCO category id: the i-th category in id order. For the 80 COCO classes
// this is Ultralytics' coco80_to_coco91_class() (1..90 with ten ids unused).
std::vector<int64_t> class_to_category(const Dataset& dataset);

// Image ids from a file: a JSON array of integers, or one integer per line.
std::vector<int64_t> load_image_ids(const std::string& path);

}  // namespace nibble::coco
