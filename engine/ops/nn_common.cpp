#include "engine/ops/nn_common.h"

#include <algorithm>
#include <string>
#include <vector>

namespace nibble {
namespace {

namespace ref = kernels::ref;

constexpr int64_t kMR = ref::kGemmMR;
constexpr int64_t kNR = ref::kGemmNR;
constexpr int64_t kKC = ref::kGemmKC;
// Output positions per convolution task: with K up to kKC, the packed B block is 256 KiB.
constexpr int64_t kConvTileN = 256;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Packed-B scratch of the calling thread, grown on demand and reused across calls.
float* thread_scratch(int64_t floats) {
  thread_local std::vector<float> scratch;
  if (static_cast<int64_t>(scratch.size()) < floats) scratch.resize(static_cast<size_t>(floats));
  return scratch.data();
}

// Calls task(image, group, m_begin, m_end, n_begin, n_end, packed_b_scratch) over the GEMM of
// every image and group, split into tiles of output positions and, when that leaves too few
// tasks for the pool, ranges of output channels (multiples of the register tile height).
template <typename Task>
void for_each_conv_task(const ConvLayout& layout, ThreadPool& pool, const Task& task) {
  const int64_t spatial = layout.geometry.out_size();
  const int64_t rows = layout.out_channels_per_group();
  const int64_t n_tiles = ceil_div(spatial, kConvTileN);
  const int64_t outer = layout.batch * layout.group * n_tiles;
  const int64_t wanted = 4 * static_cast<int64_t>(pool.num_threads());
  int64_t m_chunk = rows;
  if (outer < wanted && rows > kMR) {
    m_chunk = std::max(kMR, ceil_div(ceil_div(rows, ceil_div(wanted, outer)), kMR) * kMR);
  }
  const int64_t m_chunks = ceil_div(rows, m_chunk);
  const int64_t scratch_floats =
      ref::gemm_packed_b_size(std::min(kKC, layout.geometry.im2col_rows()), kConvTileN);
  pool.parallel_for(outer * m_chunks, [&](int64_t begin, int64_t end) {
    float* packed_b = thread_scratch(scratch_floats);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t mc = t % m_chunks;
      const int64_t tile = (t / m_chunks) % n_tiles;
      const int64_t group = (t / m_chunks / n_tiles) % layout.group;
      const int64_t image = t / m_chunks / n_tiles / layout.group;
      task(image, group, mc * m_chunk, std::min(rows, (mc + 1) * m_chunk), tile * kConvTileN,
           std::min(spatial, (tile + 1) * kConvTileN), packed_b);
    }
  });
}

template <typename T>
void pack_integer_weights(const ConvLayout& layout, const T* w,
                          const std::vector<int32_t>& zero_points, PackedConvWeights& packed) {
  const int64_t rows = layout.out_channels_per_group();
  const int64_t depth = layout.geometry.im2col_rows();
  if (layout.depthwise()) {
    packed.integer_taps.resize(static_cast<size_t>(layout.out_channels * depth));
    for (int64_t c = 0; c < layout.out_channels; ++c) {
      for (int64_t t = 0; t < depth; ++t) {
        packed.integer_taps[size_t(c * depth + t)] =
            int32_t(w[c * depth + t]) - zero_points[size_t(c)];
      }
    }
    return;
  }
  packed.group_stride = ref::gemm_packed_a_size(rows, depth);
  packed.gemm.resize(static_cast<size_t>(layout.group * packed.group_stride));
  for (int64_t g = 0; g < layout.group; ++g) {
    ref::gemm_pack_a(rows, depth, w + g * rows * depth, depth, 1, zero_points.data() + g * rows,
                     packed.gemm.data() + g * packed.group_stride);
  }
}

template <typename T>
void run_conv_integer_typed(const ConvLayout& layout, const PackedConvWeights& w, const T* x,
                            int32_t x_zero_point, int32_t* y, ThreadPool& pool) {
  const ref::ConvGeometry& geo = layout.geometry;
  const int64_t in_image = layout.in_channels * geo.in_size();
  const int64_t spatial = geo.out_size();
  const int64_t out_image = layout.out_channels * spatial;
  if (layout.depthwise()) {
    const int64_t taps = geo.kernel_size();
    pool.parallel_for(layout.batch * layout.out_channels, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t n = t / layout.out_channels, c = t % layout.out_channels;
        ref::depthwise_conv2d(geo, x + n * in_image + c * geo.in_size(), x_zero_point,
                              w.integer_taps.data() + c * taps, y + n * out_image + c * spatial);
      }
    });
    return;
  }
  const int64_t rows = layout.out_channels_per_group();
  const int64_t depth = geo.im2col_rows();
  for_each_conv_task(
      layout, pool,
      [&](int64_t n, int64_t g, int64_t m0, int64_t m1, int64_t n0, int64_t n1, float* packed_b) {
        const T* image = x + n * in_image + g * geo.channels * geo.in_size();
        const float* a = w.gemm.data() + g * w.group_stride + m0 * depth;
        int32_t* out = y + n * out_image + (g * rows + m0) * spatial + n0;
        for (int64_t k0 = 0; k0 < depth; k0 += kKC) {
          const int64_t kc = std::min(kKC, depth - k0);
          ref::im2col_pack_b(geo, image, x_zero_point, k0, kc, n0, n1 - n0, packed_b);
          ref::qgemm_block(m1 - m0, n1 - n0, kc, a + k0 * kMR, kMR * depth, packed_b, out, spatial,
                           k0 > 0);
        }
      });
}

}  // namespace

