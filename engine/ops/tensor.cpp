// Data-movement ops: reshapes, Transpose, Concat/Split, Slice, the Gather/Scatter family, Tile,
// Expand, Pad, TopK, DepthToSpace/SpaceToDepth, Trilu, OneHot, Compress and NonZero.
//
// Ops that only move data work on raw bytes by element size, so every dtype nibble holds
// (int4/uint4 one element per byte, bool, float16) goes through the same code. Arithmetic is
// needed only for Scatter reductions and TopK comparisons, which dispatch on the dtype.
//
// Inputs that decide an output shape (Reshape shape, Slice starts, Tile repeats, TopK k, ...)
// must be load-time constants; infer reads them through require_constant. compute reads the same
// values from its inputs, or recovers them from the inferred output shapes.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>  // baseline on x86-64: no extra compile flags needed
#endif

#include "engine/ops/op_registry.h"
#include "engine/ops/op_util.h"

namespace nibble {
namespace {

using Strides = std::vector<int64_t>;

// Same format as InferContext::fail, for helpers shared by infer and compute (compute only
// reaches them with parameters infer already accepted).
[[noreturn]] void invalid_node(const Node& node, const std::string& message) {
  throw Error(ErrorKind::InvalidModel, node.describe() + ": " + message);
}

int64_t product(const Shape& shape, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t d = begin; d < end; ++d) p *= shape[d];
  return p;
}

uint8_t* bytes_of(Tensor& t) {
  return static_cast<uint8_t*>(t.raw());
}
const uint8_t* bytes_of(const Tensor& t) {
  return static_cast<const uint8_t*>(t.raw());
}

// Address of element `index` (may be negative relative to `base`, e.g. for negative Slice steps).
inline const uint8_t* element_at(const uint8_t* base, int64_t index, size_t esize) {
  return base + static_cast<ptrdiff_t>(index) * static_cast<ptrdiff_t>(esize);
}

// Shape-determining inputs are constants at infer time and ordinary inputs at compute time; a
// reader gives helpers shared by both one way to fetch them (nullptr for an omitted input).
using InputReader = std::function<const Tensor*(size_t index, const char* what)>;

InputReader constant_reader(const InferContext& ctx) {
  return [&ctx](size_t i, const char* what) -> const Tensor* {
    return ctx.has_input(i) ? &ctx.require_constant(i, what) : nullptr;
  };
}

InputReader runtime_reader(const ComputeContext& ctx) {
  return [&ctx](size_t i, const char*) -> const Tensor* {
    return ctx.has_input(i) ? &ctx.input(i) : nullptr;
  };
}

// ---- Threading and copy primitives ------------------------------------------------------------

// Below this many bytes per task, waking a worker costs more than the copy it would do.
constexpr int64_t kMinTaskBytes = 64 * 1024;

// Runs fn over [0, rows), split across the pool only when there is enough data to move.
void parallel_rows(ThreadPool& pool, int64_t rows, int64_t bytes_per_row,
                   const std::function<void(int64_t, int64_t)>& fn) {
  if (rows <= 0) return;
  const int64_t grain = std::max<int64_t>(1, kMinTaskBytes / std::max<int64_t>(1, bytes_per_row));
  if (rows <= grain) {
    fn(0, rows);
  } else {
    pool.parallel_for(rows, fn, grain);
  }
}

void parallel_copy(ThreadPool& pool, uint8_t* dst, const uint8_t* src, int64_t nbytes) {
  if (dst == src || nbytes <= 0) return;
  const int64_t chunks = (nbytes + kMinTaskBytes - 1) / kMinTaskBytes;
  parallel_rows(pool, chunks, kMinTaskBytes, [&](int64_t begin, int64_t end) {
    const int64_t first = begin * kMinTaskBytes;
    const int64_t last = std::min(end * kMinTaskBytes, nbytes);
    std::memcpy(dst + first, src + first, static_cast<size_t>(last - first));
  });
}

// Output of a pure data-movement op whose bytes equal its input's (Reshape, Squeeze, ...).
void copy_input_to_output(const ComputeContext& ctx) {
  const Tensor& in = ctx.input(0);
  parallel_copy(ctx.pool(), bytes_of(ctx.output(0)), bytes_of(in),
                static_cast<int64_t>(in.nbytes()));
}

// Calls f(std::integral_constant<size_t, N>) for the element size N (1, 2, 4 or 8 bytes), so
// element loops copy with fixed-size memcpy that compiles to a single load and store.
template <typename F>
void dispatch_element_size(size_t esize, F&& f) {
  switch (esize) {
    case 1: f(std::integral_constant<size_t, 1>{}); return;
    case 2: f(std::integral_constant<size_t, 2>{}); return;
    case 4: f(std::integral_constant<size_t, 4>{}); return;
    case 8: f(std::integral_constant<size_t, 8>{}); return;
    default: throw Error(ErrorKind::Internal, "unexpected element size " + std::to_string(esize));
  }
}

// Visits rows [begin, end) of a row-major iteration over `shape`, passing each row's index and
// its offset sum(i_d * strides[d]).
template <typename F>
void for_each_row(const Shape& shape, const Strides& strides, int64_t begin, int64_t end, F&& f) {
  if (begin >= end) return;
  const size_t rank = shape.size();
  std::vector<int64_t> index(rank);
  int64_t offset = 0;
  int64_t rest = begin;
  for (size_t d = rank; d-- > 0;) {
    index[d] = rest % shape[d];
    rest /= shape[d];
    offset += index[d] * strides[d];
  }
  for (int64_t row = begin; row < end; ++row) {
    f(row, offset);
    for (size_t d = rank; d-- > 0;) {
      offset += strides[d];
      if (++index[d] < shape[d]) break;
      offset -= strides[d] * shape[d];
      index[d] = 0;
    }
  }
}

// A strided view of a source buffer: element (i_0, ..., i_n-1) of `shape` is at source element
// sum(i_d * strides[d]). Strides may be 0 (broadcast) or negative (reversed Slice).
struct StridedView {
  Shape shape;
  Strides strides;
};

// Drops unit dimensions and merges neighbours that are contiguous relative to each other, so
// copy loops run over as few and as long dimensions as possible.
void simplify(StridedView& view) {
  StridedView out;
  for (size_t d = 0; d < view.shape.size(); ++d) {
    if (view.shape[d] == 1) continue;
    if (!out.shape.empty() && out.strides.back() == view.strides[d] * view.shape[d]) {
      out.shape.back() *= view.shape[d];
      out.strides.back() = view.strides[d];
    } else {
      out.shape.push_back(view.shape[d]);
      out.strides.push_back(view.strides[d]);
    }
  }
  view = std::move(out);
}

// Copies `view` of `src` into the contiguous buffer `dst`, one memcpy per row where the source
// rows are contiguous.
void strided_copy(ThreadPool& pool, uint8_t* dst, const uint8_t* src, size_t esize,
                  StridedView view) {
  if (shape_numel(view.shape) == 0) return;
  simplify(view);
  if (view.shape.empty()) {
    std::memcpy(dst, src, esize);
    return;
  }
  const int64_t inner = view.shape.back();
  const int64_t inner_stride = view.strides.back();
  view.shape.pop_back();
  view.strides.pop_back();
  const int64_t rows = shape_numel(view.shape);
  const int64_t row_bytes = inner * static_cast<int64_t>(esize);
  dispatch_element_size(esize, [&](auto size_tag) {
    constexpr size_t N = decltype(size_tag)::value;
    parallel_rows(pool, rows, row_bytes, [&](int64_t begin, int64_t end) {
      for_each_row(view.shape, view.strides, begin, end, [&](int64_t row, int64_t offset) {
        uint8_t* out = dst + row * row_bytes;
        const uint8_t* in = element_at(src, offset, N);
        if (inner_stride == 1) {
          std::memcpy(out, in, static_cast<size_t>(row_bytes));
        } else {
          for (int64_t i = 0; i < inner; ++i)
            std::memcpy(out + i * N, element_at(in, i * inner_stride, N), N);
        }
      });
    });
  });
}

// out[r * out_stride + c] = in[r + c * in_stride] for r, c in [0, rows) x [0, cols) (strides in
// elements of N bytes).
template <size_t N>
void transpose_block(uint8_t* out, int64_t out_stride, const uint8_t* in, int64_t in_stride,
                     int64_t rows, int64_t cols) {
  constexpr auto n = static_cast<int64_t>(N);
  int64_t r = 0;
#if defined(__SSE2__)
  if constexpr (N == 4) {
    // 4x4 register transposes; shuffles move bits untouched, so any 4-byte dtype works.
    for (; r + 4 <= rows; r += 4) {
      int64_t c = 0;
      for (; c + 4 <= cols; c += 4) {
        const uint8_t* src = in + (r + c * in_stride) * n;
        __m128 v0 = _mm_loadu_ps(reinterpret_cast<const float*>(src));
        __m128 v1 = _mm_loadu_ps(reinterpret_cast<const float*>(src + in_stride * n));
        __m128 v2 = _mm_loadu_ps(reinterpret_cast<const float*>(src + 2 * in_stride * n));
        __m128 v3 = _mm_loadu_ps(reinterpret_cast<const float*>(src + 3 * in_stride * n));
        _MM_TRANSPOSE4_PS(v0, v1, v2, v3);
        uint8_t* dst = out + (r * out_stride + c) * n;
        _mm_storeu_ps(reinterpret_cast<float*>(dst), v0);
        _mm_storeu_ps(reinterpret_cast<float*>(dst + out_stride * n), v1);
        _mm_storeu_ps(reinterpret_cast<float*>(dst + 2 * out_stride * n), v2);
        _mm_storeu_ps(reinterpret_cast<float*>(dst + 3 * out_stride * n), v3);
      }
      for (int64_t rr = r; rr < r + 4; ++rr)
        for (int64_t cc = c; cc < cols; ++cc)
          std::memcpy(out + (rr * out_stride + cc) * n, in + (rr + cc * in_stride) * n, N);
    }
  }
#endif
  for (; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      std::memcpy(out + (r * out_stride + c) * n, in + (r + c * in_stride) * n, N);
}

// Transpose with the two contiguous dimensions apart: the output's last dimension walks the
// source with a stride, the source's contiguous dimension `src_contiguous_dim` sits elsewhere in
// the output. Copying kTile x kTile blocks keeps both sides' cache lines in use.
template <size_t N>
void transpose_tiled(ThreadPool& pool, uint8_t* dst, const uint8_t* src, const StridedView& view,
                     size_t src_contiguous_dim) {
  constexpr int64_t kTile = 16;
  constexpr auto n = static_cast<int64_t>(N);
  const size_t last = view.shape.size() - 1;
  const Strides dst_strides = contiguous_strides(view.shape);
  const int64_t rows = view.shape[src_contiguous_dim];  // contiguous in the source
  const int64_t cols = view.shape[last];                // contiguous in the destination
  const int64_t row_dst_stride = dst_strides[src_contiguous_dim];
  const int64_t col_src_stride = view.strides[last];

  Shape batch_shape;
  Strides batch_src_strides, batch_dst_strides;
  for (size_t d = 0; d < last; ++d) {
    if (d == src_contiguous_dim) continue;
    batch_shape.push_back(view.shape[d]);
    batch_src_strides.push_back(view.strides[d]);
    batch_dst_strides.push_back(dst_strides[d]);
  }
  const int64_t row_tiles = (rows + kTile - 1) / kTile;
  const int64_t tasks = shape_numel(batch_shape) * row_tiles;

  parallel_rows(pool, tasks, kTile * cols * n, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      int64_t batch = task / row_tiles;
      const int64_t row_begin = (task % row_tiles) * kTile;
      const int64_t tile_rows = std::min(kTile, rows - row_begin);
      int64_t src_base = 0, dst_base = 0;
      for (size_t d = batch_shape.size(); d-- > 0;) {
        const int64_t i = batch % batch_shape[d];
        batch /= batch_shape[d];
        src_base += i * batch_src_strides[d];
        dst_base += i * batch_dst_strides[d];
      }
      for (int64_t col_begin = 0; col_begin < cols; col_begin += kTile) {
        transpose_block<N>(dst + (dst_base + row_begin * row_dst_stride + col_begin) * n,
                           row_dst_stride,
                           src + (src_base + row_begin + col_begin * col_src_stride) * n,
                           col_src_stride, tile_rows, std::min(kTile, cols - col_begin));
      }
    }
  });
}

