// `nibble coco`: COCO mAP (pycocotools-equivalent) and per-image latency of one detector.

#include <cstdio>
#include <filesystem>
#include <memory>

#include "tools/nibble/coco/cli_options.h"
#include "tools/nibble/coco/report.h"
#include "tools/nibble/commands.h"

namespace nibble::cli {

namespace {

struct CocoOptions {
  std::string model;
  coco::HarnessCommandOptions common;
};

int run_coco(CocoOptions& options) {
  coco::resolve_decoder(options.common);
  const coco::Selection selection = coco::select_images(options.common.images);
  coco::HarnessOptions harness = options.common.harness;
  harness.progress_label = std::filesystem::path(options.model).stem().string();
  std::printf("model    %s\n", options.model.c_str());
  std::printf("images   %zu from %s (annotations %s)\n", selection.images.size(),
              selection.images_dir.c_str(), selection.annotations_path.c_str());
  std::fflush(stdout);

  const coco::HarnessRun run = coco::run_harness(options.model, selection, harness);
  std::printf("input    %s [1,3,%lld,%lld], decoder %s, %d threads, %s kernels\n",
              run.input_name.c_str(), static_cast<long long>(run.input_shape[2]),
              static_cast<long long>(run.input_shape[3]), run.decoder.c_str(), run.threads,
              run.isa.c_str());
  coco::print_run_summary(run);
  coco::write_run_reports(options.common.out_dir, run, selection, harness);
  std::printf("reports  %s/{metrics.json,detections.json,summary.md}\n",
              options.common.out_dir.c_str());
  if (!harness.save_vis.empty()) std::printf("images   %s\n", harness.save_vis.c_str());
  return 0;
}

}  // namespace

Command add_coco_command(CLI::App& nibble) {
  auto options = std::make_shared<CocoOptions>();
  CLI::App* cmd = nibble.add_subcommand(
      "coco", "COCO mAP (as pycocotools computes it) and latency of a YOLO detector");
  cmd->add_option("--model", options->model, "ONNX detector (YOLOv8/v10/11 outputs)")
      ->required()
      ->check(CLI::ExistingFile)
      ->option_text("MODEL");
  coco::add_harness_options(*cmd, options->common, "runs/coco");
  cmd->footer(
      "Images are letterboxed as Ultralytics does; the detections are scored with a C++ port of\n"
      "pycocotools' COCOeval (bbox). Writes metrics.json, detections.json (COCO results format)\n"
      "and summary.md to --out. A progress bar shows on stderr when it is a terminal.\n"
      "\nExample:\n"
      "  nibble coco --model yolov10n-640-fp32.onnx --coco-root ../shared/coco-mini --out "
      "reports/v10n");
  return {cmd, [options] { return run_coco(*options); }};
}

}  // namespace nibble::cli
