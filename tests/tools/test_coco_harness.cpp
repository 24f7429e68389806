// The COCO harness end to end on a synthetic dataset: tiny ONNX models whose outputs are known
// boxes, images written here, hand-computed geometry and mAP; reports and comparison files; and a
// short real run on coco-mini when the shared assets are present.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "frontend/onnx/onnx_loader.h"
#include "nibble/error.h"
#include "tests/asset_paths.h"
#include "tests/tools/coco_test_data.h"
#include "tools/nibble/coco/harness.h"
#include "tools/nibble/coco/latency.h"
#include "tools/nibble/coco/report.h"
#include "tools/nibble/coco/svg_plot.h"

namespace fs = std::filesystem;
using namespace nibble;
using namespace nibble::coco;
using Json = nlohmann::json;
using nibble::testing::kEndToEndRows;
using nibble::testing::SyntheticCoco;

namespace {

HarnessOptions quiet_options() {
  HarnessOptions options;
  options.warmup = 1;
  options.threads = 1;
  return options;
}

Json read_json(const fs::path& path) {
  return Json::parse(onnx_frontend::read_file(path.string()));
}

}  // namespace

TEST_CASE("harness: letterbox, end-to-end decoding, category mapping and mAP, by hand") {
  SyntheticCoco coco;
  const std::string model = coco.model("e2e.onnx", {1, 3, 6}, kEndToEndRows);
  const Selection selection = select_images(coco.image_set());
  CHECK(selection.images.size() == 2);
  CHECK(fs::path(selection.images_dir).filename() == "val2017");

  const HarnessRun run = run_harness(model, selection, quiet_options());
  CHECK(run.decoder == "end-to-end [1,N,6]");
  CHECK(run.input_shape == Shape{1, 3, 64, 64});
  CHECK(run.image_ids == std::vector<int64_t>{1, 2});
  REQUIRE(run.detections.size() == 4);  // two per image, in decoded (best-first) order
  const Detection& object = run.detections[0];
  CHECK(object.image_id == 1);
  CHECK(object.category_id == 20);
  CHECK(object.bbox.x == doctest::Approx(10).epsilon(1e-5));
  CHECK(object.bbox.y == doctest::Approx(5).epsilon(1e-5));
  CHECK(object.bbox.width == doctest::Approx(50).epsilon(1e-5));
  CHECK(object.bbox.height == doctest::Approx(30).epsilon(1e-5));
  CHECK(object.score == 0.9);  // the float's shortest decimal, as detections.json holds it
  CHECK(run.detections[1].category_id == 5);
  // Category 20: one hit (image 1) ranked above one miss (image 2) at the same score: AP 1.
  // Categories 5 and 9 have no ground truth and do not count.
  CHECK(run.eval.stats[kAP] == doctest::Approx(1.0));
  CHECK(run.eval.stats[kAPMedium] == doctest::Approx(1.0));  // area 1500
  CHECK(run.eval.stats[kAPSmall] == -1);
  CHECK(run.times.model.count == 2);
  CHECK(run.size_mismatches.empty());

  SUBCASE("reports") {
    const fs::path out = coco.root() / "report";
    write_run_reports(out.string(), run, selection, quiet_options());
    const Json metrics = read_json(out / "metrics.json");
    CHECK(metrics["metrics"]["mAP_50_95"].get<double>() == doctest::Approx(1.0));
    CHECK(metrics["metrics"]["mAP_small"].get<double>() == -1);
    CHECK(metrics["metrics"]["num_images"] == 2);
    CHECK(metrics["metrics"]["num_detections"] == 4);
    for (const char* key : {"mean_ms", "median_ms", "p90_ms", "p99_ms", "throughput_fps"})
      CHECK(metrics["latency"].contains(key));
    CHECK(metrics["coco_stats"].size() == 12);
    CHECK(metrics["settings"]["conf"] == 0.001);
    CHECK(metrics["threads"] == 1);
    CHECK(load_detections((out / "detections.json").string()).size() == 4);
    const std::string summary = onnx_frontend::read_file((out / "summary.md").string());
    CHECK(summary.find("| 1.0000 |") != std::string::npos);
    CHECK(summary.find("IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000") !=
          std::string::npos);
  }

  SUBCASE("comparison tables and plots") {
    ComparedModel first{"fp32", {"FP32", 1000}, run};
    ComparedModel second{"slow, \"quoted\"", {"W8A8", 250}, run};
    second.run.times.model.median_ms = first.run.times.model.median_ms * 2;
    const fs::path out = coco.root() / "compare";
    write_compare_reports(out.string(), {first, second}, selection, quiet_options());
    const std::string csv = onnx_frontend::read_file((out / "compare.csv").string());
    CHECK(csv.find("name,scheme,model,mAP_50_95,mAP_50,latency_median_ms,latency_p90_ms,"
                   "speedup_vs_first,weight_bytes\n") == 0);
    CHECK(csv.find("\"slow, \"\"quoted\"\"\",W8A8,") != std::string::npos);
    const Json json = read_json(out / "compare.json");
    REQUIRE(json["models"].size() == 2);
    CHECK(json["models"][0]["speedup_vs_first"].get<double>() == doctest::Approx(1.0));
    CHECK(json["models"][1]["speedup_vs_first"].get<double>() == doctest::Approx(0.5));
    CHECK(json["models"][1]["weight_bytes"] == 250);
    const std::string md = onnx_frontend::read_file((out / "compare.md").string());
    CHECK(md.find("| fp32 | FP32 | 1.0000 | 1.0000 |") != std::string::npos);
    for (const char* plot : {"latency_vs_map.svg", "precision_recall.svg"}) {
      const std::string svg = onnx_frontend::read_file((out / plot).string());
      CHECK(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\"") == 0);
      CHECK(svg.find("slow, &quot;quoted&quot;") != std::string::npos);
      CHECK(svg.rfind("</svg>\n") == svg.size() - 7);
    }
  }
}

