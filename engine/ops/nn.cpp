// Neural-network operators of the default ONNX domain: Conv, ConvTranspose, MatMul, Gemm and
// the normalizations (BatchNormalization, InstanceNormalization, LayerNormalization,
// LpNormalization). Pooling lives in pool.cpp and Resize/Upsample in resize.cpp.
//
// float32 Conv runs on the dispatched FP32 convolution kernels (engine/ops/conv_f32_op.h), float32
// MatMul and Gemm on the dispatched FP32 GEMM kernels (kernels/gemm_f32.h); float16 Conv and all
// ConvTranspose on the reference im2col + blocked GEMM kernels (kernels/ref.h). Conv packs
// constant weights once in prepare. Other numeric types of MatMul/Gemm use a plain triple loop.
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/ops/conv_f32_op.h"
#include "engine/ops/nn_common.h"
#include "kernels/cpu_features.h"
#include "kernels/gemm_f32.h"

namespace nibble {
namespace {

namespace ref = kernels::ref;

// floor(a / b) for b > 0, also for negative a (ConvTranspose splits negative total padding).
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// ---- Conv ---------------------------------------------------------------------------------------

// float16 convolutions widen their operands to float and narrow the result.
Tensor widened(const Tensor& t) {
  if (t.dtype() == DType::F32) return Tensor::view(DType::F32, t.shape(), t.raw());
  Tensor out(DType::F32, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i)
    out.data<float>()[i] = half_to_float(t.data<uint16_t>()[i]);
  return out;
}

struct ConvState {
  ConvLayout layout;
  std::optional<PackedConvWeights> weights;  // when W is a constant
};

void conv_infer(InferContext& ctx) {
  ctx.require_dtype(0, {DType::F32, DType::F16});
  const DType dtype = ctx.input_dtype(0);
  for (size_t i = 1; i <= 2; ++i) {
    if (ctx.has_input(i) && ctx.input_dtype(i) != dtype)
      ctx.fail("W and B must have the dtype of X");
  }
  const ConvLayout layout = conv_layout(ctx, ctx.input_shape(0), ctx.input_shape(1));
  if (ctx.has_input(2) && ctx.input_shape(2) != Shape{layout.out_channels}) {
    ctx.fail("bias must have shape [" + std::to_string(layout.out_channels) + "], got " +
             shape_str(ctx.input_shape(2)));
  }
  ctx.set_output(0, dtype, layout.output_shape);
}

std::shared_ptr<const void> conv_prepare(const InferContext& ctx) {
  if (ctx.input_dtype(0) == DType::F32) return conv_f32_prepare(ctx);
  auto state = std::make_shared<ConvState>();
  state->layout = conv_layout(ctx, ctx.input_shape(0), ctx.input_shape(1));
  if (const Tensor* w = ctx.input_constant(1)) {
    state->weights = pack_conv_weights(state->layout, widened(*w));
  }
  return state;
}

KernelInfo conv_kernel_info(const InferContext& ctx, const void* state) {
  if (ctx.input_dtype(0) == DType::F32) return conv_f32_kernel_info(ctx, state);
  const auto* s = static_cast<const ConvState*>(state);
  return s ? describe_conv(s->layout, s->weights ? &*s->weights : nullptr, false) : KernelInfo{};
}

void conv_compute(const ComputeContext& ctx) {
  if (ctx.input(0).dtype() == DType::F32) {
    conv_f32_compute(ctx);
    return;
  }
  const auto& state = ctx.state<ConvState>();
  std::optional<PackedConvWeights> packed_now;
  if (!state.weights) packed_now = pack_conv_weights(state.layout, widened(ctx.input(1)));
  const PackedConvWeights& weights = state.weights ? *state.weights : *packed_now;
  const Tensor x = widened(ctx.input(0));
  const Tensor bias = ctx.has_input(2) ? widened(ctx.input(2)) : Tensor();
  Tensor& y = ctx.output(0);
  std::vector<float> y_float(static_cast<size_t>(y.numel()));
  run_conv(state.layout, weights, x.data<float>(), bias.empty() ? nullptr : bias.data<float>(),
           y_float.data(), ctx.pool());
  for (int64_t i = 0; i < y.numel(); ++i) y.data<uint16_t>()[i] = float_to_half(y_float[size_t(i)]);
}

// ---- ConvTranspose ------------------------------------------------------------------------------

// A transposed convolution is the adjoint of the convolution whose input is Y and whose output
// is X, so it runs as cols = W^T · X per group followed by col2im into Y.
struct ConvTransposeLayout {
  int64_t batch = 0, in_channels = 0, out_channels = 0, group = 1;
  ref::ConvGeometry adjoint;  // forward geometry of one group: in = Y spatial, out = X spatial
  Shape output_shape;
};

ConvTransposeLayout conv_transpose_layout(const InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  const Shape& w = ctx.input_shape(1);
  const Node& node = ctx.node;
  if (x.size() < 3) ctx.fail("input must have rank >= 3 [N, C, spatial...], got " + shape_str(x));
  if (x.size() > 5) ctx.unsupported("more than 3 spatial dimensions");
  if (w.size() != x.size()) {
    ctx.fail("weight " + shape_str(w) + " must have the rank of the input " + shape_str(x));
  }
  ConvTransposeLayout layout;
  layout.batch = x[0];
  layout.in_channels = x[1];
  layout.group = node.attr_int("group", 1);
  if (layout.group < 1 || w[0] != layout.in_channels || layout.in_channels % layout.group != 0) {
    ctx.fail("weight " + shape_str(w) + " does not match input channels " +
             std::to_string(layout.in_channels) + " with group " + std::to_string(layout.group));
  }
  layout.out_channels = w[1] * layout.group;

  const size_t rank = x.size() - 2;
  const std::vector<int64_t> kernel(w.begin() + 2, w.end());
  if (node.has_attr("kernel_shape") && node.attr_ints("kernel_shape") != kernel) {
    ctx.fail("kernel_shape does not match the weight shape " + shape_str(w));
  }
  const auto strides = node.attr_ints("strides", std::vector<int64_t>(rank, 1));
  const auto dilations = node.attr_ints("dilations", std::vector<int64_t>(rank, 1));
  const auto output_padding = node.attr_ints("output_padding", std::vector<int64_t>(rank, 0));
  const auto pads = node.attr_ints("pads", std::vector<int64_t>(2 * rank, 0));
  std::vector<int64_t> output_shape = node.attr_ints("output_shape", {});
  if (output_shape.size() == rank + 2)
    output_shape.erase(output_shape.begin(), output_shape.begin() + 2);
  if (strides.size() != rank || dilations.size() != rank || output_padding.size() != rank ||
      pads.size() != 2 * rank || (!output_shape.empty() && output_shape.size() != rank)) {
    ctx.fail("strides, dilations, output_padding and output_shape need " + std::to_string(rank) +
             " values and pads " + std::to_string(2 * rank));
  }
  const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" &&
      auto_pad != "SAME_LOWER") {
    ctx.fail("unknown auto_pad '" + auto_pad + "'");
  }

