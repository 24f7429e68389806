// Depthwise convolution on quantized activations (W8A8 / W4A8 with one input and one output
// channel per group), the integer counterpart of the FP32 depthwise kernel in conv_f32.h.
//
// A depthwise layer has only channels x taps weights, so it is no GEMM: the generic qgemm path
// would run one single-row GEMM per channel. Here each channel is a direct convolution reading
// the input in place (padding reads as the zero point; int8 activations are flipped to uint8 by
// adding 128, the zero point with them): a vector lane holds a run of up to four horizontal taps
// of one output, multiplied by the run's weights exactly (vpdpbusd, or vpmaddwd two taps at a
// time), several output rows at a time (kernels/dispatch/dwconv_int_kernels.h). Horizontal
// strides above 4 run the reference.
//
// Arithmetic and epilogue are those of qgemm's mode A8 (gemm_int.h), per channel c:
//   acc = sum_t w[c][t] * (x[t] - x_zero_point)   (padding reads as the zero point: adds 0)
//   y   = (w_scale[c] * x_scale) * float(acc) + bias[c], then SiLU and the clamp if asked,
// stored as F32, requantized U8/S8, or the raw acc (I32, for ConvInteger).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/gemm_int.h"

namespace nibble::kernels {

// Weights of one depthwise layer. 4-bit weights are range-checked and kept one per byte: a
// depthwise layer holds channels x taps values (a few KiB), so nibble packing saves nothing
// that matters while every tap would pay an unpack.
struct PackedQDwWeights {
  QuantMode mode = QuantMode::A8;  // A8, or A16: weight-only, for float activations
  int bits = 8;                 // 8 or 4: the range the values were checked against
  int64_t channels = 0, taps = 0;
  Isa isa = Isa::Ref;           // row kernel chosen at pack time
  std::string kernel;           // "dw_w8a8 4x16 avx512" etc., for inspect
  std::vector<int8_t> values;   // [channels][taps]
  std::vector<float> scales;    // one per channel
  std::vector<int32_t> tap_sums;  // sum over t of values[c][t] (zero-point compensation)

  size_t packed_bytes() const;
};

// Packs w[channels][taps] with `scales` (channels values when per_channel, else one) for the best
// row kernel of ISA level <= `isa`. Throws nibble::Error(InvalidArgument) for bits other than 4/8,
// int4 values outside [-8, 7], empty sizes, non-finite or non-positive scales, or an `isa` above
// what this CPU supports.
PackedQDwWeights pack_qdwconv_weights(int bits, int64_t channels, int64_t taps, const int8_t* w,
                                      const float* scales, bool per_channel,
                                      Isa isa = active_isa());
// The same for `mode`: A8 as above, or A16 (weight-only W8A16 / W4A16: float activations; qdwconv
// expands each channel's taps to q * scale and runs the FP32 depthwise kernel of conv_f32.h, so
// the result is the fake-quant graph's up to float summation order). A16I16 is refused.
PackedQDwWeights pack_qdwconv_weights(QuantMode mode, int bits, int64_t channels, int64_t taps,
                                      const int8_t* w, const float* scales, bool per_channel,
                                      Isa isa = active_isa());

// True when `g` (the geometry of one group) is a convolution qdwconv runs: one channel, 1-D or
// 2-D (in[0] == out[0] == kernel[0] == 1).
bool qdwconv_supports(const ref::ConvGeometry& g);

// Channels [c_begin, c_end) of one image. `x.conv` is the geometry of one group (channels == 1)
// and x.data the image's first channel, channels x.conv->in_size() apart; x.type U8 or S8 with
// its scale and zero point (mode A8), or F32 (mode A16). Output channel c, position n at out.data[c * out.row_stride + n]
// (out.col_stride must be 1). Single-threaded and thread-safe (scratch is per thread): callers
// split channel ranges across threads. Throws nibble::Error(InvalidArgument) on an unsupported
// geometry, a float source, a tap count other than the weights', or a range outside
// [0, channels].
void qdwconv(const PackedQDwWeights& w, const QSource& x, int64_t c_begin, int64_t c_end,
             const QEpilogue& epilogue, const QOutput& out);

namespace ref {
// The oracle: qgemm_reference on each channel as a one-row GEMM (same arguments as qdwconv,
// with the logical weights w[channels][taps] and one scale per channel).
void qdwconv_reference(int64_t taps, const int8_t* w, const float* scales, const QSource& x,
                       int64_t c_begin, int64_t c_end, const QEpilogue& epilogue,
                       const QOutput& out);
}  // namespace ref

}  // namespace nibble::kernels
