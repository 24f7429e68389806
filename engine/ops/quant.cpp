// Quantization operators of the default ONNX domain: QuantizeLinear / DequantizeLinear (opsets
// 10 to 23: per-tensor, per-axis and blocked scales, int4 to int16, output_dtype),
// DynamicQuantizeLinear, and the integer products ConvInteger, MatMulInteger, QLinearConv and
// QLinearMatMul: convolutions and products with constant weights on the low-bit integer kernels
// (exact int32 sums), the rest on the reference integer GEMM.
//
// Rounding is round-half-to-even (std::nearbyint in the default rounding mode) followed by
// saturation, as the spec requires. Scales are used in float32, float16 scales included.
// Requantization of the QLinear ops multiplies the int32 accumulator by the float32 product
// of the scales in double precision, as the ONNX reference does.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/ops/integer_matmul.h"
#include "engine/ops/nn_common.h"
#include "engine/ops/qconv_driver.h"
#include "kernels/quantize_f32.h"

namespace nibble {
namespace {

// ---- integer ranges -----------------------------------------------------------------------------

struct QuantRange {
  int32_t min, max;
};

std::optional<QuantRange> quant_range(DType t) {
  switch (t) {
    case DType::U8:
      return QuantRange{0, 255};
    case DType::I8:
      return QuantRange{-128, 127};
    case DType::U16:
      return QuantRange{0, 65535};
    case DType::I16:
      return QuantRange{-32768, 32767};
    case DType::U4:
      return QuantRange{0, 15};
    case DType::I4:
      return QuantRange{-8, 7};
    default:
      return std::nullopt;
  }
}

// Rounds half to even and saturates; NaN goes to the range minimum (what numpy's cast of NaN
// followed by clip produces in the reference).
inline int32_t round_saturate(float v, QuantRange r) {
  const float rounded = std::nearbyint(v);
  if (!(rounded >= static_cast<float>(r.min))) return r.min;
  if (rounded >= static_cast<float>(r.max)) return r.max;
  return static_cast<int32_t>(rounded);
}
inline int32_t round_saturate(double v, QuantRange r) {
  const double rounded = std::nearbyint(v);
  if (!(rounded >= r.min)) return r.min;
  if (rounded >= r.max) return r.max;
  return static_cast<int32_t>(rounded);
}

// Calls f(T{}) with the storage type of a quantized integer dtype.
template <typename F>
decltype(auto) dispatch_quant(DType t, const char* what, F&& f) {
  switch (t) {
    case DType::U8:
    case DType::U4:
      return f(uint8_t{});
    case DType::I8:
    case DType::I4:
      return f(int8_t{});
    case DType::U16:
      return f(uint16_t{});
    case DType::I16:
      return f(int16_t{});
    case DType::I32:
      return f(int32_t{});
    default:
      throw Error(ErrorKind::Unsupported,
                  std::string(what) + ": unsupported dtype " + dtype_name(t));
  }
}

std::vector<float> float_values(const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = static_cast<float>(t.get_f64(i));
  return v;
}

// ---- Quantize/DequantizeLinear layout -----------------------------------------------------------

// How scale and zero point elements map onto x, viewed as [outer, len, inner] around `axis`
// (per-axis and blocked layouts; a per-tensor scale needs no view).
struct QuantLayout {
  enum class Kind { PerTensor, PerAxis, Blocked } kind = Kind::PerTensor;
  int64_t outer = 1, len = 1, inner = 1, block = 0;

