// A heap array aligned to a cache line (64 bytes), so kernels can use aligned vector loads on
// packed operands. Zero-initialized on resize; move-only.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <new>

namespace nibble::kernels {

template <typename T>
class AlignedBuffer {
 public:
  static constexpr std::size_t kAlignment = 64;

  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t count) { resize(count); }

  // Discards the contents; the new elements are zero.
  void resize(std::size_t count) {
    data_.reset();
    size_ = 0;
    if (count == 0) return;
    data_.reset(static_cast<T*>(::operator new (count * sizeof(T), std::align_val_t{kAlignment})));
    std::memset(static_cast<void*>(data_.get()), 0, count * sizeof(T));
    size_ = count;
  }
  // Grows (discarding the contents) only when `count` exceeds the current size: for scratch.
  T* ensure(std::size_t count) {
    if (count > size_) resize(count);
    return data_.get();
  }

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  std::size_t size() const { return size_; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }

 private:
  struct Free {
    void operator()(T* p) const { ::operator delete (p, std::align_val_t{kAlignment}); }
  };
  std::unique_ptr<T[], Free> data_;
  std::size_t size_ = 0;
};

}  // namespace nibble::kernels
