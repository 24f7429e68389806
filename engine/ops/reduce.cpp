// Reductions of the default ONNX domain: Reduce* (sums, mean, extrema, norms, log-sum-exp),
// ArgMax/ArgMin, and the normalizations along one axis Softmax, LogSoftmax and Hardmax.
//
// Reduce* views the input as runs of kept and reduced dimensions. Each output element folds
// the same list of input offsets (relative to its own base); when the innermost run is kept,
// a block of neighbouring outputs is folded together so the inner loop stays contiguous.
// Float sums accumulate in double, integer ones in 64 bits with wrap-around.
//
// Softmax and LogSoftmax work on contiguous rows when the axis is innermost, otherwise on panels
// of adjacent lines gathered row by row, so every loop runs over contiguous data and vectorizes
// (float32 exp through map_f32). Their float32 arithmetic follows ONNX Runtime's on this CPU
// (engine/ops/mlas_softmax.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/ops/elementwise_util.h"
#include "engine/ops/mlas_softmax.h"

namespace nibble {
namespace {

using namespace ew;

// ---- Reduce* ----------------------------------------------------------------------------------

// Accumulator type: double for floats, 64-bit integers of the same signedness otherwise.
template <class T>
using acc_t = std::conditional_t<is_float_v<T>, double,
                                 std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;

template <class A> A add(A a, A b) {
  if constexpr (std::is_integral_v<A>) return static_cast<A>(uint64_t(a) + uint64_t(b));
  else return a + b;
}
template <class A> A mul(A a, A b) {
  if constexpr (std::is_integral_v<A>) return static_cast<A>(uint64_t(a) * uint64_t(b));
  else return a * b;
}
template <class A> A magnitude(A a) {
  if constexpr (std::is_floating_point_v<A>) return std::abs(a);
  else if constexpr (std::is_signed_v<A>) return a < 0 ? static_cast<A>(0 - uint64_t(a)) : a;
  else return a;
}

// Converts a finished reduction value to the output element type.
template <class T, class V>
T to_element(V v) {
  if constexpr (std::is_same_v<T, Half>) return Half{float_to_half(static_cast<float>(v))};
  else if constexpr (std::is_same_v<T, bool>) return v != V(0);
  else if constexpr (std::is_integral_v<T> && std::is_floating_point_v<V>) {
    return float_to_int<T>(v);
  } else {
    return static_cast<T>(v);
  }
}

// A reduction: init(), step(acc, x, out_index) and finish(acc, count, out_index). out_index is
// only used by log-sum-exp, which subtracts each output's maximum before exponentiating.
template <class A>
struct SumReducer {
  A init() const { return 0; }
  A step(A acc, A x, int64_t) const { return add(acc, x); }
  A finish(A acc, int64_t, int64_t) const { return acc; }
};
template <class A>
struct SumSquareReducer : SumReducer<A> {
  A step(A acc, A x, int64_t) const { return add(acc, mul(x, x)); }
};
template <class A>
struct L1Reducer : SumReducer<A> {
  A step(A acc, A x, int64_t) const { return add(acc, magnitude(x)); }
};
template <class A>
struct L2Reducer : SumSquareReducer<A> {
  double finish(A acc, int64_t, int64_t) const { return std::sqrt(static_cast<double>(acc)); }
};
template <class A>
struct LogSumReducer : SumReducer<A> {
  double finish(A acc, int64_t, int64_t) const { return std::log(static_cast<double>(acc)); }
};
template <class A>
struct MeanReducer : SumReducer<A> {
  A finish(A acc, int64_t count, int64_t) const {
    if constexpr (std::is_integral_v<A>) return count == 0 ? 0 : acc / static_cast<A>(count);
    else return acc / static_cast<A>(count);  // NaN for an empty set, like numpy
  }
};
template <class A>
struct ProdReducer {
  A init() const { return 1; }
  A step(A acc, A x, int64_t) const { return mul(acc, x); }
  A finish(A acc, int64_t, int64_t) const { return acc; }
};
// Extrema start from the element type's own bounds (-inf/+inf for floats), which is also the
// result for an empty set. NaN propagates.
template <class A>
struct MaxReducer {
  A lowest;
  A init() const { return lowest; }
  A step(A acc, A x, int64_t) const { return (x > acc || x != x) ? x : acc; }
  A finish(A acc, int64_t, int64_t) const { return acc; }
};
template <class A>
struct MinReducer {
  A highest;
  A init() const { return highest; }
  A step(A acc, A x, int64_t) const { return (x < acc || x != x) ? x : acc; }
  A finish(A acc, int64_t, int64_t) const { return acc; }
};
// log(sum(exp(x - m))) + m with m the maximum of each output's set, computed beforehand.
struct LogSumExpReducer {
  const double* max;
  double init() const { return 0; }
  double step(double acc, double x, int64_t o) const { return acc + std::exp(x - max[o]); }
  double finish(double acc, int64_t, int64_t o) const {
    return std::isinf(max[o]) ? max[o] : std::log(acc) + max[o];
  }
};

template <class T>
constexpr compute_t<T> lowest_value() {
  if constexpr (is_float_v<T>) return -std::numeric_limits<compute_t<T>>::infinity();
  else return std::numeric_limits<T>::lowest();
}
template <class T>
constexpr compute_t<T> highest_value() {
  if constexpr (is_float_v<T>) return std::numeric_limits<compute_t<T>>::infinity();
  else return std::numeric_limits<T>::max();
}

// Which dimensions a Reduce* node reduces. Axes are the 'axes' attribute up to the opset where
// they became the optional second input (13 for ReduceSum, 18 for the others).
struct ReduceAxes {
  std::vector<bool> reduced;
  bool keepdims = true;
};

int64_t axes_input_since(const Node& node) { return node.op_type == "ReduceSum" ? 13 : 18; }

ReduceAxes reduce_axes(const Node& node, int64_t opset, int64_t rank, const Tensor* axes_input) {
  std::vector<int64_t> axes;
  bool noop_when_empty = false;
  if (opset >= axes_input_since(node)) {
    if (axes_input) axes = axes_input->to_i64_vector();
    noop_when_empty = node.attr_int("noop_with_empty_axes", 0) != 0;
  } else {
    axes = node.attr_ints("axes", {});
  }
  ReduceAxes result;
  result.keepdims = node.attr_int("keepdims", 1) != 0;
  // No axes: reduce everything, unless noop_with_empty_axes asks to reduce nothing.
  result.reduced.assign(size_t(rank), axes.empty() && !noop_when_empty);
  for (int64_t axis : axes) {
    const int64_t d = normalize_axis(axis, rank, node);
    if (d >= rank) {
      throw Error(ErrorKind::InvalidModel, node.describe() + ": axis " + std::to_string(axis) +
                                               " is out of range for a scalar");
    }
    if (result.reduced[size_t(d)]) {
      throw Error(ErrorKind::InvalidModel,
                  node.describe() + ": axis " + std::to_string(axis) + " is repeated");
    }
    result.reduced[size_t(d)] = true;
  }
  return result;
}

// The input seen as [outer kept dims..., inner]: output element (o, i) folds the input at
// base(o) + i + offset + j for every offset in `offsets` and j < `chunk`. Either the innermost
// input run is kept (inner > 1, chunk == 1) or reduced (inner == 1, chunk is its length).
struct ReduceLayout {
  std::vector<int64_t> outer_dims, outer_strides;
  int64_t inner = 1;
  int64_t chunk = 1;
  std::vector<int64_t> offsets;
  int64_t count() const { return chunk * static_cast<int64_t>(offsets.size()); }
  int64_t base(int64_t o) const {
    int64_t b = 0;
    for (size_t d = outer_dims.size(); d-- > 0;) {
      b += (o % outer_dims[d]) * outer_strides[d];
      o /= outer_dims[d];
    }
    return b;
  }
};

ReduceLayout plan_reduce(const Shape& shape, const std::vector<bool>& reduced) {
  // Merge adjacent dims of the same kind; size-1 dims change nothing.
  struct Run { int64_t size; bool reduced; };
  std::vector<Run> runs;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!runs.empty() && runs.back().reduced == reduced[d]) runs.back().size *= shape[d];
    else runs.push_back({shape[d], reduced[d]});
  }
  std::vector<int64_t> strides(runs.size());
  for (size_t r = runs.size(), s = 1; r-- > 0;) {
    strides[r] = int64_t(s);
    s *= size_t(runs[r].size);
  }
  ReduceLayout layout;
  size_t end = runs.size();
  if (end > 0) {
    (runs[end - 1].reduced ? layout.chunk : layout.inner) = runs[end - 1].size;
    --end;
  }
  std::vector<int64_t> reduced_dims, reduced_strides;
  for (size_t r = 0; r < end; ++r) {
    (runs[r].reduced ? reduced_dims : layout.outer_dims).push_back(runs[r].size);
    (runs[r].reduced ? reduced_strides : layout.outer_strides).push_back(strides[r]);
  }
  // Every combination of the remaining reduced runs, in input order.
  layout.offsets = {0};
  for (size_t k = 0; k < reduced_dims.size(); ++k) {
    std::vector<int64_t> next;
    next.reserve(layout.offsets.size() * size_t(reduced_dims[k]));
    for (int64_t base : layout.offsets) {
      for (int64_t i = 0; i < reduced_dims[k]; ++i) next.push_back(base + i * reduced_strides[k]);
    }
    layout.offsets = std::move(next);
  }
  return layout;
}