// dst = transpose(src of `in_shape`, perm): output dimension i is input dimension perm[i].
void transpose_bytes(ThreadPool& pool, uint8_t* dst, const uint8_t* src, size_t esize,
                     const Shape& in_shape, const std::vector<int64_t>& perm) {
  const Strides in_strides = contiguous_strides(in_shape);
  StridedView view;
  for (int64_t axis : perm) {
    view.shape.push_back(in_shape[static_cast<size_t>(axis)]);
    view.strides.push_back(in_strides[static_cast<size_t>(axis)]);
  }
  if (shape_numel(view.shape) == 0) return;
  simplify(view);
  if (!view.shape.empty() && view.strides.back() != 1) {
    const auto unit = std::find(view.strides.begin(), view.strides.end(), int64_t{1});
    if (unit != view.strides.end()) {
      const auto dim = static_cast<size_t>(unit - view.strides.begin());
      dispatch_element_size(esize, [&](auto size_tag) {
        transpose_tiled<decltype(size_tag)::value>(pool, dst, src, view, dim);
      });
      return;
    }
  }
  strided_copy(pool, dst, src, esize, std::move(view));
}

// Reads an int32/int64 index tensor, mapping negative indices from the end; an index outside
// [-dim, dim) is a run-time input error.
std::vector<int64_t> read_indices(const ComputeContext& ctx, const Tensor& indices, int64_t dim,
                                  const char* what) {
  std::vector<int64_t> out(static_cast<size_t>(indices.numel()));
  auto load = [&](const auto* values) {
    for (size_t i = 0; i < out.size(); ++i) {
      const int64_t v = static_cast<int64_t>(values[i]);
      if (v < -dim || v >= dim)
        ctx.fail(std::string(what) + " " + std::to_string(v) +
                 " is out of range for a dimension of size " + std::to_string(dim));
      out[i] = v < 0 ? v + dim : v;
    }
  };
  if (indices.dtype() == DType::I32) {
    load(indices.data<int32_t>());
  } else {
    load(indices.data<int64_t>());
  }
  return out;
}

// A 1-D integer constant (Reshape shape, Tile repeats, ...) as int64 values.
std::vector<int64_t> int_list(const Node& node, const Tensor& t, const char* what) {
  if (t.rank() > 1)
    invalid_node(node, std::string(what) + " must be 1-D, got " + shape_str(t.shape()));
  if (t.dtype() != DType::I64 && t.dtype() != DType::I32)
    invalid_node(node, std::string(what) + " must be int64, got " + dtype_name(t.dtype()));
  return t.to_i64_vector();
}

// The node's `axis` attribute (or `fallback`) normalized against `rank`.
size_t axis_attr(const Node& node, int64_t fallback, int64_t rank) {
  return static_cast<size_t>(normalize_axis(node.attr_int("axis", fallback), rank, node));
}

// Dimension arithmetic on values a (possibly hostile) model chose: overflow is a model error.
int64_t checked_mul(const Node& node, int64_t a, int64_t b) {
  int64_t product;
  if (__builtin_mul_overflow(a, b, &product)) invalid_node(node, "dimension overflows int64");
  return product;
}

int64_t checked_add(const Node& node, int64_t a, int64_t b) {
  int64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) invalid_node(node, "dimension overflows int64");
  return sum;
}

// Normalizes axes against `rank`, rejecting duplicates.
std::vector<int64_t> normalize_axes(const std::vector<int64_t>& axes, int64_t rank,
                                    const Node& node) {
  std::vector<int64_t> out;
  for (int64_t axis : axes) {
    const int64_t a = normalize_axis(axis, rank, node);
    if (std::find(out.begin(), out.end(), a) != out.end())
      invalid_node(node, "axis " + std::to_string(axis) + " is repeated");
    out.push_back(a);
  }
  return out;
}

// ---- Reshape, Flatten, Squeeze, Unsqueeze -------------------------------------------------------

void infer_reshape(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const std::vector<int64_t> requested =
      ctx.opset < 5 ? ctx.node.attr_ints("shape")
                    : int_list(ctx.node, ctx.require_constant(1, "Reshape shape"), "shape");
  const bool allow_zero = ctx.node.attr_int("allowzero", 0) != 0;

  Shape out(requested.size());
  int64_t inferred = -1;
  int64_t known = 1;
  for (size_t d = 0; d < requested.size(); ++d) {
    const int64_t v = requested[d];
    if (v == -1) {
      if (inferred >= 0) ctx.fail("shape " + shape_str(requested) + " has more than one -1");
      inferred = static_cast<int64_t>(d);
      continue;
    }
    if (v < -1) ctx.fail("shape " + shape_str(requested) + " has a negative dimension");
    if (v == 0 && !allow_zero) {
      if (d >= in.size())
        ctx.fail("shape " + shape_str(requested) + " copies dimension " + std::to_string(d) +
                 " (0) but the input " + shape_str(in) + " has no such dimension");
      out[d] = in[d];
    } else {
      out[d] = v;
    }
    known = checked_mul(ctx.node, known, out[d]);
  }
  const int64_t numel = shape_numel(in);
  if (inferred >= 0) {
    if (known == 0)
      ctx.fail("cannot infer the -1 dimension of " + shape_str(requested) +
               " next to a zero dimension");
    if (numel % known != 0)
      ctx.fail("cannot reshape " + shape_str(in) + " to " + shape_str(requested));
    out[static_cast<size_t>(inferred)] = numel / known;
  }
  if (shape_numel(out) != numel)
    ctx.fail("cannot reshape " + shape_str(in) + " to " + shape_str(requested));
  ctx.set_output(0, ctx.input_dtype(0), out);
}

