#include "tools/nibble/coco/dataset.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "frontend/onnx/onnx_loader.h"
#include "nibble/error.h"

namespace nibble::coco {

namespace {

using Json = nlohmann::json;

[[noreturn]] void malformed(const std::string& what, const std::string& message) {
  throw Error(ErrorKind::InvalidArgument, "'" + what + "': " + message);
}

Json parse_json(const std::string& text, const std::string& what) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    malformed(what, std::string("not valid JSON: ") + e.what());
  }
}

// `where` names the entry in messages, e.g. "annotations[12]".
const Json& field(const Json& object, const char* key, const std::string& what,
                  const std::string& where) {
  if (!object.is_object()) malformed(what, where + " is not a JSON object");
  const auto it = object.find(key);
  if (it == object.end()) malformed(what, where + " has no '" + key + "'");
  return *it;
}

int64_t integer_field(const Json& object, const char* key, const std::string& what,
                      const std::string& where) {
  const Json& value = field(object, key, what, where);
  if (value.is_number_integer()) return value.get<int64_t>();
  // Some tools write ids as 397133.0.
  if (value.is_number_float()) {
    const double number = value.get<double>();
    if (std::abs(number) < 9e18 && number == std::trunc(number)) return static_cast<int64_t>(number);
  }
  malformed(what, where + "." + key + " must be an integer, got " + value.dump());
}

double number_field(const Json& object, const char* key, const std::string& what,
                    const std::string& where) {
  const Json& value = field(object, key, what, where);
  if (!value.is_number()) malformed(what, where + "." + key + " must be a number, got " + value.dump());
  return value.get<double>();
}

Box box_field(const Json& object, const std::string& what, const std::string& where) {
  const Json& value = field(object, "bbox", what, where);
  if (!value.is_array() || value.size() != 4 ||
      !std::all_of(value.begin(), value.end(), [](const Json& v) { return v.is_number(); }))
    malformed(what, where + ".bbox must be [x, y, width, height], got " + value.dump());
  return {value[0].get<double>(), value[1].get<double>(), value[2].get<double>(),
          value[3].get<double>()};
}

const Json& array_field(const Json& root, const char* key, const std::string& what) {
  const Json& value = field(root, key, what, "the file");
  if (!value.is_array()) malformed(what, std::string("'") + key + "' must be an array");
  return value;
}

std::string entry(const char* list, size_t index) {
  return std::string(list) + "[" + std::to_string(index) + "]";
}

}  // namespace

Dataset parse_dataset(const std::string& json_text, const std::string& what) {
  const Json root = parse_json(json_text, what);
  Dataset dataset;

  std::set<int64_t> image_ids;
  const Json& images = array_field(root, "images", what);
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string where = entry("images", i);
    ImageInfo image;
    image.id = integer_field(images[i], "id", what, where);
    const Json& file_name = field(images[i], "file_name", what, where);
    if (!file_name.is_string()) malformed(what, where + ".file_name must be a string");
    image.file_name = file_name.get<std::string>();
    image.width = static_cast<int>(integer_field(images[i], "width", what, where));
    image.height = static_cast<int>(integer_field(images[i], "height", what, where));
    if (!image_ids.insert(image.id).second)
      malformed(what, where + " repeats image id " + std::to_string(image.id));
    dataset.images.push_back(std::move(image));
  }

  std::set<int64_t> category_ids;
  const Json& categories = array_field(root, "categories", what);
  for (size_t i = 0; i < categories.size(); ++i) {
    const std::string where = entry("categories", i);
    Category category;
    category.id = integer_field(categories[i], "id", what, where);
    const Json& name = field(categories[i], "name", what, where);
    if (!name.is_string()) malformed(what, where + ".name must be a string");
    category.name = name.get<std::string>();
    if (!category_ids.insert(category.id).second)
      malformed(what, where + " repeats category id " + std::to_string(category.id));
    dataset.categories.push_back(std::move(category));
  }
  std::sort(dataset.categories.begin(), dataset.categories.end(),
            [](const Category& a, const Category& b) { return a.id < b.id; });

  // A file with images but no objects may leave out 'annotations'.
  if (root.contains("annotations")) {
    std::set<int64_t> annotation_ids;
    const Json& annotations = array_field(root, "annotations", what);
    for (size_t i = 0; i < annotations.size(); ++i) {
      const std::string where = entry("annotations", i);
      const Json& object = annotations[i];
      Annotation annotation;
      annotation.id = integer_field(object, "id", what, where);
      annotation.image_id = integer_field(object, "image_id", what, where);
      annotation.category_id = integer_field(object, "category_id", what, where);
      annotation.bbox = box_field(object, what, where);
      annotation.area = number_field(object, "area", what, where);
      // pycocotools treats a missing 'iscrowd' as 0 for ignoring and any non-zero value as crowd.
      if (object.contains("iscrowd")) {
        const Json& crowd = object["iscrowd"];
        if (!crowd.is_number() && !crowd.is_boolean())
          malformed(what, where + ".iscrowd must be 0 or 1, got " + crowd.dump());
        annotation.iscrowd = crowd.is_boolean() ? crowd.get<bool>() : crowd.get<double>() != 0;
      }
      // pycocotools indexes annotations by id: a repeated id would silently replace another.
      if (!annotation_ids.insert(annotation.id).second)
        malformed(what, where + " repeats annotation id " + std::to_string(annotation.id));
      dataset.annotations.push_back(annotation);
    }
  }
  return dataset;
}