// Folds `in` per `layout` with `red`, calling write(out_index, finished value).
template <class T, class A, class Reducer, class Write>
void reduce_with(const ComputeContext& ctx, const Tensor& in, const ReduceLayout& layout,
                 int64_t out_numel, const Reducer& red, const Write& write) {
  const T* x = in.data<T>();
  const int64_t count = layout.count();
  if (in.numel() == 0) {  // empty sets: every output is the reduction of nothing
    for (int64_t o = 0; o < out_numel; ++o) write(o, red.finish(red.init(), 0, o));
    return;
  }
  const int64_t inner = layout.inner, chunk = layout.chunk;
  const int64_t outer = out_numel / inner;
  if (inner == 1) {
    parallel(ctx, outer, std::max<int64_t>(1, kCheapGrain / std::max<int64_t>(count, 1)),
             [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) {
        const T* row = x + layout.base(o);
        A acc = red.init();
        for (int64_t off : layout.offsets) {
          for (int64_t j = 0; j < chunk; ++j) acc = red.step(acc, A(load(row[off + j])), o);
        }
        write(o, red.finish(acc, count, o));
      }
    });
    return;
  }
  // Neighbouring outputs along the kept innermost run are folded together, kBlock at a time.
  constexpr int64_t kBlock = 256;
  const int64_t blocks_per_row = (inner + kBlock - 1) / kBlock;
  parallel(ctx, outer * blocks_per_row, 1, [&](int64_t begin, int64_t end) {
    A acc[kBlock];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t o = task / blocks_per_row;
      const int64_t i0 = (task % blocks_per_row) * kBlock;
      const int64_t n = std::min(kBlock, inner - i0);
      const int64_t first_out = o * inner + i0;
      const T* base = x + layout.base(o) + i0;
      for (int64_t i = 0; i < n; ++i) acc[i] = red.init();
      for (int64_t off : layout.offsets) {
        const T* src = base + off;
        for (int64_t i = 0; i < n; ++i) acc[i] = red.step(acc[i], A(load(src[i])), first_out + i);
      }
      for (int64_t i = 0; i < n; ++i) {
        write(first_out + i, red.finish(acc[i], count, first_out + i));
      }
    }
  });
}

