// nibble — a dense, row-major tensor: dtype, static shape and either owned storage or a view of
// caller memory (zero-copy inputs and outputs).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nibble/dtype.h"

namespace nibble {

using Shape = std::vector<int64_t>;

// Number of elements; throws Error(InvalidArgument) on negative dims or overflow past 2^62.
int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[1,3,640,640]"

class Tensor {
 public:
  Tensor() = default;
  // Owned, zero-initialized storage.
  Tensor(DType dtype, Shape shape);
  // Non-owning view of `data`, which must outlive every use of this tensor.
  static Tensor view(DType dtype, Shape shape, void* data);
  static Tensor view(DType dtype, Shape shape, const void* data) {
    return view(dtype, std::move(shape), const_cast<void*>(data));
  }
  // A scalar (shape []) of type T.
  template <typename T>
  static Tensor scalar(DType dtype, T value) {
    Tensor t(dtype, {});
    *t.data<T>() = value;
    return t;
  }

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t dim(int64_t i) const { return shape_[static_cast<size_t>(i)]; }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  bool empty() const { return dtype_ == DType::Undefined; }
  bool owns_data() const { return storage_ != nullptr; }

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  template <typename T> T* data() { return static_cast<T*>(data_); }
  template <typename T> const T* data() const { return static_cast<const T*>(data_); }

  // Same storage, new shape with the same element count.
  Tensor reshaped(Shape shape) const;
  // Deep copy with owned storage.
  Tensor clone() const;
  // Element i converted to double / int64 (any numeric dtype); for small tensors (shapes, attrs).
  double get_f64(int64_t i) const;
  int64_t get_i64(int64_t i) const;
  std::vector<int64_t> to_i64_vector() const;

 private:
  DType dtype_ = DType::Undefined;
  Shape shape_;
  int64_t numel_ = 0;
  std::shared_ptr<uint8_t[]> storage_;
  void* data_ = nullptr;
};

}  // namespace nibble
