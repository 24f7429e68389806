#include "tools/nibble/coco/report.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "nibble/error.h"
#include "tools/nibble/coco/svg_plot.h"

namespace nibble::coco {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

// pycocotools' -1 (no ground truth to score against) reads better as n/a in tables.
std::string metric_cell(double value) { return value < 0 ? "n/a" : format("%.4f", value); }

std::string bytes_text(size_t bytes) {
  if (bytes >= (size_t{1} << 20)) return format("%.2f MiB", static_cast<double>(bytes) / (1 << 20));
  if (bytes >= (size_t{1} << 10)) return format("%.1f KiB", static_cast<double>(bytes) / (1 << 10));
  return std::to_string(bytes) + " B";
}

Json latency_json(const LatencyStats& stats) {
  return {{"mean_ms", stats.mean_ms}, {"median_ms", stats.median_ms}, {"p90_ms", stats.p90_ms},
          {"p99_ms", stats.p99_ms},   {"min_ms", stats.min_ms},       {"max_ms", stats.max_ms}};
}

// Images per second through decode, letterbox, model and postprocessing, one after another.
double end_to_end_fps(const StageTimes& times) {
  const double ms = times.preprocess.mean_ms + times.model.mean_ms + times.postprocess.mean_ms;
  return ms > 0 ? 1000.0 / ms : 0;
}

std::string shape_text(const Shape& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? "," : "") + std::to_string(shape[i]);
  return text + "]";
}

Json settings_json(const HarnessRun& run, const Selection& selection,
                   const HarnessOptions& options) {
  return {{"annotations", selection.annotations_path},
          {"images_dir", selection.images_dir},
          {"input", run.input_name},
          {"input_shape", run.input_shape},
          {"imgsz", run.input_shape.size() == 4 ? run.input_shape[2] : 0},
          {"conf", float_as_decimal(options.detection.confidence)},
          {"iou", float_as_decimal(options.detection.iou)},
          {"max_det", options.detection.max_detections},
          {"pre_nms_topk", options.detection.max_candidates},
          {"warmup", options.warmup},
          {"decoder", run.decoder}};
}

double speedup(const ComparedModel& baseline, const ComparedModel& model) {
  const double median = model.run.times.model.median_ms;
  return median > 0 ? baseline.run.times.model.median_ms / median : 0;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string run_context(const HarnessRun& run, size_t images) {
  return std::to_string(images) + " images, " + std::to_string(run.threads) + " thread" +
         (run.threads == 1 ? "" : "s") + ", " + run.isa;
}

}  // namespace

void make_directory(const std::string& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw Error(ErrorKind::Io, "cannot create directory '" + dir + "': " + error.message());
}

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary);
  if (file) file.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!file) throw Error(ErrorKind::Io, "cannot write '" + path + "': " + std::strerror(errno));
}

std::string metrics_json(const HarnessRun& run, const Selection& selection,
                         const HarnessOptions& options) {
  const auto& s = run.eval.stats;
  Json latency = latency_json(run.times.model);
  latency["throughput_fps"] = run.times.model.throughput_fps;
  latency["preprocess"] = latency_json(run.times.preprocess);
  latency["postprocess"] = latency_json(run.times.postprocess);
  latency["end_to_end_fps"] = end_to_end_fps(run.times);
  const Json metrics = {
      {"model", run.model_path},
      {"threads", run.threads},
      {"isa", run.isa},
      {"settings", settings_json(run, selection, options)},
      {"metrics",
       {{"mAP_50_95", s[kAP]},
        {"mAP_50", s[kAP50]},
        {"mAP_75", s[kAP75]},
        {"mAP_small", s[kAPSmall]},
        {"mAP_medium", s[kAPMedium]},
        {"mAP_large", s[kAPLarge]},
        {"AR_1", s[kAR1]},
        {"AR_10", s[kAR10]},
        {"AR_100", s[kAR100]},
        {"AR_small", s[kARSmall]},
        {"AR_medium", s[kARMedium]},
        {"AR_large", s[kARLarge]},
        {"num_images", run.image_ids.size()},
        {"num_detections", run.detections.size()}}},
      {"latency", latency},
      {"coco_stats", std::vector<double>(s.begin(), s.end())}};
  return metrics.dump(2) + "\n";
}

