// Low-bit GEMM and convolution: int8/int4 weights against integer or float activations.
//
// All families compute C[M x N] = W[M x K] · B[K x N] in the orientation of the FP32 path: the
// weights (output channels x input channels·taps) are the A side, packed once at load; the
// activations are the B side — a strided matrix, or the im2col matrix of an NCHW image, whose
// columns are output pixels. Weights are symmetric (zero point 0), 8 bits ([-128, 127]) or 4 bits
// ([-8, 7], stored two per byte), with one scale per output channel (a per-tensor scale is
// repeated).
//
// Families (QuantMode) — see kernels/dispatch/gemm_int_kernels.h for the arithmetic per ISA:
//   A8      W8A8 / W4A8: uint8 or int8 activations with a zero point; exact int32 dot products,
//           the zero point compensated through precomputed weight row sums.
//   A16     W8A16 / W4A16 (weight-only): float activations; the weights stay at 8/4 bits in memory
//           and are expanded to float (q * scale) inside the kernel, once per cached block of the
//           output, for the FP32 micro-kernels (kernels/dispatch/gemm_a16_f32.h).
//   A16I16  W8A16i16 / W4A16i16: float activations quantized per tensor to int16 at run time,
//           int16 x int16 -> int32 dot products (vpmaddwd / vpdpwssd).
//
// Epilogue, per output element (m, n), with acc the integer sum (A8, A16I16):
//   A8:      y = (w_scale[m] * x_scale) * float(acc - x_zero_point * row_sum[m]) + bias[m]
//   A16:     y = sum_k (w[m][k] * w_scale[m]) * x[k][n] + bias[m], in float (the dequantized
//            weights, as the fake-quant graph computes; summation order aside)
//   A16I16:  y = (w_scale[m] * x16_scale) * float(acc) + bias[m]
//   with acc = sum_k w[m][k] * x[k][n] (x as stored), then y = silu(y) if asked,
//   y = clamp(y, clamp_min, clamp_max), and the output is y (F32),
//   clamp(round_half_even(y / out_scale) + out_zero_point) (U8/S8, for chains of quantized
//   layers: a true division, bit for bit what QuantizeLinear on the F32 output gives, see
//   quantize_f32.h), or the raw integer sum acc - x_zero_point * row_sum[m] (I32, integer modes
//   only: ConvInteger/MatMulInteger, and what tests compare exactly). The multiply-add is fused
//   (one rounding) everywhere, so requantized outputs match the reference exactly unless SiLU is
//   used (a vector exp within about 6e-7 relative of x sigmoid(x); within one quantization step).
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/aligned_buffer.h"
#include "kernels/cpu_features.h"
#include "kernels/ref.h"

namespace nibble::kernels {

enum class QuantMode : uint8_t { A8, A16, A16I16 };

// "w8a8", "w4a8", "w8a16", "w4a16", "w8a16i16", "w4a16i16".
std::string qgemm_kind_name(QuantMode mode, int weight_bits);

// Weights packed for one kernel. Move-only (the panels are an aligned buffer).
struct PackedQWeights {
  QuantMode mode = QuantMode::A8;
  int bits = 8;         // 8 or 4
  int64_t rows = 0;     // M: output channels
  int64_t depth = 0;    // K: input channels x kernel taps
  Isa isa = Isa::Ref;   // ISA of the kernel the panels are laid out for
  std::string kernel;   // kind, register tile and ISA, e.g. "w4a8 8x48 avx512vnni"
  int32_t max_abs = 0;  // largest |w| (bounds the int16 activation range of A16I16)
  // Convolution weights (pack_qconv_weights) are laid out for reading the input in place: K runs
  // over (channel group, tap, channel in group). The kernel's taps; 0 for GEMM weights.
  int64_t conv_taps = 0;
  std::vector<float> scales;      // one per row
  std::vector<int32_t> row_sums;  // sum over k of w[m][k]
  AlignedBuffer<uint8_t> data;    // weights in the kernel's panel layout, at `bits` bits each