WindowParams resolve_window(const InferContext& ctx, const Shape& in,
                            const std::vector<int64_t>& kernel, bool ceil_mode) {
  const Node& node = ctx.node;
  const size_t rank = in.size();
  WindowParams p;
  p.kernel = kernel;
  p.strides = node.attr_ints("strides", std::vector<int64_t>(rank, 1));
  p.dilations = node.attr_ints("dilations", std::vector<int64_t>(rank, 1));
  const std::vector<int64_t> pads = node.attr_ints("pads", std::vector<int64_t>(2 * rank, 0));
  if (p.kernel.size() != rank || p.strides.size() != rank || p.dilations.size() != rank ||
      pads.size() != 2 * rank) {
    ctx.fail("kernel_shape, strides and dilations need " + std::to_string(rank) +
             " values and pads " + std::to_string(2 * rank) + " for a " + std::to_string(rank) +
             "-D input");
  }
  const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  p.pad_begin.resize(rank);
  p.pad_end.resize(rank);
  p.out.resize(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t k = p.kernel[i], s = p.strides[i], d = p.dilations[i];
    if (k < 1 || s < 1 || d < 1 || pads[i] < 0 || pads[rank + i] < 0) {
      ctx.fail("kernel sizes, strides and dilations must be positive and pads non-negative");
    }
    const int64_t window = (k - 1) * d + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      p.out[i] = ceil_div(in[i], s);
      const int64_t total = std::max<int64_t>(0, (p.out[i] - 1) * s + window - in[i]);
      p.pad_begin[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      p.pad_end[i] = total - p.pad_begin[i];
      continue;
    }
    if (auto_pad == "VALID") {
      p.pad_begin[i] = p.pad_end[i] = 0;
    } else if (auto_pad == "NOTSET") {
      p.pad_begin[i] = pads[i];
      p.pad_end[i] = pads[rank + i];
    } else {
      ctx.fail("unknown auto_pad '" + auto_pad + "'");
    }
    const int64_t span = in[i] + p.pad_begin[i] + p.pad_end[i] - window;
    if (span < 0) {
      ctx.fail("window of " + std::to_string(window) + " does not fit the padded input of " +
               std::to_string(in[i] + p.pad_begin[i] + p.pad_end[i]));
    }
    p.out[i] = (ceil_mode ? ceil_div(span, s) : span / s) + 1;
    // In ceil mode the last window must still start inside the input or its leading pad.
    if (ceil_mode && (p.out[i] - 1) * s >= in[i] + p.pad_begin[i]) --p.out[i];
  }
  return p;
}

