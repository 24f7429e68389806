// Ops that produce tensors from attributes, shapes or scalars rather than from data: Identity,
// Constant, Shape, Size, ConstantOfShape, Range, Dropout (inference: identity) and EyeLike.
//
// Shape and Size read only their input's shape (OpDef::reads_only_shapes), so the engine folds
// them at load even when the input is only known at run time.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/ops/op_registry.h"
#include "engine/ops/op_util.h"

namespace nibble {
namespace {

// ONNX marks an omitted optional output with an empty name.
bool output_present(const Node& node, size_t i) {
  return i < node.outputs.size() && node.outputs[i] != kNoValue;
}

void copy_bytes(Tensor& dst, const Tensor& src) {
  if (dst.raw() != src.raw() && src.nbytes() > 0) std::memcpy(dst.raw(), src.raw(), src.nbytes());
}

// Writes the element at `value` (dtype_size(t.dtype()) bytes) to every element of t.
void fill(Tensor& t, const void* value) {
  const size_t esize = dtype_size(t.dtype());
  auto* dst = static_cast<uint8_t*>(t.raw());
  for (int64_t i = 0; i < t.numel(); ++i)
    std::memcpy(dst + i * static_cast<int64_t>(esize), value, esize);
}

// The value 1 as the bytes of one element of `dtype`.
std::vector<uint8_t> one_of(DType dtype, const char* what) {
  std::vector<uint8_t> bytes(dtype_size(dtype));
  dispatch_dtype(dtype, what, [&](auto tag) {
    const auto one = from_float<decltype(tag)>(1.0f);
    std::memcpy(bytes.data(), &one, bytes.size());
  });
  return bytes;
}

void copy_input_to_output(const ComputeContext& ctx) {
  copy_bytes(ctx.output(0), ctx.input(0));
}

void infer_identity(InferContext& ctx) {
  ctx.set_output(0, ctx.input_dtype(0), ctx.input_shape(0));
}

// ---- Constant -----------------------------------------------------------------------------------

// The tensor a Constant node holds, from whichever single value attribute it carries.
Tensor constant_value(const Node& node) {
  auto fail = [&](ErrorKind kind, const std::string& message) {
    throw Error(kind, node.describe() + ": " + message);
  };
  if (node.has_attr("sparse_value"))
    fail(ErrorKind::Unsupported, "sparse_value constants are not supported");
  if (node.has_attr("value_string") || node.has_attr("value_strings"))
    fail(ErrorKind::Unsupported, "string constants are not supported");
  if (node.attrs.size() != 1)
    fail(ErrorKind::InvalidModel,
         "needs exactly one value attribute, got " + std::to_string(node.attrs.size()));

  if (node.has_attr("value")) return node.attr_tensor("value");
  if (node.has_attr("value_float"))
    return Tensor::scalar(DType::F32, node.attr_float("value_float"));
  if (node.has_attr("value_int")) return Tensor::scalar(DType::I64, node.attr_int("value_int"));
  if (node.has_attr("value_floats")) {
    const std::vector<float> values = node.attr_floats("value_floats");
    Tensor t(DType::F32, {static_cast<int64_t>(values.size())});
    std::copy(values.begin(), values.end(), t.data<float>());
    return t;
  }
  if (node.has_attr("value_ints")) {
    const std::vector<int64_t> values = node.attr_ints("value_ints");
    Tensor t(DType::I64, {static_cast<int64_t>(values.size())});
    std::copy(values.begin(), values.end(), t.data<int64_t>());
    return t;
  }
  fail(ErrorKind::InvalidModel, "unknown value attribute '" + node.attrs.begin()->first + "'");
  return {};
}

void infer_constant(InferContext& ctx) {
  const Tensor value = constant_value(ctx.node);
  ctx.set_output(0, value.dtype(), value.shape());
}

void compute_constant(const ComputeContext& ctx) {
  copy_bytes(ctx.output(0), constant_value(ctx.node));
}

// ---- Shape, Size --------------------------------------------------------------------------------

// [start, end) of the dimensions Shape returns (opset 15 attributes, clamped into [0, rank]).
std::pair<int64_t, int64_t> shape_range(const Node& node, int64_t rank) {
  auto clamp_dim = [rank](int64_t d) { return std::clamp<int64_t>(d < 0 ? d + rank : d, 0, rank); };
  const int64_t start = clamp_dim(node.attr_int("start", 0));
  const int64_t end = clamp_dim(node.attr_int("end", rank));
  return {start, std::max(start, end)};
}

void infer_shape(InferContext& ctx) {
  const auto [start, end] = shape_range(ctx.node, ctx.input_rank(0));
  ctx.set_output(0, DType::I64, {end - start});
}

void compute_shape(const ComputeContext& ctx) {
  const Shape& shape = ctx.input(0).shape();
  const auto [start, end] = shape_range(ctx.node, static_cast<int64_t>(shape.size()));
  std::copy(shape.begin() + start, shape.begin() + end, ctx.output(0).data<int64_t>());
}

void infer_size(InferContext& ctx) {
  ctx.set_output(0, DType::I64, {});
}

void compute_size(const ComputeContext& ctx) {
  *ctx.output(0).data<int64_t>() = ctx.input(0).numel();
}

// ---- ConstantOfShape ----------------------------------------------------------------------------

// The fill value: a one-element tensor attribute, float 0 when absent.
Tensor fill_value(const Node& node) {
  if (!node.has_attr("value")) return Tensor::scalar(DType::F32, 0.0f);
  const Tensor& value = node.attr_tensor("value");
  if (value.numel() != 1)
    throw Error(ErrorKind::InvalidModel,
                node.describe() + ": value must hold one element, got " + shape_str(value.shape()));
  return value;
}

void infer_constant_of_shape(InferContext& ctx) {
  ctx.require_dtype(0, {DType::I64});
  const Tensor& shape_t = ctx.require_constant(0, "ConstantOfShape shape");
  if (shape_t.rank() != 1) ctx.fail("shape must be 1-D, got " + shape_str(shape_t.shape()));
  const Shape shape = shape_t.to_i64_vector();
  for (int64_t d : shape)
    if (d < 0) ctx.fail("shape " + shape_str(shape) + " has a negative dimension");
  ctx.set_output(0, fill_value(ctx.node).dtype(), shape);
}

void compute_constant_of_shape(const ComputeContext& ctx) {
  const Tensor value = fill_value(ctx.node);
  fill(ctx.output(0), value.raw());
}

// ---- Range --------------------------------------------------------------------------------------

// max(ceil((limit - start) / delta), 0), exact for integers.
int64_t range_length(const InferContext& ctx, const Tensor& start, const Tensor& limit,
                     const Tensor& delta) {
  const DType dtype = start.dtype();
  if (dtype == DType::F32 || dtype == DType::F64 || dtype == DType::F16) {
    const double step = delta.get_f64(0);
    if (step == 0 || !std::isfinite(step)) ctx.fail("delta must be finite and non-zero");
    const double count = std::ceil((limit.get_f64(0) - start.get_f64(0)) / step);
    if (!(count < 9.0e18)) ctx.fail("the range has too many elements");
    return count > 0 ? static_cast<int64_t>(count) : 0;
  }
  const int64_t step = delta.get_i64(0);
  if (step == 0) ctx.fail("delta must be non-zero");
  const int64_t first = start.get_i64(0), last = limit.get_i64(0);
  if (step > 0 ? last <= first : last >= first) return 0;
  // Unsigned arithmetic: the distance between two int64 values always fits in uint64.
  const uint64_t distance =
      step > 0 ? uint64_t(last) - uint64_t(first) : uint64_t(first) - uint64_t(last);
  const uint64_t magnitude = step > 0 ? uint64_t(step) : uint64_t(0) - uint64_t(step);
  const uint64_t count = (distance - 1) / magnitude + 1;
  if (count > (uint64_t{1} << 62)) ctx.fail("the range has too many elements");
  return static_cast<int64_t>(count);
}

void infer_range(InferContext& ctx) {
  const DType dtype = ctx.input_dtype(0);
  ctx.require_dtype(0, {DType::F32, DType::F64, DType::F16, DType::I16, DType::I32, DType::I64});
  for (size_t i = 1; i < 3; ++i)
    if (ctx.input_dtype(i) != dtype) ctx.fail("start, limit and delta must have the same dtype");
  const Tensor& start = ctx.require_constant(0, "Range start (the output length depends on it)");
  const Tensor& limit = ctx.require_constant(1, "Range limit (the output length depends on it)");
  const Tensor& delta = ctx.require_constant(2, "Range delta (the output length depends on it)");
  for (const Tensor* t : {&start, &limit, &delta})
    if (t->numel() != 1) ctx.fail("start, limit and delta must be scalars");
  ctx.set_output(0, dtype, {range_length(ctx, start, limit, delta)});
}

void compute_range(const ComputeContext& ctx) {
  Tensor& out = ctx.output(0);
  dispatch_dtype(out.dtype(), "Range", [&](auto tag) {
    using T = decltype(tag);
    T* dst = out.data<T>();
    if constexpr (std::is_integral_v<T>) {
      const int64_t start = ctx.input(0).get_i64(0), delta = ctx.input(2).get_i64(0);
      for (int64_t i = 0; i < out.numel(); ++i) dst[i] = static_cast<T>(start + i * delta);
    } else {
      // start + i * delta, as numpy.arange computes it, rather than accumulating rounding.
      const double start = ctx.input(0).get_f64(0), delta = ctx.input(2).get_f64(0);
      for (int64_t i = 0; i < out.numel(); ++i)
        dst[i] = from_float<T>(static_cast<float>(start + static_cast<double>(i) * delta));
    }
  });
}

// ---- Dropout ------------------------------------------------------------------------------------

// The mask is the data's dtype before opset 10, bool since.
DType dropout_mask_dtype(int64_t opset, DType data) {
  return opset < 10 ? data : DType::Bool;
}

// nibble runs inference only: random dropout (training mode with a non-zero ratio) would make
// results differ run to run. Training mode with ratio 0 is the identity and is accepted.
bool random_dropout(const Tensor* training_mode, const Tensor* ratio) {
  if (!training_mode || training_mode->get_i64(0) == 0) return false;
  return ratio ? ratio->get_f64(0) != 0.0 : true;  // the ratio defaults to 0.5
}

constexpr const char* kRandomDropout =
    "training-mode dropout with a non-zero ratio is not supported";

void infer_dropout(InferContext& ctx) {
  if (ctx.opset >= 12) {
    for (size_t i : {size_t{1}, size_t{2}})
      if (ctx.has_input(i) && shape_numel(ctx.input_shape(i)) != 1)
        ctx.fail("ratio and training_mode must be scalars");
    // With run-time inputs the check waits for compute.
    const bool known = !ctx.has_input(2) ||
                       (ctx.input_constant(2) && (!ctx.has_input(1) || ctx.input_constant(1)));
    if (known && random_dropout(ctx.input_constant(2), ctx.input_constant(1)))
      ctx.unsupported(kRandomDropout);
  } else if (ctx.opset < 7 && ctx.node.attr_int("is_test", 0) == 0) {
    ctx.unsupported("training mode (is_test = 0) is not supported");
  }
  const DType dtype = ctx.input_dtype(0);
  ctx.set_output(0, dtype, ctx.input_shape(0));
  if (ctx.has_output(1))
    ctx.set_output(1, dropout_mask_dtype(ctx.opset, dtype), ctx.input_shape(0));
}

void compute_dropout(const ComputeContext& ctx) {
  if (ctx.opset >= 12 && random_dropout(ctx.has_input(2) ? &ctx.input(2) : nullptr,
                                        ctx.has_input(1) ? &ctx.input(1) : nullptr))
    throw Error(ErrorKind::Unsupported, ctx.node.describe() + ": " + kRandomDropout);
  copy_input_to_output(ctx);
  if (!output_present(ctx.node, 1)) return;
  Tensor& mask = ctx.output(1);
  fill(mask, one_of(mask.dtype(), "Dropout mask").data());
}

// ---- EyeLike ------------------------------------------------------------------------------------

DType eye_like_dtype(const Node& node, DType input) {
  return node.has_attr("dtype") ? dtype_from_onnx(static_cast<int32_t>(node.attr_int("dtype")))
                                : input;
}

void infer_eye_like(InferContext& ctx) {
  if (ctx.input_rank(0) != 2) ctx.fail("input must be 2-D, got " + shape_str(ctx.input_shape(0)));
  const DType dtype = eye_like_dtype(ctx.node, ctx.input_dtype(0));
  one_of(dtype, "EyeLike");  // rejects dtypes without a 1
  ctx.set_output(0, dtype, ctx.input_shape(0));
}

void compute_eye_like(const ComputeContext& ctx) {
  Tensor& out = ctx.output(0);
  const int64_t rows = out.dim(0), cols = out.dim(1);
  // Clamping k keeps the arithmetic below in range without moving the diagonal's visible part.
  const int64_t k = std::clamp<int64_t>(ctx.node.attr_int("k", 0), -rows, cols);
  const std::vector<uint8_t> one = one_of(out.dtype(), "EyeLike");
  auto* dst = static_cast<uint8_t*>(out.raw());
  if (out.nbytes() > 0) std::memset(dst, 0, out.nbytes());  // zero bits are 0 in every dtype
  // Ones at (i, i + k) for the rows where that column exists.
  const int64_t first_row = std::clamp<int64_t>(-k, 0, rows);
  const int64_t last_row = std::clamp<int64_t>(cols - k, 0, rows);
  for (int64_t i = first_row; i < last_row; ++i)
    std::memcpy(dst + (i * cols + i + k) * static_cast<int64_t>(one.size()), one.data(),
                one.size());
}

}  // namespace

void register_control_ops(OpRegistry& r) {
  r.add("", "Identity", OpDef{infer_identity, copy_input_to_output, nullptr});
  r.add("", "Constant", OpDef{infer_constant, compute_constant, nullptr});
  r.add("", "Shape", OpDef{infer_shape, compute_shape, nullptr, /*reads_only_shapes=*/true});
  r.add("", "Size", OpDef{infer_size, compute_size, nullptr, /*reads_only_shapes=*/true});
  r.add("", "ConstantOfShape", OpDef{infer_constant_of_shape, compute_constant_of_shape, nullptr});
  r.add("", "Range", OpDef{infer_range, compute_range, nullptr});
  r.add("", "Dropout", OpDef{infer_dropout, compute_dropout, nullptr});
  r.add("", "EyeLike", OpDef{infer_eye_like, compute_eye_like, nullptr});
}

}  // namespace nibble
