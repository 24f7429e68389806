// The kernel microbenchmarks are a table of *kinds* (nibble's kernels and the baselines they are
// measured against) crossed with shapes: BM_gemm/<kind>/<M>/<N>/<K> over square GEMMs and
// BM_conv/<kind>/<shape> over the convolutions of a real model (bench/shapes/*.txt).
//
// A kind is a name and a prepare function per benchmark family. prepare() does everything a real
// run does once (allocate and fill operands, pack weights, create primitives) and returns the
// function the benchmark times; it returns an empty function when the kind cannot run that shape
// on this CPU (the benchmark is then reported as skipped). A new kind is one entry in the tables
// of bench_main.cpp plus its prepare functions in a file of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/exec/thread_pool.h"
#include "kernels/ref.h"

namespace nibble::bench {

struct GemmShape {
  int64_t m, n, k;  // C[m x n] = A[m x k] · B[k x n]; A holds the weights
};

// One convolution of a model, batch 1, NCHW; padding kernel/2 on every side, dilation 1.
struct ConvShape {
  std::string name;
  int64_t count = 1;  // how often the model runs it (aggregates weight by it)
  int64_t in_channels, height, width, out_channels, kernel, stride, groups;

  int64_t pad() const { return kernel / 2; }
  int64_t out_height() const { return (height + 2 * pad() - kernel) / stride + 1; }
  int64_t out_width() const { return (width + 2 * pad() - kernel) / stride + 1; }
  // Multiply-adds x 2.
  double flops() const {
    return 2.0 * double(out_channels) * double(in_channels / groups) * double(kernel * kernel) *
           double(out_height() * out_width());
  }
};

// The 2-D geometry of one group of `s`, `channels` input channels per group.
inline kernels::ref::ConvGeometry conv_geometry(const ConvShape& s, int64_t channels) {
  kernels::ref::ConvGeometry g;
  g.channels = channels;
  g.in[1] = s.height;
  g.in[2] = s.width;
  g.out[1] = s.out_height();
  g.out[2] = s.out_width();
  g.kernel[1] = g.kernel[2] = s.kernel;
  g.stride[1] = g.stride[2] = s.stride;
  g.pad[1] = g.pad[2] = s.pad();
  return g;
}

// Reads a shapes file (bench/shapes/yolov10m.txt format: '#' comments, then
// "name count in_channels height width out_channels kernel stride group" per line).
std::vector<ConvShape> load_conv_shapes(const std::string& path);

struct BenchContext {
  int threads = 1;
  ThreadPool* pool = nullptr;  // nibble's pool with `threads` threads
};

// Every kind runs the convolution with bias and SiLU fused (what YOLO's Conv modules do), on
// random data.
using BenchRun = std::function<void()>;
using GemmPrepare = std::function<BenchRun(const GemmShape&, const BenchContext&)>;
using ConvPrepare = std::function<BenchRun(const ConvShape&, const BenchContext&)>;

struct GemmKind {
  const char* name;
  GemmPrepare prepare;
};
struct ConvKind {
  const char* name;
  ConvPrepare prepare;
};

// Random values in [-1, 1], reproducible.
std::vector<float> random_floats(size_t n, unsigned seed);

// ---- kinds (one file each) ---------------------------------------------------------------------
BenchRun prepare_gemm_f32(const GemmShape& shape, const BenchContext& ctx);    // kinds_f32.cpp
BenchRun prepare_conv_f32(const ConvShape& shape, const BenchContext& ctx);
BenchRun prepare_conv_f32_direct(const ConvShape& shape, const BenchContext& ctx);  // no Winograd
BenchRun prepare_gemm_onednn_f32(const GemmShape& shape, const BenchContext& ctx);  // kinds_onednn.cpp
BenchRun prepare_conv_onednn_f32(const ConvShape& shape, const BenchContext& ctx);
BenchRun prepare_conv_onednn_f32_nchw(const ConvShape& shape, const BenchContext& ctx);
BenchRun prepare_gemm_eigen_f32(const GemmShape& shape, const BenchContext& ctx);  // kinds_eigen.cpp
// Low-bit kinds (kinds_int.cpp) and their oneDNN int8 baseline (kinds_onednn_int.cpp).
BenchRun prepare_gemm_w8a8(const GemmShape& shape, const BenchContext& ctx);
BenchRun prepare_gemm_w4a8(const GemmShape& shape, const BenchContext& ctx);
BenchRun prepare_gemm_w8a16(const GemmShape& shape, const BenchContext& ctx);
BenchRun prepare_gemm_w4a16(const GemmShape& shape, const BenchContext& ctx);
BenchRun prepare_gemm_w8a16i16(const GemmShape& shape, const BenchContext& ctx);
BenchRun prepare_gemm_w4a16i16(const GemmShape& shape, const BenchContext& ctx);
BenchRun prepare_conv_w8a8(const ConvShape& shape, const BenchContext& ctx);
BenchRun prepare_conv_w4a8(const ConvShape& shape, const BenchContext& ctx);
BenchRun prepare_conv_w8a16(const ConvShape& shape, const BenchContext& ctx);
BenchRun prepare_conv_w4a16(const ConvShape& shape, const BenchContext& ctx);
BenchRun prepare_conv_w8a16i16(const ConvShape& shape, const BenchContext& ctx);
BenchRun prepare_conv_w4a16i16(const ConvShape& shape, const BenchContext& ctx);
BenchRun prepare_gemm_onednn_u8s8(const GemmShape& shape, const BenchContext& ctx);
BenchRun prepare_conv_onednn_u8s8(const ConvShape& shape, const BenchContext& ctx);
BenchRun prepare_conv_onednn_u8s8_nozp(const ConvShape& shape, const BenchContext& ctx);

// FMA peak of one thread at the widest vector width active_isa() allows, in GFLOPS
// (peak_fma.cpp); the reference for every peak_frac counter.
double measure_fma_peak_gflops(double seconds);
// Runs `iterations` rounds of the probe's independent FMA chains (for BM_peak/f32_fma); returns
// the floating-point operations done.
double run_fma_probe(int64_t iterations);

}  // namespace nibble::bench
