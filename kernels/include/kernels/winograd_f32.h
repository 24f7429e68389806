// Winograd FP32 convolution for 3x3 kernels, stride 1, dilation 1, one group (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016).
//
// F(m x m, 3x3) computes an m x m tile of output from an a x a tile of input (a = m + 2) with
// a·a multiplications per input/output channel pair instead of 9·m·m:
//   Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A
// Per transform point p (a·a of them) the channel sum is one GEMM,
//   M[p] (out_channels x tiles) = U[p] (out_channels x in_channels) · V[p] (in_channels x tiles),
// run on the packed FP32 GEMM micro-kernels (gemm_f32.h): U = G g Gᵀ is the A operand, packed
// once at load; V = Bᵀ d B is written by the input transform straight into the B strip layout,
// one strip of NR tiles at a time. The output transform then applies Aᵀ·A, the bias, and the
// driver the rest of the convolution's epilogue on whole output rows.
//
// Tiles (measured on this project's Zen 5 machine over yolov10m's 3x3 stride-1 shapes, 1 thread;
// error relative to a double-precision direct convolution; figures in issue 7's notes):
//   F(2x2): 2.25x fewer multiplications, error ~0.5x direct's (~3e-7), 1.1-1.8x faster than direct;
//   F(4x4): 4x fewer, error ~10x direct's (~5e-6), 1.2-2.2x faster (fastest on yolov10m's shapes);
//   F(6x6): 5.06x fewer, error ~20x direct's (~1e-5), slower than F(4x4) on all but one shape
//           (64 transform points; its 8x8 tiles leave strips half empty on small images).
// The engine uses F(4x4), and F(2x2) on images too small to fill F(4x4)'s strips.
#pragma once

#include <cstdint>

#include "kernels/conv_f32.h"

namespace nibble::kernels {

// The input plane of one channel, zero-padded to whole tiles and phase-split: each padded row
// (`pitch` = tile * (tiles_w + 1) floats) holds `tile` phases of tiles_w + 1 floats, phase p
// holding padded columns p, p + tile, p + 2·tile, ... So the columns a run of tiles reads are
// contiguous in each phase, with no permutes in the transform's inner loop.
//
// Lanes [lane, lane + count) of a strip are `count` consecutive tiles of one tile row; the
// first one's window starts at row origin / pitch, phase element origin % pitch of the plane.
struct WinogradRun {
  int64_t lane, count, origin;
};

// Input transform of one channel for one strip of `lanes` tiles from its phase-split plane:
// writes the a·a transform points, point p's `lanes` values at v + p * point_stride. Lanes
// outside the runs are zeroed.
using WinogradInputFn = void (*)(const float* plane, int64_t pitch, const WinogradRun* runs,
                                 int64_t num_runs, float* v, int64_t point_stride);
// Output transform of one output channel for one strip: reads point p at m + p * point_stride,
// writes the tiles plus `bias` as `tile` rows of lanes * tile pixels (the strip's tiles side by
// side): pixel (r, c) of lane l at out[(r * lanes + l) * tile + c].
using WinogradOutputFn = void (*)(const float* m, int64_t point_stride, float bias, float* out);

struct WinogradF32Kernel {
  Isa isa;
  int tile;      // m: output tile m x m
  int64_t lanes;  // tiles per strip: the GEMM's NR
  const char* name;  // "F(4x4,3x3)"
  const GemmF32Kernel* gemm;
  WinogradInputFn input;
  WinogradOutputFn output;

  int64_t alpha() const { return tile + 2; }
  int64_t points() const { return alpha() * alpha(); }
};

// The table row for `isa` (the best at or below it) and output tile m (2, 4 or 6).
const WinogradF32Kernel& winograd_f32_kernel(Isa isa, int tile = 4);

// True when the shape is a 3x3, stride 1, dilation 1, one-group 2-D convolution with at most
// one pad on each side: the shapes the Winograd driver computes.
bool winograd_f32_applies(const ConvF32Shape& shape);
// True when `kernel` is also the faster path for the shape (by measurement; see the .cpp).
bool winograd_f32_preferred(const ConvF32Shape& shape, const WinogradF32Kernel& kernel);
// The kernel conv_f32_pack uses for the shape at `isa`: F(4x4), else F(2x2) (images too small
// for F(4x4) tiles to fill its strips), else null (direct convolution).
const WinogradF32Kernel* winograd_f32_choose(const ConvF32Shape& shape, Isa isa);

// Weight transform U = G g Gᵀ (computed in double, stored as float) for `count` output channels
// of an ONNX weight w [count][in_channels][3][3]: point p of output channel o, input channel c
// goes to u[p * point_stride + o * ldu + c]. Callable per block of output channels, so a path
// that keeps weights quantized can dequantize and transform one block at a time.
void winograd_f32_transform_weights(int tile, const float* w, int64_t in_channels, int64_t count,
                                    float* u, int64_t point_stride, int64_t ldu);

// Packs w [out_channels][in_channels][3][3] for the Winograd driver: per transform point, U[p]
// packed as the GEMM's A (weights.group_stride floats apart).
ConvF32Weights winograd_f32_pack(const ConvF32Shape& shape, const float* w,
                                 const WinogradF32Kernel& kernel);

// y = epilogue(conv(x, w)) for a shape winograd_f32_applies() accepts.
void winograd_f32_run(const ConvF32Shape& shape, const ConvF32Weights& weights, const float* x,
                      float* y, const ConvF32Epilogue& epilogue, ThreadPool* pool);

#define NIBBLE_WINOGRAD_DECLARE(ns)                                                             \
  namespace ns {                                                                                \
  template <int Tile>                                                                           \
  void winograd_f32_input(const float* plane, int64_t pitch, const WinogradRun* runs,           \
                          int64_t num_runs, float* v, int64_t point_stride);                    \
  template <int Tile>                                                                           \
  void winograd_f32_output(const float* m, int64_t point_stride, float bias, float* out);       \
  }
NIBBLE_WINOGRAD_DECLARE(ref)
NIBBLE_WINOGRAD_DECLARE(avx2)
NIBBLE_WINOGRAD_DECLARE(avx512)
#undef NIBBLE_WINOGRAD_DECLARE

}  // namespace nibble::kernels
