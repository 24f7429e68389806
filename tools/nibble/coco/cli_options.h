// Command-line options shared by `nibble coco` and `nibble compare`.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "tools/nibble/coco/harness.h"

namespace nibble::coco {

struct HarnessCommandOptions {
  ImageSet images;
  HarnessOptions harness;
  std::string decoder = "auto";  // auto | end-to-end | nms
  std::string out_dir;
};

// Adds --coco-root, --ann, --max-images, --image-ids, --imgsz, --conf, --iou, --max-det,
// --pre-nms-topk, --decoder, --threads, --warmup, --out, --save-vis and --vis-conf.
void add_harness_options(CLI::App& command, HarnessCommandOptions& options,
                         const std::string& default_out);

// Applies --decoder to options.harness.detection.layout.
void resolve_decoder(HarnessCommandOptions& options);

// The printed lines after a run: pycocotools' summary and the latency of each stage.
void print_run_summary(const HarnessRun& run);

}  // namespace nibble::coco