void infer_flatten(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const int64_t rank = ctx.input_rank(0);
  int64_t axis = ctx.node.attr_int("axis", 1);
  if (axis < -rank || axis > rank)
    ctx.fail("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  if (axis < 0) axis += rank;
  const auto split = static_cast<size_t>(axis);
  ctx.set_output(0, ctx.input_dtype(0), {product(in, 0, split), product(in, split, in.size())});
}

void infer_squeeze(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  std::vector<int64_t> axes;
  if (ctx.opset < 13) {
    axes = ctx.node.attr_ints("axes", {});
  } else if (ctx.has_input(1)) {
    axes = int_list(ctx.node, ctx.require_constant(1, "Squeeze axes"), "axes");
  }
  axes = normalize_axes(axes, ctx.input_rank(0), ctx.node);

  // No axes (absent or empty, as in ONNX Runtime) squeezes every unit dimension.
  Shape out;
  for (size_t d = 0; d < in.size(); ++d) {
    const bool listed = std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) != axes.end();
    if (listed && in[d] != 1)
      ctx.fail("cannot squeeze dimension " + std::to_string(d) + " of size " +
               std::to_string(in[d]));
    if (listed || (axes.empty() && in[d] == 1)) continue;
    out.push_back(in[d]);
  }
  ctx.set_output(0, ctx.input_dtype(0), out);
}

void infer_unsqueeze(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const std::vector<int64_t> requested =
      ctx.opset < 13 ? ctx.node.attr_ints("axes")
                     : int_list(ctx.node, ctx.require_constant(1, "Unsqueeze axes"), "axes");
  const auto out_rank = static_cast<int64_t>(in.size() + requested.size());
  const std::vector<int64_t> axes = normalize_axes(requested, out_rank, ctx.node);

  Shape out;
  size_t next_in = 0;
  for (int64_t d = 0; d < out_rank; ++d) {
    if (std::find(axes.begin(), axes.end(), d) != axes.end()) {
      out.push_back(1);
    } else {
      out.push_back(in[next_in++]);
    }
  }
  ctx.set_output(0, ctx.input_dtype(0), out);
}

// ---- Transpose, DepthToSpace, SpaceToDepth
// -------------------------------------------------------

std::vector<int64_t> transpose_perm(const Node& node, int64_t rank) {
  std::vector<int64_t> perm;
  if (node.has_attr("perm")) {
    perm = node.attr_ints("perm");
    if (static_cast<int64_t>(perm.size()) != rank)
      invalid_node(node, "perm has " + std::to_string(perm.size()) + " entries for rank " +
                             std::to_string(rank));
    std::vector<bool> seen(static_cast<size_t>(rank), false);
    for (int64_t& axis : perm) {
      axis = normalize_axis(axis, rank, node);
      if (seen[static_cast<size_t>(axis)]) invalid_node(node, "perm is not a permutation");
      seen[static_cast<size_t>(axis)] = true;
    }
  } else {
    for (int64_t d = rank; d-- > 0;) perm.push_back(d);
  }
  return perm;
}

void infer_transpose(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  Shape out;
  for (int64_t axis : transpose_perm(ctx.node, ctx.input_rank(0)))
    out.push_back(in[static_cast<size_t>(axis)]);
  ctx.set_output(0, ctx.input_dtype(0), out);
}

void compute_transpose(const ComputeContext& ctx) {
  const Tensor& in = ctx.input(0);
  transpose_bytes(ctx.pool(), bytes_of(ctx.output(0)), bytes_of(in), dtype_size(in.dtype()),
                  in.shape(), transpose_perm(ctx.node, in.rank()));
}

int64_t block_size(const Node& node) {
  const int64_t b = node.attr_int("blocksize");
  if (b <= 0) invalid_node(node, "blocksize must be positive, got " + std::to_string(b));
  return b;
}

bool depth_to_space_crd(const Node& node) {
  const std::string mode = node.attr_string("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") invalid_node(node, "unknown mode '" + mode + "'");
  return mode == "CRD";
}

void infer_depth_to_space(InferContext& ctx) {
  if (ctx.input_rank(0) != 4) ctx.fail("input must be 4-D, got " + shape_str(ctx.input_shape(0)));
  const Shape& in = ctx.input_shape(0);
  const int64_t b = block_size(ctx.node);
  depth_to_space_crd(ctx.node);
  if (in[1] % checked_mul(ctx.node, b, b) != 0)
    ctx.fail("channels " + std::to_string(in[1]) + " are not divisible by blocksize^2");
  ctx.set_output(
      0, ctx.input_dtype(0),
      {in[0], in[1] / (b * b), checked_mul(ctx.node, in[2], b), checked_mul(ctx.node, in[3], b)});
}

void compute_depth_to_space(const ComputeContext& ctx) {
  const Tensor& in = ctx.input(0);
  const int64_t b = block_size(ctx.node);
  const int64_t n = in.dim(0), c = in.dim(1) / (b * b), h = in.dim(2), w = in.dim(3);
  // Channel index = (bh * b + bw) * C' + c for DCR, (c * b + bh) * b + bw for CRD.
  const bool crd = depth_to_space_crd(ctx.node);
  const Shape split = crd ? Shape{n, c, b, b, h, w} : Shape{n, b, b, c, h, w};
  const std::vector<int64_t> perm =
      crd ? std::vector<int64_t>{0, 1, 4, 2, 5, 3} : std::vector<int64_t>{0, 3, 4, 1, 5, 2};
  transpose_bytes(ctx.pool(), bytes_of(ctx.output(0)), bytes_of(in), dtype_size(in.dtype()), split,
                  perm);
}

void infer_space_to_depth(InferContext& ctx) {
  if (ctx.input_rank(0) != 4) ctx.fail("input must be 4-D, got " + shape_str(ctx.input_shape(0)));
  const Shape& in = ctx.input_shape(0);
  const int64_t b = block_size(ctx.node);
  if (in[2] % b != 0 || in[3] % b != 0)
    ctx.fail("spatial size " + shape_str(in) + " is not divisible by blocksize " +
             std::to_string(b));
  ctx.set_output(
      0, ctx.input_dtype(0),
      {in[0], checked_mul(ctx.node, in[1], checked_mul(ctx.node, b, b)), in[2] / b, in[3] / b});
}

void compute_space_to_depth(const ComputeContext& ctx) {
  const Tensor& in = ctx.input(0);
  const int64_t b = block_size(ctx.node);
  const int64_t n = in.dim(0), c = in.dim(1), h = in.dim(2) / b, w = in.dim(3) / b;
  transpose_bytes(ctx.pool(), bytes_of(ctx.output(0)), bytes_of(in), dtype_size(in.dtype()),
                  {n, c, h, b, w, b}, {0, 3, 5, 1, 2, 4});
}

// ---- Concat, Split
// --------------------------------------------------------------------------------

void infer_concat(InferContext& ctx) {
  if (ctx.num_inputs() == 0) ctx.fail("needs at least one input");
  ctx.require_input(0);
  const int64_t rank = ctx.input_rank(0);
  if (rank == 0) ctx.fail("cannot concatenate scalars");
  const auto axis = static_cast<size_t>(normalize_axis(ctx.node.attr_int("axis"), rank, ctx.node));
  const DType dtype = ctx.input_dtype(0);
  Shape out = ctx.input_shape(0);
  out[axis] = 0;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    ctx.require_input(i);
    const Shape& s = ctx.input_shape(i);
    if (ctx.input_dtype(i) != dtype)
      ctx.fail("input " + std::to_string(i) + " is " + dtype_name(ctx.input_dtype(i)) +
               ", input 0 is " + dtype_name(dtype));
    bool compatible = static_cast<int64_t>(s.size()) == rank;
    for (size_t d = 0; compatible && d < s.size(); ++d) compatible = d == axis || s[d] == out[d];
    if (!compatible)
      ctx.fail("input " + std::to_string(i) + " " + shape_str(s) + " does not match input 0 " +
               shape_str(ctx.input_shape(0)) + " outside axis " + std::to_string(axis));
    out[axis] += s[axis];
  }
  ctx.set_output(0, dtype, out);
}

void compute_concat(const ComputeContext& ctx) {
  Tensor& out = ctx.output(0);
  const auto axis =
      static_cast<size_t>(normalize_axis(ctx.node.attr_int("axis"), out.rank(), ctx.node));
  const auto esize = static_cast<int64_t>(dtype_size(out.dtype()));
  const int64_t outer = product(out.shape(), 0, axis);
  const int64_t inner_bytes = product(out.shape(), axis + 1, out.shape().size()) * esize;
  const int64_t out_row_bytes = out.dim(static_cast<int64_t>(axis)) * inner_bytes;
  uint8_t* dst = bytes_of(out);

  // Each input fills one contiguous block of every output row.
  std::vector<int64_t> block_bytes, block_offset;
  int64_t offset = 0;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    block_offset.push_back(offset);
    block_bytes.push_back(ctx.input(i).dim(static_cast<int64_t>(axis)) * inner_bytes);
    offset += block_bytes.back();
  }
  if (outer == 1) {
    // An input the memory plan placed in its slice already (engine/plan/plan.h) has src == dst:
    // parallel_copy skips it.
    for (size_t i = 0; i < ctx.num_inputs(); ++i)
      parallel_copy(ctx.pool(), dst + block_offset[i], bytes_of(ctx.input(i)), block_bytes[i]);
    return;
  }
  parallel_rows(ctx.pool(), outer, out_row_bytes, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row)
      for (size_t i = 0; i < ctx.num_inputs(); ++i)
        if (block_bytes[i] > 0)
          std::memcpy(dst + row * out_row_bytes + block_offset[i],
                      bytes_of(ctx.input(i)) + row * block_bytes[i],
                      static_cast<size_t>(block_bytes[i]));
  });
}

