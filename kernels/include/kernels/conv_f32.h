// FP32 convolution in NCHW on the packed GEMM's micro-kernels (gemm_f32.h), and a direct kernel
// for depthwise 2-D convolutions.
//
// 3x3 stride-1 convolutions with enough channels run Winograd F(4x4, 3x3) (F(2x2, 3x3) on small
// images) instead (kernels/winograd_f32.h), on the same micro-kernels.
//
// Layout: activations stay NCHW (the engine's layout), so no op around a convolution pays a
// conversion. Per group, the convolution is the GEMM C[out_channels x positions] =
// W[out_channels x (C·taps)] · im2col(X), with W packed once at load. How B = im2col(X) reaches
// the micro-kernel depends on the shape:
//   - 1x1, stride 1, no padding: im2col(X) is X; packed block by block like any GEMM operand;
//   - other 1-D / 2-D kernels: implicit GEMM, B read straight from zero-padded copies of bands
//     of X split into stride phases (kernels/dispatch/conv_f32_implicit.cpp);
//   - 3-D kernels: im2col rows packed into B blocks.
// Depthwise convolutions (one input and one output channel per group, stride <= 2) run a row
// kernel over a zero-padded copy of each input plane; for stride 2 the copy splits every row into
// its even and odd columns, so every tap reads a contiguous run.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/gemm_f32.h"
#include "kernels/ref.h"

namespace nibble::kernels {

struct ConvF32Shape {
  int64_t batch = 1, in_channels = 0, out_channels = 0, groups = 1;
  ref::ConvGeometry geometry;  // of one group: channels = in_channels / groups

  int64_t out_channels_per_group() const { return out_channels / groups; }
  // One input and one output channel per group, 1-D or 2-D, stride <= 2: the direct kernel.
  bool direct_depthwise() const;
};

// What follows the convolution, fused into it (Epilogue's order): bias per output channel,
// a residual tensor shaped like the output, an activation.
struct ConvF32Epilogue {
  const float* bias = nullptr;
  Activation activation = Activation::None;
  float clip_min = 0.0f, clip_max = 0.0f;
  const float* residual = nullptr;
  bool residual_first = false;
};

// Calls f(std::integral_constant<Activation, a>{}): the depthwise kernels are instantiated per
// activation, so their epilogues carry no run-time switch.
template <typename F>
void with_activation(Activation a, F&& f) {
  switch (a) {
    case Activation::None: return f(std::integral_constant<Activation, Activation::None>{});
    case Activation::Relu: return f(std::integral_constant<Activation, Activation::Relu>{});
    case Activation::Clip: return f(std::integral_constant<Activation, Activation::Clip>{});
    case Activation::Sigmoid: return f(std::integral_constant<Activation, Activation::Sigmoid>{});
    case Activation::SiLU: return f(std::integral_constant<Activation, Activation::SiLU>{});
  }
}

// The output plane of one depthwise channel, `rows` rows of `width`, row r:
//   out[r * width + i] = epilogue(sum_t weights[t] * inputs[t][r * input_pitch + i])
// with every tap's input run contiguous. The epilogue sees row 0 for every row (bias[0] is the
// channel's bias) and its residual is laid out like `out`.
using DwConvF32Rows = void (*)(int64_t taps, const float* const* inputs, int64_t input_pitch,
                               const float* weights, int64_t width, int64_t rows, float* out,
                               const TileEpilogue* epilogue);

// 3x3 depthwise planes with one pad at the top and left (stride 1: "same" output; stride 2: the
// output ceil(in / 2)), read as flat runs: output f (of count = out_h * out_w, row-major) sums
// weights[t] * taps[t][f] over taps t = 3 dy + dx, where taps[t] points at the input of output 0
// for tap t — the plane itself (stride 1, offset (dy - 1) * width + dx - 1) or one of its four
// zero-padded row/column phase planes (stride 2, pitch out_w). No per-row padding, and every
// vector is full however narrow the rows (a 20-wide plane is 25 full 16-lane vectors, not 20 rows
// of 16 + 4 lanes). Lanes whose tap falls outside the image are masked (dwconv_f32_flat_masks).
struct DwFlatPlane {
  const float* taps[9];
  int64_t count = 0;
  // Block b of `lanes` outputs is interior (every tap's loads lie inside the input, and only the
  // left/right column masks apply) when b * lanes >= lo_margin and (b + 1) * lanes + hi_margin <=
  // count.
  int64_t lo_margin = 0, hi_margin = 0;
  const uint16_t* masks = nullptr;
};
using DwConvF32Flat3x3 = void (*)(const DwFlatPlane& plane, const float* weights, float* out,
                                  const TileEpilogue* epilogue);

// The four row/column phases of a stride-2 plane (in_h x in_w), each out_h x out_w (out =
// ceil(in / 2)) with zeros past the image: phase (a, b) at phases + (2 a + b) * out_h * out_w
// holds input (2 i + a, 2 j + b) at (i, j).
using DwConvF32SplitPhases = void (*)(const float* plane, int64_t in_h, int64_t in_w,
                                      float* phases);

struct DwConvF32Kernel {
  Isa isa;
  DwConvF32Rows rows;
  DwConvF32Flat3x3 flat3x3 = nullptr;  // null: the rows kernel on a padded copy
  DwConvF32SplitPhases split_phases = nullptr;
  int flat_lanes = 0;                  // outputs per block of flat3x3
};

// Per block b of `lanes` outputs of a flat 3x3 plane (lane l is output f = b * lanes + l) of
// out_h x out_w outputs at `stride` 1 or 2: masks[b * kDwFlatMasksPerBlock + 3 dy + dx] the lanes
// whose tap (dy, dx) reads inside the image (and f < out_h * out_w); then the lanes whose left
// (dx = 0) and right (dx = 2) tap column is inside the image.
constexpr int kDwFlatMasksPerBlock = 11;
void dwconv_f32_flat_masks(int64_t out_h, int64_t out_w, int stride, int lanes, uint16_t* masks);
const DwConvF32Kernel& dwconv_f32_kernel(Isa isa);

struct WinogradF32Kernel;  // kernels/winograd_f32.h

// Weights packed for one shape and ISA, once at load.
struct ConvF32Weights {
  const GemmF32Kernel* gemm = nullptr;     // general convolutions (and Winograd's GEMMs)
  const DwConvF32Kernel* depthwise = nullptr;  // direct_depthwise() shapes
  const WinogradF32Kernel* winograd = nullptr;  // 3x3 stride-1 shapes where it is faster
  // Packed A of each group (group_stride apart), or of each Winograd transform point (also
  // group_stride apart), or the depthwise taps [C][kh*kw].
  std::vector<float> data;
  int64_t group_stride = 0;