std::string summary_markdown(const HarnessRun& run, const Selection& selection,
                             const HarnessOptions& options) {
  const auto& s = run.eval.stats;
  const cli::DetectionOptions& d = options.detection;
  std::string md = "# COCO evaluation of " + fs::path(run.model_path).filename().string() + "\n\n";
  md += "| | |\n|---|---|\n";
  md += "| model | `" + run.model_path + "` |\n";
  md += "| images | " + std::to_string(run.image_ids.size()) + " from `" + selection.images_dir +
        "` |\n";
  md += "| annotations | `" + selection.annotations_path + "` |\n";
  md += "| input | " + run.input_name + " " + shape_text(run.input_shape) +
        " (letterbox, gray 114 padding, RGB / 255) |\n";
  md += "| decoder | " + run.decoder + " |\n";
  md += "| settings | conf " + format("%g", float_as_decimal(d.confidence)) + ", NMS IoU " +
        format("%g", float_as_decimal(d.iou)) + ", max det " + std::to_string(d.max_detections) +
        ", pre-NMS top-k " + std::to_string(d.max_candidates) + " |\n";
  md += "| machine | " + std::to_string(run.threads) + " threads, " + run.isa + " kernels |\n\n";

  md += "## Accuracy (pycocotools-equivalent COCOeval, bbox)\n\n";
  md += "| mAP 50:95 | mAP 50 | mAP 75 | mAP small | mAP medium | mAP large | detections |\n";
  md += "|---:|---:|---:|---:|---:|---:|---:|\n";
  md += "| " + metric_cell(s[kAP]) + " | " + metric_cell(s[kAP50]) + " | " + metric_cell(s[kAP75]) +
        " | " + metric_cell(s[kAPSmall]) + " | " + metric_cell(s[kAPMedium]) + " | " +
        metric_cell(s[kAPLarge]) + " | " + std::to_string(run.detections.size()) + " |\n\n";

  md += "## Latency per image (" + std::to_string(options.warmup) + " warm-up runs first)\n\n";
  md += "| stage | mean ms | median ms | p90 ms | p99 ms |\n|---|---:|---:|---:|---:|\n";
  const std::pair<const char*, const LatencyStats*> stages[] = {
      {"decode + letterbox", &run.times.preprocess},
      {"model", &run.times.model},
      {"decode outputs + NMS", &run.times.postprocess}};
  for (const auto& [name, stats] : stages)
    md += std::string("| ") + name + " | " + format("%.2f", stats->mean_ms) + " | " +
          format("%.2f", stats->median_ms) + " | " + format("%.2f", stats->p90_ms) + " | " +
          format("%.2f", stats->p99_ms) + " |\n";
  md += "\nThroughput: " + format("%.2f", run.times.model.throughput_fps) +
        " images/s (model), " + format("%.2f", end_to_end_fps(run.times)) +
        " images/s end to end.\n\n";
  md += "## pycocotools summary\n\n```\n" + format_stats(run.eval) + "```\n";
  if (!run.size_mismatches.empty())
    md += "\n**Warning:** " + std::to_string(run.size_mismatches.size()) +
          " images decode to a size other than their annotation's (first: " +
          run.size_mismatches.front() + "); their boxes cannot match.\n";
  return md;
}

void write_run_reports(const std::string& dir, const HarnessRun& run, const Selection& selection,
                       const HarnessOptions& options) {
  make_directory(dir);
  write_text_file((fs::path(dir) / "metrics.json").string(), metrics_json(run, selection, options));
  write_text_file((fs::path(dir) / "detections.json").string(), detections_to_json(run.detections));
  write_text_file((fs::path(dir) / "summary.md").string(),
                  summary_markdown(run, selection, options));
}

std::string compare_markdown(const std::vector<ComparedModel>& models, const Selection& selection,
                             const HarnessOptions& options) {
  if (models.empty()) return "";
  const HarnessRun& first = models.front().run;
  std::string md = "# Model comparison on COCO\n\n";
  md += run_context(first, first.image_ids.size()) + "; images from `" + selection.images_dir +
        "`; conf " + format("%g", float_as_decimal(options.detection.confidence)) + ", NMS IoU " +
        format("%g", float_as_decimal(options.detection.iou)) + "; latency = model time per " +
        "image after " + std::to_string(options.warmup) + " warm-up runs; speed-up vs " +
        models.front().name + ".\n\n";
  md += "| model | scheme | mAP 50:95 | mAP 50 | median ms | p90 ms | speed-up | weights |\n";
  md += "|---|---|---:|---:|---:|---:|---:|---:|\n";
  for (const ComparedModel& m : models)
    md += "| " + m.name + " | " + m.summary.scheme + " | " + metric_cell(m.run.eval.stats[kAP]) +
          " | " + metric_cell(m.run.eval.stats[kAP50]) + " | " +
          format("%.2f", m.run.times.model.median_ms) + " | " +
          format("%.2f", m.run.times.model.p90_ms) + " | " +
          format("%.2fx", speedup(models.front(), m)) + " | " + bytes_text(m.summary.weight_bytes) +
          " |\n";
  return md;
}

