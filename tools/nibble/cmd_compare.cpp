// `nibble compare`: several detectors (e.g. FP32 and its quantized variants) on the same COCO
// images, side by side: accuracy, latency, speed-up and weight bytes, as tables and plots.

#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>

#include "nibble/error.h"
#include "tools/nibble/coco/cli_options.h"
#include "tools/nibble/coco/report.h"
#include "tools/nibble/commands.h"

namespace nibble::cli {

namespace {

namespace fs = std::filesystem;

struct CompareOptions {
  std::vector<std::string> models;  // NAME=PATH or PATH
  coco::HarnessCommandOptions common;
};

struct NamedModel {
  std::string name;
  std::string path;
};

// NAME=PATH, or PATH named after its file. Names become directory names, so they must be
// unique and safe.
std::vector<NamedModel> parse_models(const std::vector<std::string>& specs) {
  std::vector<NamedModel> models;
  std::set<std::string> names;
  for (const std::string& spec : specs) {
    const size_t equals = spec.find('=');
    NamedModel model;
    if (equals == std::string::npos) {
      model.path = spec;
      model.name = fs::path(spec).stem().string();
    } else {
      model.name = spec.substr(0, equals);
      model.path = spec.substr(equals + 1);
    }
    if (model.name.empty() || model.name == "." || model.name == ".." ||
        model.name.find('/') != std::string::npos)
      throw UsageError("--model '" + spec + "': the name must be non-empty, without '/'");
    if (!names.insert(model.name).second)
      throw UsageError("--model name '" + model.name + "' is given twice");
    std::error_code error;
    if (!fs::is_regular_file(model.path, error))
      throw Error(ErrorKind::Io, "--model " + model.name + ": no such file '" + model.path + "'");
    models.push_back(model);
  }
  return models;
}

int run_compare(CompareOptions& options) {
  const std::vector<NamedModel> models = parse_models(options.models);
  coco::resolve_decoder(options.common);
  const coco::Selection selection = coco::select_images(options.common.images);
  std::printf("images   %zu from %s (annotations %s)\n", selection.images.size(),
              selection.images_dir.c_str(), selection.annotations_path.c_str());

  std::vector<coco::ComparedModel> compared;
  for (const NamedModel& model : models) {
    coco::HarnessOptions harness = options.common.harness;
    harness.progress_label = model.name;
    if (!harness.save_vis.empty()) harness.save_vis = (fs::path(harness.save_vis) / model.name).string();
    std::printf("\n== %s: %s\n", model.name.c_str(), model.path.c_str());
    std::fflush(stdout);
    coco::ComparedModel entry;
    entry.name = model.name;
    entry.run = coco::run_harness(model.path, selection, harness);
    entry.summary = coco::summarize_model(model.path, {{entry.run.input_name, entry.run.input_shape}});
    std::printf("scheme   %s, %zu weight bytes, decoder %s, %d threads, %s kernels\n",
                entry.summary.scheme.c_str(), entry.summary.weight_bytes,
                entry.run.decoder.c_str(), entry.run.threads, entry.run.isa.c_str());
    coco::print_run_summary(entry.run);
    coco::write_run_reports((fs::path(options.common.out_dir) / model.name).string(), entry.run,
                            selection, harness);
    compared.push_back(std::move(entry));
  }

  coco::write_compare_reports(options.common.out_dir, compared, selection, options.common.harness);
  std::printf("\n%s", coco::compare_markdown(compared, selection, options.common.harness).c_str());
  std::printf("\nreports  %s/{compare.md,compare.csv,compare.json,latency_vs_map.svg,"
              "precision_recall.svg} and one directory per model\n",
              options.common.out_dir.c_str());
  return 0;
}

}  // namespace

Command add_compare_command(CLI::App& nibble) {
  auto options = std::make_shared<CompareOptions>();
  CLI::App* cmd = nibble.add_subcommand(
      "compare", "COCO accuracy and latency of several detectors side by side, with plots");
  cmd->add_option("--model", options->models,
                  "A detector to compare (repeat; the first is the speed-up baseline)")
      ->required()
      ->allow_extra_args(false)
      ->option_text("NAME=PATH");
  coco::add_harness_options(*cmd, options->common, "runs/compare");
  cmd->footer(
      "Each model runs on the same images with the same settings as `nibble coco`; its reports\n"
      "go to --out/NAME/. The comparison is written as compare.md, compare.csv, compare.json,\n"
      "latency_vs_map.svg and precision_recall.svg.\n"
      "\nExample:\n"
      "  nibble compare --coco-root ../shared/coco-mini \\\n"
      "      --model fp32=yolov10n-640-fp32.onnx --model int8=yolov10n-640-int8-dynamic.onnx");
  return {cmd, [options] { return run_compare(*options); }};
}

}  // namespace nibble::cli