enum class ReduceKind { Sum, Mean, Max, Min, Prod, L1, L2, SumSquare, LogSum, LogSumExp };

OpDef reduce_op(ReduceKind kind) {
  OpDef def;
  def.infer = [kind](InferContext& ctx) {
    expect_inputs(ctx, 1, ctx.opset >= axes_input_since(ctx.node) ? 2 : 1);
    const bool extremum = kind == ReduceKind::Max || kind == ReduceKind::Min;
    check_type(ctx, 0, extremum ? kAll : kNumeric);
    const Tensor* axes = nullptr;
    if (ctx.has_input(1)) {
      if (ctx.input_dtype(1) != DType::I64 || ctx.input_rank(1) != 1) {
        ctx.fail("axes must be a 1-D int64 tensor");
      }
      axes = &ctx.require_constant(1, "axes");
    }
    const Shape& in = ctx.input_shape(0);
    const ReduceAxes spec = reduce_axes(ctx.node, ctx.opset, ctx.input_rank(0), axes);
    Shape out;
    for (size_t d = 0; d < in.size(); ++d) {
      if (!spec.reduced[d]) out.push_back(in[d]);
      else if (spec.keepdims) out.push_back(1);
    }
    ctx.set_output(0, ctx.input_dtype(0), out);
  };
  def.compute = [kind](const ComputeContext& ctx) {
    const Tensor& in = ctx.input(0);
    Tensor& out = ctx.output(0);
    const ReduceAxes spec = reduce_axes(ctx.node, ctx.opset, in.rank(),
                                        ctx.has_input(1) ? &ctx.input(1) : nullptr);
    const ReduceLayout layout = plan_reduce(in.shape(), spec.reduced);
    dispatch_types<kAll>(ctx, in.dtype(), [&](auto tag) {
      using T = decltype(tag);
      using A = acc_t<T>;
      T* y = out.data<T>();
      auto run = [&](const auto& red) {
        reduce_with<T, A>(ctx, in, layout, out.numel(), red,
                          [y](int64_t o, auto v) { y[o] = to_element<T>(v); });
      };
      switch (kind) {
        case ReduceKind::Sum: run(SumReducer<A>{}); break;
        case ReduceKind::Mean: run(MeanReducer<A>{}); break;
        case ReduceKind::Max: run(MaxReducer<A>{A(lowest_value<T>())}); break;
        case ReduceKind::Min: run(MinReducer<A>{A(highest_value<T>())}); break;
        case ReduceKind::Prod: run(ProdReducer<A>{}); break;
        case ReduceKind::L1: run(L1Reducer<A>{}); break;
        case ReduceKind::L2: run(L2Reducer<A>{}); break;
        case ReduceKind::SumSquare: run(SumSquareReducer<A>{}); break;
        case ReduceKind::LogSum: run(LogSumReducer<A>{}); break;
        case ReduceKind::LogSumExp: {
          std::vector<double> max(size_t(out.numel()));
          reduce_with<T, double>(ctx, in, layout, out.numel(),
                                 MaxReducer<double>{-std::numeric_limits<double>::infinity()},
                                 [&max](int64_t o, double v) { max[size_t(o)] = v; });
          reduce_with<T, double>(ctx, in, layout, out.numel(), LogSumExpReducer{max.data()},
                                 [y](int64_t o, double v) { y[o] = to_element<T>(v); });
          break;
        }
      }
    });
  };
  return def;
}