  ref::ConvGeometry& geo = layout.adjoint;
  geo.channels = w[1];
  layout.output_shape = {layout.batch, layout.out_channels};
  const size_t offset = 3 - rank;
  for (size_t i = 0; i < rank; ++i) {
    const int64_t k = kernel[i], s = strides[i], d = dilations[i];
    if (k < 1 || s < 1 || d < 1 || output_padding[i] < 0 || pads[i] < 0 || pads[rank + i] < 0) {
      ctx.fail("kernel sizes, strides and dilations must be positive, pads non-negative");
    }
    const int64_t full = s * (x[2 + i] - 1) + output_padding[i] + (k - 1) * d + 1;
    int64_t out = 0, pad_begin = 0;
    if (!output_shape.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      // Pads follow from the requested size; ONNX puts the odd one at the end for SAME_UPPER.
      out = output_shape.empty() ? x[2 + i] * s : output_shape[i];
      const int64_t total = full - out;
      pad_begin = auto_pad == "SAME_UPPER" ? floor_div(total, 2) : total - floor_div(total, 2);
    } else {
      pad_begin = auto_pad == "VALID" ? 0 : pads[i];
      out = full - pad_begin - (auto_pad == "VALID" ? 0 : pads[rank + i]);
    }
    if (out < 1) ctx.fail("output size " + std::to_string(out) + " is not positive");
    layout.output_shape.push_back(out);
    geo.in[offset + i] = out;
    geo.out[offset + i] = x[2 + i];
    geo.kernel[offset + i] = k;
    geo.stride[offset + i] = s;
    geo.dilation[offset + i] = d;
    geo.pad[offset + i] = pad_begin;
  }
  return layout;
}

void conv_transpose_infer(InferContext& ctx) {
  ctx.require_dtype(0, {DType::F32});
  ctx.require_dtype(1, {DType::F32});
  const ConvTransposeLayout layout = conv_transpose_layout(ctx);
  if (ctx.has_input(2)) {
    ctx.require_dtype(2, {DType::F32});
    if (ctx.input_shape(2) != Shape{layout.out_channels}) {
      ctx.fail("bias must have shape [" + std::to_string(layout.out_channels) + "]");
    }
  }
  ctx.set_output(0, DType::F32, layout.output_shape);
}

std::shared_ptr<const void> conv_transpose_prepare(const InferContext& ctx) {
  return std::make_shared<ConvTransposeLayout>(conv_transpose_layout(ctx));
}

void conv_transpose_compute(const ComputeContext& ctx) {
  const auto& layout = ctx.state<ConvTransposeLayout>();
  const ref::ConvGeometry& geo = layout.adjoint;
  const float* x = ctx.input(0).data<float>();
  const float* w = ctx.input(1).data<float>();
  const float* bias = ctx.has_input(2) ? ctx.input(2).data<float>() : nullptr;
  float* y = ctx.output(0).data<float>();
  const int64_t in_channels = layout.in_channels / layout.group;  // per group
  const int64_t rows = geo.im2col_rows();                         // out channels x taps
  const int64_t positions = geo.out_size();                       // X spatial
  const int64_t out_spatial = geo.in_size();
  std::fill(y, y + ctx.output(0).numel(), 0.0f);
  ctx.pool().parallel_for(layout.batch * layout.group, [&](int64_t begin, int64_t end) {
    std::vector<float> cols(static_cast<size_t>(rows * positions));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / layout.group, g = t % layout.group;
      // W group g is [in_channels x rows]; cols = W^T · X_g.
      ref::sgemm(rows, positions, in_channels, w + g * in_channels * rows, 1, rows,
                 x + (n * layout.in_channels + g * in_channels) * positions, positions, 1,
                 cols.data(), positions);
      float* image = y + (n * layout.out_channels + g * geo.channels) * out_spatial;
      ref::col2im_add(geo, cols.data(), image);
      if (bias) {
        for (int64_t c = 0; c < geo.channels; ++c) {
          const float b = bias[g * geo.channels + c];
          for (int64_t i = 0; i < out_spatial; ++i) image[c * out_spatial + i] += b;
        }
      }
    }
  });
}

