#include "tools/nibble/coco/cli_options.h"

#include <cstdio>

#include "tools/nibble/run_common.h"

namespace nibble::coco {

namespace {

// CLI11's own number validators print their range with DBL_MAX spelled out.
CLI::Validator at_least(int minimum) {
  return CLI::Validator(
      [minimum](std::string& value) {
        int number = 0;
        if (!CLI::detail::lexical_cast(value, number) || number < minimum)
          return "expected an integer >= " + std::to_string(minimum) + ", got '" + value + "'";
        return std::string();
      },
      ">=" + std::to_string(minimum));
}

void print_stage(const char* name, const LatencyStats& stats) {
  std::printf("  %-12s mean %8.2f  median %8.2f  p90 %8.2f  p99 %8.2f ms\n", name, stats.mean_ms,
              stats.median_ms, stats.p90_ms, stats.p99_ms);
}

}  // namespace

void add_harness_options(CLI::App& command, HarnessCommandOptions& options,
                         const std::string& default_out) {
  options.out_dir = default_out;
  cli::DetectionOptions& detection = options.harness.detection;
  command.add_option("--coco-root", options.images.coco_root, "COCO directory: val2017/, annotations/")
      ->required()
      ->check(CLI::ExistingDirectory)
      ->option_text("DIR");
  command.add_option("--ann", options.images.annotations,
                     "Annotations (default DIR/annotations/instances_val2017.json)")
      ->check(CLI::ExistingFile)
      ->option_text("FILE");
  command.add_option("--max-images", options.images.max_images,
                     "Only the first N images by id (default: all)")
      ->check(at_least(1))
      ->option_text("N");
  command.add_option("--image-ids", options.images.image_ids_file,
                     "Only these image ids (JSON array or one per line)")
      ->check(CLI::ExistingFile)
      ->option_text("FILE");
  command.add_option("--imgsz", options.harness.image_size,
                     "Letterbox size (default: the model input's)")
      ->check(at_least(1))
      ->option_text("N");
  command.add_option("--conf", detection.confidence, "Score threshold (default 0.001)")
      ->check(CLI::Range(0.0, 1.0))
      ->option_text("X");
  command.add_option("--iou", detection.iou, "NMS IoU threshold (default 0.7)")
      ->check(CLI::Range(0.0, 1.0))
      ->option_text("X");
  command.add_option("--max-det", detection.max_detections,
                     "Most detections per image (default 300)")
      ->check(at_least(1))
      ->option_text("N");
  command.add_option("--pre-nms-topk", detection.max_candidates,
                     "Best boxes entering NMS (default 30000)")
      ->check(at_least(1))
      ->option_text("N");
  command.add_option("--decoder", options.decoder,
                     "Output layout: auto (from its shape), end-to-end [1,N,6], nms [1,4+C,N]")
      ->check(CLI::IsMember({"auto", "end-to-end", "nms"}))
      ->option_text("auto|end-to-end|nms");
  command.add_option("--threads", options.harness.threads, "Threads per run (default: all cores)")
      ->check(at_least(0))
      ->option_text("T");
  cli::add_weight_only_activations_option(command, options.harness.weight_only_activations);
  command.add_option("--warmup", options.harness.warmup,
                     "Untimed runs before timing (default 10)")
      ->check(at_least(0))
      ->option_text("N");
  command.add_option("--out", options.out_dir, "Report directory (default " + default_out + ")")
      ->option_text("DIR");
  command.add_option("--save-vis", options.harness.save_vis,
                     "Write the images with their boxes drawn to DIR")
      ->option_text("DIR");
  command.add_option("--vis-conf", options.harness.vis_confidence,
                     "Lowest score --save-vis draws (default 0.25)")
      ->check(CLI::Range(0.0, 1.0))
      ->option_text("X");
}

void resolve_decoder(HarnessCommandOptions& options) {
  std::optional<cli::DetectionLayout>& layout = options.harness.detection.layout;
  if (options.decoder == "end-to-end") layout = cli::DetectionLayout::EndToEnd;
  else if (options.decoder == "nms") layout = cli::DetectionLayout::ClassScores;
  else layout.reset();
}

void print_run_summary(const HarnessRun& run) {
  std::fputs(format_stats(run.eval).c_str(), stdout);
  std::printf("latency  per image over %zu images:\n", run.times.model.count);
  print_stage("preprocess", run.times.preprocess);
  print_stage("model", run.times.model);
  print_stage("postprocess", run.times.postprocess);
  std::printf("  throughput   %.2f images/s (model)\n", run.times.model.throughput_fps);
  if (!run.size_mismatches.empty())
    std::fprintf(stderr,
                 "nibble: warning: %zu images decode to a size other than their annotation's "
                 "(first: %s); their boxes cannot match\n",
                 run.size_mismatches.size(), run.size_mismatches.front().c_str());
}

}  // namespace nibble::coco