// ---- along one axis ---------------------------------------------------------------------------

// The input as [outer, axis, inner] around `axis`.
struct AxisView {
  int64_t outer = 1, len = 1, inner = 1;
};

AxisView axis_view(const Shape& shape, int64_t axis) {
  AxisView v;
  for (int64_t d = 0; d < int64_t(shape.size()); ++d) {
    (d < axis ? v.outer : d == axis ? v.len : v.inner) *= shape[size_t(d)];
  }
  return v;
}

OpDef arg_extremum_op(bool is_max) {
  OpDef def;
  def.infer = [](InferContext& ctx) {
    expect_inputs(ctx, 1, 1);
    check_type(ctx, 0, kNumeric);
    const Shape& in = ctx.input_shape(0);
    if (in.empty()) ctx.fail("input must have rank >= 1");
    const int64_t axis = normalize_axis(ctx.node.attr_int("axis", 0), ctx.input_rank(0), ctx.node);
    if (in[size_t(axis)] == 0) ctx.fail("cannot take the index of an extremum of an empty axis");
    Shape out = in;
    if (ctx.node.attr_int("keepdims", 1) != 0) out[size_t(axis)] = 1;
    else out.erase(out.begin() + axis);
    ctx.set_output(0, DType::I64, out);
  };
  def.compute = [is_max](const ComputeContext& ctx) {
    const Tensor& in = ctx.input(0);
    const int64_t axis = normalize_axis(ctx.node.attr_int("axis", 0), in.rank(), ctx.node);
    const bool last = ctx.node.attr_int("select_last_index", 0) != 0;
    const AxisView v = axis_view(in.shape(), axis);
    int64_t* y = ctx.output(0).data<int64_t>();
    dispatch_types<kNumeric>(ctx, in.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* x = in.data<T>();
      // Ties go to the first index, or the last with select_last_index.
      auto better = [is_max, last](compute_t<T> a, compute_t<T> best) {
        if (last) return is_max ? a >= best : a <= best;
        return is_max ? a > best : a < best;
      };
      parallel(ctx, v.outer * v.inner, std::max<int64_t>(1, kCheapGrain / v.len),
               [&](int64_t begin, int64_t end) {
        for (int64_t task = begin; task < end; ++task) {
          const T* p = x + (task / v.inner) * v.len * v.inner + task % v.inner;
          compute_t<T> best = load(p[0]);
          int64_t index = 0;
          for (int64_t r = 1; r < v.len; ++r) {
            const compute_t<T> a = load(p[r * v.inner]);
            if (better(a, best)) {
              best = a;
              index = r;
            }
          }
          y[task] = index;
        }
      });
    });
  };
  return def;
}

