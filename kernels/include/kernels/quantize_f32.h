// QuantizeLinear over FP32 arrays with one scale and zero point (the per-tensor case, which is
// every activation quantizer of a QDQ model), computed as ONNX Runtime's MLAS does so results
// match it bit for bit:
//   v = x / scale                (a true division: multiplying by 1/scale differs at ties)
//   v = clamp(v, lo - zp, hi - zp) with x86 max/min semantics, so NaN becomes lo - zp
//   y = round_half_to_even(v) + zp
// where [lo, hi] is the output type's range. Clamping by the integer bounds before rounding gives
// the same value as the ONNX formula saturate(round(x / scale) + zp); NaN maps to lo.
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/cpu_features.h"

namespace nibble::kernels {

// y[i] = quantize(x[i]) for i in [0, n). zero_point must lie in T's range. Every ISA gives
// identical results.
template <typename T>
using QuantizeF32Fn = void (*)(const float* x, T* y, int64_t n, float scale, int32_t zero_point);

struct QuantizeF32Kernels {
  QuantizeF32Fn<uint8_t> to_u8;
  QuantizeF32Fn<int8_t> to_s8;
  QuantizeF32Fn<uint16_t> to_u16;
  QuantizeF32Fn<int16_t> to_s16;
};
const QuantizeF32Kernels& quantize_f32_kernels(Isa isa);

// The kernel for output type T (uint8_t, int8_t, uint16_t or int16_t).
template <typename T>
QuantizeF32Fn<T> quantize_f32_kernel(Isa isa) {
  const QuantizeF32Kernels& k = quantize_f32_kernels(isa);
  if constexpr (std::is_same_v<T, uint8_t>) return k.to_u8;
  if constexpr (std::is_same_v<T, int8_t>) return k.to_s8;
  if constexpr (std::is_same_v<T, uint16_t>) return k.to_u16;
  if constexpr (std::is_same_v<T, int16_t>) return k.to_s16;
}

#define NIBBLE_QUANTIZE_F32_DECLS                                                          \
  void quantize_f32(const float* x, uint8_t* y, int64_t n, float scale, int32_t zero_point); \
  void quantize_f32(const float* x, int8_t* y, int64_t n, float scale, int32_t zero_point);  \
  void quantize_f32(const float* x, uint16_t* y, int64_t n, float scale, int32_t zero_point); \
  void quantize_f32(const float* x, int16_t* y, int64_t n, float scale, int32_t zero_point);

namespace ref {
NIBBLE_QUANTIZE_F32_DECLS
}
namespace avx2 {
NIBBLE_QUANTIZE_F32_DECLS
}
namespace avx512 {
NIBBLE_QUANTIZE_F32_DECLS
}

#undef NIBBLE_QUANTIZE_F32_DECLS

}  // namespace nibble::kernels