// ---- MatMul / Gemm ------------------------------------------------------------------------------

// Accumulator of the plain matmul loop: float for float16; signed integers accumulate unsigned
// so that overflow wraps around (as two's complement hardware does) instead of being undefined.
template <typename T>
struct NaiveAccumulator {
  using type = T;
};
template <>
struct NaiveAccumulator<Half> {
  using type = float;
};
template <>
struct NaiveAccumulator<int32_t> {
  using type = uint32_t;
};
template <>
struct NaiveAccumulator<int64_t> {
  using type = uint64_t;
};

// C[m x n] = A · B for element types without a GEMM kernel.
template <typename T>
void matmul_naive(int64_t m, int64_t n, int64_t k, const T* a, int64_t a_rs, int64_t a_cs,
                  const T* b, int64_t b_rs, int64_t b_cs, T* c, int64_t ldc) {
  using A = typename NaiveAccumulator<T>::type;
  auto load = [](T v) -> A {
    if constexpr (std::is_same_v<T, Half>) {
      return half_to_float(v.bits);
    } else {
      return static_cast<A>(v);
    }
  };
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      A sum{};
      for (int64_t p = 0; p < k; ++p) {
        sum += load(a[i * a_rs + p * a_cs]) * load(b[p * b_rs + j * b_cs]);
      }
      if constexpr (std::is_same_v<T, Half>) {
        c[i * ldc + j] = Half{float_to_half(sum)};
      } else {
        c[i * ldc + j] = static_cast<T>(sum);
      }
    }
  }
}

// Calls f(T{}) for the element types MatMul and Gemm accept.
template <typename F>
void dispatch_matmul_type(DType dtype, F&& f) {
  switch (dtype) {
    case DType::F32:
      return f(float{});
    case DType::F64:
      return f(double{});
    case DType::F16:
      return f(Half{});
    case DType::I32:
      return f(int32_t{});
    case DType::I64:
      return f(int64_t{});
    case DType::U32:
      return f(uint32_t{});
    case DType::U64:
      return f(uint64_t{});
    default:
      throw Error(ErrorKind::Unsupported,
                  std::string("MatMul/Gemm: unsupported dtype ") + dtype_name(dtype));
  }
}

// Depth of the slices of k that ONNX Runtime's MLAS SGEMM sums separately for an n-column
// product (one thread's view): 128, widened when n is narrow and A is not transposed.
int64_t mlas_depth_block(int64_t n, int64_t k, bool trans_a) {
  int64_t stride_n = 128, stride_k = 128;
  if (n < k && !trans_a) {
    while (stride_n > 16 && stride_n / 2 >= n) {
      stride_k *= 2;
      stride_n /= 2;
    }
  }
  return stride_k;
}