Dataset load_dataset(const std::string& path) {
  return parse_dataset(onnx_frontend::read_file(path), path);
}

std::vector<Detection> parse_detections(const std::string& json_text, const std::string& what) {
  const Json root = parse_json(json_text, what);
  if (!root.is_array()) malformed(what, "a results file is a JSON array of detections");
  std::vector<Detection> detections;
  detections.reserve(root.size());
  for (size_t i = 0; i < root.size(); ++i) {
    const std::string where = "detection " + std::to_string(i);
    Detection detection;
    detection.image_id = integer_field(root[i], "image_id", what, where);
    detection.category_id = integer_field(root[i], "category_id", what, where);
    detection.bbox = box_field(root[i], what, where);
    detection.score = number_field(root[i], "score", what, where);
    detections.push_back(detection);
  }
  return detections;
}

std::vector<Detection> load_detections(const std::string& path) {
  return parse_detections(onnx_frontend::read_file(path), path);
}

std::string detections_to_json(const std::vector<Detection>& detections) {
  // One detection per line keeps large files diffable and greppable.
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < detections.size(); ++i) {
    const Detection& d = detections[i];
    const Json object = {{"image_id", d.image_id},
                         {"category_id", d.category_id},
                         {"bbox", {d.bbox.x, d.bbox.y, d.bbox.width, d.bbox.height}},
                         {"score", d.score}};
    out << (i ? ",\n " : "\n ") << object.dump();
  }
  out << (detections.empty() ? "]\n" : "\n]\n");
  return out.str();
}

std::vector<int64_t> class_to_category(const Dataset& dataset) {
  std::vector<int64_t> ids;
  for (const Category& category : dataset.categories) ids.push_back(category.id);
  return ids;  // categories are kept sorted by id
}

std::vector<int64_t> load_image_ids(const std::string& path) {
  const std::string text = onnx_frontend::read_file(path);
  const size_t first = text.find_first_not_of(" \t\r\n");
  std::vector<int64_t> ids;
  if (first != std::string::npos && text[first] == '[') {
    const Json root = parse_json(text, path);
    for (size_t i = 0; i < root.size(); ++i) {
      if (!root[i].is_number_integer())
        malformed(path, "entry " + std::to_string(i) + " is not an integer image id: " +
                            root[i].dump());
      ids.push_back(root[i].get<int64_t>());
    }
    return ids;
  }
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    const size_t begin = line.find_first_not_of(" \t\r");
    if (begin == std::string::npos) continue;
    const size_t end = line.find_last_not_of(" \t\r");
    const std::string token = line.substr(begin, end - begin + 1);
    size_t used = 0;
    int64_t id = 0;
    try {
      id = std::stoll(token, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != token.size())
      malformed(path, "line " + std::to_string(number) + " is not an integer image id: '" +
                          token + "'");
    ids.push_back(id);
  }
  return ids;
}

}  // namespace nibble::coco
