// Picks the QuantizeLinear kernels (kernels/include/kernels/quantize_f32.h).
#include "kernels/quantize_f32.h"

namespace nibble::kernels {

const QuantizeF32Kernels& quantize_f32_kernels(Isa isa) {
  static const QuantizeF32Kernels kRef{ref::quantize_f32, ref::quantize_f32, ref::quantize_f32,
                                       ref::quantize_f32};
  static const QuantizeF32Kernels kAvx2{avx2::quantize_f32, avx2::quantize_f32,
                                        avx2::quantize_f32, avx2::quantize_f32};
  static const QuantizeF32Kernels kAvx512{avx512::quantize_f32, avx512::quantize_f32,
                                          avx512::quantize_f32, avx512::quantize_f32};
  if (static_cast<int>(isa) >= static_cast<int>(Isa::Avx512)) return kAvx512;
  if (static_cast<int>(isa) >= static_cast<int>(Isa::Avx2)) return kAvx2;
  return kRef;
}

}  // namespace nibble::kernels
