// nibble.QMatMul: a matrix product with quantized constant weights that fuse_qdq
// (engine/passes/fuse_qdq.cpp) puts in place of [DequantizeLinear(x)] + DequantizeLinear(w) +
// MatMul / Gemm [+ Add(bias)], run on the low-bit GEMM kernels (kernels/include/kernels/gemm_int.h):
//   A8   x is the quantized uint8/int8 activation: W8A8 / W4A8, exact int32 dot products;
//   A16  x is float (weight-only): W8A16 / W4A16.
// Inputs: 0 x [..., K] (Gemm: [M, K]), 1 w (constant integer weights, [K, N], or [N, K] with
//   trans_b = 1), 2 w_zero_point (optional constant, 1 or N values), 3 scale (constant float, 1
//   or N values), 4 bias (optional constant float [N]), 5 x_scale and 6 x_zero_point (A8 only,
//   constant scalars). Output [..., N] float.
// y[r][n] = scale[n] * sum_k (x[r][k] - x_zp) * (w[k][n] - w_zp[n]) * x_scale + bias[n], the
// graph's fake-quant float result up to float rounding. In the kernels' orientation the weights
// are the A side (N rows of K) and x^T the B side, read in place through strides.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "engine/ops/qconv_driver.h"

namespace nibble {
namespace {

namespace k = kernels;

struct QMatMulState {
  int64_t depth = 0, out_features = 0;
  k::PackedQWeights weights;
  std::vector<float> bias;  // N values, or empty
  k::QSource source;        // activation type, scale and zero point
};

bool is_a8(const InferContext& ctx) {
  return ctx.input_dtype(0) == DType::U8 || ctx.input_dtype(0) == DType::I8;
}

// (K, N) of the weights.
std::pair<int64_t, int64_t> weight_dims(const InferContext& ctx) {
  const Shape& w = ctx.input_shape(1);
  if (w.size() != 2) ctx.fail("weights must be 2-D");
  return ctx.node.attr_int("trans_b", 0) ? std::pair{w[1], w[0]} : std::pair{w[0], w[1]};
}

void qmatmul_infer(InferContext& ctx) {
  ctx.require_dtype(0, {DType::U8, DType::I8, DType::F32});
  ctx.require_dtype(1, {DType::I8, DType::U8, DType::I4, DType::U4, DType::I16, DType::U16});
  ctx.require_dtype(3, {DType::F32});
  const auto [depth, out_features] = weight_dims(ctx);
  Shape y = ctx.input_shape(0);
  if (y.empty() || y.back() != depth)
    ctx.fail("x " + shape_str(y) + " does not end in the weights' K = " + std::to_string(depth));
  const int64_t scales = shape_numel(ctx.input_shape(3));
  if (scales != 1 && scales != out_features) ctx.fail("scale must have 1 or N values");
  if (ctx.has_input(4) && shape_numel(ctx.input_shape(4)) != out_features)
    ctx.fail("bias must have N values");
  if (is_a8(ctx)) ctx.require_dtype(5, {DType::F32});
  y.back() = out_features;
  ctx.set_output(0, DType::F32, y);
}

std::shared_ptr<const void> qmatmul_prepare(const InferContext& ctx) {
  auto s = std::make_shared<QMatMulState>();
  const auto [depth, out_features] = weight_dims(ctx);
  s->depth = depth, s->out_features = out_features;
  const bool trans_b = ctx.node.attr_int("trans_b", 0) != 0;
  const Tensor& w = ctx.require_constant(1, "weights");
  const std::vector<int32_t> w_zero = expand_zero_points(
      ctx.node, ctx.has_input(2) ? &ctx.require_constant(2, "weight zero point") : nullptr,
      out_features, "weight zero point");
  const Tensor& scale = ctx.require_constant(3, "scale");

  // Rows of the kernels' A side: output feature n, its K weights minus the zero point, with the
  // sign of the scale moved into them.
  std::vector<int8_t> values(size_t(depth * out_features));
  std::vector<float> row_scales(static_cast<size_t>(out_features));
  int32_t lo = 0, hi = 0;
  for (int64_t n = 0; n < out_features; ++n) {
    const float sc = static_cast<float>(scale.get_f64(scale.numel() == 1 ? 0 : n));
    if (!std::isfinite(sc)) ctx.fail("scale of output feature " + std::to_string(n) + " is not finite");
    const int32_t sign = sc < 0 ? -1 : 1;
    for (int64_t kk = 0; kk < depth; ++kk) {
      const int64_t i = trans_b ? n * depth + kk : kk * out_features + n;
      int32_t v = sign * (static_cast<int32_t>(w.get_i64(i)) - w_zero[size_t(n)]);
      if (sc == 0) v = 0;  // the feature is constant (bias only)
      if (v < -128 || v > 127) ctx.unsupported("weights do not fit 8 bits after the zero point");
      values[size_t(n * depth + kk)] = static_cast<int8_t>(v);
      lo = std::min(lo, v), hi = std::max(hi, v);
    }
    row_scales[size_t(n)] = sc == 0 ? 1.0f : std::fabs(sc);
  }
  const int bits = lo >= -8 && hi <= 7 ? 4 : 8;

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
  s->weights = k::pack_qweights(mode, bits, out_features, depth, values.data(), depth,
                                row_scales.data(), true);
  if (ctx.has_input(4)) {
    const Tensor& bias = ctx.require_constant(4, "bias");
    for (int64_t n = 0; n < out_features; ++n) s->bias.push_back(static_cast<float>(bias.get_f64(n)));
  }
  return s;
}

KernelInfo qmatmul_kernel_info(const InferContext&, const void* state) {
  const auto& s = *static_cast<const QMatMulState*>(state);
  KernelInfo info;
  info.family = "qmatmul_" + k::qgemm_kind_name(s.weights.mode, s.weights.bits);
  info.isa = k::isa_name(s.weights.isa);
  info.tile = s.weights.kernel;
  info.packed_weight_bytes = s.weights.packed_bytes();
  return info;
}

void qmatmul_compute(const ComputeContext& ctx) {
  const auto& s = ctx.state<QMatMulState>();
  const Tensor& x = ctx.input(0);
  const int64_t rows = x.numel() / std::max<int64_t>(s.depth, 1);
  k::QSource src = s.source;
  src.data = x.raw();
  src.row_stride = 1;  // B[k][r] = x[r][k]
  src.col_stride = s.depth;
  // int16 activations: one scale for the whole tensor.
  if (s.weights.mode == k::QuantMode::A16I16) src.abs_max = k::qgemm_abs_max(x.data<float>(), x.numel());
  k::QOutput out;
  out.type = k::QType::F32;
  out.data = ctx.output(0).data<float>();
  out.row_stride = 1;  // C[n][r] = y[r][n]
  out.col_stride = s.out_features;
  k::QEpilogue epilogue;
  if (!s.bias.empty()) epilogue.bias = s.bias.data();
  const int64_t columns_per_task =
      std::max<int64_t>(16, (1 << 16) / std::max<int64_t>(s.depth * s.out_features, 1));
  const int64_t tasks = (rows + columns_per_task - 1) / columns_per_task;
  ctx.pool().parallel_for(tasks, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t r0 = t * columns_per_task, r1 = std::min(rows, r0 + columns_per_task);
      k::qgemm(s.weights, src, rows, r0, r1, epilogue, out);
    }
  });
}

}  // namespace

void register_qmatmul_op(OpRegistry& r) {
  OpDef def;
  def.infer = qmatmul_infer;
  def.prepare = qmatmul_prepare;
  def.compute = qmatmul_compute;
  def.kernel_info = qmatmul_kernel_info;
  r.add("nibble", "QMatMul", std::move(def));
}

}  // namespace nibble
