// Element-wise FP32 activations for AVX2 + FMA, 8 lanes at a time; the tail goes through a
// small buffer (masked stores are slow on some CPUs).
#include <cstring>

#include "kernels/activation_f32.h"
#include "kernels/x86/avx2/vec_math_avx2.h"

namespace nibble::kernels::avx2 {

void activation_f32(Activation activation, float lo, float hi, const float* x, float* y,
                    int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, activate(activation, lo, hi, _mm256_loadu_ps(x + i)));
  }
  if (i < n) {
    alignas(32) float buffer[8] = {};
    std::memcpy(buffer, x + i, static_cast<size_t>(n - i) * sizeof(float));
    _mm256_store_ps(buffer, activate(activation, lo, hi, _mm256_load_ps(buffer)));
    std::memcpy(y + i, buffer, static_cast<size_t>(n - i) * sizeof(float));
  }
}

}  // namespace nibble::kernels::avx2
