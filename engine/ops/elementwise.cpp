// Elementwise operators of the default ONNX domain: binary arithmetic and comparisons with numpy
// broadcasting, logic and bitwise ops, Where, unary math and activations, Clip, Cast/CastLike.
//
// Every op is a per-element function applied by a driver: run_unary, run_binary (numpy
// broadcasting of two inputs) or Where's three-way select. float16 elements are widened to float
// for the function and narrowed on store. The binary driver merges the broadcast dimensions so
// that the innermost loop sees each operand either contiguous or as a single repeated value,
// which keeps the common float32 cases (same shapes, per-channel or scalar operands) to plain
// loops the compiler vectorizes. Float activations run through map_f32 (AVX2 clone on x86-64)
// with exp_fast, a vectorizable exp.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "engine/ops/elementwise_util.h"
#include "kernels/logistic_f32.h"

namespace nibble {
namespace {

using namespace ew;

// Broadcast shape of all inputs.
Shape broadcast_inputs(const InferContext& ctx) {
  Shape shape = ctx.input_shape(0);
  for (size_t i = 1; i < ctx.num_inputs(); ++i) {
    try {
      shape = broadcast_shapes(shape, ctx.input_shape(i));
    } catch (const Error& e) {
      ctx.fail(e.what());
    }
  }
  return shape;
}

// ---- drivers ----------------------------------------------------------------------------------

template <class In, class Out, class Fn>
void run_unary(const ComputeContext& ctx, const Tensor& in, Tensor& out, const Fn& fn,
               int64_t grain) {
  const In* x = in.data<In>();
  Out* y = out.data<Out>();
  parallel(ctx, in.numel(), grain, [&](int64_t begin, int64_t end) {
    if constexpr (std::is_same_v<In, float> && std::is_same_v<Out, float>) {
      map_f32(x + begin, y + begin, end - begin, fn);
    } else if constexpr (std::is_same_v<In, Half> && std::is_same_v<Out, Half>) {
      // Through a float buffer, so the float loop (vectorized) does the math.
      constexpr int64_t kBlock = 256;
      float buffer[kBlock];
      for (int64_t i = begin; i < end; i += kBlock) {
        const int64_t n = std::min(kBlock, end - i);
        for (int64_t j = 0; j < n; ++j) buffer[j] = load(x[i + j]);
        map_f32(buffer, buffer, n, fn);
        for (int64_t j = 0; j < n; ++j) y[i + j] = store<Half>(buffer[j]);
      }
    } else {
      for (int64_t i = begin; i < end; ++i) y[i] = store<Out>(fn(load(x[i])));
    }
  });
}

// How K broadcast inputs are walked to produce a row-major output. Output dimensions of size 1
// are dropped and adjacent dimensions merged wherever every input steps through them alike, so
// equal shapes become a single run and [N,C,H,W] + [1,C,1,1] becomes [C, H*W] with the second
// input's inner stride 0. The innermost stride of each input is therefore 0 or 1.
template <size_t K>
struct BroadcastPlan {
  std::vector<int64_t> dims;                    // merged output dims, never empty
  std::array<std::vector<int64_t>, K> strides;  // element stride of each input per merged dim
};

template <size_t K>
BroadcastPlan<K> plan_broadcast(const Shape& out, const std::array<const Shape*, K>& inputs) {
  const size_t rank = out.size();
  std::array<std::vector<int64_t>, K> full;
  for (size_t k = 0; k < K; ++k) full[k] = broadcast_strides(*inputs[k], rank);
  BroadcastPlan<K> plan;
  for (size_t d = 0; d < rank; ++d) {
    if (out[d] == 1) continue;
    bool merge = !plan.dims.empty();
    for (size_t k = 0; merge && k < K; ++k) merge = plan.strides[k].back() == full[k][d] * out[d];
    if (merge) {
      plan.dims.back() *= out[d];
      for (size_t k = 0; k < K; ++k) plan.strides[k].back() = full[k][d];
    } else {
      plan.dims.push_back(out[d]);
      for (size_t k = 0; k < K; ++k) plan.strides[k].push_back(full[k][d]);
    }
  }
  if (plan.dims.empty()) {
    plan.dims.push_back(1);
    for (size_t k = 0; k < K; ++k) plan.strides[k].push_back(0);
  }
  return plan;
}

// Calls run(out_pos, input_offsets, n) for each stretch of the innermost merged dimension that
// covers output elements [begin, end).
template <size_t K, class Run>
void for_each_run(const BroadcastPlan<K>& plan, int64_t begin, int64_t end, const Run& run) {
  const size_t rank = plan.dims.size();
  std::vector<int64_t> index(rank);
  std::array<int64_t, K> offset{};
  int64_t rest = begin;
  for (size_t d = rank; d-- > 0;) {
    index[d] = rest % plan.dims[d];
    rest /= plan.dims[d];
    for (size_t k = 0; k < K; ++k) offset[k] += index[d] * plan.strides[k][d];
  }
  const int64_t inner = plan.dims.back();
  for (int64_t pos = begin; pos < end;) {
    const int64_t n = std::min(inner - index.back(), end - pos);
    run(pos, offset, n);
    pos += n;
    index.back() += n;
    for (size_t k = 0; k < K; ++k) offset[k] += n * plan.strides[k].back();
    // Carry into the outer dimensions when the innermost one wrapped.
    for (size_t d = rank - 1; d > 0 && index[d] == plan.dims[d]; --d) {
      index[d] = 0;
      ++index[d - 1];
      for (size_t k = 0; k < K; ++k) {
        offset[k] += plan.strides[k][d - 1] - plan.dims[d] * plan.strides[k][d];
      }
    }
  }
}

// One run of a binary op; a separate loop per stride pattern so each one vectorizes.
template <class A, class B, class Out, class Fn>
inline void binary_run(const A* a, int64_t sa, const B* b, int64_t sb, Out* out, int64_t n,
                       const Fn& fn) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) out[i] = store<Out>(fn(load(a[i]), load(b[i])));
  } else if (sa == 1) {
    const auto vb = load(b[0]);
    for (int64_t i = 0; i < n; ++i) out[i] = store<Out>(fn(load(a[i]), vb));
  } else if (sb == 1) {
    const auto va = load(a[0]);
    for (int64_t i = 0; i < n; ++i) out[i] = store<Out>(fn(va, load(b[i])));
  } else {
    std::fill(out, out + n, store<Out>(fn(load(a[0]), load(b[0]))));
  }
}