  // Bytes held: packed weights, scales and row sums.
  size_t packed_bytes() const;
};

// Packs W[rows x depth], element (m, k) at w[m * w_row_stride + k], for `mode` on the best
// kernel of ISA level <= `isa`. `scales` holds `rows` values when per_channel, else one. Throws
// nibble::Error(InvalidArgument) for bits other than 4/8, int4 values outside [-8, 7], empty or
// negative sizes, non-finite or non-positive scales, or an `isa` above what this CPU supports.
PackedQWeights pack_qweights(QuantMode mode, int bits, int64_t rows, int64_t depth, const int8_t* w,
                             int64_t w_row_stride, const float* scales, bool per_channel,
                             Isa isa = active_isa());

// Packs the weights of a 2-D (or 1-D) convolution, W[out_channels][in_channels][taps] with taps
// the kernel's kh * kw (one group), like pack_qweights. qgemm then reads the image in place as an
// implicit GEMM — one padded, channel-interleaved copy of the input rows per band of output rows
// instead of an im2col block per column block — so these weights take only convolution sources
// with a 2-D geometry of `taps` taps. Use this for convolutions; pack_qweights weights take any
// source (convolutions through im2col).
PackedQWeights pack_qconv_weights(QuantMode mode, int bits, int64_t out_channels,
                                  int64_t in_channels, int64_t taps, const int8_t* w,
                                  const float* scales, bool per_channel, Isa isa = active_isa());

// Element types of activations and outputs.
enum class QType : uint8_t { U8, S8, F32, I32 };

// The B operand (K x N).
struct QSource {
  QType type = QType::U8;  // U8/S8 for mode A8, F32 for A16 and A16I16
  const void* data = nullptr;
  // Matrix source: B[k][n] = data[k * row_stride + n * col_stride].
  int64_t row_stride = 0;
  int64_t col_stride = 1;
  // Convolution source (when not null): B is the im2col matrix of the image data[c][in_size()]
  // for one group; padding reads as the zero point (A8) or 0.
  const ref::ConvGeometry* conv = nullptr;
  // Mode A8: real value = scale * (q - zero_point); zero_point within the type's range.
  float scale = 1.0f;
  int32_t zero_point = 0;
  // Mode A16I16: max |x| over the whole tensor (qgemm_abs_max), so that every column range
  // (thread) quantizes with the same scale.
  float abs_max = 0.0f;
};

// Where C goes: element (m, n) at data[m * row_stride + n * col_stride].
struct QOutput {
  QType type = QType::F32;
  void* data = nullptr;
  int64_t row_stride = 0;
  int64_t col_stride = 1;
  float scale = 1.0f;  // U8/S8: real value = scale * (q - zero_point)
  int32_t zero_point = 0;
};

struct QEpilogue {
  const float* bias = nullptr;  // one per row, in output units; null means 0
  bool silu = false;            // y = y * sigmoid(y), before the clamp
  float clamp_min = -std::numeric_limits<float>::infinity();  // ReLU: 0
  float clamp_max = std::numeric_limits<float>::infinity();
};

// Computes columns [n_begin, n_end) of C, all rows. N is the column count of B (for a
// convolution source, conv->out_size()). Single-threaded and thread-safe: callers split column
// ranges across threads (for convolutions, preferably at output-row boundaries); scratch is per
// thread. Throws nibble::Error(InvalidArgument) on a source or output type the weights' mode does
// not take, a source the weights were not packed for, or a range outside [0, N].
void qgemm(const PackedQWeights& w, const QSource& b, int64_t n, int64_t n_begin, int64_t n_end,
           const QEpilogue& epilogue, const QOutput& out);

// max |x| over `count` floats: the per-tensor statistic of mode A16I16.
float qgemm_abs_max(const float* x, int64_t count);

// How mode A16I16 quantizes activations: q = clamp(nearbyint(x * inv_scale), -qmax, qmax). qmax
// is 32767, lowered where depth * weight_max_abs * qmax could overflow the int32 sum.
struct Int16Quantization {
  float scale = 1.0f;
  float inv_scale = 1.0f;
  int32_t qmax = 32767;
};
Int16Quantization int16_quantization(int64_t depth, int32_t weight_max_abs, float abs_max);

namespace ref {

// The oracle for qgemm: same arguments, with the logical weights — W[rows x depth] int8,
// (m, k) at w[m * w_row_stride + k] (int4 values in [-8, 7]) and one scale per row. Plain loops.
void qgemm_reference(QuantMode mode, int64_t rows, int64_t depth, const int8_t* w,
                     int64_t w_row_stride, const float* row_scales, const QSource& b, int64_t n,
                     int64_t n_begin, int64_t n_end, const QEpilogue& epilogue, const QOutput& out);

}  // namespace ref
}  // namespace nibble::kernels
