#include "engine/ops/qconv_driver.h"

#include <algorithm>

namespace nibble {

namespace k = kernels;

size_t QConvWeights::packed_bytes() const {
  size_t bytes = 0;
  for (const auto& g : groups) bytes += g.packed_bytes();
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
  if (mode == k::QuantMode::A8 && layout.depthwise() && k::qdwconv_supports(layout.geometry)) {
    w.depthwise = k::pack_qdwconv_weights(w.bits, layout.out_channels, depth, values.data(),
                                          row_scales.data(), true);
    return w;
  }
  for (int64_t g = 0; g < layout.group; ++g) {
    w.groups.push_back(k::pack_qweights(mode, w.bits, rows, depth, values.data() + g * rows * depth,
                                        depth, row_scales.data() + g * rows, true));
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
      k::qdwconv(weights, src, c0, std::min(channels, c0 + channels_per_task), epilogue, out);
    }
  });
}

}  // namespace

void run_qconv(const ConvLayout& l, const QConvWeights& weights, const Tensor& x, k::QSource source,
               const k::QEpilogue& epilogue, k::QOutput output, void* y, ThreadPool& pool) {
  if (weights.depthwise) {
    run_qdwconv(l, *weights.depthwise, x, source, epilogue, output, y, pool);
    return;
  }
  const int64_t in_channels_per_group = l.in_channels / l.group;
  const int64_t rows = l.out_channels_per_group();
  const int64_t n = l.geometry.out_size();
  const size_t x_elem = dtype_size(x.dtype());
  const size_t y_elem = output.type == k::QType::F32 || output.type == k::QType::I32 ? 4 : 1;
  // Tasks are (image, group, column block). The kernels expand (A16) or stage (A8) their operands
  // once per call, so a block must be wide enough to amortize that: at least 512 columns, and no
  // more blocks than a few per thread (enough to balance when a thread is descheduled).
  const int64_t tasks_wanted = std::max<int64_t>(1, 4 * pool.num_threads() / std::max<int64_t>(l.batch * l.group, 1));
  const int64_t columns_per_task =
      std::min(n, std::max<int64_t>(512, (n + tasks_wanted - 1) / tasks_wanted));
  const int64_t blocks = (n + columns_per_task - 1) / columns_per_task;
  source.conv = &l.geometry;
  output.row_stride = n;
  output.col_stride = 1;
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
      k::qgemm(weights.groups[size_t(g)], src, n, n0, n1, e, out);
    }
  });
}

}  // namespace nibble