// out = fn(a, b) with a and b broadcast to out's shape. `a` may be `out` itself (in-place
// accumulation for the variadic ops).
template <class A, class B, class Out, class Fn>
void run_binary(const ComputeContext& ctx, const Tensor& a, const Tensor& b, Tensor& out,
                const Fn& fn, int64_t grain = kCheapGrain) {
  const auto plan = plan_broadcast<2>(out.shape(), {&a.shape(), &b.shape()});
  const A* pa = a.data<A>();
  const B* pb = b.data<B>();
  Out* po = out.data<Out>();
  const int64_t sa = plan.strides[0].back(), sb = plan.strides[1].back();
  parallel(ctx, out.numel(), grain, [&](int64_t begin, int64_t end) {
    for_each_run(plan, begin, end, [&](int64_t pos, const std::array<int64_t, 2>& off, int64_t n) {
      binary_run(pa + off[0], sa, pb + off[1], sb, po + pos, n, fn);
    });
  });
}

// ---- binary per-element functions -----------------------------------------------------------
// Integer arithmetic wraps like ONNX Runtime's: it is done in uint64_t, where overflow is
// defined, and narrowed back. Division and modulo by zero give 0 (as numpy does) rather than
// trapping, and INT_MIN / -1 wraps instead of raising SIGFPE.

template <class C>
constexpr C wrap(uint64_t v) {
  return static_cast<C>(v);
}

struct AddFn {
  template <class C> C operator()(C a, C b) const {
    if constexpr (std::is_integral_v<C>) return wrap<C>(uint64_t(a) + uint64_t(b));
    else return a + b;
  }
};
struct SubFn {
  template <class C> C operator()(C a, C b) const {
    if constexpr (std::is_integral_v<C>) return wrap<C>(uint64_t(a) - uint64_t(b));
    else return a - b;
  }
};
struct MulFn {
  template <class C> C operator()(C a, C b) const {
    if constexpr (std::is_integral_v<C>) return wrap<C>(uint64_t(a) * uint64_t(b));
    else return a * b;
  }
};
struct DivFn {  // integers truncate toward zero, like C
  template <class C> C operator()(C a, C b) const {
    if constexpr (std::is_integral_v<C>) {
      if (b == 0) return 0;
      if constexpr (std::is_signed_v<C>) {
        if (b == -1) return wrap<C>(0 - uint64_t(a));
      }
      return a / b;
    } else {
      return a / b;
    }
  }
};
struct ModFn {
  bool fmod;  // true: sign of the dividend (C fmod / %); false: sign of the divisor (Python %)
  template <class C> C operator()(C a, C b) const {
    if constexpr (std::is_floating_point_v<C>) {
      return std::fmod(a, b);  // infer guarantees fmod=1 for floats
    } else {
      if (b == 0) return 0;
      if constexpr (std::is_signed_v<C>) {
        if (b == -1) return 0;
        C r = a % b;
        if (!fmod && r != 0 && ((r < 0) != (b < 0))) r += b;
        return r;
      } else {
        return a % b;
      }
    }
  }
};
// NaN propagates from either side, as in numpy's maximum/minimum.
struct MaxFn {
  template <class C> C operator()(C a, C b) const { return (a > b || a != a) ? a : b; }
};
struct MinFn {
  template <class C> C operator()(C a, C b) const { return (a < b || a != a) ? a : b; }
};
struct PReluFn {
  template <class C> C operator()(C x, C slope) const {
    if constexpr (std::is_integral_v<C>) return x < 0 ? wrap<C>(uint64_t(x) * uint64_t(slope)) : x;
    else return x < 0 ? x * slope : x;
  }
};
struct ShiftFn {
  bool left;
  template <class C> C operator()(C a, C b) const {
    if (b >= C(sizeof(C) * 8)) return 0;  // shifting out every bit; undefined in C++
    return left ? C(a << b) : C(a >> b);
  }
};
struct BitAndFn { template <class C> C operator()(C a, C b) const { return a & b; } };
struct BitOrFn { template <class C> C operator()(C a, C b) const { return a | b; } };
struct BitXorFn { template <class C> C operator()(C a, C b) const { return a ^ b; } };

