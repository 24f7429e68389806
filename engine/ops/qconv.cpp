// nibble.QConv: a quantized convolution that fuse_qdq (engine/passes/fuse_qdq.cpp) puts in
// place of DequantizeLinear(x) + DequantizeLinear(w) + Conv [+ BatchNormalization]
// [+ Relu / SiLU / Clip]. It runs on the low-bit GEMM kernels (kernels/include/kernels/gemm_int.h):
//   A8   x is the quantized uint8/int8 activation: W8A8 / W4A8, exact int32 dot products;
//   A16  x is float (weight-only): W8A16 / W4A16.
// Inputs: 0 x, 1 w (constant integer weights, [M, C/group, k...], any integer dtype),
//   2 w_zero_point (optional constant, 1 or M values), 3 scale (constant float, 1 or M values: the
//   weight scale with any BatchNormalization factor folded in — may be negative), 4 bias
//   (optional constant float [M], in output units), 5 x_scale and 6 x_zero_point (A8 only,
//   constant scalars), 7 y_scale and 8 y_zero_point (optional constant scalars, float32 and
//   uint8/int8, set by fuse_qdq_chains): the output is then quantized to the zero point's type
//   exactly as QuantizeLinear(y, y_scale, y_zero_point) would, else it is float32.
//   Attributes: those of Conv, plus `activation` ("", "relu", "silu") and `clamp_min` / `clamp_max`.
// The weights are packed once at load at their real bit width: 4 bits when every (w - zero
// point) lies in [-8, 7], else 8 bits. A negative scale (BN with negative gamma) is applied by
// negating the row's integer weights, which the pass only allows when the negation stays in
// range. y = scale[m] * sum((x - x_zp) * (w - w_zp)) * x_scale + bias[m], the graph's fake-quant
// float result up to float rounding.
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <vector>

#include "engine/ops/qconv_driver.h"

