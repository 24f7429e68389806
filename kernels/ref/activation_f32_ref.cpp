// Scalar element-wise activations: the reference dispatch row and the oracle (std::exp).
#include "kernels/activation_f32.h"

namespace nibble::kernels::ref {

void activation_f32(Activation activation, float lo, float hi, const float* x, float* y,
                    int64_t n) {
  const TileEpilogue ep{nullptr, nullptr, 0, activation, lo, hi, false};
  for (int64_t i = 0; i < n; ++i) y[i] = apply_epilogue(ep, x[i], 0, 0);
}

}  // namespace nibble::kernels::ref
