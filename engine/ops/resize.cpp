// Resize (opsets 10 to 19+) and Upsample (7, 9): nearest, linear and cubic interpolation with
// every coordinate_transformation_mode, nearest_mode, exclude_outside, antialias, axes,
// keep_aspect_ratio_policy and tf_crop_and_resize extrapolation. Scales, sizes and roi must be
// constants (shapes are static).
//
// Interpolation is separable. For each resized axis a plan lists, per output index, the input
// indices and weights that contribute (the coefficient and neighbour rules of the ONNX reference
// implementation). Nearest is then a plain gather over all axes; linear and cubic apply the
// axes one after another in double precision.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "engine/ops/nn_common.h"

namespace nibble {
namespace {

struct ResizeParams {
  std::string mode = "nearest";
  std::string coordinate_mode = "half_pixel";
  std::string nearest_mode = "round_prefer_floor";  // "simple" before Resize-11
  double cubic_a = -0.75;
  bool exclude_outside = false;
  bool antialias = false;
  double extrapolation_value = 0.0;
  std::vector<double> scales, roi_start, roi_end;  // per input dim
  Shape output_shape;
};

// Scales of a Resize-10 / Upsample node: attribute (Upsample-7) or constant input 1.
std::vector<double> legacy_scales(const InferContext& ctx) {
  std::vector<double> scales;
  if (ctx.node.op_type == "Upsample" && ctx.opset < 9) {
    for (float s : ctx.node.attr_floats("scales")) scales.push_back(s);
  } else {
    const Tensor& t = ctx.require_constant(1, "scales");
    for (int64_t i = 0; i < t.numel(); ++i) scales.push_back(t.get_f64(i));
  }
  return scales;
}

// A Resize-11+ optional input counts as given only when present with elements.
const Tensor* given_constant(const InferContext& ctx, size_t i, const char* what) {
  if (!ctx.has_input(i)) return nullptr;
  if (!ctx.input_constant(i) && ctx.input_shape(i) != Shape{0}) ctx.require_constant(i, what);
  const Tensor* t = ctx.input_constant(i);
  return t && t->numel() > 0 ? t : nullptr;
}

ResizeParams resize_params(const InferContext& ctx) {
  const Node& node = ctx.node;
  const Shape& x = ctx.input_shape(0);
  const size_t rank = x.size();
  ResizeParams p;
  // A dimension from a scale, refused before a huge or non-finite double turns into an int64.
  auto scaled_dim = [&](double dim) {
    if (!(dim >= 0 && dim <= double(int64_t(1) << 53))) {
      char text[32];
      std::snprintf(text, sizeof text, "%g", dim);
      ctx.fail(std::string("scales give an output dimension of ") + text + ", out of range");
    }
    return static_cast<int64_t>(dim);
  };
  p.mode = node.attr_string("mode", "nearest");
  p.roi_start.assign(rank, 0.0);
  p.roi_end.assign(rank, 1.0);
  const bool legacy = node.op_type == "Upsample" || ctx.opset < 11;

  if (legacy) {
    // Upsample and Resize-10 map coordinates asymmetrically and round nearest down when
    // upsampling, up when downsampling.
    p.coordinate_mode = "asymmetric";
    p.nearest_mode = "simple";
    if (p.mode == "bilinear") p.mode = "linear";
    if (p.mode != "nearest" && p.mode != "linear") ctx.fail("unknown mode '" + p.mode + "'");
    p.scales = legacy_scales(ctx);
    if (p.scales.size() != rank) ctx.fail("needs one scale per input dimension");
    p.output_shape.resize(rank);
    for (size_t d = 0; d < rank; ++d) {
      if (!(p.scales[d] > 0) || (node.op_type == "Upsample" && p.scales[d] < 1)) {
        ctx.fail("invalid scale " + std::to_string(p.scales[d]));
      }
      p.output_shape[d] = scaled_dim(std::floor(double(x[d]) * p.scales[d]));
    }
    return p;
  }

  p.coordinate_mode = node.attr_string("coordinate_transformation_mode", "half_pixel");
  p.nearest_mode = node.attr_string("nearest_mode", "round_prefer_floor");
  p.cubic_a = node.attr_float("cubic_coeff_a", -0.75f);
  p.exclude_outside = node.attr_int("exclude_outside", 0) != 0;
  p.extrapolation_value = node.attr_float("extrapolation_value", 0.0f);
  p.antialias = node.attr_int("antialias", 0) != 0;
  if (p.mode != "nearest" && p.mode != "linear" && p.mode != "cubic") {
    ctx.fail("unknown mode '" + p.mode + "'");
  }
  static const std::set<std::string> coordinate_modes = {
      "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
      "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
  if (!coordinate_modes.count(p.coordinate_mode)) {
    ctx.fail("unknown coordinate_transformation_mode '" + p.coordinate_mode + "'");
  }
  if (p.mode == "nearest" && p.nearest_mode != "round_prefer_floor" &&
      p.nearest_mode != "round_prefer_ceil" && p.nearest_mode != "floor" &&
      p.nearest_mode != "ceil") {
    ctx.fail("unknown nearest_mode '" + p.nearest_mode + "'");
  }
  if (p.antialias && p.mode == "nearest") ctx.fail("antialias needs linear or cubic mode");

  // Resize-18 `axes` select the dims that scales/sizes/roi describe.
  std::vector<int64_t> axes;
  for (int64_t a : node.attr_ints("axes", {})) {
    axes.push_back(normalize_axis(a, int64_t(rank), node));
  }
  if (std::set<int64_t>(axes.begin(), axes.end()).size() != axes.size()) {
    ctx.fail("axes must be unique");
  }
  if (axes.empty()) {
    for (size_t d = 0; d < rank; ++d) axes.push_back(int64_t(d));
  }

  const Tensor* scales = given_constant(ctx, 2, "scales");
  const Tensor* sizes = given_constant(ctx, 3, "sizes");
  if ((scales != nullptr) == (sizes != nullptr)) ctx.fail("needs exactly one of scales and sizes");
  const Tensor* values = scales ? scales : sizes;
  if (values->numel() != int64_t(axes.size())) {
    ctx.fail("scales/sizes need " + std::to_string(axes.size()) + " values");
  }
  if (p.coordinate_mode == "tf_crop_and_resize") {
    const Tensor* roi = given_constant(ctx, 1, "roi");
    if (!roi || roi->numel() != 2 * int64_t(axes.size())) {
      ctx.fail("tf_crop_and_resize needs roi with " + std::to_string(2 * axes.size()) + " values");
    }
    for (size_t i = 0; i < axes.size(); ++i) {
      p.roi_start[size_t(axes[i])] = roi->get_f64(int64_t(i));
      p.roi_end[size_t(axes[i])] = roi->get_f64(int64_t(axes.size() + i));
    }
  }

  p.scales.assign(rank, 1.0);
  p.output_shape = x;
  if (scales) {
    for (size_t i = 0; i < axes.size(); ++i) {
      const size_t d = size_t(axes[i]);
      p.scales[d] = scales->get_f64(int64_t(i));
      if (!(p.scales[d] > 0)) ctx.fail("scales must be positive");
      p.output_shape[d] = scaled_dim(std::floor(double(x[d]) * p.scales[d]));
    }
    return p;
  }
  for (size_t i = 0; i < axes.size(); ++i) {
    const size_t d = size_t(axes[i]);
    p.output_shape[d] = sizes->get_i64(int64_t(i));
    if (p.output_shape[d] < 0) ctx.fail("sizes must not be negative");
    if (x[d] == 0) ctx.fail("cannot resize an empty dimension to a size");
    p.scales[d] = double(p.output_shape[d]) / double(x[d]);
  }
  const std::string policy = node.attr_string("keep_aspect_ratio_policy", "stretch");
  if (policy == "not_larger" || policy == "not_smaller") {
    double scale = p.scales[size_t(axes[0])];
    for (int64_t a : axes) {
      scale = policy == "not_larger" ? std::min(scale, p.scales[size_t(a)])
                                     : std::max(scale, p.scales[size_t(a)]);
    }
    for (int64_t a : axes) {
      p.scales[size_t(a)] = scale;
      p.output_shape[size_t(a)] = scaled_dim(std::floor(scale * double(x[size_t(a)]) + 0.5));
    }
  } else if (policy != "stretch") {
    ctx.fail("unknown keep_aspect_ratio_policy '" + policy + "'");
  }
  return p;
}

// Antialiased downscaling stretches the interpolation kernel by 1 / scale, so each output value
// reads 2 * ceil(1 / scale) (linear) or 2 * ceil(2 / scale) (cubic) inputs along the axis. The
// bound makes a huge downscale fail at load instead of allocating coefficients without end.
constexpr double kMaxAntialiasTaps = 1 << 16;

// Inputs read per output value along an axis at `scale`: 1 (nearest), 2 / 4 (linear / cubic),
// or the stretched kernel's 2 * ceil(support / scale) when antialiasing a downscale (as
// interpolation_coeffs builds them). A double: a tiny scale would overflow an integer.
double taps_per_output(const ResizeParams& p, double scale) {
  if (p.mode == "nearest") return 1;
  const double support = p.mode == "linear" ? 1.0 : 2.0;
  if (!p.antialias || scale >= 1) return 2 * support;
  return 2 * std::ceil(support / scale);
}

void check_antialias_taps(const InferContext& ctx, const ResizeParams& p) {
  if (!p.antialias) return;
  for (size_t d = 0; d < p.scales.size(); ++d) {
    if (p.output_shape[d] == 0 || p.scales[d] >= 1) continue;
    const double taps = taps_per_output(p, p.scales[d]);
    if (!(taps <= kMaxAntialiasTaps)) {
      char text[160];
      std::snprintf(text, sizeof text,
                    "antialiased %s downscaling of axis %zu by a scale of %g reads %.0f inputs per "
                    "output value, more than the %.0f supported",
                    p.mode.c_str(), d, p.scales[d], taps, kMaxAntialiasTaps);
      ctx.unsupported(text);
    }
  }
}

void resize_infer(InferContext& ctx) {
  const ResizeParams p = resize_params(ctx);
  check_antialias_taps(ctx, p);
  if (p.mode == "nearest") {
    dispatch_dtype(ctx.input_dtype(0), "Resize", [](auto) {});
  } else {
    ctx.require_dtype(0, {DType::F32, DType::F64, DType::F16});
  }
  ctx.set_output(0, ctx.input_dtype(0), p.output_shape);
}

// ---- per-axis interpolation plans ---------------------------------------------------------------

// For each output index along one axis: `taps` input indices and weights; an index of -1 marks
// an output outside the tf_crop_and_resize region (it takes extrapolation_value).
struct AxisPlan {
  bool identity = true;
  int64_t taps = 1;
  std::vector<int64_t> index;
  std::vector<double> weight;
};

double cubic_weight(double x, double a) {
  x = std::abs(x);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0.0;
}

// Weights of the neighbours of a source coordinate whose fractional part is `ratio` (in (0, 1]),
// as the ONNX reference computes them.
std::vector<double> interpolation_coeffs(const ResizeParams& p, double ratio, double scale) {
  std::vector<double> c;
  if (p.antialias) {
    // The kernel is stretched by 1 / scale when downsampling and normalized.
    const double s = std::min(scale, 1.0);
    double sum = 0;
    if (p.mode == "linear") {
      const int64_t start = static_cast<int64_t>(std::floor(-1 / s)) + 1;
      for (int64_t i = start; i < start + 2 - 2 * start; ++i) {
        c.push_back(std::clamp(1 - std::abs((double(i) - ratio) * s), 0.0, 1.0));
      }
    } else {
      const int64_t start = static_cast<int64_t>(std::floor(-2 / s)) + 1;
      for (int64_t i = start; i < 2 - start; ++i) {
        c.push_back(cubic_weight(s * (double(i) - ratio), p.cubic_a));
      }
    }
    for (double v : c) sum += v;
    for (double& v : c) v /= sum;
    return c;
  }
  if (p.mode == "linear") return {1 - ratio, ratio};
  const double a = p.cubic_a;
  return {cubic_weight(ratio + 1, a), cubic_weight(ratio, a), cubic_weight(1 - ratio, a),
          cubic_weight(2 - ratio, a)};
}

// Source coordinate of output index `o` along an axis; sets `outside` for tf_crop_and_resize
// positions beyond the input. Computed in float like ONNX Runtime, so nearest rounding agrees
// with it at ties (the conformance data agree too). align_corners, half_pixel_symmetric and
// tf_crop_and_resize use the unrounded output length scale * in, as the ONNX reference does;
// pytorch_half_pixel tests the integer length, as the spec and ONNX Runtime do.
double source_coordinate(const ResizeParams& p, size_t d, int64_t o, int64_t in, int64_t out,
                         bool& outside) {
  const float scale = static_cast<float>(p.scales[d]);
  const float x = static_cast<float>(o);
  const float in_f = static_cast<float>(in);
  const float out_length = scale * in_f;
  const std::string& mode = p.coordinate_mode;
  outside = false;
  if (mode == "half_pixel") return (x + 0.5f) / scale - 0.5f;
  if (mode == "asymmetric") return x / scale;
  if (mode == "tf_half_pixel_for_nn") return (x + 0.5f) / scale;
  if (mode == "pytorch_half_pixel") return out > 1 ? (x + 0.5f) / scale - 0.5f : 0.0f;
  if (mode == "align_corners") {
    return out_length == 1 ? 0.0f : x * (in_f - 1) / (out_length - 1);
  }
  if (mode == "half_pixel_symmetric") {
    const float adjustment = static_cast<float>(out) / out_length;
    const float offset = in_f / 2 * (1 - adjustment);
    return offset + (x + 0.5f) / scale - 0.5f;
  }
  // tf_crop_and_resize
  const float start = static_cast<float>(p.roi_start[d]), end = static_cast<float>(p.roi_end[d]);
  const float coord = (out_length == 1 ? (end - start) * (in_f - 1) / 2
                                       : x * (end - start) * (in_f - 1) / (out_length - 1)) +
                      start * (in_f - 1);
  outside = coord < 0 || coord > in_f - 1;
  return coord;
}

int64_t nearest_index(const ResizeParams& p, double coord, double scale) {
  const double base = std::floor(coord);
  if (p.nearest_mode == "simple") {
    return static_cast<int64_t>(scale < 1 ? std::ceil(coord) : std::trunc(coord));
  }
  if (coord == base) return static_cast<int64_t>(base);
  const double frac = coord - base;
  bool up = false;
  if (p.nearest_mode == "round_prefer_floor")
    up = frac > 0.5;
  else if (p.nearest_mode == "round_prefer_ceil")
    up = frac >= 0.5;
  else
    up = p.nearest_mode == "ceil";
  return static_cast<int64_t>(base) + (up ? 1 : 0);
}

// An axis that Resize leaves as it is (no plan, a copy).
bool identity_axis(const ResizeParams& p, size_t d, int64_t in, int64_t out) {
  const bool cropped =
      p.coordinate_mode == "tf_crop_and_resize" && (p.roi_start[d] != 0.0 || p.roi_end[d] != 1.0);
  return in == out && std::abs(p.scales[d] - 1.0) < 1e-9 && !cropped;
}

AxisPlan axis_plan(const ResizeParams& p, size_t d, int64_t in, int64_t out) {
  AxisPlan plan;
  const double scale = p.scales[d];
  plan.identity = identity_axis(p, d, in, out);
  if (plan.identity) return plan;
  const bool nearest = p.mode == "nearest";
  for (int64_t o = 0; o < out; ++o) {
    bool outside = false;
    const double coord = source_coordinate(p, d, o, in, out, outside);
    if (nearest) {
      plan.index.push_back(
          outside ? -1 : std::clamp<int64_t>(nearest_index(p, coord, scale), 0, in - 1));
      plan.weight.push_back(1.0);
      continue;
    }
    // Neighbours start left of the coordinate; an integer coordinate counts as ratio 1 of
    // the previous interval (the reference's convention).
    const double base = std::floor(coord);
    const double ratio = coord == base ? 1.0 : coord - base;
    std::vector<double> coeffs = interpolation_coeffs(p, ratio, scale);
    const int64_t n = int64_t(coeffs.size());
    int64_t first;
    if (n % 2 == 0) {
      first = int64_t(base) - n / 2 + (coord == base ? 0 : 1);
    } else {
      first = int64_t(base) - (n - 1) / 2 + (coord - base <= 0.5 ? 0 : 1);
    }
    if (p.exclude_outside) {
      double sum = 0;
      for (int64_t t = 0; t < n; ++t) {
        if (first + t < 0 || first + t >= in) coeffs[size_t(t)] = 0;
        sum += coeffs[size_t(t)];
      }
      if (sum != 0) {
        for (double& c : coeffs) c /= sum;
      }
    }
    plan.taps = n;
    for (int64_t t = 0; t < n; ++t) {
      plan.index.push_back(outside ? -1 : std::clamp<int64_t>(first + t, 0, in - 1));
      plan.weight.push_back(coeffs[size_t(t)]);
    }
  }
  return plan;
}

struct ResizeState {
  ResizeParams params;
  std::vector<AxisPlan> axes;
};

std::shared_ptr<const void> resize_prepare(const InferContext& ctx) {
  auto state = std::make_shared<ResizeState>();
  state->params = resize_params(ctx);
  const Shape& x = ctx.input_shape(0);
  for (size_t d = 0; d < x.size(); ++d) {
    // The axis plan holds an index and a weight per tap and output: with antialiasing, up to
    // 65536 taps for each output value (check_antialias_taps), which the allocation limit bounds
    // over the whole axis.
    const ResizeParams& p = state->params;
    const int64_t out = p.output_shape[d];
    const double plan_bytes =
        double(out) * taps_per_output(p, p.scales[d]) * double(sizeof(int64_t) + sizeof(double));
    if (!identity_axis(p, d, x[d], out) && plan_bytes > double(ctx.max_tensor_bytes)) {
      ctx.fail("the interpolation weights of axis " + std::to_string(d) + " (" +
               std::to_string(x[d]) + " -> " + std::to_string(out) + ") need " +
               std::to_string(static_cast<uint64_t>(plan_bytes)) +
               " bytes, over the allocation limit of " + std::to_string(ctx.max_tensor_bytes) +
               " bytes");
    }
    state->axes.push_back(axis_plan(state->params, d, x[d], out));
  }
  return state;
}

// ---- execution ----------------------------------------------------------------------------------

template <typename T>
T from_extrapolation(double v) {
  if constexpr (std::is_same_v<T, Half>) {
    return Half{float_to_half(static_cast<float>(v))};
  } else {
    return static_cast<T>(v);
  }
}

// True when the axis maps output o to input o / 2 (an exact 2x nearest upsampling).
bool doubles(const AxisPlan& axis, int64_t in_len, int64_t out_len) {
  if (axis.identity || axis.taps != 1 || out_len != 2 * in_len) return false;
  for (int64_t o = 0; o < out_len; ++o)
    if (axis.index[size_t(o)] != o / 2) return false;
  return true;
}

// 2x nearest upsampling of the last two axes (YOLO's neck): input row r becomes output rows
// 2r and 2r + 1, each element written twice.
template <typename T>
bool upsample_2x(const ComputeContext& ctx, const ResizeState& s) {
  const Shape& in = ctx.input(0).shape();
  const Shape& out = s.params.output_shape;
  const size_t rank = in.size();
  if (rank < 2) return false;
  for (size_t d = 0; d + 2 < rank; ++d)
    if (!s.axes[d].identity) return false;
  if (!doubles(s.axes[rank - 1], in[rank - 1], out[rank - 1]) ||
      !doubles(s.axes[rank - 2], in[rank - 2], out[rank - 2]))
    return false;
  const T* src = ctx.input(0).data<T>();
  T* dst = ctx.output(0).data<T>();
  const int64_t width = in[rank - 1];
  const int64_t rows = width == 0 ? 0 : shape_numel(in) / width;
  ctx.pool().parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* in_row = src + r * width;
      T* out_row = dst + r * 4 * width;
      for (int64_t i = 0; i < width; ++i) out_row[2 * i] = out_row[2 * i + 1] = in_row[i];
      std::copy(out_row, out_row + 2 * width, out_row + 2 * width);
    }
  }, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, width)));
  return true;
}