struct EqualFn { template <class C> bool operator()(C a, C b) const { return a == b; } };
struct LessFn { template <class C> bool operator()(C a, C b) const { return a < b; } };
struct LessEqualFn { template <class C> bool operator()(C a, C b) const { return a <= b; } };
struct GreaterFn { template <class C> bool operator()(C a, C b) const { return a > b; } };
struct GreaterEqualFn { template <class C> bool operator()(C a, C b) const { return a >= b; } };
struct AndFn { bool operator()(bool a, bool b) const { return a && b; } };
struct OrFn { bool operator()(bool a, bool b) const { return a || b; } };
struct XorFn { bool operator()(bool a, bool b) const { return a != b; } };

// Integer power by squaring with wrap-around; negative exponents truncate 1/base^-e toward 0.
template <class B, class E>
B int_pow(B base, E exponent) {
  if constexpr (std::is_signed_v<E>) {
    if (exponent < 0) {
      if (base == 1) return 1;
      if constexpr (std::is_signed_v<B>) {
        if (base == -1) return (exponent & 1) ? B(-1) : B(1);
      }
      return 0;
    }
  }
  uint64_t result = 1, factor = uint64_t(base);
  for (uint64_t e = uint64_t(exponent); e != 0; e >>= 1) {
    if (e & 1) result *= factor;
    factor *= factor;
  }
  return wrap<B>(result);
}

struct PowFn {
  template <class B, class E> B operator()(B base, E exponent) const {
    if constexpr (std::is_floating_point_v<B>) return std::pow(base, static_cast<B>(exponent));
    else if constexpr (std::is_floating_point_v<E>) {
      return float_to_int<B>(std::pow(double(base), double(exponent)));
    } else {
      return int_pow(base, exponent);
    }
  }
};

// ---- binary op definitions ------------------------------------------------------------------

// A compute type of the class set Types, to ask a per-element function its result type.
template <unsigned Types>
using representative_t =
    std::conditional_t<(Types & kFloat) != 0, float,
                       std::conditional_t<(Types & kSigned) != 0, int32_t,
                                          std::conditional_t<(Types & kUnsigned) != 0, uint32_t,
                                                             bool>>>;

// For `make` functions, which run with either context.
DType first_input_dtype(const InferContext& ctx) { return ctx.input_dtype(0); }
DType first_input_dtype(const ComputeContext& ctx) { return ctx.input(0).dtype(); }

// Wraps an attribute-free per-element function as the `make` argument of the op builders.
template <class Fn>
auto no_attrs(Fn fn) {
  return [fn](const auto&) { return fn; };
}

// An op on two inputs of one type in Types, broadcast together. make(ctx) reads and validates
// the node's attributes (ctx is the InferContext at load, the ComputeContext at run time) and
// returns the per-element function. The output has the input type, or bool when that function
// returns bool (comparisons, logic).
template <unsigned Types, class Make>
OpDef binary_op(Make make, int64_t grain = kCheapGrain) {
  using Fn = std::invoke_result_t<Make, const InferContext&>;
  using C = representative_t<Types>;
  static constexpr bool out_bool = std::is_same_v<std::invoke_result_t<Fn, C, C>, bool>;
  OpDef def;
  def.infer = [make](InferContext& ctx) {
    expect_inputs(ctx, 2, 2);
    if (ctx.opset < 7 && ctx.node.has_attr("broadcast")) {
      ctx.unsupported("legacy 'broadcast' attribute (opset < 7)");
    }
    check_type(ctx, 0, Types);
    check_same_type(ctx, 0, 1);
    make(ctx);
    ctx.set_output(0, out_bool ? DType::Bool : ctx.input_dtype(0), broadcast_inputs(ctx));
  };
  def.compute = [make, grain](const ComputeContext& ctx) {
    const auto fn = make(ctx);
    dispatch_types<Types>(ctx, ctx.input(0).dtype(), [&](auto tag) {
      using T = decltype(tag);
      using Out = std::conditional_t<out_bool, bool, T>;
      run_binary<T, T, Out>(ctx, ctx.input(0), ctx.input(1), ctx.output(0), fn, grain);
    });
  };
  return def;
}