enum class NormKind { Softmax, LogSoftmax, Hardmax };

// Softmax and LogSoftmax compute exp and each line's sum as ONNX Runtime's CPU kernel (MLAS)
// does on this CPU (engine/ops/mlas_softmax.h), so that models which quantize a Softmax output
// (YOLO11's attention) match it bit for bit. K is that kernel; float16 goes through float,
// double takes std::exp.
using mlas::SumExpKernel;

template <SumExpKernel K, class C>
C softmax_exp(C x) {
  if constexpr (std::is_same_v<C, float>) return mlas::exp_nonpositive<K>(x);
  else return std::exp(x);
}

// Maximum of n values kept in 8 independent lanes, so the loop vectorizes.
template <class C>
C max_of(const C* v, int64_t n) {
  constexpr int64_t kLanes = 8;
  C lane[kLanes];
  for (int64_t k = 0; k < kLanes; ++k) lane[k] = v[0];
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t k = 0; k < kLanes; ++k) lane[k] = v[i + k] > lane[k] ? v[i + k] : lane[k];
  }
  for (; i < n; ++i) lane[0] = v[i] > lane[0] ? v[i] : lane[0];
  C max = lane[0];
  for (int64_t k = 1; k < kLanes; ++k) max = lane[k] > max ? lane[k] : max;
  return max;
}

// out[i] = exp(in[i] - max) for n values (in may be out).
template <SumExpKernel K, class C>
void shifted_exps(const C* in, C* out, int64_t n, C max) {
  if constexpr (std::is_same_v<C, float>) {
    map_f32(in, out, n, [max](float v) { return softmax_exp<K>(v - max); });
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = softmax_exp<K>(in[i] - max);
  }
}

// Softmax or LogSoftmax of one contiguous row of n values; `in` may be `out`, `scratch` holds
// n values.
template <SumExpKernel K, class C>
void normalize_row(NormKind kind, const C* in, C* out, C* scratch, int64_t n) {
  const C max = max_of(in, n);
  C* exps = kind == NormKind::Softmax ? out : scratch;
  shifted_exps<K>(in, exps, n, max);
  const C sum = mlas::lane_sum<K>(exps, n);
  if (kind == NormKind::Softmax) {
    const C scale = C(1) / sum;
    for (int64_t i = 0; i < n; ++i) out[i] *= scale;
  } else {
    const C log_sum = std::log(sum);
    for (int64_t i = 0; i < n; ++i) out[i] = (in[i] - max) - log_sum;
  }
}

// Lines per panel when the axis is not innermost.
constexpr int64_t kPanel = 64;

