// `nibble bench`: latency of a model on generated (or given) inputs, and with --profile the time
// of every node with its kernel, to find where the time goes.

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/cpu_features.h"
#include "nibble/nibble.h"
#include "tools/nibble/coco/latency.h"
#include "tools/nibble/coco/model_summary.h"
#include "tools/nibble/commands.h"
#include "tools/nibble/npy.h"
#include "tools/nibble/run_common.h"

namespace nibble::cli {

namespace {

using Json = nlohmann::ordered_json;

struct BenchOptions {
  std::string model;
  int threads = 0;
  int iters = 10;
  int warmup = 2;
  std::string json;
  bool profile = false;
  int top = 20;
  std::vector<std::string> input_files;  // NAME=FILE.npy
  std::vector<std::string> shapes;       // NAME=1x3x640x640
  std::string fill = "random";
  uint64_t seed = 0;
  bool serve = false;
  WeightOnlyActivations weight_only_activations = WeightOnlyActivations::Float;
};

// ---- inputs ----------------------------------------------------------------------------------

struct Feed {
  NamedTensors tensors;
  std::vector<std::string> sources;  // how each input was made, for the report
};

Shape parse_dims(const std::string& text, const std::string& spec) {
  Shape shape;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find('x', start), text.size());
    int64_t dim = 0;
    if (!CLI::detail::lexical_cast(text.substr(start, end - start), dim) || dim < 0)
      throw UsageError("--shape expects NAME=D1xD2x..., got '" + spec + "'");
    shape.push_back(dim);
    start = end + 1;
  }
  return shape;
}

std::map<std::string, Shape> parse_shapes(const std::vector<std::string>& specs) {
  std::map<std::string, Shape> shapes;
  for (const std::string& spec : specs) {
    auto [name, dims] = split_assignment(spec, "--shape");
    if (!shapes.emplace(name, parse_dims(dims, spec)).second)
      throw UsageError("--shape gives input '" + name + "' twice");
  }
  return shapes;
}

Feed make_feed(const Session& session, const BenchOptions& options) {
  const std::map<std::string, std::string> files =
      input_files(session.inputs(), options.input_files);
  InputGenerator generator(
      options.fill == "zeros" ? InputGenerator::Fill::Zeros : InputGenerator::Fill::Random,
      options.seed);
  Feed feed;
  for (const TensorInfo& info : session.inputs()) {
    if (auto file = files.find(info.name); file != files.end()) {
      feed.tensors.emplace_back(info.name, read_npy(file->second));
      feed.sources.push_back("file " + file->second);
    } else {
      feed.tensors.emplace_back(info.name, generator.make(info));
      feed.sources.push_back(generator.describe(info.dtype));
    }
  }
  return feed;
}

// ---- statistics ------------------------------------------------------------------------------

// 2 x multiply-adds of convolutions (the weight: the input after the first with the output's
// rank and its channel count as dim 0), MatMul and Gemm; 0 for other nodes.
double node_ops(const NodeProfile& node) {
  if (node.output_shapes.empty() || node.input_shapes.size() < 2) return 0;
  const Shape& out = node.output_shapes[0];
  const double outputs = out.empty() ? 0 : double(shape_numel(out));
  if (node.op_type.find("Conv") != std::string::npos && out.size() >= 3) {
    for (size_t i = 1; i < node.input_shapes.size(); ++i) {
      const Shape& w = node.input_shapes[i];
      if (w.size() == out.size() && w[0] == out[1])
        return 2 * outputs * double(shape_numel(w) / w[0]);
    }
    return 0;
  }
  const Shape& a = node.input_shapes[0];
  if (node.op_type == "MatMul" && !a.empty()) return 2 * outputs * double(a.back());
  if (node.op_type == "Gemm" && a.size() == 2 && out.size() == 2)
    return 2 * outputs * double(a[0] == out[0] ? a[1] : a[0]);
  return 0;
}

// ---- profile ---------------------------------------------------------------------------------

struct NodeTotals {
  NodeProfile node;  // shapes and kernel; seconds summed over the profiled runs
  double ops = 0;
};