  int64_t blocks() const { return (len + block - 1) / block; }
};

QuantLayout quant_layout(const InferContext& ctx, const Shape& x, const Shape& scale) {
  QuantLayout l;
  if (shape_numel(scale) == 1) return l;  // one value: per tensor
  if (ctx.opset < 13) ctx.fail("scale must be a scalar before opset 13");
  const int64_t rank = static_cast<int64_t>(x.size());
  if (rank == 0) ctx.fail("a per-axis scale needs an input of rank >= 1, got a scalar");
  const int64_t axis = normalize_axis(ctx.node.attr_int("axis", 1), rank, ctx.node);
  for (int64_t d = 0; d < rank; ++d) {
    if (d < axis) l.outer *= x[size_t(d)];
    if (d > axis) l.inner *= x[size_t(d)];
  }
  l.len = x[size_t(axis)];
  l.block = ctx.opset >= 21 ? ctx.node.attr_int("block_size", 0) : 0;
  if (l.block < 0) ctx.fail("block_size must not be negative");
  if (l.block == 0) {
    if (scale != Shape{l.len}) {
      ctx.fail("per-axis scale must have shape [" + std::to_string(l.len) + "], got " +
               shape_str(scale));
    }
    l.kind = QuantLayout::Kind::PerAxis;
    return l;
  }
  Shape expected = x;
  expected[size_t(axis)] = l.blocks();
  if (scale != expected) {
    ctx.fail("blocked scale must have shape " + shape_str(expected) + ", got " + shape_str(scale));
  }
  l.kind = QuantLayout::Kind::Blocked;
  return l;
}

// Calls fn(begin, end, scale_index) over runs of x elements [begin, end) that share one scale
// (and zero point) element, spread over the pool.
template <typename Fn>
void for_each_quant_run(const ComputeContext& ctx, const QuantLayout& l, const Fn& fn) {
  if (l.kind == QuantLayout::Kind::PerTensor) {
    ctx.pool().parallel_for(
        ctx.input(0).numel(), [&](int64_t begin, int64_t end) { fn(begin, end, int64_t{0}); },
        1 << 14);
    return;
  }
  const int64_t rows = l.outer * l.len;
  ctx.pool().parallel_for(
      rows,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const int64_t o = r / l.len, a = r % l.len;
          if (l.kind == QuantLayout::Kind::PerAxis) {
            fn(r * l.inner, (r + 1) * l.inner, a);
            continue;
          }
          for (int64_t i = 0; i < l.inner; ++i) {
            fn(r * l.inner + i, r * l.inner + i + 1, (o * l.blocks() + a / l.block) * l.inner + i);
          }
        }
      },
      std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(l.inner, 1)));
}

// Output dtype of QuantizeLinear: the zero point's, else output_dtype (opset 21+), else uint8.
DType quantize_output_dtype(const InferContext& ctx) {
  const int64_t attr = ctx.opset >= 21 ? ctx.node.attr_int("output_dtype", 0) : 0;
  if (ctx.has_input(2)) {
    const DType zp = ctx.input_dtype(2);
    if (attr != 0 && attr != static_cast<int64_t>(zp)) {
      ctx.fail("output_dtype does not match the zero point dtype");
    }
    return zp;
  }
  return attr != 0 ? dtype_from_onnx(static_cast<int32_t>(attr)) : DType::U8;
}

void check_zero_point_shape(const InferContext& ctx, size_t zp_input, size_t scale_input) {
  if (ctx.has_input(zp_input) &&
      shape_numel(ctx.input_shape(zp_input)) != shape_numel(ctx.input_shape(scale_input))) {
    ctx.fail("zero point shape " + shape_str(ctx.input_shape(zp_input)) +
             " does not match scale shape " + shape_str(ctx.input_shape(scale_input)));
  }
}

// A zero, negative, infinite or NaN scale leaves no meaningful quantized value (and would make
// the requantization multipliers of fused integer kernels undefined): constant scales are
// refused at load. Scales computed at run time are the caller's responsibility.
void check_scale_values(const InferContext& ctx, size_t i, const char* what) {
  const Tensor* scale = ctx.input_constant(i);
  if (!scale) return;
  for (int64_t k = 0; k < scale->numel(); ++k) {
    const double s = scale->get_f64(k);
    if (!(s > 0) || !std::isfinite(s)) {
      char value[32];
      std::snprintf(value, sizeof value, "%g", s);
      ctx.fail(std::string(what) + " must be positive and finite, got " + value + " at index " +
               std::to_string(k));
    }
  }
}

void quantize_infer(InferContext& ctx) {
  ctx.require_dtype(0, {DType::F32, DType::F16, DType::I32});
  ctx.require_dtype(1, {DType::F32, DType::F16});
  const DType out = quantize_output_dtype(ctx);
  if (!quant_range(out)) ctx.unsupported(std::string("output dtype ") + dtype_name(out));
  if (ctx.opset >= 23 && ctx.node.attr_int("precision", 0) != 0 &&
      ctx.node.attr_int("precision", 0) != static_cast<int64_t>(DType::F32)) {
    ctx.unsupported("precision other than float");
  }
  quant_layout(ctx, ctx.input_shape(0), ctx.input_shape(1));
  check_zero_point_shape(ctx, 2, 1);
  check_scale_values(ctx, 1, "scale");
  ctx.set_output(0, out, ctx.input_shape(0));
}