// The same for `width` <= kPanel adjacent lines held as panel[r * width + b], r < n, in place;
// the loops run across the lines so they vectorize, and line b's sum uses the lanes of a row.
// `exps` holds n * width values.
template <SumExpKernel K, class C>
void normalize_columns(NormKind kind, C* panel, C* exps, int64_t n, int64_t width) {
  constexpr int64_t kLanes = mlas::kSumLanes<K>;
  C max[kPanel], lanes[kLanes][kPanel] = {}, factor[kPanel];
  for (int64_t b = 0; b < width; ++b) max[b] = panel[b];
  for (int64_t r = 1; r < n; ++r) {
    const C* line = panel + r * width;
    for (int64_t b = 0; b < width; ++b) max[b] = line[b] > max[b] ? line[b] : max[b];
  }
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t b = 0; b < width; ++b) panel[r * width + b] -= max[b];
  }
  if (kind == NormKind::Softmax) exps = panel;
  if constexpr (std::is_same_v<C, float>) {
    map_f32(panel, exps, n * width, [](float v) { return softmax_exp<K>(v); });
  } else {
    for (int64_t i = 0; i < n * width; ++i) exps[i] = softmax_exp<K>(panel[i]);
  }
  for (int64_t r = 0; r < n; ++r) {
    C* lane = lanes[r % kLanes];
    for (int64_t b = 0; b < width; ++b) lane[b] += exps[r * width + b];
  }
  for (int64_t b = 0; b < width; ++b) {
    C line_lanes[kLanes];
    for (int64_t l = 0; l < kLanes; ++l) line_lanes[l] = lanes[l][b];
    const C sum = mlas::fold_lanes<K>(line_lanes);
    factor[b] = kind == NormKind::Softmax ? C(1) / sum : std::log(sum);
  }
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t b = 0; b < width; ++b) {
      if (kind == NormKind::Softmax) {
        panel[r * width + b] *= factor[b];
      } else {
        panel[r * width + b] -= factor[b];
      }
    }
  }
}

// Opset 13 made the axis a single dimension (default -1); before, the input was coerced to 2-D
// [prod(dims[:axis]), prod(dims[axis:])] with default axis 1.
AxisView norm_view(const Node& node, int64_t opset, const Shape& shape) {
  const int64_t rank = int64_t(shape.size());
  const bool coerce_2d = opset < 13;
  const int64_t axis = normalize_axis(node.attr_int("axis", coerce_2d ? 1 : -1), rank, node);
  AxisView v = axis_view(shape, axis);
  if (coerce_2d) {
    v.len *= v.inner;
    v.inner = 1;
  }
  return v;
}

// Softmax / LogSoftmax: contiguous rows (inner == 1) one at a time; otherwise panels of up to
// kPanel adjacent lines, gathered so each row of the panel is contiguous.
template <SumExpKernel K, class T>
void softmax(const ComputeContext& ctx, NormKind kind, const AxisView& v, const T* x, T* y) {
  using C = compute_t<T>;
  const int64_t n = v.len;
  if (v.inner == 1) {
    parallel(ctx, v.outer, std::max<int64_t>(1, kCostlyGrain / n), [&](int64_t begin, int64_t end) {
      std::vector<C> row, scratch(static_cast<size_t>(n));
      if constexpr (!std::is_same_v<T, C>) row.resize(size_t(n));
      for (int64_t o = begin; o < end; ++o) {
        if constexpr (std::is_same_v<T, C>) {
          normalize_row<K>(kind, x + o * n, y + o * n, scratch.data(), n);
        } else {  // float16: through float
          for (int64_t i = 0; i < n; ++i) row[size_t(i)] = load(x[o * n + i]);
          normalize_row<K>(kind, row.data(), row.data(), scratch.data(), n);
          for (int64_t i = 0; i < n; ++i) y[o * n + i] = store<T>(row[size_t(i)]);
        }
      }
    });
    return;
  }
  const int64_t panels_per_outer = (v.inner + kPanel - 1) / kPanel;
  parallel(ctx, v.outer * panels_per_outer, std::max<int64_t>(1, kCostlyGrain / (n * kPanel)),
           [&](int64_t begin, int64_t end) {
    std::vector<C> panel(size_t(n * kPanel)), exps(size_t(n * kPanel));
    for (int64_t task = begin; task < end; ++task) {
      const int64_t o = task / panels_per_outer;
      const int64_t i0 = (task % panels_per_outer) * kPanel;
      const int64_t width = std::min(kPanel, v.inner - i0);
      const int64_t start = o * n * v.inner + i0;
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t b = 0; b < width; ++b) {
          panel[size_t(r * width + b)] = load(x[start + r * v.inner + b]);
        }
      }
      normalize_columns<K>(kind, panel.data(), exps.data(), n, width);
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t b = 0; b < width; ++b) {
          y[start + r * v.inner + b] = store<T>(panel[size_t(r * width + b)]);
        }
      }
    }
  });
}

