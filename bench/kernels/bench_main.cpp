// nibble_bench_kernels: Google Benchmark microbenchmarks of nibble's kernels against oneDNN and
// Eigen on the same shapes, threads and ISA cap (see bench_kinds.h for the structure).
//
//   nibble_bench_kernels [--threads=N] [--shapes=FILE] [Google Benchmark flags]
//
// --threads (default 1) sizes nibble's thread pool, oneDNN's OpenMP team and Eigen's threads.
// With one thread, times are the benchmark thread's CPU time (robust on a shared machine); with
// more they are wall-clock times. NIBBLE_ISA caps nibble's kernels, the FMA peak probe and
// oneDNN alike. Counters: GOPS = 2·M·N·K / time (multiply-adds of the convolution for BM_conv;
// the fused bias and SiLU are not counted) and peak_frac = GOPS / BM_peak/f32_fma.
#include <benchmark/benchmark.h>
#include <dnnl.hpp>
#include <omp.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>

#include "bench/kernels/bench_kinds.h"
#include "kernels/cpu_features.h"

namespace nibble::bench {
namespace {

// ---- the kinds ----------------------------------------------------------------------------------
const GemmKind kGemmKinds[] = {
    {"f32", prepare_gemm_f32},
    {"onednn_f32", prepare_gemm_onednn_f32},
    {"eigen_f32", prepare_gemm_eigen_f32},
    {"w8a8", prepare_gemm_w8a8},
    {"w4a8", prepare_gemm_w4a8},
    {"w8a16", prepare_gemm_w8a16},
    {"w4a16", prepare_gemm_w4a16},
    {"w8a16i16", prepare_gemm_w8a16i16},
    {"w4a16i16", prepare_gemm_w4a16i16},
    {"onednn_u8s8", prepare_gemm_onednn_u8s8},
};

const ConvKind kConvKinds[] = {
    {"f32", prepare_conv_f32},
    {"f32_direct", prepare_conv_f32_direct},
    {"onednn_f32", prepare_conv_onednn_f32},
    {"onednn_f32_nchw", prepare_conv_onednn_f32_nchw},
    {"w8a8", prepare_conv_w8a8},
    {"w4a8", prepare_conv_w4a8},
    {"w8a16", prepare_conv_w8a16},
    {"w4a16", prepare_conv_w4a16},
    {"w8a16i16", prepare_conv_w8a16i16},
    {"w4a16i16", prepare_conv_w4a16i16},
    {"onednn_u8s8", prepare_conv_onednn_u8s8},
    {"onednn_u8s8_nozp", prepare_conv_onednn_u8s8_nozp},
};

const int64_t kSquareGemmSizes[] = {256, 512, 1024, 2048};

// ---- registration -------------------------------------------------------------------------------

void set_counters(benchmark::State& state, double flops, double peak_gflops) {
  state.counters["GOPS"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_frac"] =
      benchmark::Counter(flops * 1e-9 / peak_gflops, benchmark::Counter::kIsIterationInvariantRate);
}

template <typename Prepare, typename Shape>
void run_benchmark(benchmark::State& state, const Prepare& prepare, const Shape& shape,
                   const BenchContext& ctx, double flops, double peak_gflops) {
  const BenchRun run = prepare(shape, ctx);
  if (!run) {
    state.SkipWithError("not available at this ISA");
    return;
  }
  for (auto _ : state) run();
  set_counters(state, flops, peak_gflops);
}

void register_all(const std::vector<ConvShape>& conv_shapes, const BenchContext& ctx,
                  double peak_gflops) {
  auto configure = [&](benchmark::internal::Benchmark* b) {
    b->Unit(benchmark::kMillisecond);
    if (ctx.threads > 1) b->UseRealTime();
  };
  configure(benchmark::RegisterBenchmark("BM_peak/f32_fma", [peak_gflops](benchmark::State& state) {
    double flops = 0.0;
    for (auto _ : state) flops = run_fma_probe(1 << 20);
    set_counters(state, flops, peak_gflops);
  }));
  for (const GemmKind& kind : kGemmKinds) {
    for (int64_t size : kSquareGemmSizes) {
      const GemmShape shape{size, size, size};
      const std::string name = "BM_gemm/" + std::string(kind.name) + "/" + std::to_string(size) +
                               "/" + std::to_string(size) + "/" + std::to_string(size);
      configure(benchmark::RegisterBenchmark(
          name.c_str(), [&kind, shape, ctx, peak_gflops](benchmark::State& state) {
            run_benchmark(state, kind.prepare, shape, ctx,
                          2.0 * double(shape.m) * double(shape.n) * double(shape.k), peak_gflops);
          }));
    }
  }
  for (const ConvKind& kind : kConvKinds) {
    for (const ConvShape& shape : conv_shapes) {
      const std::string name = "BM_conv/" + std::string(kind.name) + "/" + shape.name;
      configure(benchmark::RegisterBenchmark(
          name.c_str(), [&kind, shape, ctx, peak_gflops](benchmark::State& state) {
            run_benchmark(state, kind.prepare, shape, ctx, shape.flops(), peak_gflops);
          }));
    }
  }
}

// oneDNN gets the same cap as nibble's kernels.
void cap_onednn_isa() {
  switch (kernels::active_isa()) {
    case kernels::Isa::Ref: dnnl::set_max_cpu_isa(dnnl::cpu_isa::sse41); break;
    case kernels::Isa::Avx2: dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx2); break;
    default: break;
  }
}

// Removes --name=value from argv (Google Benchmark rejects flags it does not know).
bool take_flag(int& argc, char** argv, const char* name, std::string& value) {
  const std::string prefix = std::string("--") + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) {
      value = argv[i] + prefix.size();
      for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
      --argc;
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<float> random_floats(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<ConvShape> load_conv_shapes(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error("cannot read the shapes file '" + path + "'");
  std::vector<ConvShape> shapes;
  std::string line;
  for (int number = 1; std::getline(file, line); ++number) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    ConvShape s;
    if (!(fields >> s.name >> s.count >> s.in_channels >> s.height >> s.width >> s.out_channels >>
          s.kernel >> s.stride >> s.groups) ||
        s.groups < 1 || s.in_channels % s.groups != 0 || s.out_channels % s.groups != 0 ||
        s.kernel < 1 || s.stride < 1) {
      throw std::runtime_error(path + ":" + std::to_string(number) +
                               ": expected 'name count in_channels height width out_channels "
                               "kernel stride group'");
    }
    shapes.push_back(s);
  }
  return shapes;
}

}  // namespace nibble::bench

int main(int argc, char** argv) {
  using namespace nibble::bench;
  try {
    std::string threads_flag = "1", shapes_path = NIBBLE_BENCH_SHAPES_DIR "/yolov10m.txt";
    take_flag(argc, argv, "threads", threads_flag);
    take_flag(argc, argv, "shapes", shapes_path);
    const int threads = std::stoi(threads_flag);
    if (threads < 1) throw std::runtime_error("--threads must be at least 1");
    const std::vector<ConvShape> shapes = load_conv_shapes(shapes_path);

    nibble::ThreadPool pool(threads);
    const BenchContext ctx{threads, &pool};
    omp_set_num_threads(threads);
    cap_onednn_isa();
    const double peak = measure_fma_peak_gflops(0.5);
    std::fprintf(stderr, "nibble kernels at %s, %d thread(s); FMA peak %.1f GFLOPS; shapes %s\n",
                nibble::kernels::isa_name(nibble::kernels::active_isa()), threads, peak,
                shapes_path.c_str());
    register_all(shapes, ctx, peak);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nibble_bench_kernels: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
