// The float32 convolution as an op: kernel choice and weight packing at load (prepare), the run
// (compute) and what `inspect` shows (kernel_info). Shared by ONNX Conv (nn.cpp) and nibble's
// FusedConv (fused_conv.cpp), which carries a fused epilogue in its attributes.
#pragma once

#include <memory>

#include "engine/ops/op_registry.h"

namespace nibble {

// Picks the FP32 convolution kernel for kernels::active_isa() and packs W when it is a
// constant. Expects a node that Conv's (or FusedConv's) infer accepted.
std::shared_ptr<const void> conv_f32_prepare(const InferContext& ctx);
void conv_f32_compute(const ComputeContext& ctx);
KernelInfo conv_f32_kernel_info(const InferContext& ctx, const void* state);

// nibble:FusedConv — Conv (same inputs and attributes) followed by what fuse_conv_epilogues
// folded into it:
//   input 3 (optional)        residual, shaped like the output, added after the activation, or
//                             before it when attribute residual_first = 1;
//   activation (string)       "Relu", "Clip", "Sigmoid" or "SiLU" (x * sigmoid(x)); absent: none;
//   clip_min / clip_max       Clip's bounds (default -inf / +inf).
constexpr const char* kFusedConvDomain = "nibble";
constexpr const char* kFusedConvOp = "FusedConv";

}  // namespace nibble