std::shared_ptr<const void> quantize_prepare(const InferContext& ctx) {
  return std::make_shared<QuantLayout>(quant_layout(ctx, ctx.input_shape(0), ctx.input_shape(1)));
}

void quantize_compute(const ComputeContext& ctx) {
  const auto& l = ctx.state<QuantLayout>();
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const std::vector<float> scales = float_values(ctx.input(1));
  const std::vector<int32_t> zero_points = expand_zero_points(
      ctx.node, ctx.has_input(2) ? &ctx.input(2) : nullptr, int64_t(scales.size()), "zero point");
  const QuantRange range = *quant_range(y.dtype());
  dispatch_dtype(x.dtype(), "QuantizeLinear", [&](auto x_tag) {
    using TX = decltype(x_tag);
    dispatch_quant(y.dtype(), "QuantizeLinear", [&](auto y_tag) {
      using TY = decltype(y_tag);
      const TX* src = x.data<TX>();
      TY* dst = y.data<TY>();
      if constexpr (std::is_same_v<TX, float> && sizeof(TY) <= 2) {
        // The common case, every activation of a QDQ model: vector kernels (MLAS's bits, which
        // are the loop's below).
        if (l.kind == QuantLayout::Kind::PerTensor && range.min == std::numeric_limits<TY>::min() &&
            range.max == std::numeric_limits<TY>::max()) {  // not int4 in 8-bit storage
          const auto quantize = kernels::quantize_f32_kernel<TY>(kernels::active_isa());
          for_each_quant_run(ctx, l, [&](int64_t begin, int64_t end, int64_t) {
            quantize(src + begin, dst + begin, end - begin, scales[0], zero_points[0]);
          });
          return;
        }
      }
      for_each_quant_run(ctx, l, [&](int64_t begin, int64_t end, int64_t s) {
        const float scale = scales[size_t(s)];
        const float zero = static_cast<float>(zero_points[size_t(s)]);
        for (int64_t i = begin; i < end; ++i) {
          dst[i] = static_cast<TY>(
              round_saturate(std::nearbyint(to_float(src[i]) / scale) + zero, range));
        }
      });
    });
  });
}

void dequantize_infer(InferContext& ctx) {
  ctx.require_dtype(
      0, {DType::U8, DType::I8, DType::U16, DType::I16, DType::I32, DType::U4, DType::I4});
  ctx.require_dtype(1, {DType::F32, DType::F16});
  if (ctx.has_input(2) && ctx.input_dtype(2) != ctx.input_dtype(0)) {
    ctx.fail("zero point must have the dtype of x");
  }
  DType out = ctx.input_dtype(1);
  if (ctx.opset >= 23 && ctx.node.attr_int("output_dtype", 0) != 0) {
    out = dtype_from_onnx(static_cast<int32_t>(ctx.node.attr_int("output_dtype")));
    if (out != DType::F32 && out != DType::F16) {
      ctx.unsupported(std::string("output dtype ") + dtype_name(out));
    }
  }
  quant_layout(ctx, ctx.input_shape(0), ctx.input_shape(1));
  check_zero_point_shape(ctx, 2, 1);
  check_scale_values(ctx, 1, "scale");
  ctx.set_output(0, out, ctx.input_shape(0));
}

void dequantize_compute(const ComputeContext& ctx) {
  const auto& l = ctx.state<QuantLayout>();
  const Tensor& x = ctx.input(0);
  Tensor& y = ctx.output(0);
  const std::vector<float> scales = float_values(ctx.input(1));
  const std::vector<int32_t> zero_points = expand_zero_points(
      ctx.node, ctx.has_input(2) ? &ctx.input(2) : nullptr, int64_t(scales.size()), "zero point");
  dispatch_quant(x.dtype(), "DequantizeLinear", [&](auto x_tag) {
    using TX = decltype(x_tag);
    const TX* src = x.data<TX>();
    dispatch_float(y.dtype(), "DequantizeLinear", [&](auto y_tag) {
      using TY = decltype(y_tag);
      TY* dst = y.data<TY>();
      for_each_quant_run(ctx, l, [&](int64_t begin, int64_t end, int64_t s) {
        const float scale = scales[size_t(s)];
        const int32_t zero = zero_points[size_t(s)];
        for (int64_t i = begin; i < end; ++i) {
          dst[i] = from_float<TY>(static_cast<float>(static_cast<int32_t>(src[i]) - zero) * scale);
        }
      });
    });
  });
}

