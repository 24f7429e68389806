// Convolutions on the low-bit GEMM kernels (kernels/include/kernels/gemm_int.h), shared by
// nibble.QConv (qconv.cpp) and the QOperator convolutions ConvInteger / QLinearConv (quant.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "engine/ops/nn_common.h"
#include "kernels/dwconv_int.h"
#include "kernels/gemm_int.h"
#include "kernels/winograd_a16.h"
#include "kernels/winograd_i16.h"

namespace nibble {

// Integer weights packed per group at their real bit width: 4 bits when every value lies in
// [-8, 7], else 8 bits.
struct QConvWeights {
  kernels::QuantMode mode = kernels::QuantMode::A8;
  int bits = 8;
  std::vector<kernels::PackedQWeights> groups;
  // Integer (A8) depthwise layouts run the direct depthwise kernel instead of one-row GEMMs.
  std::optional<kernels::PackedQDwWeights> depthwise;
  // Weight-only 3x3 stride-1 layouts run Winograd on the FP32 micro-kernels instead.
  std::optional<kernels::WinogradA16Weights> winograd;
  // Int16-activation (A16I16) 3x3 stride-1 layouts where it wins run the integer Winograd.
  std::optional<kernels::WinogradI16Weights> winograd_i16;

  size_t packed_bytes() const;
  // "qconv_w4a8" etc., the ISA and the tile, for `nibble inspect`.
  KernelInfo describe(const std::string& family_prefix) const;
};

// `values` [out_channels x depth] (zero points removed, in [-128, 127]) and one positive scale
// per output channel.
QConvWeights pack_qconv(const ConvLayout& layout, kernels::QuantMode mode, const std::vector<int8_t>& values,
                        const std::vector<float>& row_scales);

// The weights of an integer tensor minus their zero points (per tensor or per output channel),
// or nullopt when some difference leaves int8.
std::optional<std::vector<int8_t>> weights_minus_zero_point(const Tensor& w, const std::vector<int32_t>& zero_points);

// y = the convolution of x (every image and group) through qgemm, columns split across the
// pool. `source` gives the activation type, scale and zero point (its data and geometry are
// filled in here); `output` the output type (F32, I32, or U8/S8 with its scale and zero point;
// data and strides filled in here); epilogue.bias, when set, holds out_channels values.
// U8/S8 outputs equal QuantizeLinear of the F32 output bit for bit (see qconv_driver.cpp).
void run_qconv(const ConvLayout& layout, const QConvWeights& weights, const Tensor& x,
               kernels::QSource source, const kernels::QEpilogue& epilogue,
               kernels::QOutput output, void* y, ThreadPool& pool);

}  // namespace nibble
