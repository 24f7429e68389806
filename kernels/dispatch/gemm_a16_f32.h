// Weight-only qgemm (mode A16: W8A16 / W4A16) on the FP32 GEMM's micro-kernels (gemm_f32.h).
//
// The weights stay at 4 or 8 bits in memory, in the order of the FP32 packed A: panels of the
// micro-kernel's MR rows, each [depth][MR] values (rows past M zero), stored as 64-value runs
// (gemm_int_kernels.h: a byte per value, or at 4 bits value j of a run in the low nibble of
// byte j and value 32 + j in the high nibble); every panel starts on a run. Before the
// micro-kernel reads a slice of a panel, the slice is expanded to float and multiplied by its
// row's scale — w = q * scale, the value DequantizeLinear gives the fake-quant graph — so the
// arithmetic is exactly the FP32 path's on the dequantized weights, up to summation order. Where
// a slice is expanded:
//   - 2-D convolutions other than 1x1 stride 1 (the FP32 implicit GEMM, conv_f32_implicit.cpp):
//     a block of rows x K (about 1 MiB of floats) per band of output rows, reused by every B
//     strip of the band (thousands of output pixels);
//   - everything else (1x1 convolutions, im2col, matrix sources) with a float output the
//     micro-kernel writes itself, over more columns than one packed B block (kernel.nc), for
//     weights of up to 1 MiB as floats: all of them, once per call, into a per-thread FP32
//     packed A that the FP32 GEMM driver (gemm_f32_run) then runs on unchanged;
//   - the rest (fewer columns, requantized or strided outputs): the panel's kc x MR slice per
//     packed B block, in L1 while the block's strips run.
// Expansion costs one pass over the weights per call, band or B block: about 1% of the
// multiply-adds on YOLO layers.
#pragma once

#include <cstdint>

#include "kernels/dwconv_int.h"
#include "kernels/gemm_int.h"

namespace nibble::kernels::a16 {

// Fills p.data, p.isa and p.kernel ("w4a16 12x32 avx512") for the FP32 micro-kernel of level
// <= isa. False (p untouched) when that is the scalar reference: the caller packs for
// ref::qgemm_reference instead. p.rows, p.depth, p.bits and p.scales are set; w as in
// pack_qweights.
bool pack(PackedQWeights& p, const int8_t* w, int64_t w_row_stride, Isa isa);

// qgemm for weights from pack() (types and ranges already checked; epilogue as in gemm_int.h).
void run(const PackedQWeights& w, const QSource& b, int64_t n_begin, int64_t n_end,
         const QEpilogue& ep, const QOutput& out);

// qdwconv (dwconv_int.h) for weights packed in mode A16 (arguments already checked): each
// channel's taps expanded to q * scale, then the FP32 depthwise kernel (conv_f32.h) for strides
// up to 2 with an F32 output of whole planes, else the scalar direct convolution.
void depthwise(const PackedQDwWeights& w, const QSource& x, int64_t c_begin, int64_t c_end,
               const QEpilogue& ep, const QOutput& out);

// The per-ISA expansion: out[j] = float(q[first + j]) * scale_pattern[(first + j) % period] for
// j in [0, count), q the values of the runs at `packed`. first and count are multiples of 64,
// period a multiple of 16 (scale_pattern repeats each panel's MR scales).
using ExpandFn = void (*)(const uint8_t* packed, int bits, int64_t first, int64_t count,
                          const float* scale_pattern, int64_t period, float* out);
namespace avx2 {
void expand(const uint8_t* packed, int bits, int64_t first, int64_t count,
            const float* scale_pattern, int64_t period, float* out);
}
namespace avx512 {
void expand(const uint8_t* packed, int bits, int64_t first, int64_t count,
            const float* scale_pattern, int64_t period, float* out);
}

}  // namespace nibble::kernels::a16