// Sum, Mean, Max, Min: any number of inputs broadcast together, folded pairwise into the output.
template <unsigned Types, class Fn>
OpDef variadic_op(Fn fn, bool mean) {
  OpDef def;
  def.infer = [](InferContext& ctx) {
    expect_inputs(ctx, 1, std::numeric_limits<size_t>::max());
    check_type(ctx, 0, Types);
    for (size_t i = 1; i < ctx.num_inputs(); ++i) check_same_type(ctx, 0, i);
    ctx.set_output(0, ctx.input_dtype(0), broadcast_inputs(ctx));
  };
  def.compute = [fn, mean](const ComputeContext& ctx) {
    Tensor& out = ctx.output(0);
    dispatch_types<Types>(ctx, out.dtype(), [&](auto tag) {
      using T = decltype(tag);
      using C = compute_t<T>;
      const size_t n = ctx.num_inputs();
      if (n == 1) {
        if (out.nbytes() != 0) std::memcpy(out.raw(), ctx.input(0).raw(), out.nbytes());
      } else {
        run_binary<T, T, T>(ctx, ctx.input(0), ctx.input(1), out, fn);
        for (size_t i = 2; i < n; ++i) run_binary<T, T, T>(ctx, out, ctx.input(i), out, fn);
      }
      if constexpr (std::is_floating_point_v<C>) {
        if (mean) {
          const C count = static_cast<C>(n);
          run_unary<T, T>(ctx, out, out, [count](C x) { return x / count; }, kCheapGrain);
        }
      }
    });
  };
  return def;
}

// Pow: the exponent may have another numeric type than the base; the output has the base type.
OpDef pow_op() {
  OpDef def;
  def.infer = [](InferContext& ctx) {
    expect_inputs(ctx, 2, 2);
    check_type(ctx, 0, ctx.opset >= 12 ? kFloat | kSigned : kFloat);
    const DType base = ctx.input_dtype(0);
    if (base == DType::I8 || base == DType::I16) ctx.fail("Pow does not accept int8/int16 bases");
    if (ctx.opset >= 12) check_type(ctx, 1, kNumeric);
    else check_same_type(ctx, 0, 1);
    ctx.set_output(0, base, broadcast_inputs(ctx));
  };
  def.compute = [](const ComputeContext& ctx) {
    dispatch_types<kFloat | kSigned>(ctx, ctx.input(0).dtype(), [&](auto base) {
      dispatch_types<kNumeric>(ctx, ctx.input(1).dtype(), [&](auto exponent) {
        using B = decltype(base);
        using E = decltype(exponent);
        run_binary<B, E, B>(ctx, ctx.input(0), ctx.input(1), ctx.output(0), PowFn{},
                            kCostlyGrain);
      });
    });
  };
  return def;
}

// PRelu: the slope broadcasts to X (unidirectionally); the output has X's shape.
OpDef prelu_op() {
  OpDef def;
  def.infer = [](InferContext& ctx) {
    expect_inputs(ctx, 2, 2);
    check_type(ctx, 0, ctx.opset >= 16 ? kNumeric : kFloat);
    check_same_type(ctx, 0, 1);
    if (broadcast_inputs(ctx) != ctx.input_shape(0)) {
      ctx.fail("slope " + shape_str(ctx.input_shape(1)) + " does not broadcast to X " +
               shape_str(ctx.input_shape(0)));
    }
    ctx.set_output(0, ctx.input_dtype(0), ctx.input_shape(0));
  };
  def.compute = [](const ComputeContext& ctx) {
    dispatch_types<kNumeric>(ctx, ctx.input(0).dtype(), [&](auto tag) {
      using T = decltype(tag);
      run_binary<T, T, T>(ctx, ctx.input(0), ctx.input(1), ctx.output(0), PReluFn{});
    });
  };
  return def;
}