void infer_split(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const int64_t rank = ctx.input_rank(0);
  if (rank == 0) ctx.fail("cannot split a scalar");
  const auto axis = axis_attr(ctx.node, 0, rank);
  const int64_t dim = in[axis];
  const auto outputs = static_cast<int64_t>(ctx.num_outputs());

  std::vector<int64_t> sizes;
  if (ctx.opset >= 13 && ctx.has_input(1)) {
    sizes = int_list(ctx.node, ctx.require_constant(1, "Split split"), "split");
  } else if (ctx.opset < 13 && ctx.node.has_attr("split")) {
    sizes = ctx.node.attr_ints("split");
  } else if (ctx.opset >= 18 && ctx.node.has_attr("num_outputs")) {
    const int64_t parts = ctx.node.attr_int("num_outputs");
    if (parts != outputs)
      ctx.fail("num_outputs is " + std::to_string(parts) + " but the node has " +
               std::to_string(outputs) + " outputs");
    // Equal chunks of ceil(dim / parts); the last one takes what is left.
    const int64_t chunk = (dim + parts - 1) / parts;
    if (chunk * (parts - 1) > dim)
      ctx.fail("cannot split a dimension of " + std::to_string(dim) + " into " +
               std::to_string(parts) + " chunks");
    sizes.assign(static_cast<size_t>(parts), chunk);
    sizes.back() = dim - chunk * (parts - 1);
  } else {
    if (outputs == 0 || dim % outputs != 0)
      ctx.fail("cannot split a dimension of " + std::to_string(dim) + " into " +
               std::to_string(outputs) + " equal parts");
    sizes.assign(static_cast<size_t>(outputs), dim / outputs);
  }

  if (static_cast<int64_t>(sizes.size()) != outputs)
    ctx.fail("split has " + std::to_string(sizes.size()) + " entries for " +
             std::to_string(outputs) + " outputs");
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) ctx.fail("split " + shape_str(sizes) + " has a negative size");
    total += s;
  }
  if (total != dim)
    ctx.fail("split " + shape_str(sizes) + " does not add up to dimension " + std::to_string(axis) +
             " of " + shape_str(in));
  // Omitted outputs are typed too: the executor then hands compute a scratch tensor for them.
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    Shape out = in;
    out[axis] = sizes[i];
    ctx.set_output(i, ctx.input_dtype(0), out);
  }
}

void compute_split(const ComputeContext& ctx) {
  const Tensor& in = ctx.input(0);
  const auto axis = axis_attr(ctx.node, 0, in.rank());
  const auto esize = static_cast<int64_t>(dtype_size(in.dtype()));
  const int64_t outer = product(in.shape(), 0, axis);
  const int64_t inner_bytes = product(in.shape(), axis + 1, in.shape().size()) * esize;
  const int64_t in_row_bytes = in.dim(static_cast<int64_t>(axis)) * inner_bytes;
  const uint8_t* src = bytes_of(in);

  // Output i takes one contiguous block of every input row; the sizes come from infer's shapes.
  std::vector<Tensor*> outputs;
  std::vector<int64_t> block_bytes, block_offset;
  int64_t offset = 0;
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    Tensor& out = ctx.output(i);
    outputs.push_back(&out);
    block_offset.push_back(offset);
    block_bytes.push_back(out.dim(static_cast<int64_t>(axis)) * inner_bytes);
    offset += block_bytes.back();
  }
  if (outer == 1) {
    // Outputs the memory plan made views of their slice (engine/plan/plan.h) are skipped.
    for (size_t i = 0; i < outputs.size(); ++i)
      parallel_copy(ctx.pool(), bytes_of(*outputs[i]), src + block_offset[i], block_bytes[i]);
    return;
  }
  parallel_rows(ctx.pool(), outer, in_row_bytes, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row)
      for (size_t i = 0; i < outputs.size(); ++i)
        if (block_bytes[i] > 0)
          std::memcpy(bytes_of(*outputs[i]) + row * block_bytes[i],
                      src + row * in_row_bytes + block_offset[i],
                      static_cast<size_t>(block_bytes[i]));
  });
}

// ---- Slice
// ----------------------------------------------------------------------------------------

struct SliceDim {
  int64_t start = 0;
  int64_t step = 1;
  int64_t length = 0;
};

// Resolves starts/ends/axes/steps (attributes before opset 10, inputs since) against `shape`
// with ONNX clamping: starts and ends are clamped into the dimension, INT64_MAX/MIN included.
std::vector<SliceDim> resolve_slice(const Node& node, int64_t opset, const Shape& shape,
                                    const InputReader& read) {
  std::vector<int64_t> starts, ends, axes, steps;
  if (opset < 10) {
    starts = node.attr_ints("starts");
    ends = node.attr_ints("ends");
    axes = node.attr_ints("axes", {});
  } else {
    const Tensor* starts_t = read(1, "Slice starts");
    const Tensor* ends_t = read(2, "Slice ends");
    if (!starts_t || !ends_t) invalid_node(node, "starts and ends are required");
    starts = int_list(node, *starts_t, "starts");
    ends = int_list(node, *ends_t, "ends");
    if (const Tensor* t = read(3, "Slice axes")) axes = int_list(node, *t, "axes");
    if (const Tensor* t = read(4, "Slice steps")) steps = int_list(node, *t, "steps");
  }
  const auto rank = static_cast<int64_t>(shape.size());
  if (ends.size() != starts.size()) invalid_node(node, "starts and ends have different lengths");
  if (axes.empty()) {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size())
    invalid_node(node, "starts, ends, axes and steps must have the same length");
  axes = normalize_axes(axes, rank, node);

  std::vector<SliceDim> dims(shape.size());
  for (size_t d = 0; d < shape.size(); ++d) dims[d] = {0, 1, shape[d]};
  for (size_t i = 0; i < axes.size(); ++i) {
    const int64_t dim = shape[static_cast<size_t>(axes[i])];
    int64_t step = steps[i];
    if (step == 0) invalid_node(node, "steps must not be 0");
    int64_t start = starts[i] < 0 ? starts[i] + dim : starts[i];
    int64_t end = ends[i] < 0 ? ends[i] + dim : ends[i];
    int64_t length = 0;
    // A step longer than the dimension takes one element; capping it keeps -step and the
    // stride arithmetic from overflowing (INT64_MIN/MAX steps are valid ONNX).
    const int64_t max_step = std::max<int64_t>(dim, 1);
    if (step > 0) {
      step = std::min(step, max_step);
      start = std::min(std::max<int64_t>(start, 0), dim);
      end = std::min(std::max<int64_t>(end, 0), dim);
      if (end > start) length = (end - start - 1) / step + 1;
    } else {
      step = std::max(step, -max_step);
      start = std::min(std::max<int64_t>(start, -1), dim - 1);
      end = std::min(std::max<int64_t>(end, -1), dim - 1);
      if (start > end) length = (start - end - 1) / -step + 1;
    }
    dims[static_cast<size_t>(axes[i])] = {start, step, length};
  }
  return dims;
}

void infer_slice(InferContext& ctx) {
  Shape out;
  for (const SliceDim& d :
       resolve_slice(ctx.node, ctx.opset, ctx.input_shape(0), constant_reader(ctx)))
    out.push_back(d.length);
  ctx.set_output(0, ctx.input_dtype(0), out);
}

void compute_slice(const ComputeContext& ctx) {
  const Tensor& in = ctx.input(0);
  const std::vector<SliceDim> dims =
      resolve_slice(ctx.node, ctx.opset, in.shape(), runtime_reader(ctx));
  const Strides in_strides = contiguous_strides(in.shape());
  const size_t esize = dtype_size(in.dtype());
  StridedView view;
  int64_t first = 0;
  for (size_t d = 0; d < dims.size(); ++d) {
    view.shape.push_back(dims[d].length);
    view.strides.push_back(dims[d].step * in_strides[d]);
    first += dims[d].start * in_strides[d];
  }
  if (shape_numel(view.shape) == 0) return;
  strided_copy(ctx.pool(), bytes_of(ctx.output(0)), element_at(bytes_of(in), first, esize), esize,
               std::move(view));
}

// ---- Gather, GatherElements, GatherND
// --------------------------------------------------------------

void require_index_dtype(const InferContext& ctx, size_t i) {
  ctx.require_dtype(i, {DType::I32, DType::I64});
}

void infer_gather(InferContext& ctx) {
  const Shape& data = ctx.input_shape(0);
  if (data.empty()) ctx.fail("data must have rank >= 1");
  require_index_dtype(ctx, 1);
  const auto axis = axis_attr(ctx.node, 0, ctx.input_rank(0));
  Shape out(data.begin(), data.begin() + static_cast<ptrdiff_t>(axis));
  const Shape& indices = ctx.input_shape(1);
  out.insert(out.end(), indices.begin(), indices.end());
  out.insert(out.end(), data.begin() + static_cast<ptrdiff_t>(axis) + 1, data.end());
  // Constant indices are part of the model: one out of range is a model error, found at load
  // (indices fed at run time are checked by compute_gather, as the caller's error).
  if (const Tensor* constant = ctx.input_constant(1)) {
    const int64_t dim = data[static_cast<size_t>(axis)];
    for (int64_t i = 0; i < constant->numel(); ++i) {
      const int64_t v = constant->get_i64(i);
      if (v < -dim || v >= dim)
        ctx.fail("index " + std::to_string(v) + " is out of range for axis " +
                 std::to_string(axis) + " of size " + std::to_string(dim));
    }
  }
  ctx.set_output(0, ctx.input_dtype(0), out);
}

