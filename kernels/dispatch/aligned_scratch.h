// Per-thread scratch buffers for the kernel drivers: 64-byte aligned (a cache line, a zmm
// register), grown on demand and reused across calls. Each Tag type is an independent buffer, so
// a driver that needs two at once (or calls another driver) gives each its own tag.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace nibble::kernels {

template <typename Tag>
float* thread_scratch(int64_t floats) {
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<float, Free> buffer;
  thread_local int64_t capacity = 0;
  if (capacity < floats) {
    const size_t bytes = (static_cast<size_t>(floats) * sizeof(float) + 63) / 64 * 64;
    buffer.reset();
    capacity = 0;
    buffer.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    if (!buffer) throw std::bad_alloc();
    capacity = floats;
  }
  return buffer.get();
}

}  // namespace nibble::kernels