// C[m x n] = A · B in float32 on the dispatched FP32 GEMM kernels (kernels/gemm_f32.h), with
// element (i, j) of A at a[i * a_rs + j * a_cs] and of B at b[i * b_rs + j * b_cs]. Summed as
// MLAS SGEMM sums, so that ONNX Runtime's results are matched bit for bit: each slice of
// `depth_block` values of k is one chain of fused multiply-adds in order, and the slices are
// added to C one after another. MLAS does so with its FMA3 and AVX-512F kernels alike (its
// slicing does not depend on the CPU), so nibble's AVX2 and AVX-512 kernels must too. Matching
// matters where a dynamic quantization follows: YOLO11's attention MatMuls computed with
// separate multiply and add roundings end up whole uint8 steps away from ONNX Runtime after the
// chained quantizations.
// (When ONNX Runtime splits a narrow product's columns across threads, its slices may be deeper.)
void matmul_f32_block(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs,
                      int64_t a_cs, const float* b, int64_t b_rs, int64_t b_cs, float* c,
                      int64_t ldc, int64_t depth_block) {
  // The kernel's own blocks of k would restart the chain (adding partial sums to C), so they
  // are made at least one slice deep (the AVX2 kernel's are 256, MLAS's slices up to 1024).
  kernels::GemmF32Kernel kernel = kernels::gemm_f32_kernel(kernels::active_isa());
  kernel.kc = std::max(kernel.kc, depth_block);
  thread_local std::vector<float> packed_a;
  // k == 0 still runs one (empty) slice, which writes the zeros.
  for (int64_t k0 = 0; k0 < std::max<int64_t>(k, 1); k0 += depth_block) {
    const int64_t kc = std::min(depth_block, k - k0);
    const float* a_slice = a + k0 * a_cs;
    packed_a.resize(size_t(kernels::gemm_f32_packed_a_size(kernel, m, kc)));
    if (a_cs == 1) {
      kernels::gemm_f32_pack_a(kernel, m, kc, a_slice, a_rs, packed_a.data());
    } else {  // panels of mr rows, kc groups of mr values each (gemm_f32_pack_a's layout)
      const int64_t mr = kernel.mr;
      for (int64_t p = 0; p < m; p += mr) {
        float* panel = packed_a.data() + p * kc;
        const int64_t rows = std::min(mr, m - p);
        for (int64_t j = 0; j < kc; ++j) {
          for (int64_t r = 0; r < mr; ++r) {
            panel[j * mr + r] = r < rows ? a_slice[(p + r) * a_rs + j * a_cs] : 0.0f;
          }
        }
      }
    }
    const float* b_slice = b + k0 * b_rs;
    const auto pack_b = [&](int64_t kb, int64_t rows, int64_t n0, int64_t nc, float* packed) {
      if (b_cs == 1) {
        kernels::gemm_f32_pack_b(kernel.nr, rows, nc, b_slice + kb * b_rs + n0, b_rs, packed);
        return;
      }
      const int64_t nr = kernel.nr;  // strips of nr columns, `rows` groups of nr values each
      for (int64_t s = 0; s < nc; s += nr) {
        float* strip = packed + s * rows;
        for (int64_t i = 0; i < rows; ++i) {
          for (int64_t j = 0; j < nr; ++j) {
            strip[i * nr + j] =
                s + j < nc ? b_slice[(kb + i) * b_rs + (n0 + s + j) * b_cs] : 0.0f;
          }
        }
      }
    };
    kernels::Epilogue add_to_c;  // later slices: C = slice product + C
    if (k0 > 0) {
      add_to_c.residual = c;
      add_to_c.residual_ld = ldc;
    }
    kernels::gemm_f32_run(kernel, m, n, kc, packed_a.data(), pack_b, c, ldc, add_to_c);
  }
}

// C = A · B for one block of rows and columns, on the GEMM kernels for float; `depth_block` is
// the whole product's mlas_depth_block.
template <typename T>
void matmul_block(int64_t m, int64_t n, int64_t k, const T* a, int64_t a_rs, int64_t a_cs,
                  const T* b, int64_t b_rs, int64_t b_cs, T* c, int64_t ldc,
                  [[maybe_unused]] int64_t depth_block) {
  if constexpr (std::is_same_v<T, float>) {
    matmul_f32_block(m, n, k, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, depth_block);
  } else {
    matmul_naive(m, n, k, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc);
  }
}

const std::initializer_list<DType> kMatMulTypes = {DType::F32, DType::F64, DType::F16, DType::I32,
                                                   DType::I64, DType::U32, DType::U64};

void matmul_infer(InferContext& ctx) {
  ctx.require_dtype(0, kMatMulTypes);
  if (ctx.input_dtype(1) != ctx.input_dtype(0)) ctx.fail("A and B must have the same dtype");
  const MatMulLayout layout = matmul_layout(ctx.node, ctx.input_shape(0), ctx.input_shape(1));
  ctx.set_output(0, ctx.input_dtype(0), layout.output_shape);
}