void compute_gather(const ComputeContext& ctx) {
  const Tensor& data = ctx.input(0);
  const auto axis = axis_attr(ctx.node, 0, data.rank());
  const int64_t dim = data.dim(static_cast<int64_t>(axis));
  const std::vector<int64_t> indices = read_indices(ctx, ctx.input(1), dim, "Gather index");
  const auto count = static_cast<int64_t>(indices.size());
  const int64_t outer = product(data.shape(), 0, axis);
  const int64_t slice_bytes = product(data.shape(), axis + 1, data.shape().size()) *
                              static_cast<int64_t>(dtype_size(data.dtype()));
  const uint8_t* src = bytes_of(data);
  uint8_t* dst = bytes_of(ctx.output(0));
  if (slice_bytes == 0) return;
  parallel_rows(ctx.pool(), outer * count, slice_bytes, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t o = task / count;
      const int64_t index = indices[static_cast<size_t>(task % count)];
      std::memcpy(dst + task * slice_bytes, src + (o * dim + index) * slice_bytes,
                  static_cast<size_t>(slice_bytes));
    }
  });
}

// GatherElements/ScatterElements: indices has the data's rank and may be smaller than the data
// along every axis but `axis` (ONNX Runtime's rule, which keeps every access in bounds).
void check_element_indices(const InferContext& ctx, const Shape& data, const Shape& indices,
                           size_t axis) {
  if (indices.size() != data.size())
    ctx.fail("indices " + shape_str(indices) + " must have the rank of data " + shape_str(data));
  for (size_t d = 0; d < data.size(); ++d)
    if (d != axis && indices[d] > data[d])
      ctx.fail("indices " + shape_str(indices) + " exceed data " + shape_str(data) + " on axis " +
               std::to_string(d));
}

// Visits every element of a tensor shaped `index_shape` in row-major order, passing its flat
// index and the offset of the same coordinates in `data_strides` with the `axis` coordinate 0.
template <typename F>
void for_each_element_off_axis(const Shape& index_shape, Strides data_strides, size_t axis, F&& f) {
  data_strides[axis] = 0;
  const int64_t inner = index_shape.back();
  const int64_t inner_stride = data_strides.back();
  const Shape outer(index_shape.begin(), index_shape.end() - 1);
  data_strides.pop_back();
  for_each_row(outer, data_strides, 0, shape_numel(outer), [&](int64_t row, int64_t offset) {
    for (int64_t i = 0; i < inner; ++i) f(row * inner + i, offset + i * inner_stride);
  });
}

void infer_gather_elements(InferContext& ctx) {
  const Shape& data = ctx.input_shape(0);
  if (data.empty()) ctx.fail("data must have rank >= 1");
  require_index_dtype(ctx, 1);
  const auto axis = axis_attr(ctx.node, 0, ctx.input_rank(0));
  check_element_indices(ctx, data, ctx.input_shape(1), axis);
  ctx.set_output(0, ctx.input_dtype(0), ctx.input_shape(1));
}

void compute_gather_elements(const ComputeContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices_t = ctx.input(1);
  if (indices_t.numel() == 0) return;
  const auto axis = axis_attr(ctx.node, 0, data.rank());
  const std::vector<int64_t> indices =
      read_indices(ctx, indices_t, data.dim(static_cast<int64_t>(axis)), "GatherElements index");
  const Strides strides = contiguous_strides(data.shape());
  const int64_t axis_stride = strides[axis];
  const uint8_t* src = bytes_of(data);
  uint8_t* dst = bytes_of(ctx.output(0));
  dispatch_element_size(dtype_size(data.dtype()), [&](auto size_tag) {
    constexpr size_t N = decltype(size_tag)::value;
    for_each_element_off_axis(indices_t.shape(), strides, axis, [&](int64_t e, int64_t offset) {
      const int64_t source = offset + indices[static_cast<size_t>(e)] * axis_stride;
      std::memcpy(dst + e * static_cast<int64_t>(N), src + source * static_cast<int64_t>(N), N);
    });
  });
}

int64_t batch_dims_of(const Node& node, const Shape& data, const Shape& indices) {
  const int64_t b = node.attr_int("batch_dims", 0);
  const auto limit = static_cast<int64_t>(std::min(data.size(), indices.size()));
  if (b < 0 || b >= limit)
    invalid_node(
        node, "batch_dims " + std::to_string(b) + " must be in [0, " + std::to_string(limit) + ")");
  for (size_t d = 0; d < static_cast<size_t>(b); ++d)
    if (data[d] != indices[d])
      invalid_node(node, "batch dimensions of data " + shape_str(data) + " and indices " +
                             shape_str(indices) + " differ");
  return b;
}

void infer_gather_nd(InferContext& ctx) {
  const Shape& data = ctx.input_shape(0);
  const Shape& indices = ctx.input_shape(1);
  require_index_dtype(ctx, 1);
  if (data.empty() || indices.empty()) ctx.fail("data and indices must have rank >= 1");
  const auto b = static_cast<size_t>(batch_dims_of(ctx.node, data, indices));
  const int64_t depth = indices.back();
  if (depth < 0 || depth > static_cast<int64_t>(data.size() - b))
    ctx.fail("indices " + shape_str(indices) + " index too many dimensions of data " +
             shape_str(data));
  Shape out(indices.begin(), indices.end() - 1);
  out.insert(out.end(), data.begin() + static_cast<ptrdiff_t>(b) + depth, data.end());
  ctx.set_output(0, ctx.input_dtype(0), out);
}

// Element offsets of the slices selected by GatherND/ScatterND index tuples, validated.
std::vector<int64_t> nd_offsets(const ComputeContext& ctx, const Shape& data, const Tensor& indices,
                                size_t b) {
  const auto depth = static_cast<size_t>(indices.shape().back());
  const std::vector<int64_t> raw = indices.to_i64_vector();
  const Strides strides = contiguous_strides(data);
  // Tuples are grouped by batch; batch i starts at element i * strides[b - 1] of the data.
  const int64_t batch_stride = b > 0 ? strides[b - 1] : 0;
  const int64_t tuples = product(indices.shape(), 0, indices.shape().size() - 1);
  const int64_t tuples_per_batch =
      std::max<int64_t>(1, product(indices.shape(), b, indices.shape().size() - 1));
  std::vector<int64_t> offsets(static_cast<size_t>(tuples));
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t offset = (t / tuples_per_batch) * batch_stride;
    for (size_t k = 0; k < depth; ++k) {
      const int64_t dim = data[b + k];
      int64_t v = raw[static_cast<size_t>(t) * depth + k];
      if (v < -dim || v >= dim)
        ctx.fail("index " + std::to_string(v) + " is out of range for dimension " +
                 std::to_string(b + k) + " of size " + std::to_string(dim));
      if (v < 0) v += dim;
      offset += v * strides[b + k];
    }
    offsets[static_cast<size_t>(t)] = offset;
  }
  return offsets;
}

void compute_gather_nd(const ComputeContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const auto b = static_cast<size_t>(batch_dims_of(ctx.node, data.shape(), indices.shape()));
  const std::vector<int64_t> offsets = nd_offsets(ctx, data.shape(), indices, b);
  const auto depth = static_cast<size_t>(indices.shape().back());
  const auto esize = static_cast<int64_t>(dtype_size(data.dtype()));
  const int64_t slice = product(data.shape(), b + depth, data.shape().size());
  const uint8_t* src = bytes_of(data);
  uint8_t* dst = bytes_of(ctx.output(0));
  if (slice == 0) return;
  for (size_t t = 0; t < offsets.size(); ++t)
    std::memcpy(dst + static_cast<int64_t>(t) * slice * esize, src + offsets[t] * esize,
                static_cast<size_t>(slice * esize));
}

// ---- ScatterElements, ScatterND
// -------------------------------------------------------------------

enum class Reduction { None, Add, Mul, Max, Min };

Reduction reduction_of(const Node& node) {
  const std::string r = node.attr_string("reduction", "none");
  if (r == "none") return Reduction::None;
  if (r == "add") return Reduction::Add;
  if (r == "mul") return Reduction::Mul;
  if (r == "max") return Reduction::Max;
  if (r == "min") return Reduction::Min;
  invalid_node(node, "unknown reduction '" + r + "'");
}

template <typename T>
T apply_reduction(Reduction r, T current, T update) {
  if constexpr (std::is_same_v<T, Half>) {
    return from_float<Half>(apply_reduction<float>(r, to_float(current), to_float(update)));
  } else if constexpr (std::is_same_v<T, bool>) {
    switch (r) {
      case Reduction::Add:
      case Reduction::Max: return current || update;
      case Reduction::Mul:
      case Reduction::Min: return current && update;
      case Reduction::None: break;
    }
    return update;
  } else {
    switch (r) {
      case Reduction::Add: return static_cast<T>(current + update);
      case Reduction::Mul: return static_cast<T>(current * update);
      case Reduction::Max: return std::max(current, update);
      case Reduction::Min: return std::min(current, update);
      case Reduction::None: break;
    }
    return update;
  }
}