bool ConvLayout::depthwise() const {
  return geometry.channels == 1 && out_channels_per_group() == 1 && geometry.in[0] == 1 &&
         geometry.kernel[0] == 1 && geometry.out[0] == 1;
}

ConvLayout conv_layout(const InferContext& ctx, const Shape& x, const Shape& w) {
  if (x.size() < 3) ctx.fail("input must have rank >= 3 [N, C, spatial...], got " + shape_str(x));
  if (x.size() > 5) ctx.unsupported("more than 3 spatial dimensions");
  if (w.size() != x.size()) {
    ctx.fail("weight " + shape_str(w) + " must have the rank of the input " + shape_str(x));
  }
  ConvLayout layout;
  layout.batch = x[0];
  layout.in_channels = x[1];
  layout.out_channels = w[0];
  layout.group = ctx.node.attr_int("group", 1);
  const int64_t group = layout.group;
  if (group < 1 || layout.in_channels % group != 0 || w[1] * group != layout.in_channels ||
      layout.out_channels % group != 0) {
    ctx.fail("weight " + shape_str(w) + " does not match input channels " +
             std::to_string(layout.in_channels) + " with group " + std::to_string(group));
  }
  const Shape in(x.begin() + 2, x.end());
  const std::vector<int64_t> kernel(w.begin() + 2, w.end());
  if (ctx.node.has_attr("kernel_shape") && ctx.node.attr_ints("kernel_shape") != kernel) {
    ctx.fail("kernel_shape does not match the weight shape " + shape_str(w));
  }
  const WindowParams p = resolve_window(ctx, in, kernel, false);
  ref::ConvGeometry& geo = layout.geometry;
  geo.channels = w[1];
  const size_t offset = 3 - in.size();  // lower-rank convolutions fill the leading dims
  for (size_t i = 0; i < in.size(); ++i) {
    geo.in[offset + i] = in[i];
    geo.out[offset + i] = p.out[i];
    geo.kernel[offset + i] = p.kernel[i];
    geo.stride[offset + i] = p.strides[i];
    geo.dilation[offset + i] = p.dilations[i];
    geo.pad[offset + i] = p.pad_begin[i];
  }
  layout.output_shape = {layout.batch, layout.out_channels};
  layout.output_shape.insert(layout.output_shape.end(), p.out.begin(), p.out.end());
  return layout;
}

PackedConvWeights pack_conv_weights(const ConvLayout& layout, const Tensor& w) {
  PackedConvWeights packed;
  const float* data = w.data<float>();
  if (layout.depthwise()) {
    packed.taps.assign(data, data + w.numel());
    return packed;
  }
  const int64_t rows = layout.out_channels_per_group();
  const int64_t depth = layout.geometry.im2col_rows();
  packed.group_stride = ref::gemm_packed_a_size(rows, depth);
  packed.gemm.resize(static_cast<size_t>(layout.group * packed.group_stride));
  for (int64_t g = 0; g < layout.group; ++g) {
    ref::gemm_pack_a(rows, depth, data + g * rows * depth, depth, 1,
                     packed.gemm.data() + g * packed.group_stride);
  }
  return packed;
}

PackedConvWeights pack_conv_weights(const ConvLayout& layout, const Tensor& w,
                                    const std::vector<int32_t>& zero_points) {
  PackedConvWeights packed;
  if (w.dtype() == DType::U8) {
    pack_integer_weights(layout, w.data<uint8_t>(), zero_points, packed);
  } else {
    pack_integer_weights(layout, w.data<int8_t>(), zero_points, packed);
  }
  return packed;
}

