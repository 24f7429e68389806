// COCOeval port vs pycocotools: the committed fixtures (scripts/make_coco_fixtures.py ran
// pycocotools on them) and small hand-computed cases.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "frontend/onnx/onnx_loader.h"
#include "nibble/error.h"
#include "tools/nibble/coco/cocoeval.h"
#include "tools/nibble/coco/dataset.h"

namespace fs = std::filesystem;
using namespace nibble::coco;

namespace {

const fs::path kFixtures = fs::path(NIBBLE_SOURCE_DIR) / "tests" / "fixtures" / "coco";

Dataset one_category_dataset(std::vector<Annotation> annotations) {
  Dataset dataset;
  dataset.images = {{1, "a.jpg", 100, 100}, {2, "b.jpg", 100, 100}};
  dataset.categories = {{7, "thing"}};
  dataset.annotations = std::move(annotations);
  return dataset;
}

Annotation object(int64_t id, int64_t image, Box box, bool crowd = false) {
  return {id, image, 7, box, box.width * box.height, crowd};
}

}  // namespace

TEST_CASE("COCOeval equals pycocotools on every fixture case, all 12 stats") {
  const Dataset ground_truth = load_dataset((kFixtures / "instances.json").string());
  const nlohmann::json expected = nlohmann::json::parse(
      nibble::onnx_frontend::read_file((kFixtures / "expected.json").string()));
  REQUIRE(expected["cases"].size() >= 8);
  for (const nlohmann::json& c : expected["cases"]) {
    const std::string name = c["name"].get<std::string>();
    CAPTURE(name);
    const std::vector<Detection> detections =
        load_detections((kFixtures / c["detections"].get<std::string>()).string());
    EvalSelection selection;
    if (!c["image_ids"].is_null()) selection.image_ids = c["image_ids"].get<std::vector<int64_t>>();
    const EvalResult result = evaluate_bboxes(ground_truth, detections, selection);
    const std::vector<double> stats = c["stats"].get<std::vector<double>>();
    REQUIRE(stats.size() == kNumStats);
    for (size_t i = 0; i < kNumStats; ++i) {
      CAPTURE(i);
      CHECK(std::abs(result.stats[i] - stats[i]) <= 1e-6);
    }
  }
}

TEST_CASE("COCOeval thresholds are np.linspace's exact doubles") {
  const EvalResult result = evaluate_bboxes(one_category_dataset({}), {});
  REQUIRE(result.iou_thresholds.size() == 10);
  REQUIRE(result.recall_thresholds.size() == 101);
  CHECK(result.iou_thresholds[0] == 0.5);
  CHECK(result.iou_thresholds[5] == 0.75);               // summarize() selects it with ==
  CHECK(result.iou_thresholds[8] == 0.8999999999999999);  // as numpy prints it
  CHECK(result.iou_thresholds[9] == 0.95);
  CHECK(result.recall_thresholds[3] == 0.03);
  CHECK(result.recall_thresholds[100] == 1.0);
}

TEST_CASE("COCOeval: one detection at IoU 0.6 counts at three of ten thresholds") {
  // Ground truth 10x10, detection the top 10x6 of it: IoU exactly 0.6, matched at
  // 0.50, 0.55 and 0.60 (a match needs IoU >= threshold).
  const Dataset gt = one_category_dataset({object(1, 1, {0, 0, 10, 10})});
  const EvalResult result = evaluate_bboxes(gt, {{1, 7, {0, 0, 10, 6}, 0.9}});
  CHECK(result.stats[kAP] == doctest::Approx(0.3));
  CHECK(result.stats[kAP50] == doctest::Approx(1.0));
  CHECK(result.stats[kAP75] == doctest::Approx(0.0));
  CHECK(result.stats[kAPSmall] == doctest::Approx(0.3));  // area 100 < 32^2
  CHECK(result.stats[kAPMedium] == -1);  // no ground truth in the range
  CHECK(result.stats[kAPLarge] == -1);
  CHECK(result.stats[kAR1] == doctest::Approx(0.3));
  CHECK(result.stats[kAR100] == doctest::Approx(0.3));
}