OpDef where_op() {
  OpDef def;
  def.infer = [](InferContext& ctx) {
    expect_inputs(ctx, 3, 3);
    if (ctx.input_dtype(0) != DType::Bool) ctx.fail("condition must be bool");
    const DType t = ctx.input_dtype(1);
    if (!dtype_supported(t)) ctx.unsupported(std::string("type ") + dtype_name(t));
    check_same_type(ctx, 1, 2);
    ctx.set_output(0, t, broadcast_inputs(ctx));
  };
  def.compute = [](const ComputeContext& ctx) {
    Tensor& out = ctx.output(0);
    const Tensor& cond = ctx.input(0);
    const Tensor& x = ctx.input(1);
    const Tensor& y = ctx.input(2);
    const auto plan = plan_broadcast<3>(out.shape(), {&cond.shape(), &x.shape(), &y.shape()});
    const std::array<int64_t, 3> step = {plan.strides[0].back(), plan.strides[1].back(),
                                         plan.strides[2].back()};
    // Selection copies bits, so one kernel per element size serves every type.
    auto select = [&](auto tag) {
      using T = decltype(tag);
      const bool* pc = cond.data<bool>();
      const T* px = static_cast<const T*>(x.raw());
      const T* py = static_cast<const T*>(y.raw());
      T* po = static_cast<T*>(out.raw());
      parallel(ctx, out.numel(), kCheapGrain, [&](int64_t begin, int64_t end) {
        for_each_run(plan, begin, end,
                     [&](int64_t pos, const std::array<int64_t, 3>& off, int64_t n) {
          const bool* c = pc + off[0];
          const T* a = px + off[1];
          const T* b = py + off[2];
          T* o = po + pos;
          for (int64_t i = 0; i < n; ++i) o[i] = c[i * step[0]] ? a[i * step[1]] : b[i * step[2]];
        });
      });
    };
    switch (dtype_size(out.dtype())) {
      case 1: select(uint8_t{}); break;
      case 2: select(uint16_t{}); break;
      case 4: select(uint32_t{}); break;
      case 8: select(uint64_t{}); break;
      default:
        throw Error(ErrorKind::Internal, ctx.node.describe() + ": no kernel for this element size");
    }
  };
  return def;
}

// ---- unary ops --------------------------------------------------------------------------------

// An op on one input of a type in Types, same type and shape out (or bool when the per-element
// function returns bool). make(ctx) as for binary_op.
template <unsigned Types, class Make>
OpDef unary_op(Make make, int64_t grain = kCostlyGrain) {
  using Fn = std::invoke_result_t<Make, const InferContext&>;
  static constexpr bool out_bool =
      std::is_same_v<std::invoke_result_t<Fn, representative_t<Types>>, bool>;
  OpDef def;
  def.infer = [make](InferContext& ctx) {
    expect_inputs(ctx, 1, 1);
    check_type(ctx, 0, Types);
    make(ctx);
    ctx.set_output(0, out_bool ? DType::Bool : ctx.input_dtype(0), ctx.input_shape(0));
  };
  def.compute = [make, grain](const ComputeContext& ctx) {
    const auto fn = make(ctx);
    dispatch_types<Types>(ctx, ctx.input(0).dtype(), [&](auto tag) {
      using T = decltype(tag);
      using Out = std::conditional_t<out_bool, bool, T>;
      run_unary<T, Out>(ctx, ctx.input(0), ctx.output(0), fn, grain);
    });
  };
  return def;
}

// Float activations with attributes: make(ctx) reads them once per call.
template <class Make>
OpDef float_op(Make make) {
  return unary_op<kFloat>(make);
}

template <class F> F sigmoid(F x) { return F(1) / (F(1) + exp_fast(-x)); }

