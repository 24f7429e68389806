// Integer Winograd F(2x2,3x3) convolution for mode A16I16 (W4A16i16 / W8A16i16): int16
// activations, int4/int8 weights, exact int32 arithmetic.
//
// With G' = 2G = [[2,0,0],[1,1,1],[1,-1,1],[0,0,2]] every matrix of F(2x2,3x3) is an integer
// matrix:
//   4·Y = Aᵀ [ Σ_c U_c ⊙ V_c ] A,   U = G' g G'ᵀ,   V = Bᵀ d B
//   Bᵀ = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]],   Aᵀ = [[1,1,1,0],[0,1,-1,-1]]
// so the output transform yields four times the direct convolution of the quantized input,
// exactly. |U| <= 9·max|g| (1152 for int8 weights) and |V| <= 4·qmax, both int16 when the
// activations are quantized with qmax <= 8191 (winograd_i16_quantization). The true result
// 4·Y is bounded by 36·K·max|g|·qmax (K input channels), which the quantization keeps below
// 2^31; so is each of the 16 per-point channel sums (9·max|g| · 4·qmax per channel). The output
// transform adds up to nine of those, which may wrap around int32, but wrap-around (two's
// complement) addition is exact modulo 2^32, so its result, 4·Y, is exact.
//
// Per transform point p the channel sum is one GEMM, M[p] = U[p] · V[p], on the A16I16 tiles
// of the low-bit GEMM (gemm_int.h: vpdpwssd 8x48 on AVX512-VNNI, vpmaddwd 8x48 on AVX-512,
// vpmaddwd 6x16 on AVX2). The weights stay at 4/8 bits in memory, nine tap sections in the
// tiles' packed-A order; each run transforms them (integer adds) into a per-thread U.
// Compared with the float Winograd of mode A16 (F(4x4), 4x fewer multiplies than direct), this
// has 2.25x fewer multiplies than direct, but at twice the multiply rate of float.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/aligned_buffer.h"
#include "kernels/conv_f32.h"
#include "kernels/gemm_int.h"

namespace nibble::kernels {

struct WinogradI16Weights {
  Isa isa = Isa::Ref;         // ISA of the transforms and of the GEMM tile
  std::string gemm_tile;      // the A16I16 kernel set, e.g. "w4a16i16 8x48 avx512vnni"
  int bits = 8;               // 4 or 8
  int64_t mr = 1, nr = 1;     // the GEMM tile
  int64_t in_channels = 0, out_channels = 0;
  int32_t max_abs = 0;        // largest |w|: bounds the activation range
  std::vector<float> scales;  // one per output channel
  // Nine tap sections (tap t = 3·kh + kw), each the weights of that tap in the order of one
  // transform point's U: per panel of mr output channels, [in_channels / 2 rounded up][mr][2]
  // (rows and channels past the end zero), padded to whole 64-value runs; one byte per value
  // at 8 bits, at 4 bits value j of a run in the low nibble of byte j and value 32 + j in the
  // high nibble of byte j (gemm_int_kernels.h's run encoding).
  AlignedBuffer<uint8_t> data;

  int64_t channel_pairs() const { return (in_channels + 1) / 2; }
  int64_t panels() const { return (out_channels + mr - 1) / mr; }
  int64_t point_values() const { return panels() * mr * channel_pairs() * 2; }
  int64_t section_values() const { return (point_values() + 63) / 64 * 64; }
  size_t packed_bytes() const { return data.size() + scales.size() * sizeof(float); }
  // e.g. "winograd-int16 F(2x2,3x3) 8x48".
  std::string tile_name() const;
};

// Whether mode A16I16 runs `shape` on this path at ISA level <= `isa` (a 3x3 stride-1
// convolution of a size where it measured faster than both the float Winograd and the int16
// direct kernels; see the .cpp). Shared by the engine (qconv_driver) and the benchmarks.
bool winograd_i16_preferred(const ConvF32Shape& shape, Isa isa);

// True when the shape is one winograd_i16_conv computes (winograd_f32_applies: 3x3, stride 1,
// dilation 1, one group, pads <= 1, batch any).
bool winograd_i16_applies(const ConvF32Shape& shape);

// Packs `values` [out_channels][in_channels][3][3] (zero points removed; in [-8, 7] when bits
// is 4) and one positive scale per output channel, for the best kernels of ISA level <= isa.
// Throws nibble::Error(InvalidArgument) on a shape winograd_i16_applies() rejects, bits other
// than 4/8, values outside the bit width's range or scales that are not finite and positive.
WinogradI16Weights winograd_i16_pack(const ConvF32Shape& shape, int bits, const int8_t* values,
                                     const float* scales, Isa isa = active_isa());

// The activation quantization: q = clamp(nearbyint(x / scale), -qmax, qmax) with scale =
// abs_max / qmax, qmax = 8191 (so |V| <= 4·qmax fits int16), lowered where 36 · in_channels ·
// weight_max_abs · qmax could overflow int32.
Int16Quantization winograd_i16_quantization(int64_t in_channels, int32_t weight_max_abs,
                                            float abs_max);

// y = epilogue(conv(x, w)) for every image of x, through the pool, with x quantized to int16
// by winograd_i16_quantization(..., abs_max) (abs_max = max |x|, qgemm_abs_max). `out` holds
// out_channels rows of out_size() values per image (row_stride as such, col_stride 1): F32,
// U8/S8 (as gemm_int.h's A16I16 epilogue: y = w_scale · x_scale · Y + bias, SiLU, clamp,
// then QuantizeLinear), or I32 (Y itself: the exact integer convolution of the quantized x).
void winograd_i16_conv(const ConvF32Shape& shape, const WinogradI16Weights& w, const float* x,
                       float abs_max, const QEpilogue& epilogue, const QOutput& out,
                       ThreadPool* pool);

namespace ref {

// The oracle of winograd_i16_conv: plain loops over the same algorithm (quantization,
// transforms in uint32 arithmetic, per-point sums, scalar epilogue), weights as
// winograd_i16_pack takes them. F32 outputs with SiLU may differ from the vector kernels'
// within their SiLU's error (gemm_int.h); all else is bit for bit.
void winograd_i16_reference(const ConvF32Shape& shape, const int8_t* values, const float* scales,
                            const float* x, float abs_max, const QEpilogue& epilogue,
                            const QOutput& out);

}  // namespace ref
}  // namespace nibble::kernels