KernelInfo describe_conv(const ConvLayout& layout, const PackedConvWeights* packed, bool integer) {
  KernelInfo info;
  info.isa = "ref";
  if (layout.depthwise()) {
    info.family = integer ? "depthwise_conv_int8" : "depthwise_conv_f32";
  } else {
    info.family = integer ? "conv_int8_im2col_gemm" : "conv_f32_im2col_gemm";
    info.tile = std::to_string(kMR) + "x" + std::to_string(kNR);
  }
  if (packed) {
    info.packed_weight_bytes = (packed->gemm.size() + packed->taps.size()) * sizeof(float) +
                               packed->integer_taps.size() * sizeof(int32_t);
  } else {
    info.note = "weights are not constant: packed on every run";
  }
  return info;
}

void run_conv(const ConvLayout& layout, const PackedConvWeights& w, const float* x,
              const float* bias, float* y, ThreadPool& pool) {
  const ref::ConvGeometry& geo = layout.geometry;
  const int64_t in_image = layout.in_channels * geo.in_size();
  const int64_t spatial = geo.out_size();
  const int64_t out_image = layout.out_channels * spatial;
  if (layout.depthwise()) {
    const int64_t taps = geo.kernel_size();
    pool.parallel_for(layout.batch * layout.out_channels, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t n = t / layout.out_channels, c = t % layout.out_channels;
        float* out = y + n * out_image + c * spatial;
        ref::depthwise_conv2d(geo, x + n * in_image + c * geo.in_size(), w.taps.data() + c * taps,
                              out);
        if (bias) {
          for (int64_t i = 0; i < spatial; ++i) out[i] += bias[c];
        }
      }
    });
    return;
  }
  const int64_t rows = layout.out_channels_per_group();
  const int64_t depth = geo.im2col_rows();
  for_each_conv_task(
      layout, pool,
      [&](int64_t n, int64_t g, int64_t m0, int64_t m1, int64_t n0, int64_t n1, float* packed_b) {
        const float* image = x + n * in_image + g * geo.channels * geo.in_size();
        const float* a = w.gemm.data() + g * w.group_stride + m0 * depth;
        float* out = y + n * out_image + (g * rows + m0) * spatial + n0;
        for (int64_t k0 = 0; k0 < depth; k0 += kKC) {
          const int64_t kc = std::min(kKC, depth - k0);
          ref::im2col_pack_b(geo, image, k0, kc, n0, n1 - n0, packed_b);
          ref::sgemm_block(m1 - m0, n1 - n0, kc, a + k0 * kMR, kMR * depth, packed_b, out, spatial,
                           k0 > 0);
        }
        if (bias) {
          for (int64_t m = m0; m < m1; ++m) {
            float* row = out + (m - m0) * spatial;
            const float b = bias[g * rows + m];
            for (int64_t i = 0; i < n1 - n0; ++i) row[i] += b;
          }
        }
      });
}

void run_conv_integer(const ConvLayout& layout, const PackedConvWeights& w, const Tensor& x,
                      int32_t x_zero_point, int32_t* y, ThreadPool& pool) {
  if (x.dtype() == DType::U8) {
    run_conv_integer_typed(layout, w, x.data<uint8_t>(), x_zero_point, y, pool);
  } else {
    run_conv_integer_typed(layout, w, x.data<int8_t>(), x_zero_point, y, pool);
  }
}

