#include "nibble/tensor.h"

#include <cstring>

#include "engine/ops/op_util.h"
#include "nibble/error.h"

namespace nibble {

int64_t shape_numel(const Shape& shape) {
  constexpr int64_t kMax = int64_t{1} << 62;
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error(ErrorKind::InvalidArgument, "negative dimension in shape " + shape_str(shape));
    if (d != 0 && n > kMax / d) {
      throw Error(ErrorKind::InvalidArgument, "shape " + shape_str(shape) + " has too many elements");
    }
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  numel_ = shape_numel(shape_);
  size_t bytes = nbytes();
  // Allocate at least one byte so data() is never null, and zero it: tensors start defined.
  storage_ = std::shared_ptr<uint8_t[]>(new uint8_t[bytes ? bytes : 1]());
  data_ = storage_.get();
}

Tensor Tensor::view(DType dtype, Shape shape, void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  t.data_ = data;
  return t;
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_numel(shape) != numel_) {
    throw Error(ErrorKind::InvalidArgument,
                "cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_);
  if (nbytes()) std::memcpy(t.data_, data_, nbytes());
  return t;
}

double Tensor::get_f64(int64_t i) const {
  return dispatch_dtype(dtype_, "Tensor::get_f64", [&](auto tag) -> double {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, Half>) {
      return half_to_float(data<uint16_t>()[i]);
    } else {
      return static_cast<double>(data<T>()[i]);
    }
  });
}

int64_t Tensor::get_i64(int64_t i) const {
  return dispatch_dtype(dtype_, "Tensor::get_i64", [&](auto tag) -> int64_t {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, Half>) {
      return static_cast<int64_t>(half_to_float(data<uint16_t>()[i]));
    } else {
      return static_cast<int64_t>(data<T>()[i]);
    }
  });
}

std::vector<int64_t> Tensor::to_i64_vector() const {
  std::vector<int64_t> v(static_cast<size_t>(numel_));
  for (int64_t i = 0; i < numel_; ++i) v[size_t(i)] = get_i64(i);
  return v;
}

}  // namespace nibble
