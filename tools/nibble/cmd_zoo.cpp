// `nibble zoo`: write a known network (YOLOv10 n..x) with deterministic random weights, so any
// size can be benchmarked offline with nothing downloaded.

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "nibble/error.h"
#include "tools/nibble/commands.h"
#include "tools/nibble/zoo/yolov10.h"

namespace nibble::cli {

namespace {

struct ZooOptions {
  std::string model;
  int64_t image_size = 640;
  std::string head = "e2e";
  uint64_t seed = 0;
  std::string out;
};

// The YOLOv10 paper's table (COCO, 640x640): parameters (M) and GFLOPs.
struct Published {
  char scale;
  double params_m;
  double gflops;
};
constexpr Published kPublished[] = {{'n', 2.3, 6.7},   {'s', 7.2, 21.6},  {'m', 15.4, 59.1},
                                    {'b', 19.1, 92.0}, {'l', 24.4, 120.3}, {'x', 29.5, 160.4}};

int run(const ZooOptions& options) {
  zoo::Yolov10Options build;
  build.scale = options.model.substr(std::string("yolov10").size());
  build.image_size = options.image_size;
  build.head = options.head == "e2e" ? zoo::Yolov10Head::EndToEnd : zoo::Yolov10Head::OneToMany;
  build.seed = options.seed;
  std::ofstream file(options.out, std::ios::binary | std::ios::trunc);
  if (!file) throw Error(ErrorKind::Io, "cannot write '" + options.out + "'");
  const zoo::ZooModel model = zoo::build_yolov10(build);
  if (!model.model.SerializeToOstream(&file) || !file.flush())
    throw Error(ErrorKind::Io, "cannot write '" + options.out + "'");
  const double megabytes = double(file.tellp()) / 1e6;

  const Published* published = nullptr;
  for (const Published& p : kPublished)
    if (p.scale == build.scale[0]) published = &p;
  const onnx::ValueInfoProto& output = model.model.graph().output(0);
  std::string shape;
  for (const auto& dim : output.type().tensor_type().shape().dim())
    shape += (shape.empty() ? "" : ",") + std::to_string(dim.dim_value());

  std::printf("model    %s: Ultralytics YOLOv10 structure, %s head, %lldx%lld, seed %llu "
              "(random weights)\n",
              options.model.c_str(), options.head == "e2e" ? "end-to-end" : "one-to-many",
              static_cast<long long>(options.image_size), static_cast<long long>(options.image_size),
              static_cast<unsigned long long>(options.seed));
  std::printf("params   %.2fM (%lld; published %.1fM)\n", double(model.parameters) / 1e6,
              static_cast<long long>(model.parameters), published->params_m);
  if (options.image_size == 640)
    std::printf("GFLOPs   %.1f (published %.1f)\n", model.flops / 1e9, published->gflops);
  else
    std::printf("GFLOPs   %.1f at %lldx%lld (published %.1f at 640x640)\n", model.flops / 1e9,
                static_cast<long long>(options.image_size),
                static_cast<long long>(options.image_size), published->gflops);
  std::printf("output   %s float [%s]\n", output.name().c_str(), shape.c_str());
  std::printf("wrote    %s (%.1f MB)\n", options.out.c_str(), megabytes);
  return 0;
}

}  // namespace

Command add_zoo_command(CLI::App& nibble) {
  auto options = std::make_shared<ZooOptions>();
  CLI::App* cmd = nibble.add_subcommand(
      "zoo", "Write a YOLOv10 network (n/s/m/b/l/x) with deterministic random weights");
  cmd->add_option("model", options->model, "yolov10n, yolov10s, yolov10m, yolov10b, yolov10l or yolov10x")
      ->required()
      ->check(CLI::IsMember({"yolov10n", "yolov10s", "yolov10m", "yolov10b", "yolov10l", "yolov10x"}))
      ->option_text("MODEL");
  cmd->add_option("--imgsz", options->image_size, "Input height and width (default 640)")
      ->check(CLI::Validator(
          [](std::string& value) {
            int64_t size = 0;
            if (!CLI::detail::lexical_cast(value, size) || size <= 0 || size % 32 != 0)
              return "expected a positive multiple of 32, got '" + value + "'";
            return std::string();
          },
          "N*32"))
      ->option_text("N");
  cmd->add_option("--head", options->head,
                  "e2e: [1,300,6] detections (default); one2many: [1,84,anchors] for NMS")
      ->check(CLI::IsMember({"e2e", "one2many"}))
      ->option_text("e2e|one2many");
  cmd->add_option("--seed", options->seed, "Seed of the random weights (default 0)")
      ->option_text("S");
  cmd->add_option("--out", options->out, "ONNX file to write")->required()->option_text("F.onnx");
  cmd->footer(
      "The graph is what Ultralytics exports at opset 17 (Conv+BatchNorm folded, SiLU as\n"
      "Sigmoid*Mul). Weights are uniform random, each conv scaled to unit output variance on a\n"
      "random image in 0..1 by running the network in nibble while it is built (at 256x256, so\n"
      "the weights depend on the seed only). Parameters and GFLOPs (2 x multiply-adds) are\n"
      "printed next to the published figures.\n"
      "\nExample:\n"
      "  nibble zoo yolov10m --out yolov10m.onnx && nibble bench yolov10m.onnx --threads 2");
  return {cmd, [options] { return run(*options); }};
}

}  // namespace nibble::cli