// ---- DynamicQuantizeLinear ----------------------------------------------------------------------

void dynamic_quantize_infer(InferContext& ctx) {
  ctx.require_dtype(0, {DType::F32});
  ctx.set_output(0, DType::U8, ctx.input_shape(0));
  if (ctx.has_output(1)) ctx.set_output(1, DType::F32, {});
  if (ctx.has_output(2)) ctx.set_output(2, DType::U8, {});
}

void dynamic_quantize_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const float* src = x.data<float>();
  const int64_t n = x.numel();
  // The range always includes 0 so that 0 is exactly representable.
  float lo = 0.0f, hi = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, src[i]);
    hi = std::max(hi, src[i]);
  }
  constexpr QuantRange range{0, 255};
  // An all-zero input gets scale 1 (as ONNX Runtime), not the spec's 0 / 255.
  const float scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
  const float zero = static_cast<float>(round_saturate(0.0f - lo / scale, range));
  uint8_t* dst = ctx.output(0).data<uint8_t>();
  ctx.pool().parallel_for(
      n,
      [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          dst[i] =
              static_cast<uint8_t>(round_saturate(std::nearbyint(src[i] / scale) + zero, range));
        }
      },
      1 << 15);
  if (ctx.num_outputs() > 1 && !ctx.output(1).empty()) ctx.output(1).data<float>()[0] = scale;
  if (ctx.num_outputs() > 2 && !ctx.output(2).empty()) {
    ctx.output(2).data<uint8_t>()[0] = static_cast<uint8_t>(zero);
  }
}

// ---- ConvInteger / QLinearConv ------------------------------------------------------------------

// Integer convolutions differ only in where their operands sit and what follows the int32 sum.
struct IntegerConvInputs {
  size_t x, x_zero_point, w, w_zero_point;
};
constexpr IntegerConvInputs kConvIntegerInputs{0, 2, 1, 3};
constexpr IntegerConvInputs kQLinearConvInputs{0, 2, 3, 5};

IntegerConvInputs integer_conv_inputs(const Node& node) {
  return node.op_type == "ConvInteger" ? kConvIntegerInputs : kQLinearConvInputs;
}

struct IntegerConvState {
  ConvLayout layout;
  // When W and its zero point are constants: on the low-bit kernels when W minus its zero
  // point fits int8 (always for int8 weights with zero point 0, what ONNX Runtime's quantizer
  // writes), else for the reference driver.
  std::optional<QConvWeights> qweights;
  std::optional<PackedConvWeights> weights;
};

void check_integer_conv(const InferContext& ctx, const ConvLayout& layout) {
  const IntegerConvInputs in = integer_conv_inputs(ctx.node);
  ctx.require_dtype(in.x, {DType::U8, DType::I8});
  ctx.require_dtype(in.w, {DType::U8, DType::I8});
  if (ctx.has_input(in.x_zero_point)) {
    if (ctx.input_dtype(in.x_zero_point) != ctx.input_dtype(in.x)) {
      ctx.fail("x zero point must have the dtype of x");
    }
    if (shape_numel(ctx.input_shape(in.x_zero_point)) != 1) {
      ctx.unsupported("x zero point must be a scalar (per-tensor)");
    }
  }
  if (ctx.has_input(in.w_zero_point)) {
    if (ctx.input_dtype(in.w_zero_point) != ctx.input_dtype(in.w)) {
      ctx.fail("w zero point must have the dtype of w");
    }
    const int64_t n = shape_numel(ctx.input_shape(in.w_zero_point));
    if (n != 1 && n != layout.out_channels) {
      ctx.fail("w zero point must have 1 or " + std::to_string(layout.out_channels) + " values");
    }
  }
}

PackedConvWeights pack_integer_conv_weights(const Node& node, const ConvLayout& layout,
                                            const Tensor& w, const Tensor* w_zero_point) {
  return pack_conv_weights(
      layout, w, expand_zero_points(node, w_zero_point, layout.out_channels, "w zero point"));
}

