// Internal pieces of the FP32 convolution driver (kernels/dispatch/conv_f32*.cpp, dwconv_f32.cpp).
#pragma once

#include <cstdint>
#include <functional>

#include "kernels/conv_f32.h"

namespace nibble::kernels {

// Padded extent of dimension d (0..2) that the output reads: trailing pads matter only up to the
// last window.
inline int64_t padded_extent(const ref::ConvGeometry& g, int d) {
  return (g.out[d] - 1) * g.stride[d] + (g.kernel[d] - 1) * g.dilation[d] + 1;
}

// ---- implicit GEMM (conv_f32_implicit.cpp) -----------------------------------------------------
// 1-D and 2-D convolutions other than 1x1 stride 1 without padding: the micro-kernel reads B
// straight from zero-padded copies of bands of the input split into stride phases, instead of
// an im2col.
bool implicit_gemm_applies(const ref::ConvGeometry& g);
// y = epilogue(W · X) for one image and group: `rows` output channels from packed A, the group's
// input `image`, output `out` (rows x out_size). The epilogue's bias and residual start at the
// group's first channel; residual_ld is ignored (rows are out_size apart).
void implicit_gemm_conv(const GemmF32Kernel& kernel, const ref::ConvGeometry& g, int64_t rows,
                        const float* packed_a, const float* image, float* out,
                        const Epilogue& epilogue, ThreadPool* pool);
// The same on the calling thread for output positions [n_begin, n_end) only, with A supplied
// block by block (rows [m0, m1) x depths [k0, k0 + kc), m0 a multiple of kernel.mr): the
// returned pointer is the first panel's slice, kc groups of mr floats, and the next panels'
// slices follow `panel_stride` floats apart. Output row r starts at out + r * out_ld. (Weight-only
// qgemm expands its 4/8-bit weights here, once per block and band: gemm_a16_f32.cpp.)
using ImplicitGemmA =
    std::function<const float*(int64_t m0, int64_t m1, int64_t k0, int64_t kc, int64_t* panel_stride)>;
void implicit_gemm_conv_range(const GemmF32Kernel& kernel, const ref::ConvGeometry& g,
                              int64_t rows, const ImplicitGemmA& a, const float* image, float* out,
                              int64_t out_ld, const Epilogue& epilogue, int64_t n_begin,
                              int64_t n_end);

// ---- depthwise (dwconv_f32.cpp) ----------------------------------------------------------------
void depthwise_conv(const ConvF32Shape& shape, const ConvF32Weights& weights, const float* x,
                    float* y, const ConvF32Epilogue& epilogue, ThreadPool* pool);

}  // namespace nibble::kernels
