// Reports of `nibble coco` (metrics.json, detections.json, summary.md) and of `nibble compare`
// (compare.md/.csv/.json, latency_vs_map.svg, precision_recall.svg).
#pragma once

#include <string>
#include <vector>

#include "tools/nibble/coco/harness.h"
#include "tools/nibble/coco/model_summary.h"

namespace nibble::coco {

// metrics.json: "metrics" (mAP_50_95, mAP_50, mAP_75, mAP_small, mAP_medium, mAP_large, AR_1,
// AR_10, AR_100, AR_small, AR_medium, AR_large, num_images, num_detections), "latency" of the
// model (mean_ms, median_ms, p90_ms, p99_ms, min_ms, max_ms, throughput_fps) with "preprocess"
// and "postprocess" alongside and "end_to_end_fps", "coco_stats" (the 12 numbers in
// pycocotools' order), and model, threads, isa and "settings".
std::string metrics_json(const HarnessRun& run, const Selection& selection,
                         const HarnessOptions& options);
std::string summary_markdown(const HarnessRun& run, const Selection& selection,
                             const HarnessOptions& options);
// Writes metrics.json, detections.json and summary.md into `dir` (created if needed).
void write_run_reports(const std::string& dir, const HarnessRun& run, const Selection& selection,
                       const HarnessOptions& options);

struct ComparedModel {
  std::string name;
  ModelSummary summary;
  HarnessRun run;
};

// Speed-ups are relative to the first model (its median model latency over each one's).
std::string compare_markdown(const std::vector<ComparedModel>& models, const Selection& selection,
                             const HarnessOptions& options);
std::string compare_csv(const std::vector<ComparedModel>& models);
std::string compare_json(const std::vector<ComparedModel>& models, const Selection& selection,
                         const HarnessOptions& options);
std::string latency_vs_map_svg(const std::vector<ComparedModel>& models);
// Category-averaged precision against recall (area all, 100 detections): solid at IoU 0.50,
// dashed averaged over IoU 0.50:0.95.
std::string precision_recall_svg(const std::vector<ComparedModel>& models);
// Writes the five comparison files into `dir` (created if needed).
void write_compare_reports(const std::string& dir, const std::vector<ComparedModel>& models,
                           const Selection& selection, const HarnessOptions& options);

// Creates the directory (and its parents); Error(Io) naming it on failure.
void make_directory(const std::string& dir);
// Writes the file whole; Error(Io) naming it on failure.
void write_text_file(const std::string& path, const std::string& text);

}  // namespace nibble::coco