std::shared_ptr<const void> integer_conv_prepare(const InferContext& ctx) {
  const IntegerConvInputs in = integer_conv_inputs(ctx.node);
  auto state = std::make_shared<IntegerConvState>();
  state->layout = conv_layout(ctx, ctx.input_shape(in.x), ctx.input_shape(in.w));
  const Tensor* w = ctx.input_constant(in.w);
  const Tensor* w_zp = ctx.input_constant(in.w_zero_point);
  if (w && (w_zp || !ctx.has_input(in.w_zero_point))) {
    const std::vector<int32_t> zero_points =
        expand_zero_points(ctx.node, w_zp, state->layout.out_channels, "w zero point");
    if (auto values = weights_minus_zero_point(*w, zero_points)) {
      state->qweights = pack_qconv(state->layout, kernels::QuantMode::A8, *values,
                                   std::vector<float>(size_t(state->layout.out_channels), 1.0f));
    } else {
      state->weights = pack_integer_conv_weights(ctx.node, state->layout, *w, w_zp);
    }
  }
  return state;
}

KernelInfo integer_conv_kernel_info(const InferContext&, const void* state) {
  const auto* s = static_cast<const IntegerConvState*>(state);
  if (s && s->qweights) return s->qweights->describe("qconv_integer_");
  return s ? describe_conv(s->layout, s->weights ? &*s->weights : nullptr, true) : KernelInfo{};
}

// The int32 convolution sum shared by ConvInteger and QLinearConv.
void integer_conv_sum(const ComputeContext& ctx, int32_t* y) {
  const IntegerConvInputs in = integer_conv_inputs(ctx.node);
  const auto& state = ctx.state<IntegerConvState>();
  if (state.qweights) {
    kernels::QSource source;
    source.type = ctx.input(in.x).dtype() == DType::U8 ? kernels::QType::U8 : kernels::QType::S8;
    source.zero_point = ctx.has_input(in.x_zero_point)
                            ? static_cast<int32_t>(ctx.input(in.x_zero_point).get_i64(0))
                            : 0;
    kernels::QOutput output;
    output.type = kernels::QType::I32;
    run_qconv(state.layout, *state.qweights, ctx.input(in.x), source, {}, output, y, ctx.pool());
    return;
  }
  std::optional<PackedConvWeights> packed_now;
  if (!state.weights) {
    packed_now = pack_integer_conv_weights(
        ctx.node, state.layout, ctx.input(in.w),
        ctx.has_input(in.w_zero_point) ? &ctx.input(in.w_zero_point) : nullptr);
  }
  const int32_t x_zero_point = ctx.has_input(in.x_zero_point)
                                   ? static_cast<int32_t>(ctx.input(in.x_zero_point).get_i64(0))
                                   : 0;
  run_conv_integer(state.layout, state.weights ? *state.weights : *packed_now, ctx.input(in.x),
                   x_zero_point, y, ctx.pool());
}

void conv_integer_infer(InferContext& ctx) {
  const ConvLayout layout = conv_layout(ctx, ctx.input_shape(0), ctx.input_shape(1));
  check_integer_conv(ctx, layout);
  ctx.set_output(0, DType::I32, layout.output_shape);
}

void conv_integer_compute(const ComputeContext& ctx) {
  integer_conv_sum(ctx, ctx.output(0).data<int32_t>());
}

// Scale inputs of the QLinear ops: float32 or float16, a scalar or `count` values.
void check_scale(const InferContext& ctx, size_t i, int64_t count, const char* what) {
  ctx.require_dtype(i, {DType::F32, DType::F16});
  const int64_t n = shape_numel(ctx.input_shape(i));
  if (n != 1 && n != count) {
    ctx.unsupported(std::string(what) + " must have 1 or " + std::to_string(count) + " values");
  }
  check_scale_values(ctx, i, what);
}

// Output zero point (optional): dtype gives the output type, defaulting to the input's.
DType qlinear_output_dtype(const InferContext& ctx, size_t y_zero_point, size_t x) {
  if (!ctx.has_input(y_zero_point)) return ctx.input_dtype(x);
  ctx.require_dtype(y_zero_point, {DType::U8, DType::I8});
  if (shape_numel(ctx.input_shape(y_zero_point)) != 1) {
    ctx.unsupported("output zero point must be a scalar (per-tensor)");
  }
  return ctx.input_dtype(y_zero_point);
}

