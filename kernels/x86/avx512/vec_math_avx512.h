// AVX-512 vector math shared by the kernels in this directory (compiled with AVX-512 flags):
// exp, sigmoid, the activations and the GEMM/conv epilogue on 16 floats at a time.
#pragma once

#include <immintrin.h>

#include "kernels/gemm_f32.h"

namespace nibble::kernels::avx512 {

// e^x to about 2 ulp (Cephes expf): x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6
// polynomial, then scaled by 2^n. Inputs are clamped to [-87.3, 88.4] so the result stays a
// normal float (0 and inf are never produced; the activations built on it do not need them).
// A NaN input gives NaN.
inline __m512 exp_ps(__m512 x) {
  x = _mm512_min_ps(_mm512_set1_ps(88.3762626647949f), _mm512_max_ps(_mm512_set1_ps(-87.3365478515625f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // ln2 in two parts
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// 1 / (1 + e^-x), with an exact division.
inline __m512 sigmoid_ps(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

// The max/min operand order keeps NaN inputs NaN (they return their second operand on NaN).
inline __m512 activate(Activation activation, float lo, float hi, __m512 x) {
  switch (activation) {
    case Activation::None: return x;
    case Activation::Relu: return _mm512_max_ps(_mm512_setzero_ps(), x);
    case Activation::Clip:
      return _mm512_min_ps(_mm512_set1_ps(hi), _mm512_max_ps(_mm512_set1_ps(lo), x));
    case Activation::Sigmoid: return sigmoid_ps(x);
    case Activation::SiLU: return _mm512_mul_ps(x, sigmoid_ps(x));
  }
  return x;
}

// The epilogue for the lanes `mask` of row r, columns [j, j + 16) of a tile.
inline __m512 apply_epilogue(const TileEpilogue& ep, __m512 v, int64_t r, int64_t j,
                             __mmask16 mask) {
  if (ep.bias) v = _mm512_add_ps(v, _mm512_set1_ps(ep.bias[r]));
  const float* residual = ep.residual ? ep.residual + r * ep.residual_ld + j : nullptr;
  if (residual && ep.residual_first) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, residual));
  v = activate(ep.activation, ep.clip_min, ep.clip_max, v);
  if (residual && !ep.residual_first) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, residual));
  return v;
}

// Lanes [0, count) of 16; count may exceed 16.
inline __mmask16 lanes(int64_t count) {
  return count >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << count) - 1);
}

}  // namespace nibble::kernels::avx512
