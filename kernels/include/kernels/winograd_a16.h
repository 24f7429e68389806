// Weight-only (W4A16 / W8A16) Winograd convolution: the FP32 Winograd driver
// (kernels/winograd_f32.h) with the weights resident at 4 or 8 bits.
//
// The FP32 path transforms U = G g Gᵀ once at load and keeps a·a float matrices per channel
// pair (4x the 3x3 weights at F(4x4)); here the weights stay quantized, and every run
// dequantizes them (w = q · scale, exactly as DequantizeLinear), transforms them in float with
// the ISA's vectors and writes U straight into the per-point GEMM A layout of a per-thread
// scratch buffer, which the FP32 driver then sweeps over every tile of the image. The transform
// is a few vector operations per value of U against the 2·tiles multiply-adds each value feeds,
// so on images of the sizes Winograd is chosen for it costs a few percent of the layer.
//
// Weight layout: per panel of the GEMM's MR output channels, nine tap sections (tap t = 3·kh +
// kw), each the [in_channels][MR] values of that tap in the packed A order (rows past
// out_channels zero) padded to whole 64-value runs (gemm_a16_f32.h's run encoding: a byte per
// value, or at 4 bits value j of a run in the low nibble of byte j and value 32 + j in the high
// nibble of byte j). Expanding one section gives one tap of the panel for all its channel pairs,
// so the transform is a lane loop over contiguous floats whose outputs land where the packed A
// of each transform point wants them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/aligned_buffer.h"
#include "kernels/gemm_int.h"
#include "kernels/winograd_f32.h"

namespace nibble::kernels {

struct WinogradA16Weights {
  const WinogradF32Kernel* kernel = nullptr;
  int bits = 8;  // 4 or 8
  int64_t in_channels = 0, out_channels = 0;
  std::vector<float> scales;     // one per output channel
  AlignedBuffer<uint8_t> data;   // the layout above

  int64_t panels() const;
  int64_t section_values() const;  // values per tap section: in_channels · MR, whole runs
  size_t packed_bytes() const { return data.size() + scales.size() * sizeof(float); }
  // e.g. "F(4x4,3x3) 12x32": the transform tile and the GEMM's register tile.
  std::string tile_name() const;
};

// The Winograd kernel for a weight-only convolution of `shape` at ISA level <= `isa`, or null
// when the shape takes the direct path: the FP32 path's choice (winograd_f32_choose), so the
// two run the same algorithm on the same shapes.
const WinogradF32Kernel* winograd_a16_choose(const ConvF32Shape& shape, Isa isa);

// Whether the weight-only Winograd path is also faster than the int16-activation direct
// kernels (QuantMode::A16I16) on a shape winograd_a16_choose() accepts. Measured on yolov10m
// (1 thread, Zen 5, time of all layers of a shape, Winograd / int16 direct): 96->96 at 80x80
// 0.89, 192->192 at 40x40 0.90; but 48->48 at 160x160 1.22 and the 64-output-channel head
// layers 1.05-1.6: the int16 kernels' doubled multiply rate wins where few channels leave
// Winograd's transforms a larger share.
bool winograd_a16_beats_int16(const ConvF32Shape& shape);

// Packs `values` [out_channels][in_channels][3][3] (zero points removed; in [-8, 7] when bits
// is 4) and one positive scale per output channel. Throws nibble::Error(InvalidArgument) on
// bits other than 4/8 or values outside the bit width's range.
WinogradA16Weights winograd_a16_pack(const ConvF32Shape& shape, int bits, const int8_t* values,
                                     const float* scales, const WinogradF32Kernel& kernel);

// Dequantizes and transforms panels [panel_begin, panel_end) into the per-point packed A
// layout: point p's panel P at u[p * point_stride + P * MR * in_channels]. Single-threaded.
void winograd_a16_transform(const WinogradA16Weights& w, int64_t panel_begin, int64_t panel_end,
                            float* u, int64_t point_stride);

// y = epilogue(conv(x, dequantized w)) for every image of x, through the pool: the weights are
// transformed (in parallel over panels) into the calling thread's scratch, then the FP32
// Winograd driver runs. `out` holds out_channels rows of shape.geometry.out_size() values per
// image (row_stride as such, col_stride 1), F32, or U8/S8 quantized exactly as QuantizeLinear.
void winograd_a16_conv(const ConvF32Shape& shape, const WinogradA16Weights& w, const float* x,
                       const QEpilogue& epilogue, const QOutput& out, ThreadPool* pool);

}  // namespace nibble::kernels