void qlinear_conv_infer(InferContext& ctx) {
  const ConvLayout layout = conv_layout(ctx, ctx.input_shape(0), ctx.input_shape(3));
  check_integer_conv(ctx, layout);
  check_scale(ctx, 1, 1, "x scale");
  check_scale(ctx, 4, layout.out_channels, "w scale");
  check_scale(ctx, 6, 1, "y scale");
  if (ctx.has_input(8)) {
    ctx.require_dtype(8, {DType::I32});
    if (ctx.input_shape(8) != Shape{layout.out_channels}) {
      ctx.fail("bias must have shape [" + std::to_string(layout.out_channels) + "]");
    }
  }
  ctx.set_output(0, qlinear_output_dtype(ctx, 7, 0), layout.output_shape);
}

// y = saturate(round(acc * multiplier[channel]) + zero_point)
template <typename T>
void requantize(const std::vector<int32_t>& acc, int64_t channels, int64_t inner,
                const std::vector<double>& multiplier, int32_t zero_point, T* y) {
  constexpr QuantRange range{std::numeric_limits<T>::min(), std::numeric_limits<T>::max()};
  for (size_t i = 0; i < acc.size(); ++i) {
    const size_t c = multiplier.size() == 1 ? 0 : size_t(int64_t(i) / inner % channels);
    y[i] = static_cast<T>(round_saturate(double(acc[i]) * multiplier[c] + zero_point, range));
  }
}

void qlinear_conv_compute(const ComputeContext& ctx) {
  const auto& state = ctx.state<IntegerConvState>();
  const ConvLayout& layout = state.layout;
  Tensor& y = ctx.output(0);
  std::vector<int32_t> acc(static_cast<size_t>(y.numel()));
  integer_conv_sum(ctx, acc.data());
  const int64_t spatial = layout.geometry.out_size();
  if (ctx.has_input(8)) {
    const int32_t* bias = ctx.input(8).data<int32_t>();
    for (size_t i = 0; i < acc.size(); ++i)
      acc[i] += bias[int64_t(i) / spatial % layout.out_channels];
  }
  // The scale product is formed in float32, like the reference.
  const float x_scale = static_cast<float>(ctx.input(1).get_f64(0));
  const float y_scale = static_cast<float>(ctx.input(6).get_f64(0));
  const std::vector<float> w_scale = float_values(ctx.input(4));
  std::vector<double> multiplier;
  for (float s : w_scale) multiplier.push_back(x_scale * s / y_scale);
  const int32_t zero_point = ctx.has_input(7) ? int32_t(ctx.input(7).get_i64(0)) : 0;
  dispatch_quant(y.dtype(), "QLinearConv", [&](auto tag) {
    requantize(acc, layout.out_channels, spatial, multiplier, zero_point, y.data<decltype(tag)>());
  });
}

// ---- MatMulInteger / QLinearMatMul --------------------------------------------------------------
// The int32 product is engine/ops/integer_matmul.cpp's (the integer GEMM kernels for constant B).

constexpr IntegerMatMulInputs kMatMulIntegerInputs{0, 2, 1, 3};
constexpr IntegerMatMulInputs kQLinearMatMulInputs{0, 2, 3, 5};

std::shared_ptr<const void> matmul_integer_prepare(const InferContext& ctx) {
  return integer_matmul_prepare(ctx, kMatMulIntegerInputs);
}

std::shared_ptr<const void> qlinear_matmul_prepare(const InferContext& ctx) {
  return integer_matmul_prepare(ctx, kQLinearMatMulInputs);
}

// Zero point of a matmul operand: a scalar, or one value per row of A / column of B.
void check_matmul_zero_point(const InferContext& ctx, size_t zp, size_t operand, int64_t count,
                             const char* what) {
  if (!ctx.has_input(zp)) return;
  if (ctx.input_dtype(zp) != ctx.input_dtype(operand)) {
    ctx.fail(std::string(what) + " must have the dtype of its operand");
  }
  const int64_t n = shape_numel(ctx.input_shape(zp));
  if (n != 1 && n != count) {
    ctx.unsupported(std::string(what) + " must have 1 or " + std::to_string(count) +
                    " values (per tensor, per row of A or per column of B)");
  }
}