void print_profile(const std::vector<NodeTotals>& nodes, int runs, int top) {
  double total = 0;
  for (const NodeTotals& n : nodes) total += n.node.seconds;
  std::vector<const NodeTotals*> order;
  for (const NodeTotals& n : nodes) order.push_back(&n);
  std::stable_sort(order.begin(), order.end(), [](const NodeTotals* a, const NodeTotals* b) {
    return a->node.seconds > b->node.seconds;
  });
  const size_t shown = top > 0 ? std::min(order.size(), size_t(top)) : order.size();
  std::printf("\nprofile  mean per run over %d runs: %zu nodes, %.2f ms in nodes; %s\n", runs,
              nodes.size(), total * 1e3 / runs,
              shown == order.size() ? "all nodes by time" :
              ("top " + std::to_string(shown) + " by time (--top 0 lists all)").c_str());
  std::printf("%9s %6s %6s %7s  %-14s %-30s %-18s %s\n", "ms", "%", "cum%", "GOPS", "op",
              "kernel", "output", "node");
  double cumulative = 0;
  for (size_t i = 0; i < shown; ++i) {
    const NodeTotals& n = *order[i];
    cumulative += n.node.seconds;
    char gops[32] = "";
    if (n.ops > 0) std::snprintf(gops, sizeof gops, "%.1f", n.ops * runs / n.node.seconds / 1e9);
    std::printf("%9.3f %5.1f%% %5.1f%% %7s  %-14s %-30s %-18s %s\n", n.node.seconds * 1e3 / runs,
                100 * n.node.seconds / total, 100 * cumulative / total, gops,
                n.node.op_type.c_str(), n.node.kernel.empty() ? "-" : n.node.kernel.c_str(),
                n.node.output_shapes.empty() ? "" : shape_str(n.node.output_shapes[0]).c_str(),
                n.node.name.c_str());
  }

  struct OpTotals {
    int count = 0;
    double seconds = 0, ops = 0;
  };
  std::map<std::string, OpTotals> by_op;
  for (const NodeTotals& n : nodes) {
    OpTotals& t = by_op[n.node.op_type];
    ++t.count;
    t.seconds += n.node.seconds;
    t.ops += n.ops;
  }
  std::vector<std::pair<std::string, OpTotals>> ops(by_op.begin(), by_op.end());
  std::stable_sort(ops.begin(), ops.end(),
                   [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  std::printf("\nby op    %9s %6s %6s %7s\n", "ms", "%", "nodes", "GOPS");
  for (const auto& [op, t] : ops) {
    std::printf("  %-14s %9.3f %5.1f%% %6d", op.c_str(), t.seconds * 1e3 / runs,
                100 * t.seconds / total, t.count);
    if (t.ops > 0) std::printf(" %7.1f", t.ops * runs / t.seconds / 1e9);
    std::printf("\n");
  }
}

Json shape_json(const Shape& shape) { return Json(std::vector<int64_t>(shape.begin(), shape.end())); }

// ---- the command -----------------------------------------------------------------------------

// --serve: answers each stdin line "N" with one JSON line {"runs_ms": [...]} of N timed runs.
int serve(const Session& session, const NamedTensors& inputs, double load_ms) {
  std::printf("%s\n", Json{{"ready", true}, {"load_ms", load_ms}}.dump().c_str());
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
    int runs = 0;
    if (line.empty()) break;
    if (!CLI::detail::lexical_cast(line, runs) || runs < 1)
      throw UsageError("--serve expects a number of runs per line, got '" + line + "'");
    const std::vector<double> times = timed_runs(0, runs, [&] { session.run(inputs); });
    std::printf("%s\n", Json{{"runs_ms", times}}.dump().c_str());
    std::fflush(stdout);
  }
  return 0;
}

int run(const BenchOptions& options) {
  if (options.serve && (options.profile || !options.json.empty()))
    throw UsageError("--serve reports on stdout; it does not combine with --profile or --json");

  SessionOptions session_options;
  session_options.num_threads = options.threads;
  session_options.input_shapes = parse_shapes(options.shapes);
  session_options.weight_only_activations = options.weight_only_activations;
  const Clock::time_point load_start = Clock::now();
  const Session session = Session::load(options.model, session_options);
  const double load_ms = ms_since(load_start);
  const Feed feed = make_feed(session, options);
  if (options.serve) {
    for (int i = 0; i < options.warmup; ++i) session.run(feed.tensors);
    return serve(session, feed.tensors, load_ms);
  }

  const int threads = options.threads > 0
                          ? options.threads
                          : int(std::max(1u, std::thread::hardware_concurrency()));
  const char* isa = kernels::isa_name(kernels::active_isa());
  std::printf("model    %s (loaded in %.1f ms)\n", options.model.c_str(), load_ms);
  // A second plan of the model, for what a run keeps resident: the weights as the kernels
  // packed them, and the constants read as they are.
  std::map<std::string, Shape> shapes;
  for (const auto& [name, tensor] : feed.tensors) shapes[name] = tensor.shape();
  const coco::ModelSummary summary = coco::summarize_model(options.model, shapes);
  std::printf("weights  %.2f MiB resident (%zu B); scheme %s\n",
              double(summary.weight_bytes) / (1 << 20), summary.weight_bytes,
              summary.scheme.c_str());
  for (size_t i = 0; i < feed.tensors.size(); ++i) {
    const auto& [name, tensor] = feed.tensors[i];
    std::printf("input    %s %s %s: %s\n", name.c_str(), dtype_name(tensor.dtype()),
                shape_str(tensor.shape()).c_str(), feed.sources[i].c_str());
  }
  std::printf("threads  %d, kernels for %s; %d timed runs after %d warmup\n", threads, isa,
              options.iters, options.warmup);

  std::vector<NodeTotals> nodes;
  std::vector<NodeProfile> profile;
  // Summing a run's node times is cheap next to the run; the warmup runs are not profiled.
  int warmup_left = options.warmup;
  const std::vector<double> times = timed_runs(options.warmup, options.iters, [&] {
    if (!options.profile || warmup_left > 0) {
      --warmup_left;
      session.run(feed.tensors);
      return;
    }
    session.run_profiled(feed.tensors, profile);
    if (nodes.empty())
      for (NodeProfile& p : profile) nodes.push_back({p, node_ops(p)});
    else
      for (size_t k = 0; k < profile.size(); ++k) nodes[k].node.seconds += profile[k].seconds;
  });
  const coco::LatencyStats l = coco::latency_stats(times);
  std::printf("latency  median %.2f ms, p90 %.2f ms, min %.2f ms, mean %.2f ms, max %.2f ms\n",
              l.median_ms, l.p90_ms, l.min_ms, l.mean_ms, l.max_ms);
  if (options.profile) print_profile(nodes, options.iters, options.top);

  if (!options.json.empty()) {
    Json report;
    report["model"] = options.model;
    report["threads"] = threads;
    report["isa"] = isa;
    report["warmup"] = options.warmup;
    report["iters"] = options.iters;
    report["load_ms"] = load_ms;
    Json inputs = Json::array();
    for (size_t i = 0; i < feed.tensors.size(); ++i)
      inputs.push_back({{"name", feed.tensors[i].first},
                        {"dtype", dtype_name(feed.tensors[i].second.dtype())},
                        {"shape", shape_json(feed.tensors[i].second.shape())},
                        {"source", feed.sources[i]}});
    report["inputs"] = inputs;
    report["scheme"] = summary.scheme;
    report["weight_bytes"] = summary.weight_bytes;
    report["latency_ms"] = {{"median", l.median_ms}, {"p90", l.p90_ms}, {"min", l.min_ms},
                            {"mean", l.mean_ms},     {"max", l.max_ms}};
    report["runs_ms"] = times;
    if (options.profile) {
      Json list = Json::array();
      for (const NodeTotals& n : nodes) {
        Json outputs = Json::array();
        for (const Shape& s : n.node.output_shapes) outputs.push_back(shape_json(s));
        Json entry = {{"name", n.node.name},     {"op_type", n.node.op_type},
                      {"kernel", n.node.kernel}, {"output_shapes", outputs},
                      {"ms", n.node.seconds * 1e3 / options.iters}};
        if (n.ops > 0) entry["gops"] = n.ops * options.iters / n.node.seconds / 1e9;
        list.push_back(entry);
      }
      report["profile"] = list;
    }
    std::ofstream file(options.json);
    if (!(file << report.dump(2) << "\n"))
      throw Error(ErrorKind::Io, "cannot write '" + options.json + "'");
  }
  return 0;
}

}  // namespace

