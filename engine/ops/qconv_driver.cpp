#include "engine/ops/qconv_driver.h"

#include <algorithm>
#include <cstdint>

#include "kernels/quantize_f32.h"

namespace nibble {

namespace k = kernels;

size_t QConvWeights::packed_bytes() const {
  size_t bytes = 0;
  for (const auto& g : groups) bytes += g.packed_bytes();
  if (winograd) return winograd->packed_bytes();
  if (winograd_i16) return winograd_i16->packed_bytes();
  return depthwise ? depthwise->packed_bytes() : bytes;
}

KernelInfo QConvWeights::describe(const std::string& family_prefix) const {
  KernelInfo info;
  if (depthwise) {
    info.family = family_prefix + "dw_" + k::qgemm_kind_name(mode, bits);
    info.isa = k::isa_name(depthwise->isa);
    info.tile = depthwise->kernel;
    info.packed_weight_bytes = packed_bytes();
    return info;
  }
  info.family = family_prefix + k::qgemm_kind_name(mode, bits);
  if (winograd) {
    info.isa = k::isa_name(winograd->kernel->isa);
    info.tile = "winograd " + winograd->tile_name();
    info.packed_weight_bytes = packed_bytes();
    return info;
  }
  if (winograd_i16) {
    info.isa = k::isa_name(winograd_i16->isa);
    info.tile = winograd_i16->tile_name();
    info.packed_weight_bytes = packed_bytes();
    return info;
  }
  info.isa = k::isa_name(groups.front().isa);
  info.tile = groups.front().kernel;
  info.packed_weight_bytes = packed_bytes();
  return info;
}

QConvWeights pack_qconv(const ConvLayout& layout, k::QuantMode mode, const std::vector<int8_t>& values,
                        const std::vector<float>& row_scales) {
  QConvWeights w;
  w.mode = mode;
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  w.bits = values.empty() || (*lo >= -8 && *hi <= 7) ? 4 : 8;
  const int64_t rows = layout.out_channels_per_group();
  const int64_t depth = int64_t(values.size()) / layout.out_channels;
  // Weight-only 3x3 stride-1 layers take Winograd: with int16 activations the integer one
  // where it wins (kernels/winograd_i16.h), else the float one (float activations) where FP32
  // does and, for int16 activations, where it beats the int16 kernels (kernels/winograd_a16.h).
  if (mode != k::QuantMode::A8) {
    const k::ConvF32Shape shape = conv_f32_shape(layout);
    if (mode == k::QuantMode::A16I16 && k::winograd_i16_preferred(shape, k::active_isa())) {
      w.winograd_i16 = k::winograd_i16_pack(shape, w.bits, values.data(), row_scales.data());
      return w;
    }
    const k::WinogradF32Kernel* kernel = k::winograd_a16_choose(shape, k::active_isa());
    if (kernel && (mode == k::QuantMode::A16 || k::winograd_a16_beats_int16(shape))) {
      w.mode = k::QuantMode::A16;
      w.winograd = k::winograd_a16_pack(shape, w.bits, values.data(), row_scales.data(), *kernel);
      return w;
    }
  }
  if (layout.depthwise() && k::qdwconv_supports(layout.geometry)) {
    // Weight-only depthwise layers keep float activations in either mode: they hold few products,
    // which the FP32 depthwise kernel runs at full rate.
    if (mode == k::QuantMode::A16I16) w.mode = k::QuantMode::A16;
    w.depthwise = k::pack_qdwconv_weights(w.mode, w.bits, layout.out_channels, depth, values.data(),
                                          row_scales.data(), true);
    return w;
  }
  // Integer activations (int8 and int16) read 1-D / 2-D inputs in place (pack_qconv_weights):
  // the same kernel runs ~1.6x faster on 3x3 layers than through an im2col.
  const k::ref::ConvGeometry& geo = layout.geometry;
  const bool in_place = (mode == k::QuantMode::A8 || mode == k::QuantMode::A16I16) && geo.in[0] == 1 &&
                        geo.kernel[0] == 1 && geo.out[0] == 1;
  for (int64_t g = 0; g < layout.group; ++g) {
    const int8_t* group_values = values.data() + g * rows * depth;
    w.groups.push_back(in_place ? k::pack_qconv_weights(mode, w.bits, rows, geo.channels, geo.kernel_size(),
                                                         group_values, row_scales.data() + g * rows, true)
                                : k::pack_qweights(mode, w.bits, rows, depth, group_values, depth,
                                                   row_scales.data() + g * rows, true));
  }
  return w;
}

std::optional<std::vector<int8_t>> weights_minus_zero_point(const Tensor& w,
                                                            const std::vector<int32_t>& zero_points) {
  const int64_t rows = int64_t(zero_points.size());
  const int64_t depth = w.numel() / std::max<int64_t>(rows, 1);
  std::vector<int8_t> values(size_t(w.numel()));
  for (int64_t m = 0; m < rows; ++m) {
    for (int64_t i = m * depth; i < (m + 1) * depth; ++i) {
      const int32_t v = static_cast<int32_t>(w.get_i64(i)) - zero_points[size_t(m)];
      if (v < -128 || v > 127) return std::nullopt;
      values[size_t(i)] = static_cast<int8_t>(v);
    }
  }
  return values;
}

namespace {

// U8/S8 outputs must equal QuantizeLinear of the F32 output bit for bit (fuse_qdq_chains
// relies on it). The integer-sum epilogue (A8, A16I16) requantizes exactly so: y computed as for
// F32, then a true division by the scale, as the QuantizeLinear kernel (kernels/quantize_f32.h).
// The weight-only float path (A16) requantizes by multiplying with 1 / scale, and with a scalar
// SiLU, which can differ in the last bit and flip a rounding tie; there the kernels compute a
// block of the output in float into per-thread scratch, and the QuantizeLinear kernel quantizes
// it into place while it is still in cache. Blocks stay within this many bytes (a share of L2).
constexpr int64_t kRequantBlockBytes = 256 << 10;

bool requantizes_apart(k::QuantMode mode, k::QType out) {
  return mode == k::QuantMode::A16 && (out == k::QType::U8 || out == k::QType::S8);
}

float* requant_scratch(int64_t floats) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < size_t(floats)) scratch.resize(size_t(floats));
  return scratch.data();
}