void matmul_integer_infer(InferContext& ctx) {
  ctx.require_dtype(0, {DType::U8, DType::I8});
  ctx.require_dtype(1, {DType::U8, DType::I8});
  const MatMulLayout layout = matmul_layout(ctx.node, ctx.input_shape(0), ctx.input_shape(1));
  check_matmul_zero_point(ctx, 2, 0, layout.m, "a zero point");
  check_matmul_zero_point(ctx, 3, 1, layout.n, "b zero point");
  ctx.set_output(0, DType::I32, layout.output_shape);
}

void matmul_integer_compute(const ComputeContext& ctx) {
  const MatMulLayout layout = matmul_layout(ctx.node, ctx.input(0).shape(), ctx.input(1).shape());
  integer_matmul_sum(ctx, kMatMulIntegerInputs, layout, ctx.output(0).data<int32_t>());
}

void qlinear_matmul_infer(InferContext& ctx) {
  ctx.require_dtype(0, {DType::U8, DType::I8});
  ctx.require_dtype(3, {DType::U8, DType::I8});
  const MatMulLayout layout = matmul_layout(ctx.node, ctx.input_shape(0), ctx.input_shape(3));
  check_scale(ctx, 1, layout.m, "a scale");
  check_scale(ctx, 4, layout.n, "b scale");
  check_scale(ctx, 6, 1, "y scale");
  check_matmul_zero_point(ctx, 2, 0, layout.m, "a zero point");
  check_matmul_zero_point(ctx, 5, 3, layout.n, "b zero point");
  ctx.set_output(0, qlinear_output_dtype(ctx, 7, 0), layout.output_shape);
}

void qlinear_matmul_compute(const ComputeContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(3);
  Tensor& y = ctx.output(0);
  const MatMulLayout layout = matmul_layout(ctx.node, a.shape(), b.shape());
  std::vector<int32_t> acc(static_cast<size_t>(y.numel()));
  integer_matmul_sum(ctx, kQLinearMatMulInputs, layout, acc.data());
  const std::vector<float> a_scale = float_values(ctx.input(1));
  const std::vector<float> b_scale = float_values(ctx.input(4));
  const float y_scale = static_cast<float>(ctx.input(6).get_f64(0));
  const int32_t zero_point = ctx.has_input(7) ? int32_t(ctx.input(7).get_i64(0)) : 0;
  dispatch_quant(y.dtype(), "QLinearMatMul", [&](auto tag) {
    using T = decltype(tag);
    constexpr QuantRange range{std::numeric_limits<T>::min(), std::numeric_limits<T>::max()};
    T* dst = y.data<T>();
    for (size_t i = 0; i < acc.size(); ++i) {
      const int64_t row = int64_t(i) / layout.n % layout.m, col = int64_t(i) % layout.n;
      const float multiplier = a_scale[a_scale.size() == 1 ? 0 : size_t(row)] *
                               b_scale[b_scale.size() == 1 ? 0 : size_t(col)] / y_scale;
      dst[i] = static_cast<T>(round_saturate(double(acc[i]) * multiplier + zero_point, range));
    }
  });
}

}  // namespace

void register_quant_ops(OpRegistry& r) {
  r.add("", "QuantizeLinear", make_op(quantize_infer, quantize_compute, quantize_prepare));
  r.add("", "DequantizeLinear", make_op(dequantize_infer, dequantize_compute, quantize_prepare));
  r.add("", "DynamicQuantizeLinear", make_op(dynamic_quantize_infer, dynamic_quantize_compute));
  r.add("", "ConvInteger",
        make_op(conv_integer_infer, conv_integer_compute, integer_conv_prepare,
                integer_conv_kernel_info));
  r.add("", "QLinearConv",
        make_op(qlinear_conv_infer, qlinear_conv_compute, integer_conv_prepare,
                integer_conv_kernel_info));
  r.add("", "MatMulInteger",
        make_op(matmul_integer_infer, matmul_integer_compute, matmul_integer_prepare,
                integer_matmul_kernel_info));
  r.add("", "QLinearMatMul",
        make_op(qlinear_matmul_infer, qlinear_matmul_compute, qlinear_matmul_prepare,
                integer_matmul_kernel_info));
}

}  // namespace nibble
