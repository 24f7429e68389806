// Element-wise FP32 activations (Relu, Clip, Sigmoid, SiLU) over a contiguous array, with the
// vectorized exp of the GEMM/conv epilogue; for activations that no convolution absorbed.
#pragma once

#include <cstdint>

#include "kernels/gemm_f32.h"

namespace nibble::kernels {

// y[i] = activation(x[i]) for i in [0, n); x == y is allowed. lo/hi are Clip's bounds.
using ActivationF32Fn = void (*)(Activation activation, float lo, float hi, const float* x,
                                 float* y, int64_t n);

struct ActivationF32Kernel {
  Isa isa;
  ActivationF32Fn apply;
};
const ActivationF32Kernel& activation_f32_kernel(Isa isa);

namespace ref {
void activation_f32(Activation activation, float lo, float hi, const float* x, float* y, int64_t n);
}
namespace avx2 {
void activation_f32(Activation activation, float lo, float hi, const float* x, float* y, int64_t n);
}
namespace avx512 {
void activation_f32(Activation activation, float lo, float hi, const float* x, float* y, int64_t n);
}

}  // namespace nibble::kernels
