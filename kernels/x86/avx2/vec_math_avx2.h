// AVX2 + FMA vector math shared by the kernels in this directory (compiled with -mavx2 -mfma):
// exp, sigmoid, the activations and the GEMM/conv epilogue on 8 floats at a time.
#pragma once

#include <immintrin.h>

#include "kernels/gemm_f32.h"

namespace nibble::kernels::avx2 {

// e^x to about 2 ulp (Cephes expf): x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6
// polynomial, times 2^n built in the exponent field. Inputs are clamped to [-87.3, 88.0] so n
// stays in [-126, 127] and the result a normal float. A NaN input gives NaN.
inline __m256 exp_ps(__m256 x) {
  x = _mm256_min_ps(_mm256_set1_ps(88.0f), _mm256_max_ps(_mm256_set1_ps(-87.3365478515625f), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  // ln2 in two parts
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i exponent = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
}

// 1 / (1 + e^-x), with an exact division.
inline __m256 sigmoid_ps(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

// The max/min operand order keeps NaN inputs NaN (they return their second operand on NaN).
inline __m256 activate(Activation activation, float lo, float hi, __m256 x) {
  switch (activation) {
    case Activation::None: return x;
    case Activation::Relu: return _mm256_max_ps(_mm256_setzero_ps(), x);
    case Activation::Clip:
      return _mm256_min_ps(_mm256_set1_ps(hi), _mm256_max_ps(_mm256_set1_ps(lo), x));
    case Activation::Sigmoid: return sigmoid_ps(x);
    case Activation::SiLU: return _mm256_mul_ps(x, sigmoid_ps(x));
  }
  return x;
}

// Lane mask for vmaskmov: lanes [0, count) of 8; count may exceed 8.
inline __m256i lanes(int64_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count < 8 ? count : 8)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The epilogue for row r, columns [j, j + 8) of a tile; `mask` (from lanes) is null for a full
// vector. Masked loads are used only for partial vectors: vmaskmov is slow on some CPUs.
inline __m256 apply_epilogue(const TileEpilogue& ep, __m256 v, int64_t r, int64_t j,
                             const __m256i* mask) {
  if (ep.bias) v = _mm256_add_ps(v, _mm256_set1_ps(ep.bias[r]));
  const float* residual = ep.residual ? ep.residual + r * ep.residual_ld + j : nullptr;
  auto load_residual = [&] {
    return mask ? _mm256_maskload_ps(residual, *mask) : _mm256_loadu_ps(residual);
  };
  if (residual && ep.residual_first) v = _mm256_add_ps(v, load_residual());
  v = activate(ep.activation, ep.clip_min, ep.clip_max, v);
  if (residual && !ep.residual_first) v = _mm256_add_ps(v, load_residual());
  return v;
}

}  // namespace nibble::kernels::avx2
