// Helpers for the data-movement op tests: patterned tensors, byte-exact comparison and naive
// index arithmetic to build reference results.
#pragma once

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "nibble/nibble.h"
#include "tests/model_builder.h"

namespace nibble::testing {

// Element i holds a pattern derived from i in every byte, so misplaced elements show up in any
// dtype. Only for ops that move data (the values are not meaningful numbers).
inline Tensor patterned(DType dtype, const Shape& shape) {
  Tensor t(dtype, shape);
  const size_t esize = dtype_size(dtype);
  auto* bytes = static_cast<uint8_t*>(t.raw());
  for (int64_t i = 0; i < t.numel(); ++i)
    for (size_t b = 0; b < esize; ++b)
      bytes[size_t(i) * esize + b] = uint8_t((i * 131 + int64_t(b) * 17 + 7) % 251);
  return t;
}

inline Tensor floats(const Shape& shape, std::vector<float> values) {
  Tensor t(DType::F32, shape);
  REQUIRE(values.size() == size_t(t.numel()));
  std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

inline Tensor int64s(const Shape& shape, std::vector<int64_t> values) {
  Tensor t(DType::I64, shape);
  REQUIRE(values.size() == size_t(t.numel()));
  std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

inline bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

// Row-major coordinates of flat index i in `shape`.
inline std::vector<int64_t> coords_of(int64_t i, const Shape& shape) {
  std::vector<int64_t> c(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    c[d] = i % shape[d];
    i /= shape[d];
  }
  return c;
}

inline int64_t flat_index(const std::vector<int64_t>& c, const Shape& shape) {
  int64_t i = 0;
  for (size_t d = 0; d < shape.size(); ++d) i = i * shape[d] + c[d];
  return i;
}

inline void copy_element(Tensor& dst, int64_t di, const Tensor& src, int64_t si) {
  const size_t esize = dtype_size(src.dtype());
  std::memcpy(static_cast<uint8_t*>(dst.raw()) + size_t(di) * esize,
              static_cast<const uint8_t*>(src.raw()) + size_t(si) * esize, esize);
}

inline void string_attr(onnx::NodeProto& n, const std::string& key, const std::string& v) {
  auto* a = n.add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}

inline SessionOptions threads(int n) {
  SessionOptions o;
  o.num_threads = n;
  return o;
}

}  // namespace nibble::testing