void matmul_compute(const ComputeContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  Tensor& y = ctx.output(0);
  const MatMulLayout layout = matmul_layout(ctx.node, a.shape(), b.shape());
  dispatch_matmul_type(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* a_data = a.data<T>();
    const T* b_data = b.data<T>();
    T* y_data = y.data<T>();
    const int64_t m = layout.m, n = layout.n, k = layout.k;
    const int64_t depth_block = mlas_depth_block(n, k, false);
    parallel_matmul(ctx.pool(), layout.batches(), m, n, k,
                    [&](int64_t batch, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
                      matmul_block(m1 - m0, n1 - n0, k,
                                   a_data + layout.a_offsets[size_t(batch)] + m0 * k, k, 1,
                                   b_data + layout.b_offsets[size_t(batch)] + n0, n, 1,
                                   y_data + batch * m * n + m0 * n + n0, n, depth_block);
                    });
  });
}

struct GemmDims {
  int64_t m, n, k;
};

GemmDims gemm_dims(const InferContext& ctx) {
  const Shape& a = ctx.input_shape(0);
  const Shape& b = ctx.input_shape(1);
  if (a.size() != 2 || b.size() != 2) ctx.fail("A and B must be 2-D");
  const bool trans_a = ctx.node.attr_int("transA", 0) != 0;
  const bool trans_b = ctx.node.attr_int("transB", 0) != 0;
  const GemmDims d{trans_a ? a[1] : a[0], trans_b ? b[0] : b[1], trans_a ? a[0] : a[1]};
  if ((trans_b ? b[1] : b[0]) != d.k) {
    ctx.fail("shapes " + shape_str(a) + " and " + shape_str(b) + " do not multiply");
  }
  return d;
}

void gemm_infer(InferContext& ctx) {
  ctx.require_dtype(0, kMatMulTypes);
  const DType dtype = ctx.input_dtype(0);
  if (ctx.input_dtype(1) != dtype) ctx.fail("A and B must have the same dtype");
  const GemmDims d = gemm_dims(ctx);
  if (ctx.has_input(2)) {
    if (ctx.input_dtype(2) != dtype) ctx.fail("C must have the dtype of A");
    const Shape& c = ctx.input_shape(2);
    const Shape out{d.m, d.n};
    bool ok = c.size() <= 2;
    for (size_t i = 0; ok && i < c.size(); ++i) {
      ok = c[i] == 1 || c[i] == out[out.size() - c.size() + i];
    }
    if (!ok) ctx.fail("C " + shape_str(c) + " does not broadcast to " + shape_str(out));
  }
  ctx.set_output(0, dtype, {d.m, d.n});
}

void gemm_compute(const ComputeContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  Tensor& y = ctx.output(0);
  const bool trans_a = ctx.node.attr_int("transA", 0) != 0;
  const bool trans_b = ctx.node.attr_int("transB", 0) != 0;
  const double alpha = ctx.node.attr_float("alpha", 1.0f);
  const double beta = ctx.node.attr_float("beta", 1.0f);
  const int64_t m = y.dim(0), n = y.dim(1);
  const int64_t k = trans_a ? a.dim(0) : a.dim(1);
  // Element (i, j) of op(A) is at i * rs + j * cs.
  const int64_t a_rs = trans_a ? 1 : k, a_cs = trans_a ? m : 1;
  const int64_t b_rs = trans_b ? 1 : n, b_cs = trans_b ? k : 1;
  dispatch_matmul_type(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* a_data = a.data<T>();
    const T* b_data = b.data<T>();
    T* y_data = y.data<T>();
    const int64_t depth_block = mlas_depth_block(n, k, trans_a);
    parallel_matmul(ctx.pool(), 1, m, n, k,
                    [&](int64_t, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
                      matmul_block(m1 - m0, n1 - n0, k, a_data + m0 * a_rs, a_rs, a_cs,
                                   b_data + n0 * b_cs, b_rs, b_cs, y_data + m0 * n + n0, n,
                                   depth_block);
                    });
    const Tensor* c = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    if (alpha == 1.0 && (!c || beta == 0.0)) return;
    // C broadcasts from its trailing dims: stride 0 along size-1 (or missing) dims.
    int64_t c_rs = 0, c_cs = 0;
    if (c) {
      const Shape& cs = c->shape();
      const int64_t rows = cs.size() == 2 ? cs[0] : 1;
      const int64_t cols = cs.empty() ? 1 : cs.back();
      c_rs = rows == 1 ? 0 : cols;
      c_cs = cols == 1 ? 0 : 1;
    }
    const T* c_data = c ? c->data<T>() : nullptr;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        T& out = y_data[i * n + j];
        if constexpr (std::is_integral_v<T>) {
          if (alpha == 1.0 && beta == 1.0) {  // exact (wrapping) integer bias
            using U = typename NaiveAccumulator<T>::type;
            out = static_cast<T>(static_cast<U>(out) + static_cast<U>(c_data[i * c_rs + j * c_cs]));
            continue;
          }
        }
        double v = alpha * to_double(out);
        if (c_data) v += beta * to_double(c_data[i * c_rs + j * c_cs]);
        out = from_double<T>(v);
      }
    }
  });
}