void infer_scatter_elements(InferContext& ctx) {
  const Shape& data = ctx.input_shape(0);
  if (data.empty()) ctx.fail("data must have rank >= 1");
  require_index_dtype(ctx, 1);
  reduction_of(ctx.node);
  const auto axis = axis_attr(ctx.node, 0, ctx.input_rank(0));
  check_element_indices(ctx, data, ctx.input_shape(1), axis);
  if (ctx.input_shape(2) != ctx.input_shape(1))
    ctx.fail("updates " + shape_str(ctx.input_shape(2)) + " must have the shape of indices " +
             shape_str(ctx.input_shape(1)));
  if (ctx.input_dtype(2) != ctx.input_dtype(0)) ctx.fail("updates must have the dtype of data");
  ctx.set_output(0, ctx.input_dtype(0), data);
}

void compute_scatter_elements(const ComputeContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices_t = ctx.input(1);
  const Tensor& updates = ctx.input(2);
  Tensor& out = ctx.output(0);
  parallel_copy(ctx.pool(), bytes_of(out), bytes_of(data), static_cast<int64_t>(data.nbytes()));
  if (indices_t.numel() == 0) return;
  const auto axis = axis_attr(ctx.node, 0, data.rank());
  const std::vector<int64_t> indices =
      read_indices(ctx, indices_t, data.dim(static_cast<int64_t>(axis)), "ScatterElements index");
  const Strides strides = contiguous_strides(data.shape());
  const Reduction reduction = reduction_of(ctx.node);
  dispatch_dtype(data.dtype(), "ScatterElements", [&](auto tag) {
    using T = decltype(tag);
    T* dst = out.data<T>();
    const T* src = updates.data<T>();
    // Sequential: with duplicate indices, later updates win or accumulate in order.
    for_each_element_off_axis(indices_t.shape(), strides, axis, [&](int64_t e, int64_t offset) {
      T& target = dst[offset + indices[static_cast<size_t>(e)] * strides[axis]];
      target = apply_reduction(reduction, target, src[e]);
    });
  });
}

void infer_scatter_nd(InferContext& ctx) {
  const Shape& data = ctx.input_shape(0);
  const Shape& indices = ctx.input_shape(1);
  require_index_dtype(ctx, 1);
  reduction_of(ctx.node);
  if (data.empty() || indices.empty()) ctx.fail("data and indices must have rank >= 1");
  const int64_t depth = indices.back();
  if (depth < 0 || depth > static_cast<int64_t>(data.size()))
    ctx.fail("indices " + shape_str(indices) + " index too many dimensions of data " +
             shape_str(data));
  Shape expected(indices.begin(), indices.end() - 1);
  expected.insert(expected.end(), data.begin() + depth, data.end());
  if (ctx.input_shape(2) != expected)
    ctx.fail("updates " + shape_str(ctx.input_shape(2)) + " must have shape " +
             shape_str(expected));
  if (ctx.input_dtype(2) != ctx.input_dtype(0)) ctx.fail("updates must have the dtype of data");
  ctx.set_output(0, ctx.input_dtype(0), data);
}

void compute_scatter_nd(const ComputeContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const Tensor& updates = ctx.input(2);
  Tensor& out = ctx.output(0);
  parallel_copy(ctx.pool(), bytes_of(out), bytes_of(data), static_cast<int64_t>(data.nbytes()));
  const std::vector<int64_t> offsets = nd_offsets(ctx, data.shape(), indices, 0);
  const auto depth = static_cast<size_t>(indices.shape().back());
  const int64_t slice = product(data.shape(), depth, data.shape().size());
  const Reduction reduction = reduction_of(ctx.node);
  dispatch_dtype(data.dtype(), "ScatterND", [&](auto tag) {
    using T = decltype(tag);
    T* dst = out.data<T>();
    const T* src = updates.data<T>();
    for (size_t t = 0; t < offsets.size(); ++t)
      for (int64_t i = 0; i < slice; ++i) {
        T& target = dst[offsets[t] + i];
        target = apply_reduction(reduction, target, src[static_cast<int64_t>(t) * slice + i]);
      }
  });
}

// ---- Tile, Expand
// -----------------------------------------------------------------------------------

void infer_tile(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const std::vector<int64_t> repeats =
      int_list(ctx.node, ctx.require_constant(1, "Tile repeats"), "repeats");
  if (repeats.size() != in.size())
    ctx.fail("repeats has " + std::to_string(repeats.size()) + " entries for input " +
             shape_str(in));
  Shape out;
  for (size_t d = 0; d < in.size(); ++d) {
    if (repeats[d] < 0) ctx.fail("repeats " + shape_str(repeats) + " has a negative entry");
    out.push_back(checked_mul(ctx.node, in[d], repeats[d]));
  }
  ctx.set_output(0, ctx.input_dtype(0), out);
}

void compute_tile(const ComputeContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  if (out.numel() == 0) return;
  // The output seen as [r0, d0, r1, d1, ...] reads the input with stride 0 along each repeat.
  const Strides in_strides = contiguous_strides(in.shape());
  StridedView view;
  for (size_t d = 0; d < in.shape().size(); ++d) {
    view.shape.insert(view.shape.end(), {out.shape()[d] / in.shape()[d], in.shape()[d]});
    view.strides.insert(view.strides.end(), {0, in_strides[d]});
  }
  strided_copy(ctx.pool(), bytes_of(out), bytes_of(in), dtype_size(in.dtype()), std::move(view));
}

void infer_expand(InferContext& ctx) {
  const std::vector<int64_t> shape =
      int_list(ctx.node, ctx.require_constant(1, "Expand shape"), "shape");
  for (int64_t d : shape)
    if (d < 0) ctx.fail("shape " + shape_str(shape) + " has a negative dimension");
  ctx.set_output(0, ctx.input_dtype(0), broadcast_shapes(ctx.input_shape(0), shape));
}

void compute_expand(const ComputeContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  strided_copy(ctx.pool(), bytes_of(out), bytes_of(in), dtype_size(in.dtype()),
               {out.shape(), broadcast_strides(in.shape(), out.shape().size())});
}

// ---- Pad
// --------------------------------------------------------------------------------------------

enum class PadMode { Constant, Reflect, Edge, Wrap };

struct PadSpec {
  PadMode mode = PadMode::Constant;
  std::vector<int64_t> before, after;  // per input dimension; negative values crop
};

PadSpec resolve_pad(const Node& node, int64_t opset, const Shape& shape, const InputReader& read) {
  PadSpec spec;
  const std::string mode = node.attr_string("mode", "constant");
  if (mode == "constant") {
    spec.mode = PadMode::Constant;
  } else if (mode == "reflect") {
    spec.mode = PadMode::Reflect;
  } else if (mode == "edge") {
    spec.mode = PadMode::Edge;
  } else if (mode == "wrap" && opset >= 19) {
    spec.mode = PadMode::Wrap;
  } else {
    invalid_node(node, "unknown mode '" + mode + "'");
  }

  const auto rank = static_cast<int64_t>(shape.size());
  std::vector<int64_t> pads;
  std::vector<int64_t> axes;
  if (opset < 11) {
    pads = node.attr_ints("pads");
  } else {
    const Tensor* pads_t = read(1, "Pad pads");
    if (!pads_t) invalid_node(node, "pads is required");
    pads = int_list(node, *pads_t, "pads");
    if (const Tensor* axes_t = opset >= 18 ? read(3, "Pad axes") : nullptr)
      axes = normalize_axes(int_list(node, *axes_t, "axes"), rank, node);
  }
  if (axes.empty() && pads.size() == 2 * shape.size()) {
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  }
  if (pads.size() != 2 * axes.size())
    invalid_node(node, "pads has " + std::to_string(pads.size()) + " entries, expected " +
                           std::to_string(2 * (axes.empty() ? shape.size() : axes.size())));

  spec.before.assign(shape.size(), 0);
  spec.after.assign(shape.size(), 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    const auto d = static_cast<size_t>(axes[i]);
    spec.before[d] = pads[i];
    spec.after[d] = pads[i + axes.size()];
    if (checked_add(node, checked_add(node, shape[d], spec.before[d]), spec.after[d]) < 0)
      invalid_node(node, "pads " + shape_str(pads) + " crop more than dimension " +
                             std::to_string(d) + " holds");
    if (spec.mode != PadMode::Constant && shape[d] == 0 &&
        (spec.before[d] > 0 || spec.after[d] > 0))
      invalid_node(node,
                   "cannot pad the empty dimension " + std::to_string(d) + " in mode " + mode);
  }
  return spec;
}

void infer_pad(InferContext& ctx) {
  const Shape& in = ctx.input_shape(0);
  const PadSpec spec = resolve_pad(ctx.node, ctx.opset, in, constant_reader(ctx));
  if (ctx.opset >= 11 && ctx.has_input(2)) {
    if (ctx.input_dtype(2) != ctx.input_dtype(0))
      ctx.fail("constant_value must have the dtype of data");
    if (shape_numel(ctx.input_shape(2)) != 1) ctx.fail("constant_value must hold one element");
  }
  Shape out;
  for (size_t d = 0; d < in.size(); ++d) out.push_back(in[d] + spec.before[d] + spec.after[d]);
  ctx.set_output(0, ctx.input_dtype(0), out);
}

