// Helpers shared by the elementwise and reduction op families (engine/ops/elementwise.cpp,
// engine/ops/reduce.cpp): element loads/stores that widen float16, a vectorizable exp and the
// float32 map loop built for AVX2, ONNX type classes for validation, typed dispatch restricted
// to those classes, and a threading helper.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "engine/ops/op_util.h"

namespace nibble::ew {

// Minimum elements per parallel task: cheap ops (add, compare, copy) are memory bound and only
// pay off threading on large tensors; transcendental ones (exp, erf, pow) on smaller ones.
constexpr int64_t kCheapGrain = int64_t{1} << 15;
constexpr int64_t kCostlyGrain = int64_t{1} << 12;

// fn(begin, end) over [0, n), on the pool when there is more than one grain of work.
template <class Fn>
void parallel(const ComputeContext& ctx, int64_t n, int64_t grain, const Fn& fn) {
  if (n <= grain) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
  ctx.pool().parallel_for(n, fn, grain);
}

// ---- element types ----------------------------------------------------------------------------

// The type a per-element function sees: float for float16, the element type otherwise.
template <class T> struct ComputeType { using type = T; };
template <> struct ComputeType<Half> { using type = float; };
template <class T> using compute_t = typename ComputeType<T>::type;

template <class T>
inline compute_t<T> load(T v) {
  if constexpr (std::is_same_v<T, Half>) return half_to_float(v.bits);
  else return v;
}
template <class T>
inline T store(compute_t<T> v) {
  if constexpr (std::is_same_v<T, Half>) return Half{float_to_half(v)};
  else return v;
}

template <class T> constexpr bool is_float_v = std::is_floating_point_v<compute_t<T>>;
template <class T> constexpr bool is_bool_v = std::is_same_v<T, bool>;

// Float -> integer conversion: truncation toward zero, then modular narrowing (what ONNX
// Runtime's casts produce for in-range values, e.g. -9.0 -> int4 7). NaN and values beyond
// int64 are undefined in C++, so they are pinned first.
template <class To>
To float_to_int(double v) {
  if (std::isnan(v)) return 0;
  constexpr double two63 = 9223372036854775808.0;
  if constexpr (std::is_same_v<To, uint64_t>) {
    if (v >= 2 * two63) return std::numeric_limits<uint64_t>::max();
    if (v >= two63) return static_cast<uint64_t>(v);
  }
  if (v >= two63) return static_cast<To>(std::numeric_limits<int64_t>::max());
  if (v < -two63) return static_cast<To>(std::numeric_limits<int64_t>::min());
  return static_cast<To>(static_cast<int64_t>(v));
}

// cond ? a : b through bit masks. With a plain ?: whose arm is a constant, GCC specializes the
// code that follows for that constant, and the branch left behind stops the loop vectorizing.
inline float select_bits(bool cond, float a, float b) {
  const uint32_t mask = 0u - uint32_t(cond);
  return std::bit_cast<float>((std::bit_cast<uint32_t>(a) & mask) |
                              (std::bit_cast<uint32_t>(b) & ~mask));
}

// exp(x) in plain float arithmetic, so loops over it vectorize (std::exp is one library call
// per element). Cephes expf: x = n*ln2 + r with |r| <= ln2/2, exp(r) by a polynomial, 2^n
// applied as two power-of-two factors so results overflow to inf and underflow through the
// subnormals like std::exp. Within 2 ulp of std::exp for normal results; NaN stays NaN.
inline float exp_fast(float x) {
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: t + kRound holds round(t) in its low bits
  float xc = select_bits(x < -104.0f, -104.0f, x);  // exp(-104) rounds to 0 ...
  xc = select_bits(xc > 89.0f, 89.0f, xc);          // ... and exp(89) to inf, like all beyond
  const float t = xc * 1.44269504088896341f + kRound;
  const float n = t - kRound;
  const float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;  // ln2 split in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // n as an integer, read from t's low bits (a float->int conversion would not vectorize).
  const int32_t e = int32_t(std::bit_cast<uint32_t>(t) - std::bit_cast<uint32_t>(kRound));
  const int32_t e1 = e >> 1, e2 = e - e1;
  return p * std::bit_cast<float>((e1 + 127) << 23) * std::bit_cast<float>((e2 + 127) << 23);
}
inline double exp_fast(double x) { return std::exp(x); }

// y[i] = fn(x[i]) over float32 data: the loop of the float activations (Sigmoid, Exp, ...).
// With GCC on x86-64 it is compiled twice and the CPU picks at load time (ifunc): AVX2+FMA
// (8 lanes, 3-4x faster with exp_fast) or the SSE2 baseline; other compilers get the baseline.
// x and y may be the same buffer.
template <class Fn>
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
void map_f32(const float* x, float* y, int64_t n, const Fn& fn) {
  for (int64_t i = 0; i < n; ++i) y[i] = fn(x[i]);
}

// ---- type classes -----------------------------------------------------------------------------

// Classes that ONNX type constraints are built from.
enum TypeClass : unsigned {
  kFloat = 1u << 0,     // float16, float, double
  kSigned = 1u << 1,    // int8 .. int64
  kUnsigned = 1u << 2,  // uint8 .. uint64
  kBool = 1u << 3,
  kInt = kSigned | kUnsigned,
  kSignedNumeric = kFloat | kSigned,
  kNumeric = kFloat | kInt,
  kAll = kNumeric | kBool,
};

inline unsigned type_class(DType t) {
  switch (t) {
    case DType::F16: case DType::F32: case DType::F64: return kFloat;
    case DType::I8: case DType::I16: case DType::I32: case DType::I64: return kSigned;
    case DType::U8: case DType::U16: case DType::U32: case DType::U64: return kUnsigned;
    case DType::Bool: return kBool;
    default: return 0;  // int4/uint4 only take part in Cast, CastLike and Where
  }
}

template <class T>
constexpr unsigned class_of = is_float_v<T> ? kFloat
                              : is_bool_v<T> ? kBool
                              : std::is_signed_v<T> ? kSigned : kUnsigned;

// Calls f(T{}) for the element type of `dtype` when its class is in Types; only those types are
// instantiated, so f may use operations other types lack. Infer has already rejected the rest.
template <unsigned Types, class F>
void dispatch_types(const ComputeContext& ctx, DType dtype, F&& f) {
  dispatch_dtype(dtype, ctx.node.op_type.c_str(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr ((Types & class_of<T>) != 0) {
      f(tag);
    } else {
      throw Error(ErrorKind::Internal,
                  ctx.node.describe() + ": dtype " + dtype_name(dtype) + " passed infer");
    }
  });
}

// ---- validation in infer ----------------------------------------------------------------------

inline void expect_inputs(const InferContext& ctx, size_t min, size_t max) {
  const size_t n = ctx.num_inputs();
  if (n < min || n > max) {
    ctx.fail("expects " +
             (min == max ? std::to_string(min) : std::to_string(min) + ".." + std::to_string(max)) +
             " inputs, got " + std::to_string(n));
  }
  if (!ctx.has_output(0)) ctx.fail("has no output");
}

// bfloat16 and string tensors are valid ONNX for many of these ops but nibble does not compute
// on them; any other type outside the op's constraint makes the model invalid.
inline void check_type(const InferContext& ctx, size_t i, unsigned allowed) {
  const DType t = ctx.input_dtype(i);
  if (type_class(t) & allowed) return;
  const std::string what = "input " + std::to_string(i) + " has type " + dtype_name(t);
  if (t == DType::BF16 || t == DType::String) ctx.unsupported(what);
  ctx.fail(what + ", which this op does not accept");
}

inline void check_same_type(const InferContext& ctx, size_t i, size_t j) {
  if (ctx.input_dtype(i) != ctx.input_dtype(j)) {
    ctx.fail("inputs " + std::to_string(i) + " and " + std::to_string(j) +
             " have different types (" + dtype_name(ctx.input_dtype(i)) + ", " +
             dtype_name(ctx.input_dtype(j)) + ")");
  }
}

}  // namespace nibble::ew