// ---- normalizations -----------------------------------------------------------------------------

// X [N, C, ...]: rows of `inner` elements per (n, c).
struct ChannelLayout {
  int64_t batch, channels, inner;
};

ChannelLayout channel_layout(const Shape& x) {
  ChannelLayout l{x[0], x.size() > 1 ? x[1] : 1, 1};
  for (size_t i = 2; i < x.size(); ++i) l.inner *= x[i];
  return l;
}

// y[n, c, i] = x[n, c, i] * mul[c] + add[c]
template <typename T>
void apply_channel_affine(const ComputeContext& ctx, const ChannelLayout& l, const T* x,
                          const std::vector<double>& mul, const std::vector<double>& add, T* y) {
  ctx.pool().parallel_for(l.batch * l.channels, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t c = t % l.channels;
      const float scale = static_cast<float>(mul[size_t(c)]);
      const float shift = static_cast<float>(add[size_t(c)]);
      const T* src = x + t * l.inner;
      T* dst = y + t * l.inner;
      if constexpr (std::is_same_v<T, float>) {
        for (int64_t i = 0; i < l.inner; ++i) dst[i] = src[i] * scale + shift;
      } else {
        for (int64_t i = 0; i < l.inner; ++i) {
          dst[i] = from_double<T>(to_double(src[i]) * mul[size_t(c)] + add[size_t(c)]);
        }
      }
    }
  });
}

std::vector<double> tensor_values(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.get_f64(i);
  return v;
}

const std::initializer_list<DType> kFloatTypes = {DType::F32, DType::F64, DType::F16};

bool batch_norm_training(const InferContext& ctx) {
  return ctx.opset >= 14 && ctx.node.attr_int("training_mode", 0) != 0;
}

void batch_norm_infer(InferContext& ctx) {
  ctx.require_dtype(0, kFloatTypes);
  const Shape& x = ctx.input_shape(0);
  if (x.size() < 2) ctx.fail("input must have rank >= 2 [N, C, ...]");
  for (size_t i = 1; i <= 4; ++i) {
    ctx.require_dtype(i, kFloatTypes);
    if (ctx.input_shape(i) != Shape{x[1]}) {
      ctx.fail("scale, B, mean and var must have shape [" + std::to_string(x[1]) + "]");
    }
  }
  if (ctx.opset < 9 && ctx.node.attr_int("spatial", 1) == 0) {
    ctx.unsupported("spatial=0 (per-activation statistics)");
  }
  const bool training = batch_norm_training(ctx);
  for (size_t i = 1; i < ctx.num_outputs(); ++i) {
    if (!ctx.has_output(i)) continue;
    // Before opset 14 the extra outputs only exist in training, which those opsets select by
    // the presence of the outputs; opset 14+ has running mean and variance only.
    if (!training || i > 2) ctx.unsupported("training outputs other than running mean/var");
    ctx.set_output(i, ctx.input_dtype(i + 2), {x[1]});
  }
  ctx.set_output(0, ctx.input_dtype(0), x);
}

void batch_norm_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const ChannelLayout l = channel_layout(x.shape());
  const double epsilon = ctx.node.attr_float("epsilon", 1e-5f);
  const std::vector<double> scale = tensor_values(ctx.input(1));
  const std::vector<double> bias = tensor_values(ctx.input(2));
  std::vector<double> mean = tensor_values(ctx.input(3));
  std::vector<double> var = tensor_values(ctx.input(4));
  const bool training = ctx.opset >= 14 && ctx.node.attr_int("training_mode", 0) != 0;
  dispatch_float(x.dtype(), "BatchNormalization", [&](auto tag) {
    using T = decltype(tag);
    const T* xd = x.data<T>();
    if (training) {
      // Normalize with the batch statistics and blend them into the running ones.
      const double momentum = ctx.node.attr_float("momentum", 0.9f);
      const double count = static_cast<double>(l.batch * l.inner);
      for (int64_t c = 0; c < l.channels; ++c) {
        double sum = 0, sum_sq = 0;
        for (int64_t n = 0; n < l.batch; ++n) {
          const T* row = xd + (n * l.channels + c) * l.inner;
          for (int64_t i = 0; i < l.inner; ++i) sum += to_double(row[i]);
        }
        const double batch_mean = sum / count;
        for (int64_t n = 0; n < l.batch; ++n) {
          const T* row = xd + (n * l.channels + c) * l.inner;
          for (int64_t i = 0; i < l.inner; ++i) {
            const double d = to_double(row[i]) - batch_mean;
            sum_sq += d * d;
          }
        }
        const double batch_var = sum_sq / count;
        for (size_t o = 1; o <= 2; ++o) {
          if (o >= ctx.num_outputs() || ctx.output(o).empty()) continue;
          const double running = (o == 1 ? mean : var)[size_t(c)] * momentum +
                                 (o == 1 ? batch_mean : batch_var) * (1 - momentum);
          dispatch_float(ctx.output(o).dtype(), "BatchNormalization", [&](auto out_tag) {
            using O = decltype(out_tag);
            ctx.output(o).data<O>()[c] = from_double<O>(running);
          });
        }
        mean[size_t(c)] = batch_mean;
        var[size_t(c)] = batch_var;
      }
    }
    std::vector<double> mul(size_t(l.channels)), add(size_t(l.channels));
    for (size_t c = 0; c < size_t(l.channels); ++c) {
      mul[c] = scale[c] / std::sqrt(var[c] + epsilon);
      add[c] = bias[c] - mean[c] * mul[c];
    }
    apply_channel_affine(ctx, l, xd, mul, add, ctx.output(0).data<T>());
  });
}