namespace nibble {
namespace {

namespace k = kernels;

struct QConvState {
  ConvLayout layout;
  QConvWeights weights;
  std::vector<float> bias;  // M values, or empty
  k::QEpilogue epilogue;
  k::QSource source;  // activation type, scale and zero point
  k::QOutput output;  // F32, or U8/S8 with the output's scale and zero point
};

bool is_a8(const InferContext& ctx) {
  return ctx.input_dtype(0) == DType::U8 || ctx.input_dtype(0) == DType::I8;
}

void qconv_infer(InferContext& ctx) {
  ctx.require_dtype(0, {DType::U8, DType::I8, DType::F32});
  ctx.require_dtype(1, {DType::I8, DType::U8, DType::I4, DType::U4, DType::I16, DType::U16});
  ctx.require_dtype(3, {DType::F32});
  const ConvLayout layout = conv_layout(ctx, ctx.input_shape(0), ctx.input_shape(1));
  const int64_t scales = shape_numel(ctx.input_shape(3));
  if (scales != 1 && scales != layout.out_channels) ctx.fail("scale must have 1 or M values");
  if (ctx.has_input(4) && shape_numel(ctx.input_shape(4)) != layout.out_channels)
    ctx.fail("bias must have M values");
  if (is_a8(ctx)) ctx.require_dtype(5, {DType::F32});
  DType y_type = DType::F32;
  if (ctx.has_input(7) || ctx.has_input(8)) {
    if (!ctx.has_input(7) || !ctx.has_input(8)) ctx.fail("y_scale and y_zero_point go together");
    ctx.require_dtype(7, {DType::F32});
    ctx.require_dtype(8, {DType::U8, DType::I8});
    if (shape_numel(ctx.input_shape(7)) != 1 || shape_numel(ctx.input_shape(8)) != 1)
      ctx.fail("y_scale and y_zero_point must be scalars");
    y_type = ctx.input_dtype(8);
  }
  ctx.set_output(0, y_type, layout.output_shape);
}

std::shared_ptr<const void> qconv_prepare(const InferContext& ctx) {
  auto s = std::make_shared<QConvState>();
  s->layout = conv_layout(ctx, ctx.input_shape(0), ctx.input_shape(1));
  const int64_t m_total = s->layout.out_channels;
  const Tensor& w = ctx.require_constant(1, "weights");
  const int64_t depth = w.numel() / m_total;
  const std::vector<int32_t> w_zero = expand_zero_points(
      ctx.node, ctx.has_input(2) ? &ctx.require_constant(2, "weight zero point") : nullptr,
      m_total, "weight zero point");
  const Tensor& scale = ctx.require_constant(3, "scale");

  // Integer weights with the zero point removed and the sign of the scale moved into them.
  std::optional<std::vector<int8_t>> values = weights_minus_zero_point(w, w_zero);
  if (!values) ctx.unsupported("weights do not fit 8 bits after the zero point");
  std::vector<float> row_scales(static_cast<size_t>(m_total));
  for (int64_t m = 0; m < m_total; ++m) {
    const float sc = static_cast<float>(scale.get_f64(scale.numel() == 1 ? 0 : m));
    if (!std::isfinite(sc)) ctx.fail("scale of output channel " + std::to_string(m) + " is not finite");
    for (int64_t i = m * depth; i < (m + 1) * depth; ++i) {
      int8_t& v = (*values)[size_t(i)];
      if (sc == 0) v = 0;  // the channel is constant (bias only)
      if (sc < 0 && v == -128) ctx.unsupported("a negative scale negates the weight -128");
      if (sc < 0) v = static_cast<int8_t>(-v);
    }
    row_scales[size_t(m)] = sc == 0 ? 1.0f : std::fabs(sc);
  }

  s->source.type = k::QType::F32;
  // Float inputs: weight-only, with the activations SessionOptions::weight_only_activations asks
  // for (build_plan records it on the node).
  k::QuantMode mode = k::QuantMode::A16;
  const std::string activations = ctx.node.attr_string("weight_only_activations", "float");
  if (activations == "int16") {
    mode = k::QuantMode::A16I16;
  } else if (activations != "float") {
    ctx.fail("weight_only_activations must be \"float\" or \"int16\", not \"" + activations + "\"");
  }
  if (is_a8(ctx)) {
    mode = k::QuantMode::A8;
    s->source.type = ctx.input_dtype(0) == DType::U8 ? k::QType::U8 : k::QType::S8;
    s->source.scale = static_cast<float>(ctx.require_constant(5, "x scale").get_f64(0));
    s->source.zero_point =
        ctx.has_input(6) ? static_cast<int32_t>(ctx.require_constant(6, "x zero point").get_i64(0)) : 0;
  }
  s->weights = pack_qconv(s->layout, mode, *values, row_scales);
  if (ctx.has_input(4)) {
    const Tensor& bias = ctx.require_constant(4, "bias");
    for (int64_t m = 0; m < m_total; ++m) s->bias.push_back(static_cast<float>(bias.get_f64(m)));
  }
  const std::string activation = ctx.node.attr_string("activation", "");
  if (activation == "silu") {
    s->epilogue.silu = true;
  } else if (activation == "relu") {
    s->epilogue.clamp_min = 0;
  } else if (!activation.empty()) {
    ctx.fail("unknown activation '" + activation + "'");
  }
  s->epilogue.clamp_min = std::max(s->epilogue.clamp_min,
                                   ctx.node.attr_float("clamp_min", -INFINITY));
  s->epilogue.clamp_max = ctx.node.attr_float("clamp_max", INFINITY);
  if (!s->bias.empty()) s->epilogue.bias = s->bias.data();
  s->output.type = k::QType::F32;
  if (ctx.has_input(7)) {
    s->output.type = ctx.input_dtype(8) == DType::U8 ? k::QType::U8 : k::QType::S8;
    s->output.scale = static_cast<float>(ctx.require_constant(7, "y scale").get_f64(0));
    if (!(s->output.scale > 0) || !std::isfinite(s->output.scale)) ctx.fail("y_scale must be positive and finite");
    s->output.zero_point = static_cast<int32_t>(ctx.require_constant(8, "y zero point").get_i64(0));
  }
  return s;
}

KernelInfo qconv_kernel_info(const InferContext&, const void* state) {
  const auto& s = *static_cast<const QConvState*>(state);
  KernelInfo info = s.weights.describe("qconv_");
  if (s.output.type != k::QType::F32) info.tile += s.output.type == k::QType::U8 ? " -> u8" : " -> s8";
  info.packed_inputs = {1};  // compute reads only x: the integer weights live in the state
  return info;
}

void qconv_compute(const ComputeContext& ctx) {
  const auto& s = ctx.state<QConvState>();
  run_qconv(s.layout, s.weights, ctx.input(0), s.source, s.epilogue, s.output, ctx.output(0).raw(),
            ctx.pool());
}

}  // namespace

void register_qmatmul_op(OpRegistry& r);  // qmatmul.cpp: nibble.QMatMul

void register_qlinear_fused_ops(OpRegistry& r) {
  register_qmatmul_op(r);
  OpDef def;
  def.infer = qconv_infer;
  def.prepare = qconv_prepare;
  def.compute = qconv_compute;
  def.kernel_info = qconv_kernel_info;
  r.add("nibble", "QConv", std::move(def));
}

}  // namespace nibble