// Quantizes `count` floats to out's type, scale and zero point at `dst`.
void quantize_block(const k::QOutput& out, const float* x, void* dst, int64_t count) {
  if (out.type == k::QType::U8) {
    k::quantize_f32_kernel<uint8_t>(k::active_isa())(x, static_cast<uint8_t*>(dst), count, out.scale,
                                                    out.zero_point);
  } else {
    k::quantize_f32_kernel<int8_t>(k::active_isa())(x, static_cast<int8_t*>(dst), count, out.scale,
                                                   out.zero_point);
  }
}

// max |x| over `count` floats, in chunks across the pool.
float abs_max(const float* x, int64_t count, ThreadPool& pool) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (count + kChunk - 1) / kChunk;
  std::vector<float> maxima(size_t(std::max<int64_t>(chunks, 1)), 0.0f);
  pool.parallel_for(chunks, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      maxima[size_t(c)] = k::qgemm_abs_max(x + c * kChunk, std::min(kChunk, count - c * kChunk));
    }
  });
  return *std::max_element(maxima.begin(), maxima.end());
}

// Depthwise layouts: tasks are (image, block of channels).
void run_qdwconv(const ConvLayout& l, const k::PackedQDwWeights& weights, const Tensor& x,
                 k::QSource source, const k::QEpilogue& epilogue, k::QOutput output, void* y,
                 ThreadPool& pool) {
  const int64_t channels = l.out_channels, n = l.geometry.out_size();
  const size_t x_elem = dtype_size(x.dtype());
  const size_t y_elem = output.type == k::QType::F32 || output.type == k::QType::I32 ? 4 : 1;
  const int64_t channels_per_task = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(n, 1));
  const int64_t blocks = (channels + channels_per_task - 1) / channels_per_task;
  source.conv = &l.geometry;
  output.row_stride = n;
  output.col_stride = 1;
  pool.parallel_for(l.batch * blocks, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / blocks, c0 = (t % blocks) * channels_per_task;
      k::QSource src = source;
      src.data = static_cast<const uint8_t*>(x.raw()) +
                 size_t(b * l.in_channels * l.geometry.in_size()) * x_elem;
      k::QOutput out = output;
      out.data = static_cast<uint8_t*>(y) + size_t(b * channels * n) * y_elem;
      const int64_t c1 = std::min(channels, c0 + channels_per_task);
      if (!requantizes_apart(weights.mode, output.type)) {
        k::qdwconv(weights, src, c0, c1, epilogue, out);
        continue;
      }
      // The kernel addresses channel c at c * n: the scratch stands in from channel c0 on.
      float* block = requant_scratch((c1 - c0) * n);
      k::QOutput staged = out;
      staged.type = k::QType::F32;
      staged.data = block - c0 * n;
      k::qdwconv(weights, src, c0, c1, epilogue, staged);
      quantize_block(out, block, static_cast<uint8_t*>(out.data) + c0 * n, (c1 - c0) * n);
    }
  });
}

}  // namespace