void instance_norm_infer(InferContext& ctx) {
  ctx.require_dtype(0, kFloatTypes);
  const Shape& x = ctx.input_shape(0);
  if (x.size() < 3) ctx.fail("input must have rank >= 3 [N, C, spatial...]");
  for (size_t i = 1; i <= 2; ++i) {
    if (ctx.input_dtype(i) != ctx.input_dtype(0)) ctx.fail("scale and B must have the input dtype");
    if (ctx.input_shape(i) != Shape{x[1]}) {
      ctx.fail("scale and B must have shape [" + std::to_string(x[1]) + "]");
    }
  }
  ctx.set_output(0, ctx.input_dtype(0), x);
}

void instance_norm_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const ChannelLayout l = channel_layout(x.shape());
  const double epsilon = ctx.node.attr_float("epsilon", 1e-5f);
  const std::vector<double> scale = tensor_values(ctx.input(1));
  const std::vector<double> bias = tensor_values(ctx.input(2));
  dispatch_float(x.dtype(), "InstanceNormalization", [&](auto tag) {
    using T = decltype(tag);
    const T* xd = x.data<T>();
    T* yd = ctx.output(0).data<T>();
    ctx.pool().parallel_for(l.batch * l.channels, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const size_t c = size_t(t % l.channels);
        const T* src = xd + t * l.inner;
        double sum = 0, sum_sq = 0;
        for (int64_t i = 0; i < l.inner; ++i) sum += to_double(src[i]);
        const double mean = sum / double(l.inner);
        for (int64_t i = 0; i < l.inner; ++i) {
          const double d = to_double(src[i]) - mean;
          sum_sq += d * d;
        }
        const double mul = scale[c] / std::sqrt(sum_sq / double(l.inner) + epsilon);
        const double add = bias[c] - mean * mul;
        T* dst = yd + t * l.inner;
        for (int64_t i = 0; i < l.inner; ++i)
          dst[i] = from_double<T>(to_double(src[i]) * mul + add);
      }
    });
  });
}