Command add_bench_command(CLI::App& nibble) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* cmd = nibble.add_subcommand(
      "bench", "Measure a model's latency; with --profile, the time of every node");
  cmd->add_option("model", options->model, "ONNX model file")->required()->option_text("MODEL");
  cmd->add_option("--threads", options->threads, "Threads per run (default: all cores)")
      ->check(at_least(0))
      ->option_text("T");
  cmd->add_option("--iters", options->iters, "Timed runs (default 10)")
      ->check(at_least(1))
      ->option_text("N");
  cmd->add_option("--warmup", options->warmup, "Untimed runs first (default 2)")
      ->check(at_least(0))
      ->option_text("W");
  cmd->add_option("--json", options->json, "Also write the results as JSON")->option_text("F");
  cmd->add_flag("--profile", options->profile,
                "Time every node: ms, share, GOPS of convs and matmuls, kernel");
  cmd->add_option("--top", options->top, "Nodes listed by --profile (default 20; 0: all)")
      ->check(at_least(0))
      ->option_text("N");
  cmd->add_option("--input", options->input_files,
                  "Feed this tensor instead of generated data (FILE.npy alone: the only input)")
      ->allow_extra_args(false)
      ->option_text("NAME=FILE.npy");
  cmd->add_option("--shape", options->shapes, "Fix the dynamic dims of an input")
      ->allow_extra_args(false)
      ->option_text("NAME=D1xD2x...");
  cmd->add_option("--fill", options->fill,
                  "Generated inputs: random (floats uniform in 0..1, others 0) or zeros")
      ->check(CLI::IsMember({"random", "zeros"}))
      ->option_text("random|zeros");
  cmd->add_option("--seed", options->seed, "Seed of the random inputs (default 0)")
      ->option_text("S");
  add_weight_only_activations_option(*cmd, options->weight_only_activations);
  cmd->add_flag("--serve", options->serve,
                "Stay loaded: each stdin line N runs N timed iterations and answers one JSON "
                "line {\"runs_ms\": [...]} (for bench/peers/peers.py)");
  cmd->footer(
      "Latency is wall time of Session::run on inputs of the declared shapes. With --profile\n"
      "the nodes are those nibble runs after constant folding and fusion.\n"
      "\nExamples:\n"
      "  nibble bench yolov10m.onnx --threads 1 --iters 5\n"
      "  nibble bench yolov10n-640-fp32.onnx --profile --top 10 --json bench.json");
  return {cmd, [options] { return run(*options); }};
}

}  // namespace nibble::cli
