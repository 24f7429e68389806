// nibble.QConv: a quantized convolution that fuse_qdq (engine/passes/fuse_qdq.cpp) puts in
// place of DequantizeLinear(x) + DequantizeLinear(w) + Conv [+ BatchNormalization]
// [+ Relu / SiLU / Clip]. It runs on the low-bit GEMM kernels (kernels/include/kernels/gemm_int.h):
//   A8   x is the quantized uint8/int8 activation: W8A8 / W4A8, exact int32 dot products;
//   A16  x is float (weight-only): W8A16 / W4A16.
// Inputs: 0 x, 1 w (constant integer weights, [M, C/group, k...], any integer dtype),
//   2 w_zero_point (optional constant, 1 or M values), 3 scale (constant float, 1 or M values: the
//   weight scale with any BatchNormalization factor folded in — may be negative), 4 bias
//   (optional constant float [M], in output units), 5 x_scale and 6 x_zero_point (A8 only,
//   constant scalars). Attributes: those of Conv, plus `activation` ("", "relu", "silu") and
//   `clamp_min` / `clamp_max`.
// The weights are packed once at load at their real bit width: 4 bits when every (w - zero
// point) lies in [-8, 7], else 8 bits. A negative scale (BN with negative gamma) is applied by
// negating the row's integer weights, which the pass only allows when the negation stays in
// range. y = scale[m] * sum((x - x_zp) * (w - w_zp)) * x_scale + bias[m], the graph's fake-quant
// float result up to float rounding.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "engine/ops/nn_common.h"
#include "kernels/gemm_int.h"

namespace nibble {
namespace {

namespace k = kernels;

struct QConvState {
  ConvLayout layout;
  k::QuantMode mode = k::QuantMode::A16;
  int bits = 8;
  std::vector<k::PackedQWeights> groups;
  std::vector<float> bias;  // M values, or empty
  k::QEpilogue epilogue;
  k::QType x_type = k::QType::F32;
  float x_scale = 1;
  int32_t x_zero_point = 0;
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
  ctx.set_output(0, DType::F32, layout.output_shape);
}

std::shared_ptr<const void> qconv_prepare(const InferContext& ctx) {
  auto s = std::make_shared<QConvState>();
  s->layout = conv_layout(ctx, ctx.input_shape(0), ctx.input_shape(1));
  const ConvLayout& l = s->layout;
  const int64_t m_total = l.out_channels;
  const Tensor& w = ctx.require_constant(1, "weights");
  const int64_t depth = w.numel() / m_total;
  const std::vector<int32_t> w_zero = expand_zero_points(
      ctx.node, ctx.has_input(2) ? &ctx.require_constant(2, "weight zero point") : nullptr,
      m_total, "weight zero point");
  const Tensor& scale = ctx.require_constant(3, "scale");

  // Integer weights with the zero point removed and the sign of the scale moved into them.
  std::vector<int8_t> values(size_t(w.numel()));
  std::vector<float> row_scales(static_cast<size_t>(m_total));
  int32_t lo = 0, hi = 0;
  for (int64_t m = 0; m < m_total; ++m) {
    float sc = static_cast<float>(scale.get_f64(scale.numel() == 1 ? 0 : m));
    const int32_t sign = sc < 0 ? -1 : 1;
    if (!std::isfinite(sc)) ctx.fail("scale of output channel " + std::to_string(m) + " is not finite");
    for (int64_t i = m * depth; i < (m + 1) * depth; ++i) {
      int32_t v = sign * (static_cast<int32_t>(w.get_i64(i)) - w_zero[size_t(m)]);
      if (sc == 0) v = 0;  // the channel is constant (bias only)
      if (v < -128 || v > 127) ctx.unsupported("weights do not fit 8 bits after the zero point");
      values[size_t(i)] = static_cast<int8_t>(v);
      lo = std::min(lo, v), hi = std::max(hi, v);
    }
    row_scales[size_t(m)] = sc == 0 ? 1.0f : std::fabs(sc);
  }
  s->bits = lo >= -8 && hi <= 7 ? 4 : 8;

  if (is_a8(ctx)) {
    s->mode = k::QuantMode::A8;
    s->x_type = ctx.input_dtype(0) == DType::U8 ? k::QType::U8 : k::QType::S8;
    s->x_scale = static_cast<float>(ctx.require_constant(5, "x scale").get_f64(0));
    s->x_zero_point = ctx.has_input(6)
                          ? static_cast<int32_t>(ctx.require_constant(6, "x zero point").get_i64(0))
                          : 0;
  }
  const int64_t rows = l.out_channels_per_group();
  for (int64_t g = 0; g < l.group; ++g) {
    s->groups.push_back(k::pack_qweights(s->mode, s->bits, rows, depth,
                                         values.data() + g * rows * depth, depth,
                                         row_scales.data() + g * rows, true));
  }
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
  return s;
}

KernelInfo qconv_kernel_info(const InferContext&, const void* state) {
  const auto& s = *static_cast<const QConvState*>(state);
  KernelInfo info;
  info.family = "qconv_" + k::qgemm_kind_name(s.mode, s.bits);
  info.isa = k::isa_name(s.groups.front().isa);
  info.tile = s.groups.front().kernel;
  for (const auto& g : s.groups) info.packed_weight_bytes += g.packed_bytes();
  return info;
}

void qconv_compute(const ComputeContext& ctx) {
  const auto& s = ctx.state<QConvState>();
  const ConvLayout& l = s.layout;
  const Tensor& x = ctx.input(0);
  float* y = ctx.output(0).data<float>();
  const int64_t in_channels_per_group = l.in_channels / l.group;
  const int64_t rows = l.out_channels_per_group();
  const int64_t n = l.geometry.out_size();
  const size_t x_elem = dtype_size(x.dtype());
  // Tasks are (image, group, column block); blocks keep each task a few microseconds of work.
  const int64_t depth = s.groups.front().depth;
  const int64_t columns_per_task =
      std::min(n, std::max<int64_t>(16, (1 << 16) / std::max<int64_t>(rows * depth, 1)));
  const int64_t blocks = (n + columns_per_task - 1) / columns_per_task;
  ctx.pool().parallel_for(l.batch * l.group * blocks, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t block = t % blocks, g = (t / blocks) % l.group, b = t / blocks / l.group;
      k::QSource src;
      src.type = s.x_type;
      src.data = static_cast<const uint8_t*>(x.raw()) +
                 size_t((b * l.in_channels + g * in_channels_per_group) * l.geometry.in_size()) * x_elem;
      src.conv = &l.geometry;
      src.scale = s.x_scale;
      src.zero_point = s.x_zero_point;
      k::QOutput out;
      out.type = k::QType::F32;
      out.data = y + (b * l.out_channels + g * rows) * n;
      out.row_stride = n;
      k::QEpilogue epilogue = s.epilogue;
      if (!s.bias.empty()) epilogue.bias = s.bias.data() + g * rows;
      const int64_t n0 = block * columns_per_task, n1 = std::min(n, n0 + columns_per_task);
      k::qgemm(s.groups[size_t(g)], src, n, n0, n1, epilogue, out);
    }
  });
}

}  // namespace

void register_qlinear_fused_ops(OpRegistry& r) {
  OpDef def;
  def.infer = qconv_infer;
  def.prepare = qconv_prepare;
  def.compute = qconv_compute;
  def.kernel_info = qconv_kernel_info;
  r.add("nibble", "QConv", std::move(def));
}

}  // namespace nibble
