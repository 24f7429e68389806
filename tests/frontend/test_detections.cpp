// YOLO output decoding: layouts, thresholds, class-aware NMS and mapping back to the image.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nibble/error.h"
#include "tests/asset_paths.h"
#include "tools/nibble/detections.h"

// The CLI's sources are built only into the nibble executable; compile the one under test here.

using nibble::DType;
using nibble::Shape;
using nibble::Tensor;
using nibble::cli::Detection;
using nibble::cli::DetectionLayout;
using nibble::cli::DetectionOptions;

namespace {

Tensor make_tensor(Shape shape, const std::vector<float>& values) {
  Tensor tensor(DType::F32, std::move(shape));
  REQUIRE(static_cast<size_t>(tensor.numel()) == values.size());
  std::copy(values.begin(), values.end(), tensor.data<float>());
  return tensor;
}

void check_box(const Detection& d, float x1, float y1, float x2, float y2) {
  CHECK(d.x1 == doctest::Approx(x1));
  CHECK(d.y1 == doctest::Approx(y1));
  CHECK(d.x2 == doctest::Approx(x2));
  CHECK(d.y2 == doctest::Approx(y2));
}

}  // namespace

TEST_CASE("detection_layout recognizes YOLO output shapes") {
  using nibble::cli::detection_layout;
  CHECK(detection_layout({1, 300, 6}) == DetectionLayout::EndToEnd);
  CHECK(detection_layout({1, 84, 8400}) == DetectionLayout::ClassScores);
  CHECK(detection_layout({1, 5, 2100}) == DetectionLayout::ClassScores);
  CHECK_FALSE(detection_layout({1, 4, 8400}).has_value());
  CHECK_FALSE(detection_layout({2, 84, 8400}).has_value());
  CHECK_FALSE(detection_layout({1, 1000}).has_value());
  CHECK_FALSE(detection_layout({1, 0, 6}).has_value());
}

TEST_CASE("end-to-end [1,N,6] rows are thresholded in model order") {
  const Tensor output = make_tensor({1, 4, 6}, {
                                                   10, 20, 30, 40, 0.9f,  2,  //
                                                   0,  0,  1,  1,  0.1f,  0,  // below 0.25
                                                   5,  5,  15, 15, 0.5f,  1,  //
                                                   1,  2,  3,  4,  0.25f, 7,  // not above 0.25
                                               });
  std::vector<Detection> detections = nibble::cli::decode_detections(output, DetectionOptions{});
  REQUIRE(detections.size() == 2);
  check_box(detections[0], 10, 20, 30, 40);
  CHECK(detections[0].score == doctest::Approx(0.9f));
  CHECK(detections[0].class_id == 2);
  CHECK(detections[1].class_id == 1);

  DetectionOptions one;
  one.max_detections = 1;
  CHECK(nibble::cli::decode_detections(output, one).size() == 1);
}

