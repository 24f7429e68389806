#include "engine/ops/integer_matmul.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "kernels/gemm_int.h"

namespace nibble {
namespace {

namespace k = kernels;

struct IntegerMatMulState {
  // B^T minus its zero points: N rows of K, for the A8 kernels; empty when the reference runs.
  std::optional<k::PackedQWeights> weights;
  size_t b_input = 0;
};

// B [K, N] (a 1-D B is [K] = one column) minus its zero point per column, transposed to the
// kernels' N rows of K; nullopt when a value leaves int8.
std::optional<std::vector<int8_t>> weight_rows(const Tensor& b,
                                               const std::vector<int32_t>& zero_points,
                                               int64_t depth, int64_t columns) {
  std::vector<int8_t> rows(static_cast<size_t>(depth * columns));
  for (int64_t kk = 0; kk < depth; ++kk) {
    for (int64_t n = 0; n < columns; ++n) {
      const int64_t v = b.get_i64(kk * columns + n) - zero_points[static_cast<size_t>(n)];
      if (v < -128 || v > 127) return std::nullopt;
      rows[static_cast<size_t>(n * depth + kk)] = static_cast<int8_t>(v);
    }
  }
  return rows;
}

// The reference: plain integer loops over every batch, zero points expanded per row / column.
void reference_sum(const ComputeContext& ctx, const IntegerMatMulInputs& in,
                   const MatMulLayout& layout, int32_t* y) {
  const Tensor& a = ctx.input(in.a);
  const Tensor& b = ctx.input(in.b);
  const std::vector<int32_t> a_zero_points = expand_zero_points(
      ctx.node, ctx.has_input(in.a_zero_point) ? &ctx.input(in.a_zero_point) : nullptr, layout.m,
      "a zero point");
  const std::vector<int32_t> b_zero_points = expand_zero_points(
      ctx.node, ctx.has_input(in.b_zero_point) ? &ctx.input(in.b_zero_point) : nullptr, layout.n,
      "b zero point");
  const int64_t m = layout.m, n = layout.n, depth = layout.k;
  auto run = [&](auto a_tag, auto b_tag) {
    using TA = decltype(a_tag);
    using TB = decltype(b_tag);
    const TA* a_data = a.data<TA>();
    const TB* b_data = b.data<TB>();
    parallel_matmul(
        ctx.pool(), layout.batches(), m, n, depth,
        [&](int64_t batch, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
          k::ref::qgemm(m1 - m0, n1 - n0, depth,
                        a_data + layout.a_offsets[size_t(batch)] + m0 * depth, depth, 1,
                        a_zero_points.data() + m0, b_data + layout.b_offsets[size_t(batch)] + n0,
                        n, 1, b_zero_points.data() + n0, y + batch * m * n + m0 * n + n0, n);
        });
  };
  const bool a_signed = a.dtype() == DType::I8, b_signed = b.dtype() == DType::I8;
  if (a_signed && b_signed)
    run(int8_t{}, int8_t{});
  else if (a_signed)
    run(int8_t{}, uint8_t{});
  else if (b_signed)
    run(uint8_t{}, int8_t{});
  else
    run(uint8_t{}, uint8_t{});
}

}  // namespace

std::shared_ptr<const void> integer_matmul_prepare(const InferContext& ctx,
                                                   const IntegerMatMulInputs& in) {
  auto state = std::make_shared<IntegerMatMulState>();
  state->b_input = in.b;
  const Tensor* b = ctx.input_constant(in.b);
  const bool has_b_zero_point = ctx.has_input(in.b_zero_point);
  const Tensor* b_zero_point = has_b_zero_point ? ctx.input_constant(in.b_zero_point) : nullptr;
  // The kernels take one zero point for all of A.
  const bool a_zero_point_per_tensor = !ctx.has_input(in.a_zero_point) ||
                                       shape_numel(ctx.input_shape(in.a_zero_point)) == 1;
  if (!b || b->shape().size() > 2 || (has_b_zero_point && !b_zero_point) ||
      !a_zero_point_per_tensor)
    return state;
  const MatMulLayout layout = matmul_layout(ctx.node, ctx.input_shape(in.a), b->shape());
  if (layout.k == 0 || layout.n == 0) return state;
  const std::vector<int32_t> zero_points =
      expand_zero_points(ctx.node, b_zero_point, layout.n, "b zero point");
  const std::optional<std::vector<int8_t>> rows = weight_rows(*b, zero_points, layout.k, layout.n);
  if (!rows) return state;
  const float unit_scale = 1.0f;  // the I32 output has no scale
  state->weights = k::pack_qweights(k::QuantMode::A8, 8, layout.n, layout.k, rows->data(),
                                    layout.k, &unit_scale, /*per_channel=*/false);
  return state;
}

KernelInfo integer_matmul_kernel_info(const InferContext&, const void* state) {
  const auto* s = static_cast<const IntegerMatMulState*>(state);
  KernelInfo info;
  if (!s || !s->weights) return info;
  info.family = "matmul_integer_" + k::qgemm_kind_name(s->weights->mode, s->weights->bits);
  info.isa = k::isa_name(s->weights->isa);
  info.tile = s->weights->kernel;
  info.packed_weight_bytes = s->weights->packed_bytes();
  info.packed_inputs = {s->b_input};
  return info;
}

void integer_matmul_sum(const ComputeContext& ctx, const IntegerMatMulInputs& in,
                        const MatMulLayout& layout, int32_t* y) {
  const auto& state = ctx.state<IntegerMatMulState>();
  if (!state.weights) {
    reference_sum(ctx, in, layout, y);
    return;
  }
  // B is one matrix, so A's batches are contiguous: all of A is rows x K, and y rows x N.
  const Tensor& a = ctx.input(in.a);
  const int64_t depth = layout.k, columns = layout.n;
  const int64_t rows = layout.batches() * layout.m;
  k::QSource source;
  source.type = a.dtype() == DType::U8 ? k::QType::U8 : k::QType::S8;
  source.data = a.raw();
  source.row_stride = 1;  // the kernels' B[k][r] = A[r][k]
  source.col_stride = depth;
  source.zero_point = ctx.has_input(in.a_zero_point)
                          ? static_cast<int32_t>(ctx.input(in.a_zero_point).get_i64(0))
                          : 0;
  k::QOutput output;
  output.type = k::QType::I32;
  output.data = y;
  output.row_stride = 1;  // the kernels' C[n][r] = y[r][n]
  output.col_stride = columns;
  const int64_t rows_per_task =
      std::max<int64_t>(16, (1 << 16) / std::max<int64_t>(depth * columns, 1));
  const int64_t tasks = (rows + rows_per_task - 1) / rows_per_task;
  ctx.pool().parallel_for(tasks, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t r0 = t * rows_per_task, r1 = std::min(rows, r0 + rows_per_task);
      k::qgemm(*state.weights, source, rows, r0, r1, {}, output);
    }
  });
}

}  // namespace nibble
