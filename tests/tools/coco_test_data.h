// A synthetic COCO dataset for the harness and CLI tests: images written with stb, an
// annotation file, and tiny ONNX "detectors" whose single output is a constant tensor.
#pragma once

#include <unistd.h>

#include <stb/stb_image_write.h>

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/model_builder.h"
#include "tools/nibble/coco/harness.h"

namespace nibble::testing {

// A temporary COCO layout: val2017/{a,b}.png (100x50, ids 1 and 2) and
// annotations/instances_val2017.json with one object, on image 1, of category 20 at
// [10, 5, 50, 30]; categories 5, 9, 20 (model classes 0, 1, 2).
class SyntheticCoco {
 public:
  SyntheticCoco()
      : root_(std::filesystem::temp_directory_path() /
              ("nibble_coco_test_" + std::to_string(getpid()))) {
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "val2017");
    std::filesystem::create_directories(root_ / "annotations");
    std::vector<uint8_t> gray(100 * 50 * 3, 90);
    REQUIRE(stbi_write_png((root_ / "val2017" / "a.png").c_str(), 100, 50, 3, gray.data(), 300));
    REQUIRE(stbi_write_png((root_ / "val2017" / "b.png").c_str(), 100, 50, 3, gray.data(), 300));
    const nlohmann::json annotations = {
        {"images",
         {{{"id", 1}, {"file_name", "a.png"}, {"width", 100}, {"height", 50}},
          {{"id", 2}, {"file_name", "b.png"}, {"width", 100}, {"height", 50}}}},
        {"categories",
         {{{"id", 20}, {"name", "zebra"}}, {{"id", 5}, {"name", "airplane"}},
          {{"id", 9}, {"name", "boat"}}}},
        {"annotations",
         {{{"id", 1}, {"image_id", 1}, {"category_id", 20}, {"bbox", {10, 5, 50, 30}},
           {"area", 1500}, {"iscrowd", 0}}}}};
    std::ofstream(root_ / "annotations" / "instances_val2017.json") << annotations.dump();
  }
  ~SyntheticCoco() { std::filesystem::remove_all(root_); }

  std::filesystem::path root() const { return root_; }

  // A model with input images [1,3,64,64] whose only output is this constant.
  std::string model(const std::string& name, const Shape& output_shape,
                    const std::vector<float>& output) const {
    ModelBuilder builder;
    builder.input("images", DType::F32, {1, 3, 64, 64});
    builder.initializer("detections", DType::F32, output_shape, output);
    builder.node("Identity", {"detections"}, {"output0"});
    builder.output("output0", DType::F32, output_shape);
    const std::filesystem::path path = root_ / name;
    std::ofstream(path, std::ios::binary) << builder.bytes();
    return path.string();
  }

  coco::ImageSet image_set() const {
    coco::ImageSet set;
    set.coco_root = root_.string();
    return set;
  }

 private:
  std::filesystem::path root_;
};

// 100x50 into 64x64: scale 0.64, the image fills rows 16..47. Object [10,5]-[60,35] in the
// original is [6.4,19.2]-[38.4,38.4] in the letterbox.
inline const std::vector<float> kEndToEndRows = {
    6.4f,  19.2f, 38.4f, 38.4f, 0.9f,    2,  // the object, class 2 = category 20
    0,     16,    10,    26,    0.0005f, 2,  // below --conf 0.001
    40,    20,    60,    40,    0.3f,    0,  // class 0 = category 5, which has no ground truth
};

}  // namespace nibble::testing