TEST_CASE("[1,4+C,N] outputs go through confidence, top-k and class-aware NMS") {
  // Three anchors (columns), two classes. Anchors 0 and 1 are class 0 boxes with IoU 360/440;
  // anchor 2 is the same box as anchor 1 but class 1.
  const Tensor output = make_tensor({1, 6, 3}, {
                                                   50, 52, 52,     // cx
                                                   50, 50, 50,     // cy
                                                   20, 20, 20,     // w
                                                   20, 20, 20,     // h
                                                   0.9f, 0.8f, 0,  // class 0
                                                   0.1f, 0, 0.7f,  // class 1
                                               });
  SUBCASE("IoU 0.82 > 0.7 suppresses within the class only") {
    const auto detections = nibble::cli::decode_detections(output, DetectionOptions{});
    REQUIRE(detections.size() == 2);
    check_box(detections[0], 40, 40, 60, 60);
    CHECK(detections[0].class_id == 0);
    check_box(detections[1], 42, 40, 62, 60);
    CHECK(detections[1].class_id == 1);
    CHECK(detections[1].score == doctest::Approx(0.7f));
  }
  SUBCASE("a looser IoU threshold keeps both class 0 boxes, best first") {
    DetectionOptions options;
    options.iou = 0.9f;
    const auto detections = nibble::cli::decode_detections(output, options);
    REQUIRE(detections.size() == 3);
    CHECK(detections[0].score == doctest::Approx(0.9f));
    CHECK(detections[1].score == doctest::Approx(0.8f));
    CHECK(detections[2].score == doctest::Approx(0.7f));
  }
  SUBCASE("only the best max_candidates boxes enter NMS") {
    DetectionOptions options;
    options.max_candidates = 1;
    CHECK(nibble::cli::decode_detections(output, options).size() == 1);
  }
  SUBCASE("the confidence threshold applies to the best class score") {
    DetectionOptions options;
    options.confidence = 0.75f;
    const auto detections = nibble::cli::decode_detections(output, options);
    REQUIRE(detections.size() == 1);
    CHECK(detections[0].score == doctest::Approx(0.9f));
  }
}

TEST_CASE("non_max_suppression keeps boxes whose IoU equals the threshold") {
  // Two 10x10 boxes overlapping by a third: IoU = 50 / 150.
  std::vector<Detection> boxes = {{0, 0, 10, 10, 0.6f, 0}, {0, 5, 10, 15, 0.8f, 0}};
  CHECK(nibble::cli::non_max_suppression(boxes, 1.0f / 3.0f, 300).size() == 2);
  const auto kept = nibble::cli::non_max_suppression(boxes, 0.3f, 300);
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].score == doctest::Approx(0.8f));
  CHECK(nibble::cli::non_max_suppression(boxes, 1.0f, 1).size() == 1);
}

TEST_CASE("decode_detections rejects outputs that are not detections") {
  CHECK_THROWS_AS(nibble::cli::decode_detections(Tensor(DType::F32, {1, 10}), {}), nibble::Error);
  CHECK_THROWS_AS(nibble::cli::decode_detections(Tensor(DType::I64, {1, 300, 6}), {}),
                  nibble::Error);
}

TEST_CASE("unletterbox maps boxes to image pixels and clips them") {
  nibble::images::Letterbox letterbox;
  letterbox.scale = 0.5;
  letterbox.pad_left = 10;
  letterbox.pad_top = 20;
  std::vector<Detection> detections = {{10, 20, 60, 70, 0.9f, 0}, {0, 0, 1000, 1000, 0.8f, 1}};
  nibble::cli::unletterbox(detections, letterbox, 300, 150);
  check_box(detections[0], 0, 0, 100, 100);
  check_box(detections[1], 0, 0, 300, 150);
}

TEST_CASE("class names are read one per line") {
  const auto path = std::filesystem::temp_directory_path() / "nibble_test_classes.names";
  std::ofstream(path) << "person\nbicycle  \r\n\ncar\n\n";
  const std::vector<std::string> names = nibble::cli::load_class_names(path.string());
  std::filesystem::remove(path);
  CHECK(names == std::vector<std::string>{"person", "bicycle", "", "car"});
  CHECK(nibble::cli::class_label(names, 1) == "bicycle");
  CHECK(nibble::cli::class_label(names, 2) == "class 2");
  CHECK(nibble::cli::class_label(names, 9) == "class 9");
  CHECK_THROWS_AS(nibble::cli::load_class_names("/nonexistent/coco.names"), nibble::Error);

  const std::string coco = nibble::testing::asset("images/coco.names");
  if (coco.empty()) {
    MESSAGE("SKIPPED: images/coco.names not found under " << nibble::testing::assets_dir());
    return;
  }
  const std::vector<std::string> coco_names = nibble::cli::load_class_names(coco);
  REQUIRE(coco_names.size() == 80);
  CHECK(coco_names[0] == "person");
  CHECK(coco_names[79] == "toothbrush");
}
