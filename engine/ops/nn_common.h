// Pieces shared by the neural-network op files (nn.cpp, pool.cpp, resize.cpp, quant.cpp):
// window geometry of convolutions and pools (auto_pad, ceil_mode), the convolution driver on
// top of the reference im2col + GEMM kernels, and numpy-style batched matrix products.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/ops/op_util.h"
#include "kernels/conv_f32.h"
#include "kernels/ref.h"

namespace nibble {

// An OpDef from its functions; fields not given keep their defaults.
inline OpDef make_op(std::function<void(InferContext&)> infer,
                     std::function<void(const ComputeContext&)> compute,
                     std::function<std::shared_ptr<const void>(const InferContext&)> prepare = {},
                     std::function<KernelInfo(const InferContext&, const void*)> kernel_info = {}) {
  OpDef def;
  def.infer = std::move(infer);
  def.compute = std::move(compute);
  def.prepare = std::move(prepare);
  def.kernel_info = std::move(kernel_info);
  return def;
}

// Registered from register_nn_ops (one file per sub-family).
void register_pool_ops(OpRegistry& r);    // pool.cpp: Max/Average/LpPool, Global*Pool
void register_resize_ops(OpRegistry& r);  // resize.cpp: Resize, Upsample

// ---- sliding windows ----------------------------------------------------------------------------

// Window parameters for each spatial dimension after resolving auto_pad.
struct WindowParams {
  std::vector<int64_t> kernel, strides, dilations, pad_begin, pad_end, out;
  size_t rank() const { return kernel.size(); }
};

// Reads strides / dilations / pads / auto_pad from the node and computes the output size of a
// window of `kernel` sliding over `in` (spatial dims only). ceil_mode follows ONNX pooling:
// the last window must start inside the input or its leading pad. Throws InvalidModel for
// malformed attributes or an empty output.
WindowParams resolve_window(const InferContext& ctx, const Shape& in,
                            const std::vector<int64_t>& kernel, bool ceil_mode);

// ---- convolution ------------------------------------------------------------------------------

struct ConvLayout {
  int64_t batch = 0, in_channels = 0, out_channels = 0, group = 1;
  kernels::ref::ConvGeometry geometry;  // of one group
  Shape output_shape;

  int64_t out_channels_per_group() const { return out_channels / group; }
  // One input channel per group producing one output channel, in 1-D or 2-D: runs as a direct
  // depthwise convolution instead of a GEMM with a single row.
  bool depthwise() const;
};

// Validates X [N, C, spatial...] against W [M, C/group, kernel...] and the Conv attributes
// (kernel_shape, strides, dilations, pads, auto_pad, group); 1 to 3 spatial dimensions.
ConvLayout conv_layout(const InferContext& ctx, const Shape& x, const Shape& w);
// The layout as the FP32 convolution kernels describe it (FP32 and weight-only Winograd).
kernels::ConvF32Shape conv_f32_shape(const ConvLayout& layout);

// Weights ready for the convolution driver: per group, a packed GEMM A (rows = output
// channels, columns = im2col rows) or, for depthwise layouts, plain taps per channel. Integer
// weights are stored with their zero point already subtracted.
struct PackedConvWeights {
  std::vector<float> gemm;  // group g starts at g * group_stride
  int64_t group_stride = 0;
  std::vector<float> taps;            // depthwise, float weights
  std::vector<int32_t> integer_taps;  // depthwise, integer weights
};

PackedConvWeights pack_conv_weights(const ConvLayout& layout, const Tensor& w);
// Integer weights (uint8 / int8) minus one zero point per output channel.
PackedConvWeights pack_conv_weights(const ConvLayout& layout, const Tensor& w,
                                    const std::vector<int32_t>& zero_points);

// What `nibble inspect` reports for a convolution; `packed` is null when the weights are only
// known at run time (they are then packed on every run).
KernelInfo describe_conv(const ConvLayout& layout, const PackedConvWeights* packed, bool integer);

// y = conv(x, w) + bias (bias may be null); x, y in NCHW-style layout.
void run_conv(const ConvLayout& layout, const PackedConvWeights& w, const float* x,
              const float* bias, float* y, ThreadPool& pool);
// y = conv(x - x_zero_point, w) in int32; x is uint8 or int8.
void run_conv_integer(const ConvLayout& layout, const PackedConvWeights& w, const Tensor& x,
                      int32_t x_zero_point, int32_t* y, ThreadPool& pool);

// ---- matrix products ----------------------------------------------------------------------------

// numpy matmul of A [..., M, K] and B [..., K, N] (1-D operands promoted and their dimension
// dropped from the output), batch dimensions broadcast.
struct MatMulLayout {
  int64_t m = 1, n = 1, k = 1;
  Shape output_shape;
  std::vector<int64_t> a_offsets, b_offsets;  // element offset of each output batch's operands
  int64_t batches() const { return static_cast<int64_t>(a_offsets.size()); }
};

// Throws InvalidModel (naming `node`) when the shapes do not multiply.
MatMulLayout matmul_layout(const Node& node, const Shape& a, const Shape& b);

// Splits batches x rows x columns of a matrix product into tasks for the pool and calls
// fn(batch, m_begin, m_end, n_begin, n_end) for each; `k` only sizes the work.
void parallel_matmul(ThreadPool& pool, int64_t batches, int64_t m, int64_t n, int64_t k,
                     const std::function<void(int64_t, int64_t, int64_t, int64_t, int64_t)>& fn);

// ---- small helpers ------------------------------------------------------------------------------

// Element <-> double for the float types these ops accept (float, double, float16 as Half).
template <typename T>
inline double to_double(T v) {
  if constexpr (std::is_same_v<T, Half>) {
    return half_to_float(v.bits);
  } else {
    return static_cast<double>(v);
  }
}
template <typename T>
inline T from_double(double v) {
  if constexpr (std::is_same_v<T, Half>) {
    return Half{float_to_half(static_cast<float>(v))};
  } else {
    return static_cast<T>(v);
  }
}

// Calls f(T{}) for T in float, double, Half; Error(Unsupported) naming `what` otherwise.
template <typename F>
decltype(auto) dispatch_float(DType dtype, const char* what, F&& f) {
  switch (dtype) {
    case DType::F32:
      return f(float{});
    case DType::F64:
      return f(double{});
    case DType::F16:
      return f(Half{});
    default:
      throw Error(ErrorKind::Unsupported,
                  std::string(what) + ": unsupported dtype " + dtype_name(dtype));
  }
}

// Integer zero point values of an optional uint8/int8 (or int32) tensor as int32, expanded to
// `count` entries: a scalar / one-element tensor applies to all, otherwise numel must equal
// count. Returns all zeros when `zero_point` is null. Throws InvalidModel naming `node`.
std::vector<int32_t> expand_zero_points(const Node& node, const Tensor* zero_point, int64_t count,
                                        const char* what);

}  // namespace nibble