// Sigmoid. float32 runs through the logistic kernel, which gives ONNX Runtime's results bit for
// bit (kernels/include/kernels/logistic_f32.h); float16 and double use the formula above.
OpDef sigmoid_op() {
  OpDef def = float_op(no_attrs([](auto x) { return sigmoid(x); }));
  def.compute = [other_types = def.compute](const ComputeContext& ctx) {
    if (ctx.input(0).dtype() != DType::F32) return other_types(ctx);
    const kernels::LogisticF32Fn logistic = kernels::logistic_f32_kernel(kernels::active_isa());
    const float* x = ctx.input(0).data<float>();
    float* y = ctx.output(0).data<float>();
    parallel(ctx, ctx.input(0).numel(), kCostlyGrain,
             [&](int64_t begin, int64_t end) { logistic(x + begin, y + begin, end - begin); });
  };
  return def;
}
// log(1 + exp(x)) without overflow for large x.
template <class F> F softplus(F x) {
  return x > F(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

// Clip: bounds are attributes before opset 11, optional scalar inputs from 11 on.
OpDef clip_op() {
  OpDef def;
  def.infer = [](InferContext& ctx) {
    expect_inputs(ctx, 1, ctx.opset >= 11 ? 3 : 1);
    check_type(ctx, 0, ctx.opset >= 12 ? kNumeric : kFloat);
    for (size_t i = 1; i < ctx.num_inputs(); ++i) {
      if (!ctx.has_input(i)) continue;
      check_same_type(ctx, 0, i);
      if (shape_numel(ctx.input_shape(i)) != 1) {
        ctx.fail(std::string(i == 1 ? "min" : "max") + " must be a scalar, got shape " +
                 shape_str(ctx.input_shape(i)));
      }
    }
    ctx.set_output(0, ctx.input_dtype(0), ctx.input_shape(0));
  };
  def.compute = [](const ComputeContext& ctx) {
    dispatch_types<kNumeric>(ctx, ctx.input(0).dtype(), [&](auto tag) {
      using T = decltype(tag);
      using C = compute_t<T>;
      C lo = std::numeric_limits<C>::lowest();
      C hi = std::numeric_limits<C>::max();
      if (ctx.opset < 11) {
        lo = static_cast<C>(ctx.node.attr_float("min", std::numeric_limits<float>::lowest()));
        hi = static_cast<C>(ctx.node.attr_float("max", std::numeric_limits<float>::max()));
      } else {
        if (ctx.has_input(1)) lo = load(ctx.input(1).data<T>()[0]);
        if (ctx.has_input(2)) hi = load(ctx.input(2).data<T>()[0]);
      }
      // min > max clips everything to max, as the spec asks.
      run_unary<T, T>(ctx, ctx.input(0), ctx.output(0),
                      [lo, hi](C x) { return std::min(std::max(x, lo), hi); }, kCheapGrain);
    });
  };
  return def;
}

// ---- Cast ---------------------------------------------------------------------------------------

template <class To, class From>
To convert(From v) {
  if constexpr (std::is_same_v<From, Half>) return convert<To>(half_to_float(v.bits));
  else if constexpr (std::is_same_v<To, Half>) return Half{float_to_half(static_cast<float>(v))};
  else if constexpr (std::is_same_v<To, bool>) return v != From(0);
  else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
    return float_to_int<To>(v);
  } else {
    return static_cast<To>(v);
  }
}

// Converts `in` into `out`'s dtype. int4/uint4 are held one per byte: results wrap to 4 bits.
void cast_tensor(const ComputeContext& ctx, const Tensor& in, Tensor& out) {
  if (in.dtype() == out.dtype()) {
    if (in.nbytes() != 0) std::memcpy(out.raw(), in.raw(), in.nbytes());
    return;
  }
  const DType to = out.dtype();
  dispatch_dtype(in.dtype(), "Cast", [&](auto from_tag) {
    dispatch_dtype(to, "Cast", [&](auto to_tag) {
      using From = decltype(from_tag);
      using To = decltype(to_tag);
      const From* x = in.data<From>();
      To* y = out.data<To>();
      parallel(ctx, in.numel(), kCheapGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) y[i] = convert<To>(x[i]);
        if constexpr (std::is_same_v<To, int8_t>) {
          if (to == DType::I4) {
            for (int64_t i = begin; i < end; ++i) y[i] = int8_t(((y[i] & 0xF) ^ 8) - 8);
          }
        } else if constexpr (std::is_same_v<To, uint8_t>) {
          if (to == DType::U4) {
            for (int64_t i = begin; i < end; ++i) y[i] = uint8_t(y[i] & 0xF);
          }
        }
      });
    });
  });
}

void check_cast_type(const InferContext& ctx, DType t, const char* what) {
  if (!dtype_supported(t)) ctx.unsupported(std::string("cast ") + what + " " + dtype_name(t));
}

OpDef cast_op() {
  OpDef def;
  def.infer = [](InferContext& ctx) {
    expect_inputs(ctx, 1, 1);
    check_cast_type(ctx, ctx.input_dtype(0), "from");
    // Float8 targets are the only ones 'saturate' affects; nibble has no float8 tensors.
    DType to = DType::Undefined;
    try {
      to = dtype_from_onnx(static_cast<int32_t>(ctx.node.attr_int("to")));
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::Unsupported) throw;
      ctx.unsupported(e.what());
    }
    check_cast_type(ctx, to, "to");
    ctx.set_output(0, to, ctx.input_shape(0));
  };
  def.compute = [](const ComputeContext& ctx) { cast_tensor(ctx, ctx.input(0), ctx.output(0)); };
  return def;
}

OpDef cast_like_op() {
  OpDef def;
  def.infer = [](InferContext& ctx) {
    expect_inputs(ctx, 2, 2);
    check_cast_type(ctx, ctx.input_dtype(0), "from");
    check_cast_type(ctx, ctx.input_dtype(1), "to");
    ctx.set_output(0, ctx.input_dtype(1), ctx.input_shape(0));
  };
  def.compute = [](const ComputeContext& ctx) { cast_tensor(ctx, ctx.input(0), ctx.output(0)); };
  return def;
}

}  // namespace

