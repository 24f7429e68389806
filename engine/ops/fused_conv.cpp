// The float32 convolution on the dispatched kernels (kernels/conv_f32.h), for ONNX Conv and for
// nibble:FusedConv (a Conv with the element-wise tail that fuse_conv_epilogues folded into it).
//
// prepare picks the kernel table row for kernels::active_isa() (NIBBLE_ISA caps it) and packs
// constant weights once; weights only known at run time are packed on every run.
#include <limits>
#include <optional>
#include <string>

#include "engine/ops/conv_f32_op.h"
#include "engine/ops/nn_common.h"
#include "kernels/conv_f32.h"
#include "kernels/winograd_f32.h"

namespace nibble {
namespace {

using kernels::Activation;

struct ConvF32State {
  kernels::ConvF32Shape shape;
  kernels::Isa isa;
  std::optional<kernels::ConvF32Weights> weights;  // when W is a constant
  Activation activation = Activation::None;
  float clip_min = -std::numeric_limits<float>::infinity();
  float clip_max = std::numeric_limits<float>::infinity();
  bool residual_first = false;
};

bool is_fused(const Node& node) {
  return node.domain == kFusedConvDomain && node.op_type == kFusedConvOp;
}

Activation parse_activation(const InferContext& ctx, const std::string& name) {
  if (name == "Relu") return Activation::Relu;
  if (name == "Clip") return Activation::Clip;
  if (name == "Sigmoid") return Activation::Sigmoid;
  if (name == "SiLU") return Activation::SiLU;
  ctx.fail("unknown activation '" + name + "' (expected Relu, Clip, Sigmoid or SiLU)");
}

void fused_conv_infer(InferContext& ctx) {
  ctx.require_dtype(0, {DType::F32});
  ctx.require_dtype(1, {DType::F32});
  const ConvLayout layout = conv_layout(ctx, ctx.input_shape(0), ctx.input_shape(1));
  if (ctx.has_input(2)) {
    ctx.require_dtype(2, {DType::F32});
    if (ctx.input_shape(2) != Shape{layout.out_channels}) {
      ctx.fail("bias must have shape [" + std::to_string(layout.out_channels) + "], got " +
               shape_str(ctx.input_shape(2)));
    }
  }
  if (ctx.has_input(3)) {
    ctx.require_dtype(3, {DType::F32});
    if (ctx.input_shape(3) != layout.output_shape) {
      ctx.fail("residual must have the output shape " + shape_str(layout.output_shape) + ", got " +
               shape_str(ctx.input_shape(3)));
    }
  }
  if (ctx.node.has_attr("activation")) parse_activation(ctx, ctx.node.attr_string("activation"));
  ctx.set_output(0, DType::F32, layout.output_shape);
}

}  // namespace

std::shared_ptr<const void> conv_f32_prepare(const InferContext& ctx) {
  auto state = std::make_shared<ConvF32State>();
  state->shape = conv_f32_shape(conv_layout(ctx, ctx.input_shape(0), ctx.input_shape(1)));
  state->isa = kernels::active_isa();
  if (const Tensor* w = ctx.input_constant(1)) {
    state->weights = kernels::conv_f32_pack(state->shape, w->data<float>(), state->isa);
  }
  const Node& node = ctx.node;
  if (is_fused(node)) {
    if (node.has_attr("activation")) {
      state->activation = parse_activation(ctx, node.attr_string("activation"));
    }
    state->clip_min = node.attr_float("clip_min", state->clip_min);
    state->clip_max = node.attr_float("clip_max", state->clip_max);
    state->residual_first = node.attr_int("residual_first", 0) != 0;
  }
  return state;
}

void conv_f32_compute(const ComputeContext& ctx) {
  const auto& state = ctx.state<ConvF32State>();
  std::optional<kernels::ConvF32Weights> packed_now;
  if (!state.weights) {
    packed_now = kernels::conv_f32_pack(state.shape, ctx.input(1).data<float>(), state.isa);
  }
  const kernels::ConvF32Weights& weights = state.weights ? *state.weights : *packed_now;
  kernels::ConvF32Epilogue epilogue;
  epilogue.bias = ctx.has_input(2) ? ctx.input(2).data<float>() : nullptr;
  epilogue.activation = state.activation;
  epilogue.clip_min = state.clip_min;
  epilogue.clip_max = state.clip_max;
  epilogue.residual = ctx.has_input(3) ? ctx.input(3).data<float>() : nullptr;
  epilogue.residual_first = state.residual_first;
  kernels::conv_f32_run(state.shape, weights, ctx.input(0).data<float>(),
                        ctx.output(0).data<float>(), epilogue, &ctx.pool());
}

KernelInfo conv_f32_kernel_info(const InferContext& ctx, const void* state_ptr) {
  const auto& state = *static_cast<const ConvF32State*>(state_ptr);
  KernelInfo info;
  const bool depthwise = state.shape.direct_depthwise();
  const kernels::GemmF32Kernel& gemm = kernels::gemm_f32_kernel(state.isa);
  if (depthwise) {
    info.family = "dwconv_f32";
    info.isa = kernels::isa_name(kernels::dwconv_f32_kernel(state.isa).isa);
    info.tile = "direct";
  } else if (const kernels::WinogradF32Kernel* winograd =
                 kernels::winograd_f32_choose(state.shape, state.isa)) {
    info.family = "winograd_f32";
    info.isa = kernels::isa_name(winograd->isa);
    info.tile = std::string(winograd->name) + " " + winograd->gemm->tile;
  } else {
    info.family = "conv_f32";
    info.isa = kernels::isa_name(gemm.isa);
    info.tile = gemm.tile;
  }
  if (state.weights) {
    info.packed_weight_bytes = state.weights->bytes();
    info.packed_inputs = {1};  // compute reads W only when it was not a constant
  }
  std::string epilogue;
  auto add = [&](const std::string& part) { epilogue += (epilogue.empty() ? "" : " + ") + part; };
  if (ctx.has_input(2)) add("bias");
  if (ctx.has_input(3) && state.residual_first) add("residual");
  if (state.activation != Activation::None) add(kernels::activation_name(state.activation));
  if (ctx.has_input(3) && !state.residual_first) add("residual");
  if (is_fused(ctx.node) && !epilogue.empty()) info.note = "fused " + epilogue;
  return info;
}

void register_fused_conv_ops(OpRegistry& r) {
  OpDef def;
  def.infer = fused_conv_infer;
  def.compute = conv_f32_compute;
  def.prepare = conv_f32_prepare;
  def.kernel_info = conv_f32_kernel_info;
  r.add(kFusedConvDomain, kFusedConvOp, std::move(def));
}

}  // namespace nibble
