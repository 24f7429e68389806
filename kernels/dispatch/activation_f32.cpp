// Dispatch table of the element-wise FP32 activations (kernels/include/kernels/activation_f32.h).
#include "kernels/activation_f32.h"

#include <iterator>

namespace nibble::kernels {
namespace {

const ActivationF32Kernel kKernels[] = {
    {Isa::Avx512, avx512::activation_f32},
    {Isa::Avx2, avx2::activation_f32},
    {Isa::Ref, ref::activation_f32},
};

}  // namespace

const ActivationF32Kernel& activation_f32_kernel(Isa isa) {
  for (const ActivationF32Kernel& kernel : kKernels) {
    if (static_cast<int>(kernel.isa) <= static_cast<int>(isa)) return kernel;
  }
  return kKernels[std::size(kKernels) - 1];
}

}  // namespace nibble::kernels
