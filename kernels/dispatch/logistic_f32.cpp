// Picks the logistic kernel (kernels/include/kernels/logistic_f32.h). AVX-512 CPUs use the AVX2
// kernel, as ONNX Runtime does: a 16-lane version would be no different in its results.
#include "kernels/logistic_f32.h"

namespace nibble::kernels {

LogisticF32Fn logistic_f32_kernel(Isa isa) {
  return static_cast<int>(isa) >= static_cast<int>(Isa::Avx2) ? avx2::logistic_f32
                                                               : ref::logistic_f32;
}

}  // namespace nibble::kernels