std::string compare_csv(const std::vector<ComparedModel>& models) {
  std::string csv =
      "name,scheme,model,mAP_50_95,mAP_50,latency_median_ms,latency_p90_ms,speedup_vs_first,"
      "weight_bytes\n";
  for (const ComparedModel& m : models)
    csv += csv_field(m.name) + "," + csv_field(m.summary.scheme) + "," +
           csv_field(m.run.model_path) + "," + format("%.6f", m.run.eval.stats[kAP]) + "," +
           format("%.6f", m.run.eval.stats[kAP50]) + "," +
           format("%.3f", m.run.times.model.median_ms) + "," +
           format("%.3f", m.run.times.model.p90_ms) + "," +
           format("%.4f", speedup(models.front(), m)) + "," +
           std::to_string(m.summary.weight_bytes) + "\n";
  return csv;
}

std::string compare_json(const std::vector<ComparedModel>& models, const Selection& selection,
                         const HarnessOptions& options) {
  Json list = Json::array();
  for (const ComparedModel& m : models)
    list.push_back({{"name", m.name},
                    {"model", m.run.model_path},
                    {"scheme", m.summary.scheme},
                    {"input_shape", m.run.input_shape},
                    {"decoder", m.run.decoder},
                    {"mAP_50_95", m.run.eval.stats[kAP]},
                    {"mAP_50", m.run.eval.stats[kAP50]},
                    {"mAP_75", m.run.eval.stats[kAP75]},
                    {"latency_median_ms", m.run.times.model.median_ms},
                    {"latency_p90_ms", m.run.times.model.p90_ms},
                    {"latency_mean_ms", m.run.times.model.mean_ms},
                    {"speedup_vs_first", speedup(models.front(), m)},
                    {"weight_bytes", m.summary.weight_bytes},
                    {"num_detections", m.run.detections.size()}});
  Json root;
  if (!models.empty()) {
    const HarnessRun& first = models.front().run;
    root["num_images"] = first.image_ids.size();
    root["threads"] = first.threads;
    root["isa"] = first.isa;
    root["settings"] = settings_json(first, selection, options);
    for (const char* per_model : {"decoder", "input", "input_shape", "imgsz"})
      root["settings"].erase(per_model);
  }
  root["models"] = list;
  return root.dump(2) + "\n";
}

std::string latency_vs_map_svg(const std::vector<ComparedModel>& models) {
  PlotAxes axes;
  axes.title = "Latency vs accuracy";
  if (!models.empty())
    axes.subtitle = run_context(models.front().run, models.front().run.image_ids.size()) +
                    "; median model time per image";
  axes.x_label = "median latency per image (ms)";
  axes.y_label = "mAP 50:95";
  std::vector<ScatterPoint> points;
  for (const ComparedModel& m : models)
    points.push_back({m.name + " (" + m.summary.scheme + ")", m.run.times.model.median_ms,
                      m.run.eval.stats[kAP]});
  return scatter_svg(axes, points);
}

std::string precision_recall_svg(const std::vector<ComparedModel>& models) {
  PlotAxes axes;
  axes.title = "Precision-recall (mean over categories, area all, 100 detections)";
  axes.subtitle = "solid: IoU 0.50; dashed: mean over IoU 0.50:0.95";
  axes.x_label = "recall";
  axes.y_label = "precision";
  axes.x_min = 0, axes.x_max = 1, axes.y_min = 0, axes.y_max = 1;
  std::vector<LineSeries> series;
  for (size_t i = 0; i < models.size(); ++i) {
    const EvalResult& eval = models[i].run.eval;
    for (const int iou_index : {0, -1}) {
      LineSeries line;
      line.label = models[i].name + (iou_index == 0 ? " @.50" : " @.50:.95");
      line.color = static_cast<int>(i);
      line.dashed = iou_index != 0;
      line.x = eval.recall_thresholds;
      line.y = mean_precision_curve(eval, iou_index);
      for (double& y : line.y)
        if (y < 0) y = std::numeric_limits<double>::quiet_NaN();  // no ground truth: no point
      series.push_back(std::move(line));
    }
  }
  return lines_svg(axes, series);
}

void write_compare_reports(const std::string& dir, const std::vector<ComparedModel>& models,
                           const Selection& selection, const HarnessOptions& options) {
  make_directory(dir);
  const fs::path root(dir);
  write_text_file((root / "compare.md").string(), compare_markdown(models, selection, options));
  write_text_file((root / "compare.csv").string(), compare_csv(models));
  write_text_file((root / "compare.json").string(), compare_json(models, selection, options));
  write_text_file((root / "latency_vs_map.svg").string(), latency_vs_map_svg(models));
  write_text_file((root / "precision_recall.svg").string(), precision_recall_svg(models));
}

}  // namespace nibble::coco