// Maps a coordinate relative to the unpadded start into [0, dim), or -1 for constant padding.
int64_t pad_source(PadMode mode, int64_t c, int64_t dim) {
  if (c >= 0 && c < dim) return c;
  switch (mode) {
    case PadMode::Constant: return -1;
    case PadMode::Edge: return c < 0 ? 0 : dim - 1;
    case PadMode::Wrap: return ((c % dim) + dim) % dim;
    case PadMode::Reflect: {
      if (dim == 1) return 0;
      const int64_t period = 2 * (dim - 1);
      const int64_t r = ((c % period) + period) % period;
      return r < dim ? r : period - r;
    }
  }
  return -1;
}

void compute_pad(const ComputeContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  if (out.numel() == 0) return;
  const PadSpec spec = resolve_pad(ctx.node, ctx.opset, in.shape(), runtime_reader(ctx));
  const size_t esize = dtype_size(in.dtype());
  const auto element_bytes = static_cast<int64_t>(esize);  // for pointer arithmetic

  // The constant, as the bytes of one element (zeros when absent).
  std::vector<uint8_t> fill(esize, 0);
  if (ctx.opset < 11) {
    const float value = ctx.node.attr_float("value", 0.0f);
    dispatch_dtype(in.dtype(), "Pad", [&](auto tag) {
      const auto v = from_float<decltype(tag)>(value);
      std::memcpy(fill.data(), &v, esize);
    });
  } else if (ctx.has_input(2)) {
    std::memcpy(fill.data(), ctx.input(2).raw(), esize);
  }
  if (in.rank() == 0) {
    std::memcpy(out.raw(), in.raw(), esize);
    return;
  }

  const Shape& in_shape = in.shape();
  const Shape& out_shape = out.shape();
  const size_t last = in_shape.size() - 1;
  const Strides in_strides = contiguous_strides(in_shape);
  const int64_t out_cols = out_shape[last];
  const int64_t in_cols = in_shape[last];
  const int64_t before = spec.before[last];
  // Output columns [copy_begin, copy_end) come straight from the source row.
  const int64_t copy_begin = std::clamp<int64_t>(before, 0, out_cols);
  const int64_t copy_end = std::clamp<int64_t>(before + in_cols, 0, out_cols);
  const int64_t rows = out.numel() / out_cols;
  const int64_t row_bytes = out_cols * element_bytes;
  const uint8_t* src = bytes_of(in);
  uint8_t* dst = bytes_of(out);

  parallel_rows(ctx.pool(), rows, row_bytes, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      uint8_t* out_row = dst + row * row_bytes;
      // Source row of this output row, or none when any outer coordinate is constant padding.
      int64_t src_offset = 0;
      int64_t rest = row;
      bool constant_row = false;
      for (size_t d = last; d-- > 0;) {
        const int64_t o = rest % out_shape[d];
        rest /= out_shape[d];
        const int64_t c = pad_source(spec.mode, o - spec.before[d], in_shape[d]);
        if (c < 0) {
          constant_row = true;
          break;
        }
        src_offset += c * in_strides[d];
      }
      if (constant_row) {
        for (int64_t i = 0; i < out_cols; ++i)
          std::memcpy(out_row + i * element_bytes, fill.data(), esize);
        continue;
      }
      const uint8_t* in_row = src + src_offset * element_bytes;
      if (copy_end > copy_begin)
        std::memcpy(out_row + copy_begin * element_bytes,
                    in_row + (copy_begin - before) * element_bytes,
                    static_cast<size_t>((copy_end - copy_begin) * element_bytes));
      auto pad_columns = [&](int64_t first, int64_t last_column) {
        for (int64_t i = first; i < last_column; ++i) {
          const int64_t c = pad_source(spec.mode, i - before, in_cols);
          std::memcpy(out_row + i * element_bytes, c < 0 ? fill.data() : in_row + c * element_bytes,
                      esize);
        }
      };
      pad_columns(0, copy_begin);
      pad_columns(copy_end, out_cols);
    }
  });
}

// ---- TopK
// -------------------------------------------------------------------------------------------

void infer_topk(InferContext& ctx) {
  if (ctx.num_outputs() != 2) ctx.fail("needs two outputs, values and indices");
  const Shape& in = ctx.input_shape(0);
  if (in.empty()) ctx.fail("input must have rank >= 1");
  const auto axis = axis_attr(ctx.node, -1, ctx.input_rank(0));
  int64_t k = 0;
  if (ctx.opset < 10) {
    k = ctx.node.attr_int("k");
  } else {
    const Tensor& k_t = ctx.require_constant(1, "TopK k");
    if (k_t.numel() != 1) ctx.fail("k must hold one value, got shape " + shape_str(k_t.shape()));
    k = k_t.get_i64(0);
  }
  if (k < 0 || k > in[axis])
    ctx.fail("k = " + std::to_string(k) + " is out of range for a dimension of size " +
             std::to_string(in[axis]));
  Shape out = in;
  out[axis] = k;
  ctx.set_output(0, ctx.input_dtype(0), out);
  ctx.set_output(1, DType::I64, out);
}

template <typename T>
void topk_typed(const ComputeContext& ctx, size_t axis, bool largest) {
  using Key = std::conditional_t<std::is_same_v<T, Half>, float, T>;
  const Tensor& in = ctx.input(0);
  Tensor& values = ctx.output(0);
  int64_t* indices = ctx.output(1).data<int64_t>();
  const int64_t n = in.dim(static_cast<int64_t>(axis));
  const int64_t k = values.dim(static_cast<int64_t>(axis));
  const int64_t outer = product(in.shape(), 0, axis);
  const int64_t inner = product(in.shape(), axis + 1, in.shape().size());
  const T* src = in.data<T>();
  T* dst = values.data<T>();

  // NaN ranks above every number, so the comparison is a strict weak order.
  auto above = [](Key a, Key b) {
    if constexpr (std::is_floating_point_v<Key>) {
      if (std::isnan(a)) return !std::isnan(b);
      if (std::isnan(b)) return false;
    }
    return a > b;
  };
  parallel_rows(ctx.pool(), outer * inner, n * static_cast<int64_t>(sizeof(Key) + sizeof(int64_t)),
                [&](int64_t begin, int64_t end) {
                  std::vector<Key> keys(static_cast<size_t>(n));
                  std::vector<int64_t> order(static_cast<size_t>(n));
                  for (int64_t slice = begin; slice < end; ++slice) {
                    const int64_t base = (slice / inner) * n * inner + slice % inner;
                    for (int64_t j = 0; j < n; ++j) {
                      if constexpr (std::is_same_v<T, Half>) {
                        keys[static_cast<size_t>(j)] = to_float(src[base + j * inner]);
                      } else {
                        keys[static_cast<size_t>(j)] = src[base + j * inner];
                      }
                      order[static_cast<size_t>(j)] = j;
                    }
                    // Equal values keep ascending index order, as ONNX Runtime returns them.
                    auto first = [&](int64_t a, int64_t b) {
                      const Key ka = keys[static_cast<size_t>(a)],
                                kb = keys[static_cast<size_t>(b)];
                      const bool a_wins = largest ? above(ka, kb) : above(kb, ka);
                      const bool b_wins = largest ? above(kb, ka) : above(ka, kb);
                      return a_wins || (!b_wins && a < b);
                    };
                    std::partial_sort(order.begin(), order.begin() + k, order.end(), first);
                    const int64_t out_base = (slice / inner) * k * inner + slice % inner;
                    for (int64_t j = 0; j < k; ++j) {
                      const int64_t from = order[static_cast<size_t>(j)];
                      dst[out_base + j * inner] = src[base + from * inner];
                      indices[out_base + j * inner] = from;
                    }
                  }
                });
}

void compute_topk(const ComputeContext& ctx) {
  const Tensor& in = ctx.input(0);
  const auto axis = axis_attr(ctx.node, -1, in.rank());
  // Results are always sorted; ONNX leaves the order unspecified when sorted = 0.
  const bool largest = ctx.node.attr_int("largest", 1) != 0;
  dispatch_dtype(in.dtype(), "TopK",
                 [&](auto tag) { topk_typed<decltype(tag)>(ctx, axis, largest); });
}

// ---- Trilu
// ------------------------------------------------------------------------------------------

void infer_trilu(InferContext& ctx) {
  if (ctx.input_rank(0) < 2)
    ctx.fail("input must have rank >= 2, got " + shape_str(ctx.input_shape(0)));
  if (ctx.has_input(1)) {
    ctx.require_dtype(1, {DType::I64});
    if (shape_numel(ctx.input_shape(1)) != 1) ctx.fail("k must be a scalar");
  }
  ctx.set_output(0, ctx.input_dtype(0), ctx.input_shape(0));
}