// Nearest: out[o_0, ..., o_r] = in[index_0[o_0], ..., index_r[o_r]].
template <typename T>
void gather_nearest(const ComputeContext& ctx, const ResizeState& s) {
  if (upsample_2x<T>(ctx, s)) return;
  const Tensor& x = ctx.input(0);
  const Shape& in = x.shape();
  const Shape& out = s.params.output_shape;
  const size_t rank = in.size();
  const T* src = x.data<T>();
  T* dst = ctx.output(0).data<T>();
  const T extrapolated = from_extrapolation<T>(s.params.extrapolation_value);
  if (rank == 0) {
    dst[0] = src[0];
    return;
  }
  auto source = [&](size_t d, int64_t o) {
    return s.axes[d].identity ? o : s.axes[d].index[size_t(o)];
  };
  const std::vector<int64_t> in_strides = contiguous_strides(in);
  const int64_t width = out[rank - 1];
  const int64_t rows = width == 0 ? 0 : shape_numel(out) / width;
  ctx.pool().parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      // Input offset of this output row, or -1 if any outer axis is outside the crop.
      int64_t offset = 0, rest = row;
      for (size_t d = rank - 1; d-- > 0;) {
        const int64_t i = source(d, rest % out[d]);
        rest /= out[d];
        if (i < 0 || offset < 0) {
          offset = -1;
        } else {
          offset += i * in_strides[d];
        }
      }
      T* out_row = dst + row * width;
      for (int64_t o = 0; o < width; ++o) {
        const int64_t i = source(rank - 1, o);
        out_row[o] = offset < 0 || i < 0 ? extrapolated : src[offset + i];
      }
    }
  });
}