void run_qconv(const ConvLayout& l, const QConvWeights& weights, const Tensor& x, k::QSource source,
               const k::QEpilogue& epilogue, k::QOutput output, void* y, ThreadPool& pool) {
  if (weights.winograd) {
    output.data = y;
    output.row_stride = l.geometry.out_size();
    output.col_stride = 1;
    k::winograd_a16_conv(conv_f32_shape(l), *weights.winograd, x.data<float>(), epilogue, output, &pool);
    return;
  }
  if (weights.winograd_i16) {
    output.data = y;
    output.row_stride = l.geometry.out_size();
    output.col_stride = 1;
    // One scale for the whole tensor, as the direct int16 path.
    k::winograd_i16_conv(conv_f32_shape(l), *weights.winograd_i16, x.data<float>(),
                         abs_max(x.data<float>(), x.numel(), pool), epilogue, output, &pool);
    return;
  }
  if (weights.depthwise) {
    run_qdwconv(l, *weights.depthwise, x, source, epilogue, output, y, pool);
    return;
  }
  const int64_t in_channels_per_group = l.in_channels / l.group;
  const int64_t rows = l.out_channels_per_group();
  const int64_t n = l.geometry.out_size();
  const size_t x_elem = dtype_size(x.dtype());
  const size_t y_elem = output.type == k::QType::F32 || output.type == k::QType::I32 ? 4 : 1;
  // Tasks are (image, group, column block), a few per thread (enough to balance when a thread is
  // descheduled) and down to two register tiles wide, so that small layers (20x20 = 400 columns)
  // still spread over many cores. Weight-only kernels expand their weights once per call, so they
  // get fewer tasks: one when single-threaded, two per thread otherwise. Integer kernels only
  // stage the input rows a block reads.
  const bool expands_weights = weights.mode == k::QuantMode::A16;
  const int64_t threads = pool.num_threads();
  const int64_t tasks_per_image_group =
      threads == 1 ? 1 : (expands_weights ? 2 : 4) * threads / std::max<int64_t>(l.batch * l.group, 1);
  const int64_t tasks_wanted = std::max<int64_t>(1, tasks_per_image_group);
  const int64_t min_columns = expands_weights ? 64 : 96;
  const int64_t columns_per_task =
      std::min(n, std::max<int64_t>(min_columns, (n + tasks_wanted - 1) / tasks_wanted));
  const int64_t blocks = (n + columns_per_task - 1) / columns_per_task;
  source.conv = &l.geometry;
  output.row_stride = n;
  output.col_stride = 1;
  // int16 activations: one scale for the whole tensor, from its largest magnitude.
  if (weights.mode == k::QuantMode::A16I16) source.abs_max = abs_max(x.data<float>(), x.numel(), pool);
  pool.parallel_for(l.batch * l.group * blocks, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t block = t % blocks, g = (t / blocks) % l.group, b = t / blocks / l.group;
      k::QSource src = source;
      src.data = static_cast<const uint8_t*>(x.raw()) +
                 size_t((b * l.in_channels + g * in_channels_per_group) * l.geometry.in_size()) * x_elem;
      k::QOutput out = output;
      out.data = static_cast<uint8_t*>(y) + size_t((b * l.out_channels + g * rows) * n) * y_elem;
      k::QEpilogue e = epilogue;
      if (e.bias) e.bias += g * rows;
      const int64_t n0 = block * columns_per_task, n1 = std::min(n, n0 + columns_per_task);
      if (!requantizes_apart(weights.mode, output.type)) {
        k::qgemm(weights.groups[size_t(g)], src, n, n0, n1, e, out);
        continue;
      }
      // Column blocks of whole output rows where they fit, each computed into the scratch (the
      // kernel addresses column c at c: the scratch stands in from column c0 on) and quantized
      // row by row into place.
      const int64_t width = l.geometry.out[2];
      const int64_t fit = std::max<int64_t>(1, kRequantBlockBytes / int64_t(sizeof(float)) / rows);
      const int64_t step = fit >= width ? fit / width * width : fit;
      for (int64_t c0 = n0; c0 < n1; c0 += step) {
        const int64_t c1 = std::min(n1, c0 + step);
        float* block = requant_scratch(rows * (c1 - c0));
        k::QOutput staged = out;
        staged.type = k::QType::F32;
        staged.data = block - c0;
        staged.row_stride = c1 - c0;
        k::qgemm(weights.groups[size_t(g)], src, n, c0, c1, e, staged);
        for (int64_t m = 0; m < rows; ++m)
          quantize_block(out, block + m * (c1 - c0), static_cast<uint8_t*>(out.data) + m * n + c0, c1 - c0);
      }
    }
  });
}

}  // namespace nibble