  size_t bytes() const { return data.size() * sizeof(float); }
};

// Auto takes Winograd for the 3x3 stride-1 shapes where it is faster; Direct never does (the
// kernel benchmarks report both, since Winograd's throughput counts direct-convolution work).
enum class ConvF32Algorithm { Auto, Direct };

// w is [out_channels, in_channels / groups, kernel...] as in ONNX.
ConvF32Weights conv_f32_pack(const ConvF32Shape& shape, const float* w, Isa isa,
                             ConvF32Algorithm algorithm = ConvF32Algorithm::Auto);

// y = epilogue(conv(x, w)); x [batch, in_channels, in...] and y [batch, out_channels, out...].
void conv_f32_run(const ConvF32Shape& shape, const ConvF32Weights& weights, const float* x,
                  float* y, const ConvF32Epilogue& epilogue, ThreadPool* pool = nullptr);

// Packs rows [k0, k0 + kc) and columns [n0, n0 + nc) of the im2col matrix of `image` (one
// group's channels) into strips of nr columns (gemm_f32.h's B layout). Padding reads as 0.
void im2col_f32_pack(const ref::ConvGeometry& g, const float* image, int64_t nr, int64_t k0,
                     int64_t kc, int64_t n0, int64_t nc, float* packed);

namespace ref {
// The oracle: a direct convolution loop in double precision, then the epilogue.
void conv_f32_naive(const ConvF32Shape& shape, const float* x, const float* w, float* y,
                    const ConvF32Epilogue& epilogue);
void dwconv_f32_rows(int64_t taps, const float* const* inputs, int64_t input_pitch,
                     const float* weights, int64_t width, int64_t rows, float* out,
                     const TileEpilogue* epilogue);
}  // namespace ref
namespace avx2 {
void dwconv_f32_rows(int64_t taps, const float* const* inputs, int64_t input_pitch,
                     const float* weights, int64_t width, int64_t rows, float* out,
                     const TileEpilogue* epilogue);
void dwconv_f32_flat3x3(const DwFlatPlane& plane, const float* weights, float* out,
                        const TileEpilogue* epilogue);
void dwconv_f32_split_phases(const float* plane, int64_t in_h, int64_t in_w, float* phases);
}  // namespace avx2
namespace avx512 {
void dwconv_f32_rows(int64_t taps, const float* const* inputs, int64_t input_pitch,
                     const float* weights, int64_t width, int64_t rows, float* out,
                     const TileEpilogue* epilogue);
void dwconv_f32_flat3x3(const DwFlatPlane& plane, const float* weights, float* out,
                        const TileEpilogue* epilogue);
void dwconv_f32_split_phases(const float* plane, int64_t in_h, int64_t in_w, float* phases);
}  // namespace avx512

}  // namespace nibble::kernels