// Linear / cubic: one pass per resized axis over a double buffer.
template <typename T>
void interpolate(const ComputeContext& ctx, const ResizeState& s) {
  const Tensor& x = ctx.input(0);
  Shape shape = x.shape();
  std::vector<double> current(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) current[size_t(i)] = to_double(x.data<T>()[i]);
  const double extrapolated = s.params.extrapolation_value;
  for (size_t d = 0; d < shape.size(); ++d) {
    const AxisPlan& plan = s.axes[d];
    if (plan.identity) continue;
    const int64_t in_len = shape[d], out_len = s.params.output_shape[d];
    int64_t outer = 1, inner = 1;
    for (size_t i = 0; i < d; ++i) outer *= shape[i];
    for (size_t i = d + 1; i < shape.size(); ++i) inner *= shape[i];
    std::vector<double> next(static_cast<size_t>(outer * out_len * inner));
    ctx.pool().parallel_for(outer * out_len, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t o = t % out_len, block = t / out_len;
        double* dst = next.data() + t * inner;
        const double* src = current.data() + block * in_len * inner;
        const int64_t* index = plan.index.data() + o * plan.taps;
        const double* weight = plan.weight.data() + o * plan.taps;
        if (index[0] < 0) {
          std::fill(dst, dst + inner, extrapolated);
          continue;
        }
        std::fill(dst, dst + inner, 0.0);
        for (int64_t k = 0; k < plan.taps; ++k) {
          const double* row = src + index[k] * inner;
          for (int64_t i = 0; i < inner; ++i) dst[i] += weight[k] * row[i];
        }
      }
    });
    shape[d] = out_len;
    current = std::move(next);
  }
  T* y = ctx.output(0).data<T>();
  for (size_t i = 0; i < current.size(); ++i) y[i] = from_double<T>(current[i]);
}

void resize_compute(const ComputeContext& ctx) {
  const auto& s = ctx.state<ResizeState>();
  if (s.params.mode == "nearest") {
    dispatch_dtype(ctx.input(0).dtype(), "Resize",
                   [&](auto tag) { gather_nearest<decltype(tag)>(ctx, s); });
    return;
  }
  dispatch_float(ctx.input(0).dtype(), "Resize",
                 [&](auto tag) { interpolate<decltype(tag)>(ctx, s); });
}

}  // namespace

void register_resize_ops(OpRegistry& r) {
  r.add("", "Resize", make_op(resize_infer, resize_compute, resize_prepare));
  r.add("", "Upsample", make_op(resize_infer, resize_compute, resize_prepare));
}

}  // namespace nibble
