// Pooling operators: MaxPool (with optional Indices), AveragePool, LpPool and their Global*
// forms, for 1 to 3 spatial dimensions. Each (image, channel) plane is one task; every output
// position walks only the taps of its window that fall inside the input, precomputed per
// spatial dimension.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "engine/ops/nn_common.h"

namespace nibble {
namespace {

enum class PoolKind { Max, Average, Lp };

// Window geometry padded to 3 spatial dims (leading dims of size 1), as for convolutions.
struct PoolLayout {
  int64_t planes = 0;  // N x C
  int64_t in[3] = {1, 1, 1};
  int64_t out[3] = {1, 1, 1};
  int64_t kernel[3] = {1, 1, 1}, stride[3] = {1, 1, 1}, dilation[3] = {1, 1, 1};
  int64_t pad_begin[3] = {0, 0, 0}, pad_end[3] = {0, 0, 0};
  Shape output_shape;

  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
};

// For one spatial dim and each output index: the taps whose input coordinate is inside the
// input, and how many lie inside input + explicit pads (count_include_pad divisor).
struct DimTaps {
  std::vector<int64_t> begin, end, padded_count, start;  // start = first tap's coordinate
};

DimTaps dim_taps(const PoolLayout& l, int d) {
  DimTaps t;
  const int64_t k = l.kernel[d], s = l.stride[d], dil = l.dilation[d], in = l.in[d];
  for (int64_t o = 0; o < l.out[d]; ++o) {
    const int64_t start = o * s - l.pad_begin[d];
    int64_t b = 0, e = 0, padded = 0;
    for (int64_t tap = 0; tap < k; ++tap) {
      const int64_t x = start + tap * dil;
      if (x < 0) b = tap + 1;
      if (x < in) e = tap + 1;
      if (x >= -l.pad_begin[d] && x < in + l.pad_end[d]) ++padded;
    }
    t.begin.push_back(b);
    t.end.push_back(std::max(b, e));
    t.padded_count.push_back(padded);
    t.start.push_back(start);
  }
  return t;
}

PoolKind pool_kind(const Node& node) {
  if (node.op_type == "MaxPool" || node.op_type == "GlobalMaxPool") return PoolKind::Max;
  if (node.op_type == "AveragePool" || node.op_type == "GlobalAveragePool")
    return PoolKind::Average;
  return PoolKind::Lp;
}

bool is_global(const Node& node) { return node.op_type.rfind("Global", 0) == 0; }

PoolLayout pool_layout(const InferContext& ctx) {
  const Shape& x = ctx.input_shape(0);
  if (x.size() < 3) ctx.fail("input must have rank >= 3 [N, C, spatial...], got " + shape_str(x));
  if (x.size() > 5) ctx.unsupported("more than 3 spatial dimensions");
  const Shape in(x.begin() + 2, x.end());
  const Node& node = ctx.node;
  PoolLayout l;
  l.planes = x[0] * x[1];
  l.output_shape = {x[0], x[1]};
  const size_t offset = 3 - in.size();
  if (is_global(node)) {
    for (size_t i = 0; i < in.size(); ++i) {
      l.in[offset + i] = l.kernel[offset + i] = in[i];
      l.output_shape.push_back(1);
    }
    return l;
  }
  const std::vector<int64_t> kernel = node.attr_ints("kernel_shape");
  // ceil_mode exists from MaxPool/AveragePool 10 and LpPool 18 on; dilations from MaxPool 10,
  // LpPool 18 and AveragePool 19 on.
  const bool ceil_mode = node.attr_int("ceil_mode", 0) != 0;
  const WindowParams p = resolve_window(ctx, in, kernel, ceil_mode);
  for (size_t i = 0; i < in.size(); ++i) {
    l.in[offset + i] = in[i];
    l.out[offset + i] = p.out[i];
    l.kernel[offset + i] = p.kernel[i];
    l.stride[offset + i] = p.strides[i];
    l.dilation[offset + i] = p.dilations[i];
    l.pad_begin[offset + i] = p.pad_begin[i];
    l.pad_end[offset + i] = p.pad_end[i];
    l.output_shape.push_back(p.out[i]);
  }
  return l;
}

void pool_infer(InferContext& ctx) {
  const PoolKind kind = pool_kind(ctx.node);
  if (kind == PoolKind::Max) {
    ctx.require_dtype(0, {DType::F32, DType::F64, DType::F16, DType::I8, DType::U8});
  } else {
    ctx.require_dtype(0, {DType::F32, DType::F64, DType::F16});
  }
  if (kind == PoolKind::Lp && ctx.node.attr_int("p", 2) < 1) ctx.fail("p must be positive");
  const int64_t storage_order = ctx.node.attr_int("storage_order", 0);
  if (storage_order != 0 && storage_order != 1) ctx.fail("storage_order must be 0 or 1");
  const PoolLayout l = pool_layout(ctx);
  ctx.set_output(0, ctx.input_dtype(0), l.output_shape);
  if (ctx.has_output(1)) {
    if (kind != PoolKind::Max || is_global(ctx.node)) ctx.fail("has no second output");
    ctx.set_output(1, DType::I64, l.output_shape);
  }
}

std::shared_ptr<const void> pool_prepare(const InferContext& ctx) {
  return std::make_shared<PoolLayout>(pool_layout(ctx));
}

// Calls visit(offset_in_plane, column_major_offset) for every tap of output (o0, o1, o2) that
// lies inside the input.
template <typename Visit>
inline void for_each_tap(const PoolLayout& l, const DimTaps (&taps)[3], int64_t o0, int64_t o1,
                         int64_t o2, Visit&& visit) {
  const size_t u0 = size_t(o0), u1 = size_t(o1), u2 = size_t(o2);
  for (int64_t k0 = taps[0].begin[u0]; k0 < taps[0].end[u0]; ++k0) {
    const int64_t i0 = taps[0].start[u0] + k0 * l.dilation[0];
    for (int64_t k1 = taps[1].begin[u1]; k1 < taps[1].end[u1]; ++k1) {
      const int64_t i1 = taps[1].start[u1] + k1 * l.dilation[1];
      for (int64_t k2 = taps[2].begin[u2]; k2 < taps[2].end[u2]; ++k2) {
        const int64_t i2 = taps[2].start[u2] + k2 * l.dilation[2];
        visit((i0 * l.in[1] + i1) * l.in[2] + i2, i0 + (i1 + i2 * l.in[1]) * l.in[0]);
      }
    }
  }
}

template <typename T>
T lowest_value() {
  if constexpr (std::is_same_v<T, Half>) {
    return Half{0xFC00};  // -inf
  } else {
    return std::numeric_limits<T>::lowest();
  }
}

template <typename T>
void pool_typed(const ComputeContext& ctx, const PoolLayout& l, PoolKind kind) {
  // Max compares in the element type (float for float16); sums accumulate in double.
  using Value = std::conditional_t<std::is_same_v<T, Half>, float, T>;
  auto load = [](T v) -> Value {
    if constexpr (std::is_same_v<T, Half>) {
      return half_to_float(v.bits);
    } else {
      return v;
    }
  };
  const T* x = ctx.input(0).data<T>();
  T* y = ctx.output(0).data<T>();
  int64_t* indices =
      ctx.num_outputs() > 1 && !ctx.output(1).empty() ? ctx.output(1).data<int64_t>() : nullptr;
  const bool count_include_pad = ctx.node.attr_int("count_include_pad", 0) != 0;
  const bool column_major = ctx.node.attr_int("storage_order", 0) != 0;
  const double p = static_cast<double>(ctx.node.attr_int("p", 2));
  const DimTaps taps[3] = {dim_taps(l, 0), dim_taps(l, 1), dim_taps(l, 2)};
  const int64_t plane_in = l.in_size(), plane_out = l.out_size();

  ctx.pool().parallel_for(l.planes, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {
      const T* src = x + plane * plane_in;
      int64_t o = plane * plane_out;
      for (int64_t o0 = 0; o0 < l.out[0]; ++o0) {
        for (int64_t o1 = 0; o1 < l.out[1]; ++o1) {
          for (int64_t o2 = 0; o2 < l.out[2]; ++o2, ++o) {
            if (kind == PoolKind::Max) {
              Value best_value{};
              int64_t best = -1;
              for_each_tap(l, taps, o0, o1, o2, [&](int64_t offset, int64_t cm_offset) {
                const Value v = load(src[offset]);
                if (best < 0 || v > best_value) {
                  best_value = v;
                  best = column_major ? cm_offset : offset;
                }
              });
              // A window entirely in the padding (pads >= kernel) sees no input.
              y[o] = best < 0 ? lowest_value<T>() : from_double<T>(best_value);
              if (indices) indices[o] = best < 0 ? -1 : plane * plane_in + best;
              continue;
            }
            double sum = 0;
            int64_t valid = 0;
            for_each_tap(l, taps, o0, o1, o2, [&](int64_t offset, int64_t) {
              const double v = to_double(src[offset]);
              sum += kind == PoolKind::Average ? v : std::pow(std::abs(v), p);
              ++valid;
            });
            if (kind == PoolKind::Lp) {
              y[o] = from_double<T>(std::pow(sum, 1.0 / p));
              continue;
            }
            const int64_t count = count_include_pad ? taps[0].padded_count[size_t(o0)] *
                                                          taps[1].padded_count[size_t(o1)] *
                                                          taps[2].padded_count[size_t(o2)]
                                                    : valid;
            y[o] = from_double<T>(count == 0 ? 0.0 : sum / double(count));
          }
        }
      }
    }
  });
}

// The float32 2-D MaxPool without Indices and dilation (YOLO's SPPF: 5x5, stride 1, pad 2),
// computed separably: a max along each input row, then down the columns of those row maxima.
// K + K compares per output instead of K * K, in loops over contiguous rows that vectorize.
// Needs at least one input tap in every window along each dimension (pads < kernel), so no
// window reads only padding.
bool separable_max_applies(const ComputeContext& ctx, const PoolLayout& l) {
  if (pool_kind(ctx.node) != PoolKind::Max || ctx.input(0).dtype() != DType::F32) return false;
  if (ctx.num_outputs() > 1 && !ctx.output(1).empty()) return false;
  if (l.in[0] != 1 || l.kernel[0] != 1 || l.dilation[1] != 1 || l.dilation[2] != 1) return false;
  for (int d = 1; d < 3; ++d) {
    const DimTaps taps = dim_taps(l, d);
    for (size_t o = 0; o < taps.begin.size(); ++o)
      if (taps.begin[o] >= taps.end[o]) return false;
  }
  return true;
}

// Output positions o (of `out`) whose window tap k lands inside [0, in): [lo, hi).
std::pair<int64_t, int64_t> tap_range(int64_t k, int64_t in, int64_t out, int64_t stride,
                                      int64_t pad_begin) {
  const int64_t first = pad_begin - k;       // o * stride >= first
  const int64_t last = in - 1 + pad_begin - k;  // o * stride <= last
  const int64_t lo = first <= 0 ? 0 : (first + stride - 1) / stride;
  const int64_t hi = last < 0 ? 0 : std::min(out, last / stride + 1);
  return {lo, std::max(lo, hi)};
}

void separable_max_pool(const ComputeContext& ctx, const PoolLayout& l) {
  const float* x = ctx.input(0).data<float>();
  float* y = ctx.output(0).data<float>();
  const int64_t in_h = l.in[1], in_w = l.in[2], out_h = l.out[1], out_w = l.out[2];
  const int64_t kernel_h = l.kernel[1], kernel_w = l.kernel[2];
  const int64_t stride_h = l.stride[1], stride_w = l.stride[2];
  const int64_t pad_h = l.pad_begin[1], pad_w = l.pad_begin[2];
  constexpr float kNone = -std::numeric_limits<float>::infinity();
  auto max_into = [](float* acc, const float* v, int64_t n, int64_t stride) {
    if (stride == 1) {  // the common case, kept separate so it vectorizes
      for (int64_t i = 0; i < n; ++i) acc[i] = v[i] > acc[i] ? v[i] : acc[i];
    } else {
      for (int64_t i = 0; i < n; ++i) acc[i] = v[i * stride] > acc[i] ? v[i * stride] : acc[i];
    }
  };
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, in_h * in_w));
  ctx.pool().parallel_for(l.planes, [&](int64_t begin, int64_t end) {
    std::vector<float> row_max(size_t(in_h * out_w));
    for (int64_t plane = begin; plane < end; ++plane) {
      const float* src = x + plane * in_h * in_w;
      std::fill(row_max.begin(), row_max.end(), kNone);
      for (int64_t k = 0; k < kernel_w; ++k) {
        const auto [lo, hi] = tap_range(k, in_w, out_w, stride_w, pad_w);
        for (int64_t r = 0; r < in_h; ++r)
          max_into(row_max.data() + r * out_w + lo, src + r * in_w + lo * stride_w - pad_w + k,
                   hi - lo, stride_w);
      }
      float* dst = y + plane * out_h * out_w;
      std::fill(dst, dst + out_h * out_w, kNone);
      for (int64_t k = 0; k < kernel_h; ++k) {
        const auto [lo, hi] = tap_range(k, in_h, out_h, stride_h, pad_h);
        for (int64_t o = lo; o < hi; ++o)
          max_into(dst + o * out_w, row_max.data() + (o * stride_h - pad_h + k) * out_w, out_w, 1);
      }
    }
  }, grain);
}

void pool_compute(const ComputeContext& ctx) {
  const auto& l = ctx.state<PoolLayout>();
  const PoolKind kind = pool_kind(ctx.node);
  if (separable_max_applies(ctx, l)) return separable_max_pool(ctx, l);
  switch (ctx.input(0).dtype()) {
    case DType::I8:
      return pool_typed<int8_t>(ctx, l, kind);
    case DType::U8:
      return pool_typed<uint8_t>(ctx, l, kind);
    default:
      dispatch_float(ctx.input(0).dtype(), "pool",
                     [&](auto tag) { pool_typed<decltype(tag)>(ctx, l, kind); });
  }
}

}  // namespace

void register_pool_ops(OpRegistry& r) {
  for (const char* op :
       {"MaxPool", "AveragePool", "LpPool", "GlobalMaxPool", "GlobalAveragePool", "GlobalLpPool"}) {
    r.add("", op, make_op(pool_infer, pool_compute, pool_prepare));
  }
}

}  // namespace nibble