TEST_CASE("COCOeval: precision is interpolated over the ranked detections of all images") {
  // Two objects on two images; ranked detections: hit (0.9), miss (0.8), hit (0.7). Precision
  // 1 up to recall 0.5, then 2/3 up to recall 1: AP = (51 * 1 + 50 * 2/3) / 101.
  const Dataset gt =
      one_category_dataset({object(1, 1, {10, 10, 40, 40}), object(2, 2, {50, 50, 40, 40})});
  const std::vector<Detection> detections = {{1, 7, {10, 10, 40, 40}, 0.9},
                                             {2, 7, {0, 0, 20, 20}, 0.8},
                                             {2, 7, {50, 50, 40, 40}, 0.7}};
  const EvalResult result = evaluate_bboxes(gt, detections);
  CHECK(result.stats[kAP50] == doctest::Approx((51.0 + 50.0 * 2.0 / 3.0) / 101.0));
  CHECK(result.stats[kAP] == doctest::Approx((51.0 + 50.0 * 2.0 / 3.0) / 101.0));
  // One detection per image: the 0.8 miss is the best of image 2, so recall is 1/2.
  CHECK(result.stats[kAR1] == doctest::Approx(0.5));
  CHECK(result.stats[kAR10] == doctest::Approx(1.0));
}

TEST_CASE("COCOeval: detections inside a crowd region are ignored, not false positives") {
  // IoU with a crowd region is intersection / detection area, so a small box inside it matches.
  const Dataset gt = one_category_dataset(
      {object(1, 1, {0, 0, 80, 80}, /*crowd=*/true), object(2, 1, {85, 85, 10, 10})});
  const std::vector<Detection> detections = {{1, 7, {10, 10, 20, 20}, 0.95},
                                             {1, 7, {40, 40, 20, 20}, 0.9},
                                             {1, 7, {85, 85, 10, 10}, 0.5}};
  const EvalResult result = evaluate_bboxes(gt, detections);
  CHECK(result.stats[kAP] == doctest::Approx(1.0));
  CHECK(result.stats[kAR100] == doctest::Approx(1.0));

  // Only a crowd region: no ground truth counts, every summary is -1.
  const EvalResult crowd_only =
      evaluate_bboxes(one_category_dataset({object(1, 1, {0, 0, 80, 80}, true)}), detections);
  for (double stat : crowd_only.stats) CHECK(stat == -1);
}

TEST_CASE("COCOeval: equal scores keep the results file's order") {
  // Same score, the miss listed first: ranked miss then hit, precision 1/2 at recall 1.
  const Dataset gt = one_category_dataset({object(1, 1, {10, 10, 40, 40})});
  const EvalResult miss_first = evaluate_bboxes(
      gt, {{1, 7, {60, 60, 30, 30}, 0.5}, {1, 7, {10, 10, 40, 40}, 0.5}});
  CHECK(miss_first.stats[kAP] == doctest::Approx(0.5));
  const EvalResult hit_first = evaluate_bboxes(
      gt, {{1, 7, {10, 10, 40, 40}, 0.5}, {1, 7, {60, 60, 30, 30}, 0.5}});
  CHECK(hit_first.stats[kAP] == doctest::Approx(1.0));
}

TEST_CASE("COCOeval: selection, unknown categories and images") {
  const Dataset gt =
      one_category_dataset({object(1, 1, {10, 10, 40, 40}), object(2, 2, {50, 50, 40, 40})});
  // Category 99 is not in the ground truth: ignored, as pycocotools' catIds filter does.
  const std::vector<Detection> detections = {{1, 7, {10, 10, 40, 40}, 0.9},
                                             {1, 99, {0, 0, 5, 5}, 0.99}};
  CHECK(evaluate_bboxes(gt, detections).stats[kAP] == doctest::Approx(51.0 / 101.0));
  EvalSelection only_first;
  only_first.image_ids = {1};
  CHECK(evaluate_bboxes(gt, detections, only_first).stats[kAP] == doctest::Approx(1.0));

  // An image the ground truth does not have is an error, as in pycocotools' loadRes.
  CHECK_THROWS_AS(evaluate_bboxes(gt, {{3, 7, {0, 0, 5, 5}, 0.5}}), nibble::Error);
}