void compute_trilu(const ComputeContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  if (in.numel() == 0) return;
  const bool upper = ctx.node.attr_int("upper", 1) != 0;
  const int64_t rows = in.dim(in.rank() - 2);
  const int64_t cols = in.dim(in.rank() - 1);
  // Clamping k to [-rows, cols] keeps i + k from overflowing without changing any result.
  const int64_t k =
      std::clamp<int64_t>(ctx.has_input(1) ? ctx.input(1).get_i64(0) : 0, -rows, cols);
  const auto esize = static_cast<int64_t>(dtype_size(in.dtype()));
  const int64_t row_bytes = cols * esize;
  const uint8_t* src = bytes_of(in);
  uint8_t* dst = bytes_of(out);
  parallel_rows(ctx.pool(), in.numel() / cols, row_bytes, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = r % rows;
      // Upper keeps columns j >= i + k, lower keeps j <= i + k; zero bits are 0 in every dtype.
      const int64_t keep_begin = upper ? std::clamp<int64_t>(i + k, 0, cols) : 0;
      const int64_t keep_end = upper ? cols : std::clamp<int64_t>(i + k + 1, 0, cols);
      uint8_t* out_row = dst + r * row_bytes;
      const uint8_t* in_row = src + r * row_bytes;
      std::memset(out_row, 0, static_cast<size_t>(row_bytes));
      if (keep_end > keep_begin)
        std::memcpy(out_row + keep_begin * esize, in_row + keep_begin * esize,
                    static_cast<size_t>((keep_end - keep_begin) * esize));
    }
  });
}

// ---- OneHot
// -----------------------------------------------------------------------------------------

void infer_onehot(InferContext& ctx) {
  const Shape& indices = ctx.input_shape(0);
  const Tensor& depth_t = ctx.require_constant(1, "OneHot depth");
  if (depth_t.numel() != 1) ctx.fail("depth must hold one value");
  const double depth_value = depth_t.get_f64(0);
  if (!(depth_value >= 1 && depth_value < 0x1p62))
    ctx.fail("depth must be a positive size, got " + std::to_string(depth_value));
  if (shape_numel(ctx.input_shape(2)) != 2) ctx.fail("values must hold [off_value, on_value]");
  const auto rank = static_cast<int64_t>(indices.size());
  const int64_t axis = normalize_axis(ctx.node.attr_int("axis", -1), rank + 1, ctx.node);
  Shape out = indices;
  out.insert(out.begin() + axis, static_cast<int64_t>(depth_value));
  ctx.set_output(0, ctx.input_dtype(2), out);
}

void compute_onehot(const ComputeContext& ctx) {
  const Tensor& indices = ctx.input(0);
  const Tensor& values = ctx.input(2);
  Tensor& out = ctx.output(0);
  const int64_t axis = normalize_axis(ctx.node.attr_int("axis", -1), out.rank(), ctx.node);
  const int64_t depth = out.dim(axis);
  const int64_t inner = product(indices.shape(), static_cast<size_t>(axis), indices.shape().size());
  const size_t esize = dtype_size(values.dtype());
  const uint8_t* off_value = bytes_of(values);
  const uint8_t* on_value = off_value + esize;
  uint8_t* dst = bytes_of(out);
  for (int64_t i = 0; i < out.numel(); ++i)
    std::memcpy(dst + i * static_cast<int64_t>(esize), off_value, esize);
  for (int64_t i = 0; i < indices.numel(); ++i) {
    int64_t v = indices.get_i64(i);
    if (v < 0) v += depth;
    if (v < 0 || v >= depth) continue;  // out-of-range indices give an all-off row
    const int64_t position = ((i / inner) * depth + v) * inner + i % inner;
    std::memcpy(dst + position * static_cast<int64_t>(esize), on_value, esize);
  }
}

// ---- Compress, NonZero (shapes that depend on data: constant inputs only)
// ---------------------------

struct CompressLayout {
  int64_t outer = 1, dim = 0, inner = 1;
  std::vector<int64_t> selected;  // kept positions along the compressed dimension
};

CompressLayout compress_layout(const Node& node, const Shape& shape, const Tensor& condition) {
  if (condition.rank() != 1 || condition.dtype() != DType::Bool)
    invalid_node(node, "condition must be a 1-D bool tensor");
  CompressLayout layout;
  if (node.has_attr("axis")) {
    const size_t axis = axis_attr(node, 0, static_cast<int64_t>(shape.size()));
    layout.outer = product(shape, 0, axis);
    layout.dim = shape[axis];
    layout.inner = product(shape, axis + 1, shape.size());
  } else {
    layout.dim = shape_numel(shape);
  }
  if (condition.numel() > layout.dim)
    invalid_node(node, "condition has " + std::to_string(condition.numel()) +
                           " entries for a dimension of " + std::to_string(layout.dim));
  // Entries past the end of the condition count as false.
  const bool* keep = condition.data<bool>();
  for (int64_t i = 0; i < condition.numel(); ++i)
    if (keep[i]) layout.selected.push_back(i);
  return layout;
}

void infer_compress(InferContext& ctx) {
  const Tensor& condition =
      ctx.require_constant(1, "Compress condition (the output shape depends on it)");
  const Shape& in = ctx.input_shape(0);
  const CompressLayout layout = compress_layout(ctx.node, in, condition);
  Shape out;
  const auto kept = static_cast<int64_t>(layout.selected.size());
  if (ctx.node.has_attr("axis")) {
    out = in;
    out[axis_attr(ctx.node, 0, ctx.input_rank(0))] = kept;
  } else {
    out = {kept};
  }
  ctx.set_output(0, ctx.input_dtype(0), out);
}

void compute_compress(const ComputeContext& ctx) {
  const Tensor& in = ctx.input(0);
  const CompressLayout layout = compress_layout(ctx.node, in.shape(), ctx.input(1));
  const int64_t slice_bytes = layout.inner * static_cast<int64_t>(dtype_size(in.dtype()));
  const uint8_t* src = bytes_of(in);
  uint8_t* dst = bytes_of(ctx.output(0));
  for (int64_t o = 0; o < layout.outer; ++o)
    for (int64_t index : layout.selected) {
      std::memcpy(dst, src + (o * layout.dim + index) * slice_bytes,
                  static_cast<size_t>(slice_bytes));
      dst += slice_bytes;
    }
}

int64_t count_nonzero(const Tensor& t) {
  int64_t count = 0;
  for (int64_t i = 0; i < t.numel(); ++i) count += t.get_f64(i) != 0.0;
  return count;
}

void infer_nonzero(InferContext& ctx) {
  const Tensor& input = ctx.require_constant(0, "NonZero input (the output shape depends on it)");
  // A scalar counts as a 1-D tensor of one element, as in ONNX Runtime.
  const int64_t rank = std::max<int64_t>(1, input.rank());
  ctx.set_output(0, DType::I64, {rank, count_nonzero(input)});
}

void compute_nonzero(const ComputeContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  const int64_t count = out.dim(1);
  const Shape shape = in.rank() == 0 ? Shape{1} : in.shape();
  int64_t* dst = out.data<int64_t>();
  int64_t found = 0;
  for (int64_t i = 0; i < in.numel(); ++i) {
    if (in.get_f64(i) == 0.0) continue;
    int64_t rest = i;
    for (size_t d = shape.size(); d-- > 0;) {
      dst[static_cast<int64_t>(d) * count + found] = rest % shape[d];
      rest /= shape[d];
    }
    ++found;
  }
}

}  // namespace

void register_tensor_ops(OpRegistry& r) {
  r.add("", "Reshape", OpDef{infer_reshape, copy_input_to_output, nullptr});
  r.add("", "Flatten", OpDef{infer_flatten, copy_input_to_output, nullptr});
  r.add("", "Squeeze", OpDef{infer_squeeze, copy_input_to_output, nullptr});
  r.add("", "Unsqueeze", OpDef{infer_unsqueeze, copy_input_to_output, nullptr});
  r.add("", "Transpose", OpDef{infer_transpose, compute_transpose, nullptr});
  r.add("", "DepthToSpace", OpDef{infer_depth_to_space, compute_depth_to_space, nullptr});
  r.add("", "SpaceToDepth", OpDef{infer_space_to_depth, compute_space_to_depth, nullptr});
  r.add("", "Concat", OpDef{infer_concat, compute_concat, nullptr});
  r.add("", "Split", OpDef{infer_split, compute_split, nullptr});
  r.add("", "Slice", OpDef{infer_slice, compute_slice, nullptr});
  r.add("", "Gather", OpDef{infer_gather, compute_gather, nullptr});
  r.add("", "GatherElements", OpDef{infer_gather_elements, compute_gather_elements, nullptr});
  r.add("", "GatherND", OpDef{infer_gather_nd, compute_gather_nd, nullptr});
  r.add("", "ScatterElements", OpDef{infer_scatter_elements, compute_scatter_elements, nullptr});
  // Scatter (opsets 9-10) is ScatterElements under its old name.
  r.add("", "Scatter", OpDef{infer_scatter_elements, compute_scatter_elements, nullptr});
  r.add("", "ScatterND", OpDef{infer_scatter_nd, compute_scatter_nd, nullptr});
  r.add("", "Tile", OpDef{infer_tile, compute_tile, nullptr});
  r.add("", "Expand", OpDef{infer_expand, compute_expand, nullptr});
  r.add("", "Pad", OpDef{infer_pad, compute_pad, nullptr});
  r.add("", "TopK", OpDef{infer_topk, compute_topk, nullptr});
  r.add("", "Trilu", OpDef{infer_trilu, compute_trilu, nullptr});
  r.add("", "OneHot", OpDef{infer_onehot, compute_onehot, nullptr});
  r.add("", "Compress", OpDef{infer_compress, compute_compress, nullptr});
  r.add("", "NonZero", OpDef{infer_nonzero, compute_nonzero, nullptr});
}

}  // namespace nibble