// Hardmax: 1 at the first maximum of each line, 0 elsewhere.
template <class T>
void hardmax(const ComputeContext& ctx, const AxisView& v, const T* x, T* y) {
  parallel(ctx, v.outer * v.inner, std::max<int64_t>(1, kCheapGrain / v.len),
           [&](int64_t begin, int64_t end) {
    for (int64_t line = begin; line < end; ++line) {
      const int64_t start = (line / v.inner) * v.len * v.inner + line % v.inner;
      int64_t argmax = 0;
      compute_t<T> max = load(x[start]);
      for (int64_t r = 1; r < v.len; ++r) {
        const compute_t<T> value = load(x[start + r * v.inner]);
        if (value > max) {
          max = value;
          argmax = r;
        }
      }
      for (int64_t r = 0; r < v.len; ++r) {
        y[start + r * v.inner] = store<T>(compute_t<T>(r == argmax ? 1 : 0));
      }
    }
  });
}

OpDef norm_op(NormKind kind) {
  OpDef def;
  def.infer = [](InferContext& ctx) {
    expect_inputs(ctx, 1, 1);
    check_type(ctx, 0, kFloat);
    norm_view(ctx.node, ctx.opset, ctx.input_shape(0));  // validates the axis
    ctx.set_output(0, ctx.input_dtype(0), ctx.input_shape(0));
  };
  def.compute = [kind](const ComputeContext& ctx) {
    const Tensor& in = ctx.input(0);
    const AxisView v = norm_view(ctx.node, ctx.opset, in.shape());
    if (in.numel() == 0) return;
    dispatch_types<kFloat>(ctx, in.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* x = in.data<T>();
      T* y = ctx.output(0).data<T>();
      if (kind == NormKind::Hardmax) {
        hardmax(ctx, v, x, y);
      } else if (mlas::sum_exp_kernel() == SumExpKernel::Avx512F) {
        softmax<SumExpKernel::Avx512F>(ctx, kind, v, x, y);
      } else {
        softmax<SumExpKernel::Fma3>(ctx, kind, v, x, y);
      }
    });
  };
  return def;
}

}  // namespace

void register_reduce_ops(OpRegistry& r) {
  r.add("", "ReduceSum", reduce_op(ReduceKind::Sum));
  r.add("", "ReduceMean", reduce_op(ReduceKind::Mean));
  r.add("", "ReduceMax", reduce_op(ReduceKind::Max));
  r.add("", "ReduceMin", reduce_op(ReduceKind::Min));
  r.add("", "ReduceProd", reduce_op(ReduceKind::Prod));
  r.add("", "ReduceL1", reduce_op(ReduceKind::L1));
  r.add("", "ReduceL2", reduce_op(ReduceKind::L2));
  r.add("", "ReduceSumSquare", reduce_op(ReduceKind::SumSquare));
  r.add("", "ReduceLogSum", reduce_op(ReduceKind::LogSum));
  r.add("", "ReduceLogSumExp", reduce_op(ReduceKind::LogSumExp));
  r.add("", "ArgMax", arg_extremum_op(true));
  r.add("", "ArgMin", arg_extremum_op(false));
  r.add("", "Softmax", norm_op(NormKind::Softmax));
  r.add("", "LogSoftmax", norm_op(NormKind::LogSoftmax));
  r.add("", "Hardmax", norm_op(NormKind::Hardmax));
}

}  // namespace nibble
