// Helpers shared by the op families: dtype dispatch, broadcasting, axis handling.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "engine/ops/op_registry.h"

namespace nibble {

// float16 element as stored in tensors (IEEE binary16 bits). Ops that accept F16 compute in float.
struct Half {
  uint16_t bits;
};

// Calls f(T{}) with T the C++ element type of `dtype`: float, double, Half, int64_t, int32_t,
// int16_t, int8_t, uint64_t, uint32_t, uint16_t, uint8_t, bool. I4/U4 map to int8_t/uint8_t (one
// element per byte). Throws Error(Unsupported) for other dtypes, naming `what`.
template <typename F>
decltype(auto) dispatch_dtype(DType dtype, const char* what, F&& f) {
  switch (dtype) {
    case DType::F32: return f(float{});
    case DType::F64: return f(double{});
    case DType::F16: return f(Half{});
    case DType::I64: return f(int64_t{});
    case DType::I32: return f(int32_t{});
    case DType::I16: return f(int16_t{});
    case DType::I8: case DType::I4: return f(int8_t{});
    case DType::U64: return f(uint64_t{});
    case DType::U32: return f(uint32_t{});
    case DType::U16: return f(uint16_t{});
    case DType::U8: case DType::U4: return f(uint8_t{});
    case DType::Bool: return f(bool{});
    default:
      throw Error(ErrorKind::Unsupported,
                  std::string(what) + ": unsupported dtype " + dtype_name(dtype));
  }
}

// Element <-> float conversions that also cover Half.
template <typename T> inline float to_float(T v) { return static_cast<float>(v); }
template <> inline float to_float<Half>(Half v) { return half_to_float(v.bits); }
template <typename T> inline T from_float(float v) { return static_cast<T>(v); }
template <> inline Half from_float<Half>(float v) { return Half{float_to_half(v)}; }

// Numpy-style multidirectional broadcast; throws Error(InvalidModel) when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b);
// Strides (in elements) of `shape` as seen from an output of rank `out_rank` under
// broadcasting: 0 along broadcast dimensions.
std::vector<int64_t> broadcast_strides(const Shape& shape, size_t out_rank);
// Row-major contiguous strides in elements.
std::vector<int64_t> contiguous_strides(const Shape& shape);
// Maps a possibly negative axis into [0, rank); throws Error(InvalidModel) when out of range.
int64_t normalize_axis(int64_t axis, int64_t rank, const Node& node);

}  // namespace nibble