TEST_CASE("format_stats prints pycocotools' lines") {
  const Dataset gt = one_category_dataset({object(1, 1, {0, 0, 10, 10})});
  const std::string text = format_stats(evaluate_bboxes(gt, {{1, 7, {0, 0, 10, 6}, 0.9}}));
  CHECK(text.find(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.300\n") == 0);
  CHECK(text.find(" Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 1.000\n") !=
        std::string::npos);
  CHECK(text.find(" Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000\n") !=
        std::string::npos);
}

TEST_CASE("mean_precision_curve averages categories with ground truth") {
  const Dataset gt = one_category_dataset({object(1, 1, {0, 0, 10, 10})});
  const EvalResult result = evaluate_bboxes(gt, {{1, 7, {0, 0, 10, 6}, 0.9}});
  const std::vector<double> at_50 = mean_precision_curve(result, 0);
  REQUIRE(at_50.size() == 101);
  // tp / (tp + fp + np.spacing(1)): one hit gives 1 - 2^-52, as in pycocotools.
  CHECK(at_50.front() == doctest::Approx(1.0));
  CHECK(at_50.back() == doctest::Approx(1.0));
  const std::vector<double> mean = mean_precision_curve(result, -1);
  CHECK(mean[50] == doctest::Approx(0.3));
}

TEST_CASE("COCO files: malformed input is a clear InvalidArgument") {
  auto message_of = [](const std::string& json) {
    try {
      parse_dataset(json, "gt.json");
    } catch (const nibble::Error& e) {
      CHECK(e.kind() == nibble::ErrorKind::InvalidArgument);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message_of("{").find("'gt.json': not valid JSON") == 0);
  CHECK(message_of(R"({"categories": []})").find("has no 'images'") != std::string::npos);
  CHECK(message_of(R"({"images": [{"id": 1, "file_name": "a", "width": 1, "height": 1},
                                  {"id": 1, "file_name": "b", "width": 1, "height": 1}],
                       "categories": []})")
            .find("images[1] repeats image id 1") != std::string::npos);
  CHECK(message_of(R"({"images": [], "categories": [{"id": 1, "name": "x"}],
                       "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                                        "bbox": [1, 2, 3], "area": 1}]})")
            .find("annotations[0].bbox must be [x, y, width, height]") != std::string::npos);
  CHECK_THROWS_AS(parse_detections(R"({"image_id": 1})", "dt.json"), nibble::Error);
  CHECK_THROWS_AS(parse_detections(R"([{"image_id": 1, "category_id": 1, "bbox": [0,0,1,1]}])",
                                   "dt.json"),
                  nibble::Error);
  CHECK_THROWS_AS(load_dataset("/nonexistent/instances.json"), nibble::Error);
}

TEST_CASE("COCO files: categories sorted, class index -> category id, results round trip") {
  const Dataset dataset = parse_dataset(
      R"({"images": [{"id": 5, "file_name": "a.jpg", "width": 4, "height": 3}],
          "categories": [{"id": 90, "name": "toothbrush"}, {"id": 1, "name": "person"},
                         {"id": 13, "name": "stop sign"}]})",
      "gt.json");
  CHECK(dataset.annotations.empty());
  CHECK(class_to_category(dataset) == std::vector<int64_t>{1, 13, 90});
  CHECK(dataset.categories[2].name == "toothbrush");

  const std::vector<Detection> detections = {{5, 13, {0.5, 1.25, 2, 1e-3}, 0.123456789},
                                             {5, 1, {0, 0, 4, 3}, 1}};
  const std::vector<Detection> back = parse_detections(detections_to_json(detections), "x");
  REQUIRE(back.size() == 2);
  CHECK(back[0].image_id == 5);
  CHECK(back[0].category_id == 13);
  CHECK(back[0].bbox.y == 1.25);
  CHECK(back[0].bbox.height == 1e-3);
  CHECK(back[0].score == 0.123456789);
  CHECK(parse_detections(detections_to_json({}), "x").empty());
}