// Scale/B of LayerNormalization broadcast over the normalized dims X.shape[axis:], expanded
// to one value per normalized element.
std::vector<double> expand_to_normalized(const Tensor& t, const Shape& normalized) {
  const std::vector<int64_t> strides = broadcast_strides(t.shape(), normalized.size());
  std::vector<double> out(static_cast<size_t>(shape_numel(normalized)));
  std::vector<int64_t> index(normalized.size(), 0);
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t offset = 0;
    for (size_t d = 0; d < normalized.size(); ++d) offset += index[d] * strides[d];
    out[i] = t.get_f64(offset);
    for (size_t d = normalized.size(); d-- > 0;) {
      if (++index[d] < normalized[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

int64_t layer_norm_axis(const InferContext& ctx) {
  return normalize_axis(ctx.node.attr_int("axis", -1), ctx.input_rank(0), ctx.node);
}

void layer_norm_infer(InferContext& ctx) {
  ctx.require_dtype(0, kFloatTypes);
  const Shape& x = ctx.input_shape(0);
  const int64_t axis = layer_norm_axis(ctx);
  if (ctx.node.attr_int("stash_type", 1) != 1) ctx.unsupported("stash_type other than float");
  const Shape normalized(x.begin() + axis, x.end());
  for (size_t i = 1; i <= 2; ++i) {
    if (!ctx.has_input(i)) continue;
    ctx.require_dtype(i, kFloatTypes);
    const Shape& s = ctx.input_shape(i);
    bool ok = s.size() <= normalized.size();
    for (size_t d = 0; ok && d < s.size(); ++d) {
      ok = s[d] == 1 || s[d] == normalized[normalized.size() - s.size() + d];
    }
    if (!ok) ctx.fail("Scale/B " + shape_str(s) + " do not broadcast to " + shape_str(normalized));
  }
  ctx.require_input(1);
  ctx.set_output(0, ctx.input_dtype(0), x);
  Shape stats(x.begin(), x.begin() + axis);
  stats.resize(x.size(), 1);
  for (size_t i = 1; i <= 2; ++i) {
    if (ctx.has_output(i)) ctx.set_output(i, DType::F32, stats);
  }
}

void layer_norm_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t axis = normalize_axis(ctx.node.attr_int("axis", -1), x.rank(), ctx.node);
  const Shape normalized(x.shape().begin() + axis, x.shape().end());
  const int64_t cols = shape_numel(normalized);
  const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
  const double epsilon = ctx.node.attr_float("epsilon", 1e-5f);
  const std::vector<double> scale = expand_to_normalized(ctx.input(1), normalized);
  const std::vector<double> bias = ctx.has_input(2) ? expand_to_normalized(ctx.input(2), normalized)
                                                    : std::vector<double>(size_t(cols), 0.0);
  float* mean_out =
      ctx.num_outputs() > 1 && !ctx.output(1).empty() ? ctx.output(1).data<float>() : nullptr;
  float* inv_std_out =
      ctx.num_outputs() > 2 && !ctx.output(2).empty() ? ctx.output(2).data<float>() : nullptr;
  dispatch_float(x.dtype(), "LayerNormalization", [&](auto tag) {
    using T = decltype(tag);
    const T* xd = x.data<T>();
    T* yd = ctx.output(0).data<T>();
    ctx.pool().parallel_for(rows, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const T* src = xd + r * cols;
        double sum = 0, sum_sq = 0;
        for (int64_t i = 0; i < cols; ++i) sum += to_double(src[i]);
        const double mean = sum / double(cols);
        for (int64_t i = 0; i < cols; ++i) {
          const double d = to_double(src[i]) - mean;
          sum_sq += d * d;
        }
        const double inv_std = 1.0 / std::sqrt(sum_sq / double(cols) + epsilon);
        T* dst = yd + r * cols;
        for (int64_t i = 0; i < cols; ++i) {
          dst[i] = from_double<T>((to_double(src[i]) - mean) * inv_std * scale[size_t(i)] +
                                  bias[size_t(i)]);
        }
        if (mean_out) mean_out[r] = static_cast<float>(mean);
        if (inv_std_out) inv_std_out[r] = static_cast<float>(inv_std);
      }
    });
  });
}

void lp_norm_infer(InferContext& ctx) {
  ctx.require_dtype(0, kFloatTypes);
  // normalize_axis accepts axis 0 of a scalar; LpNormalization needs an axis to sum along.
  if (ctx.input_rank(0) == 0) ctx.fail("input must have rank >= 1");
  normalize_axis(ctx.node.attr_int("axis", -1), ctx.input_rank(0), ctx.node);
  const int64_t p = ctx.node.attr_int("p", 2);
  if (p != 1 && p != 2) ctx.fail("p must be 1 or 2, got " + std::to_string(p));
  ctx.set_output(0, ctx.input_dtype(0), ctx.input_shape(0));
}

void lp_norm_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t axis = normalize_axis(ctx.node.attr_int("axis", -1), x.rank(), ctx.node);
  const bool l1 = ctx.node.attr_int("p", 2) == 1;
  const int64_t len = x.dim(axis);
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.dim(d);
  const int64_t outer = len * inner == 0 ? 0 : x.numel() / (len * inner);
  dispatch_float(x.dtype(), "LpNormalization", [&](auto tag) {
    using T = decltype(tag);
    const T* xd = x.data<T>();
    T* yd = ctx.output(0).data<T>();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t base = o * len * inner + i;
        double norm = 0;
        for (int64_t j = 0; j < len; ++j) {
          const double v = to_double(xd[base + j * inner]);
          norm += l1 ? std::abs(v) : v * v;
        }
        if (!l1) norm = std::sqrt(norm);
        for (int64_t j = 0; j < len; ++j) {
          const double v = to_double(xd[base + j * inner]);
          yd[base + j * inner] = from_double<T>(norm == 0 ? 0.0 : v / norm);
        }
      }
    }
  });
}

}  // namespace

void register_nn_ops(OpRegistry& r) {
  r.add("", "Conv", make_op(conv_infer, conv_compute, conv_prepare, conv_kernel_info));
  r.add("", "ConvTranspose",
        make_op(conv_transpose_infer, conv_transpose_compute, conv_transpose_prepare));
  r.add("", "MatMul", make_op(matmul_infer, matmul_compute));
  r.add("", "Gemm", make_op(gemm_infer, gemm_compute));
  r.add("", "BatchNormalization", make_op(batch_norm_infer, batch_norm_compute));
  r.add("", "InstanceNormalization", make_op(instance_norm_infer, instance_norm_compute));
  r.add("", "LayerNormalization", make_op(layer_norm_infer, layer_norm_compute));
  r.add("", "LpNormalization", make_op(lp_norm_infer, lp_norm_compute));
  register_pool_ops(r);
  register_resize_ops(r);
}

}  // namespace nibble