TEST_CASE("harness: class-score outputs go through NMS; --save-vis draws") {
  SyntheticCoco coco;
  // [1, 4+3, 3]: columns are anchors (cx, cy, w, h, three class scores). Anchors 0 and 1 are
  // the same box: class 2 at 0.8 and class 1 at 0.7 survive (class-aware NMS); anchor 2
  // overlaps anchor 0 in class 2 with a lower score and is suppressed.
  const std::vector<float> columns = {
      22.4f, 22.4f, 23.0f,  // cx
      28.8f, 28.8f, 29.0f,  // cy
      32.0f, 32.0f, 32.0f,  // w
      19.2f, 19.2f, 19.0f,  // h
      0.1f,  0.0f,  0.0f,   // class 0
      0.2f,  0.7f,  0.1f,   // class 1
      0.8f,  0.0f,  0.6f,   // class 2
  };
  const std::string model = coco.model("nms.onnx", {1, 7, 3}, columns);
  HarnessOptions options = quiet_options();
  options.save_vis = (coco.root() / "vis").string();
  ImageSet set = coco.image_set();
  set.max_images = 1;
  const HarnessRun run = run_harness(model, select_images(set), options);
  CHECK(run.decoder == "class scores [1,4+C,N] + NMS");
  REQUIRE(run.detections.size() == 2);
  CHECK(run.detections[0].category_id == 20);
  CHECK(run.detections[0].bbox.x == doctest::Approx(10).epsilon(1e-5));
  CHECK(run.detections[1].category_id == 9);
  CHECK(run.eval.stats[kAP] == doctest::Approx(1.0));
  CHECK(fs::file_size(coco.root() / "vis" / "a.jpg") > 0);
}