MatMulLayout matmul_layout(const Node& node, const Shape& a_shape, const Shape& b_shape) {
  auto fail = [&](const std::string& message) {
    throw Error(ErrorKind::InvalidModel, node.describe() + ": " + message);
  };
  if (a_shape.empty() || b_shape.empty()) fail("MatMul operands must not be scalars");
  Shape a = a_shape, b = b_shape;
  if (a.size() == 1) a.insert(a.begin(), 1);
  if (b.size() == 1) b.push_back(1);
  MatMulLayout layout;
  layout.m = a[a.size() - 2];
  layout.k = a[a.size() - 1];
  layout.n = b[b.size() - 1];
  if (b[b.size() - 2] != layout.k) {
    fail("shapes " + shape_str(a_shape) + " and " + shape_str(b_shape) + " do not multiply");
  }
  const Shape a_batch(a.begin(), a.end() - 2), b_batch(b.begin(), b.end() - 2);
  Shape batch;
  try {
    batch = broadcast_shapes(a_batch, b_batch);
  } catch (const Error& e) {
    fail(e.what());
  }
  layout.output_shape = batch;
  if (a_shape.size() > 1) layout.output_shape.push_back(layout.m);
  if (b_shape.size() > 1) layout.output_shape.push_back(layout.n);

  const std::vector<int64_t> a_strides = broadcast_strides(a_batch, batch.size());
  const std::vector<int64_t> b_strides = broadcast_strides(b_batch, batch.size());
  const int64_t count = shape_numel(batch);
  layout.a_offsets.resize(static_cast<size_t>(count));
  layout.b_offsets.resize(static_cast<size_t>(count));
  std::vector<int64_t> index(batch.size(), 0);
  for (int64_t i = 0; i < count; ++i) {
    int64_t a_off = 0, b_off = 0;
    for (size_t d = 0; d < batch.size(); ++d) {
      a_off += index[d] * a_strides[d];
      b_off += index[d] * b_strides[d];
    }
    layout.a_offsets[size_t(i)] = a_off * layout.m * layout.k;
    layout.b_offsets[size_t(i)] = b_off * layout.k * layout.n;
    for (size_t d = batch.size(); d-- > 0;) {
      if (++index[d] < batch[d]) break;
      index[d] = 0;
    }
  }
  return layout;
}

void parallel_matmul(ThreadPool& pool, int64_t batches, int64_t m, int64_t n, int64_t k,
                     const std::function<void(int64_t, int64_t, int64_t, int64_t, int64_t)>& fn) {
  if (batches <= 0 || m <= 0 || n <= 0) return;
  // Below ~1 MFLOP per thread, splitting costs more than it saves.
  const int64_t threads = pool.num_threads();
  const bool worth_splitting = threads > 1 && batches * m * n * std::max<int64_t>(k, 1) > 500000;
  int64_t m_chunk = m, n_chunk = n;
  if (worth_splitting && batches < 4 * threads) {
    const int64_t pieces = ceil_div(4 * threads, batches);
    if (n >= m) {
      n_chunk = std::max(kNR * 8, ceil_div(ceil_div(n, pieces), kNR) * kNR);
    } else {
      m_chunk = std::max(kMR * 4, ceil_div(ceil_div(m, pieces), kMR) * kMR);
    }
  }
  const int64_t m_chunks = ceil_div(m, m_chunk), n_chunks = ceil_div(n, n_chunk);
  const int64_t tasks = batches * m_chunks * n_chunks;
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t nc = t % n_chunks, mc = (t / n_chunks) % m_chunks;
      const int64_t batch = t / n_chunks / m_chunks;
      fn(batch, mc * m_chunk, std::min(m, (mc + 1) * m_chunk), nc * n_chunk,
         std::min(n, (nc + 1) * n_chunk));
    }
  };
  if (worth_splitting) {
    pool.parallel_for(tasks, run);
  } else {
    run(0, tasks);
  }
}

std::vector<int32_t> expand_zero_points(const Node& node, const Tensor* zero_point, int64_t count,
                                        const char* what) {
  std::vector<int32_t> values(static_cast<size_t>(count), 0);
  if (!zero_point) return values;
  const int64_t numel = zero_point->numel();
  if (numel != 1 && numel != count) {
    throw Error(ErrorKind::InvalidModel, node.describe() + ": " + what + " has " +
                                             std::to_string(numel) + " values, expected 1 or " +
                                             std::to_string(count));
  }
  for (int64_t i = 0; i < count; ++i) {
    values[size_t(i)] = static_cast<int32_t>(zero_point->get_i64(numel == 1 ? 0 : i));
  }
  return values;
}

kernels::ConvF32Shape conv_f32_shape(const ConvLayout& layout) {
  kernels::ConvF32Shape shape;
  shape.batch = layout.batch;
  shape.in_channels = layout.in_channels;
  shape.out_channels = layout.out_channels;
  shape.groups = layout.group;
  shape.geometry = layout.geometry;
  return shape;
}

}  // namespace nibble
