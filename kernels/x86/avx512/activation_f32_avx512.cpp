// Element-wise FP32 activations for AVX-512, 16 lanes at a time, tail under a lane mask.
#include "kernels/activation_f32.h"
#include "kernels/x86/avx512/vec_math_avx512.h"

namespace nibble::kernels::avx512 {

void activation_f32(Activation activation, float lo, float hi, const float* x, float* y,
                    int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i, activate(activation, lo, hi, _mm512_loadu_ps(x + i)));
  }
  if (i < n) {
    const __mmask16 mask = lanes(n - i);
    _mm512_mask_storeu_ps(y + i, mask, activate(activation, lo, hi, _mm512_maskz_loadu_ps(mask, x + i)));
  }
}

}  // namespace nibble::kernels::avx512
