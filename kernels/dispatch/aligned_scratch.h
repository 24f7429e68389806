// Per-thread scratch buffers for the kernel drivers: 64-byte aligned (a cache line, a zmm
// register), grown on demand and reused across calls. Each Tag type is an independent buffer, so
// a driver that needs two at once (or calls another driver) gives each its own tag.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace nibble::kernels {

// Room for `count` values of T; the contents are left as the last user left them.
template <typename Tag, typename T = float>
T* thread_scratch(int64_t count) {
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<T, Free> buffer;
  thread_local int64_t capacity = 0;
  if (capacity < count) {
    const size_t bytes = (static_cast<size_t>(count) * sizeof(T) + 63) / 64 * 64;
    buffer.reset();
    capacity = 0;
    buffer.reset(static_cast<T*>(std::aligned_alloc(64, bytes)));
    if (!buffer) throw std::bad_alloc();
    capacity = count;
  }
  return buffer.get();
}

}  // namespace nibble::kernels