TEST_CASE("harness: models and selections that do not fit are clear errors") {
  SyntheticCoco coco;
  const Selection selection = select_images(coco.image_set());
  auto message_of = [&](const std::string& model, const HarnessOptions& options) {
    try {
      run_harness(model, selection, options);
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::InvalidArgument);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  // Two classes for three categories.
  CHECK(message_of(coco.model("two.onnx", {1, 6, 1}, {1, 1, 2, 2, 0.5f, 0.5f}), quiet_options())
            .find("predicts 2 classes but the annotations have 3 categories") !=
        std::string::npos);
  // An end-to-end class id beyond the categories.
  CHECK(message_of(coco.model("c7.onnx", {1, 1, 6}, {1, 1, 5, 5, 0.9f, 7}), quiet_options())
            .find("predicted class 7") != std::string::npos);
  // Not a detection output at all.
  CHECK(message_of(coco.model("flat.onnx", {1, 4}, {0, 0, 0, 0}), quiet_options())
            .find("is not a YOLO detector") != std::string::npos);
  // --imgsz must match a static input.
  HarnessOptions wrong_size = quiet_options();
  wrong_size.image_size = 320;
  CHECK(message_of(coco.model("e2e.onnx", {1, 3, 6}, kEndToEndRows), wrong_size)
            .find("--imgsz 320 does not match") != std::string::npos);

  ImageSet set = coco.image_set();
  set.image_ids_file = (coco.root() / "ids.txt").string();
  std::ofstream(set.image_ids_file) << "2\n\n";
  CHECK(select_images(set).images.at(0)->file_name == "b.png");
  std::ofstream(set.image_ids_file) << "[2, 3]";
  CHECK_THROWS_WITH_AS(select_images(set), doctest::Contains("image id 3"), Error);
  std::ofstream(set.image_ids_file) << "2\nabc\n";
  CHECK_THROWS_WITH_AS(select_images(set), doctest::Contains("line 2"), Error);
}

TEST_CASE("decoder layout override") {
  cli::DetectionOptions options;
  Tensor square(DType::F32, {1, 10, 6});  // reads both ways
  std::fill_n(square.data<float>(), 60, 0.0f);
  options.layout = cli::DetectionLayout::ClassScores;
  CHECK(cli::decode_detections(square, options).empty());
  Tensor wide(DType::F32, {1, 84, 20});
  std::fill_n(wide.data<float>(), 84 * 20, 0.0f);
  options.layout = cli::DetectionLayout::EndToEnd;
  CHECK_THROWS_WITH_AS(cli::decode_detections(wide, options),
                       doctest::Contains("[1,N,6] (end-to-end)"), Error);
}

TEST_CASE("latency statistics follow numpy's percentiles") {
  const LatencyStats stats = latency_stats({4, 1, 3, 2});
  CHECK(stats.count == 4);
  CHECK(stats.mean_ms == 2.5);
  CHECK(stats.median_ms == 2.5);
  CHECK(stats.p90_ms == doctest::Approx(3.7));
  CHECK(stats.p99_ms == doctest::Approx(3.97));
  CHECK(stats.min_ms == 1);
  CHECK(stats.max_ms == 4);
  CHECK(stats.throughput_fps == 400);
  CHECK(latency_stats({}).count == 0);
  CHECK(latency_stats({7}).p99_ms == 7);
}

TEST_CASE("float_as_decimal and xml_escape") {
  CHECK(float_as_decimal(0.1f) == 0.1);
  CHECK(float_as_decimal(0.9f) == 0.9);
  CHECK(static_cast<float>(float_as_decimal(1.0f / 3)) == 1.0f / 3);
  CHECK(xml_escape("a<b & \"c\">") == "a&lt;b &amp; &quot;c&quot;&gt;");
}

TEST_CASE("harness on coco-mini with yolov10n (shared assets)") {
  const std::string root = testing::asset("coco-mini");
  const std::string model = testing::asset("models/yolov10n-640-fp32.onnx");
  if (root.empty() || model.empty()) {
    MESSAGE("SKIPPED: coco-mini or yolov10n-640-fp32.onnx not found in the assets");
    return;
  }
  ImageSet set;
  set.coco_root = root;
  set.max_images = 3;
  HarnessOptions options;
  options.warmup = 0;
  const HarnessRun run = run_harness(model, select_images(set), options);
  CHECK(run.image_ids.size() == 3);
  CHECK(run.size_mismatches.empty());
  CHECK(run.detections.size() > 10);
  // Three ordinary photos: a working detector finds most of their objects.
  CHECK(run.eval.stats[kAP50] > 0.3);
  CHECK(run.eval.stats[kAP50] <= 1.0);
}