void register_elementwise_ops(OpRegistry& r) {
  // Binary arithmetic, comparisons, logic.
  r.add("", "Add", binary_op<kNumeric>(no_attrs(AddFn{})));
  r.add("", "Sub", binary_op<kNumeric>(no_attrs(SubFn{})));
  r.add("", "Mul", binary_op<kNumeric>(no_attrs(MulFn{})));
  r.add("", "Div", binary_op<kNumeric>(no_attrs(DivFn{})));
  r.add("", "Mod", binary_op<kNumeric>([](const auto& ctx) {
    const int64_t fmod = ctx.node.attr_int("fmod", 0);
    if (fmod != 0 && fmod != 1) ctx.fail("fmod must be 0 or 1");
    if (fmod == 0 && type_class(first_input_dtype(ctx)) == kFloat) {
      ctx.fail("floating-point Mod requires fmod=1");
    }
    return ModFn{fmod == 1};
  }));
  r.add("", "Pow", pow_op());
  r.add("", "PRelu", prelu_op());
  r.add("", "BitShift", binary_op<kUnsigned>([](const auto& ctx) {
    const std::string direction = ctx.node.attr_string("direction");
    if (direction != "LEFT" && direction != "RIGHT") {
      ctx.fail("direction must be LEFT or RIGHT, got '" + direction + "'");
    }
    return ShiftFn{direction == "LEFT"};
  }));
  r.add("", "BitwiseAnd", binary_op<kInt>(no_attrs(BitAndFn{})));
  r.add("", "BitwiseOr", binary_op<kInt>(no_attrs(BitOrFn{})));
  r.add("", "BitwiseXor", binary_op<kInt>(no_attrs(BitXorFn{})));
  r.add("", "Equal", binary_op<kAll>(no_attrs(EqualFn{})));
  r.add("", "Less", binary_op<kNumeric>(no_attrs(LessFn{})));
  r.add("", "LessOrEqual", binary_op<kNumeric>(no_attrs(LessEqualFn{})));
  r.add("", "Greater", binary_op<kNumeric>(no_attrs(GreaterFn{})));
  r.add("", "GreaterOrEqual", binary_op<kNumeric>(no_attrs(GreaterEqualFn{})));
  r.add("", "And", binary_op<kBool>(no_attrs(AndFn{})));
  r.add("", "Or", binary_op<kBool>(no_attrs(OrFn{})));
  r.add("", "Xor", binary_op<kBool>(no_attrs(XorFn{})));
  r.add("", "Where", where_op());
  r.add("", "Sum", variadic_op<kFloat>(AddFn{}, false));
  r.add("", "Mean", variadic_op<kFloat>(AddFn{}, true));
  r.add("", "Max", variadic_op<kNumeric>(MaxFn{}, false));
  r.add("", "Min", variadic_op<kNumeric>(MinFn{}, false));

  // Unary ops defined for integers too.
  r.add("", "Neg", unary_op<kSignedNumeric>(no_attrs([](auto x) {
    using C = decltype(x);
    if constexpr (std::is_integral_v<C>) return wrap<C>(0 - uint64_t(x));
    else return -x;
  }), kCheapGrain));
  r.add("", "Abs", unary_op<kNumeric>(no_attrs([](auto x) {
    using C = decltype(x);
    if constexpr (std::is_unsigned_v<C>) return x;
    else if constexpr (std::is_integral_v<C>) return x < 0 ? wrap<C>(0 - uint64_t(x)) : x;
    else return std::abs(x);
  }), kCheapGrain));
  r.add("", "Sign", unary_op<kNumeric>(no_attrs([](auto x) {
    using C = decltype(x);
    return x > C(0) ? C(1) : x < C(0) ? C(-1) : x;  // keeps 0 and NaN
  }), kCheapGrain));
  r.add("", "Relu", unary_op<kSignedNumeric>(no_attrs([](auto x) {
    using C = decltype(x);
    return x < C(0) ? C(0) : x;
  }), kCheapGrain));
  r.add("", "Not", unary_op<kBool>(no_attrs([](bool x) { return !x; }), kCheapGrain));
  r.add("", "BitwiseNot", unary_op<kInt>(no_attrs([](auto x) {
    return static_cast<decltype(x)>(~x);
  }), kCheapGrain));

  // Float math.
  auto math = [&](const char* name, auto fn) { r.add("", name, float_op(no_attrs(fn))); };
  math("Sqrt", [](auto x) { return std::sqrt(x); });
  math("Exp", [](auto x) { return exp_fast(x); });
  math("Log", [](auto x) { return std::log(x); });
  math("Reciprocal", [](auto x) { return decltype(x)(1) / x; });
  math("Floor", [](auto x) { return std::floor(x); });
  math("Ceil", [](auto x) { return std::ceil(x); });
  math("Round", [](auto x) { return std::nearbyint(x); });  // default mode: half to even
  math("Erf", [](auto x) { return std::erf(x); });
  math("Sin", [](auto x) { return std::sin(x); });
  math("Cos", [](auto x) { return std::cos(x); });
  math("Tan", [](auto x) { return std::tan(x); });
  math("Asin", [](auto x) { return std::asin(x); });
  math("Acos", [](auto x) { return std::acos(x); });
  math("Atan", [](auto x) { return std::atan(x); });
  math("Sinh", [](auto x) { return std::sinh(x); });
  math("Cosh", [](auto x) { return std::cosh(x); });
  math("Asinh", [](auto x) { return std::asinh(x); });
  math("Acosh", [](auto x) { return std::acosh(x); });
  math("Atanh", [](auto x) { return std::atanh(x); });
  math("Tanh", [](auto x) { return std::tanh(x); });
  r.add("", "Sigmoid", sigmoid_op());
  math("Softplus", [](auto x) { return softplus(x); });
  math("Softsign", [](auto x) { return x / (decltype(x)(1) + std::abs(x)); });
  math("Mish", [](auto x) { return x * std::tanh(softplus(x)); });
  math("HardSwish", [](auto x) {
    using F = decltype(x);
    return x * std::clamp(x / F(6) + F(0.5), F(0), F(1));
  });
  r.add("", "IsNaN", unary_op<kFloat>(no_attrs([](auto x) -> bool { return x != x; })));
  r.add("", "IsInf", unary_op<kFloat>([](const auto& ctx) {
    const bool negative = ctx.node.attr_int("detect_negative", 1) != 0;
    const bool positive = ctx.node.attr_int("detect_positive", 1) != 0;
    return [negative, positive](auto x) -> bool {
      return std::isinf(x) && (x > 0 ? positive : negative);
    };
  }));

  // Activations with attributes.
  r.add("", "LeakyRelu", float_op([](const auto& ctx) {
    const float alpha = ctx.node.attr_float("alpha", 0.01f);
    return [alpha](auto x) { return x < 0 ? decltype(x)(alpha) * x : x; };
  }));
  r.add("", "Elu", float_op([](const auto& ctx) {
    const float alpha = ctx.node.attr_float("alpha", 1.0f);
    return [alpha](auto x) { return x < 0 ? decltype(x)(alpha) * std::expm1(x) : x; };
  }));
  r.add("", "Celu", float_op([](const auto& ctx) {
    const float alpha = ctx.node.attr_float("alpha", 1.0f);
    if (alpha == 0) ctx.fail("alpha must not be 0");
    return [alpha](auto x) {
      using F = decltype(x);
      return std::max(F(0), x) + std::min(F(0), F(alpha) * std::expm1(x / F(alpha)));
    };
  }));
  r.add("", "Selu", float_op([](const auto& ctx) {
    const float alpha = ctx.node.attr_float("alpha", 1.67326319217681884765625f);
    const float gamma = ctx.node.attr_float("gamma", 1.05070102214813232421875f);
    return [alpha, gamma](auto x) {
      using F = decltype(x);
      return F(gamma) * (x <= 0 ? F(alpha) * std::expm1(x) : x);
    };
  }));
  r.add("", "ThresholdedRelu", float_op([](const auto& ctx) {
    const float alpha = ctx.node.attr_float("alpha", 1.0f);
    return [alpha](auto x) { return x > decltype(x)(alpha) ? x : decltype(x)(0); };
  }));
  r.add("", "HardSigmoid", float_op([](const auto& ctx) {
    const float alpha = ctx.node.attr_float("alpha", 0.2f);
    const float beta = ctx.node.attr_float("beta", 0.5f);
    return [alpha, beta](auto x) {
      using F = decltype(x);
      return std::clamp(F(alpha) * x + F(beta), F(0), F(1));
    };
  }));
  r.add("", "Shrink", float_op([](const auto& ctx) {
    const float bias = ctx.node.attr_float("bias", 0.0f);
    const float lambd = ctx.node.attr_float("lambd", 0.5f);
    return [bias, lambd](auto x) {
      using F = decltype(x);
      return x < F(-lambd) ? x + F(bias) : x > F(lambd) ? x - F(bias) : F(0);
    };
  }));
  r.add("", "Swish", float_op([](const auto& ctx) {
    const float alpha = ctx.node.attr_float("alpha", 1.0f);
    return [alpha](auto x) { return x * sigmoid(decltype(x)(alpha) * x); };
  }));
  r.add("", "Gelu", float_op([](const auto& ctx) {
    const std::string approximate = ctx.node.attr_string("approximate", "none");
    if (approximate != "none" && approximate != "tanh") {
      ctx.fail("approximate must be 'none' or 'tanh', got '" + approximate + "'");
    }
    const bool use_tanh = approximate == "tanh";
    return [use_tanh](auto x) {
      using F = decltype(x);
      if (use_tanh) {
        const F k = F(0.7978845608028654);  // sqrt(2 / pi)
        return F(0.5) * x * (F(1) + std::tanh(k * (x + F(0.044715) * x * x * x)));
      }
      return F(0.5) * x * (F(1) + std::erf(x * F(0.7071067811865476)));
    };
  }));

  r.add("", "Clip", clip_op());
  r.add("", "Cast", cast_op());
  r.add("", "CastLike", cast_like_op());
}

}  // namespace nibble
