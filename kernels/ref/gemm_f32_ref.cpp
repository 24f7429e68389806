// Scalar FP32 GEMM pieces: the 4 x 8 micro-kernel of the reference dispatch row (portable C++
// the compiler vectorizes for the baseline ISA), the scalar definition of the epilogue, and
// the naive oracle the optimized kernels are tested against.
#include <cmath>
#include <cstring>

#include "kernels/gemm_f32.h"

namespace nibble::kernels {

const char* activation_name(Activation activation) {
  switch (activation) {
    case Activation::None: return "none";
    case Activation::Relu: return "relu";
    case Activation::Clip: return "clip";
    case Activation::Sigmoid: return "sigmoid";
    case Activation::SiLU: return "silu";
  }
  return "?";
}

namespace ref {
namespace {

float activate(Activation activation, float lo, float hi, float x) {
  switch (activation) {
    case Activation::None: return x;
    case Activation::Relu: return x < 0.0f ? 0.0f : x;  // NaN stays NaN
    case Activation::Clip: return x < lo ? lo : (x > hi ? hi : x);
    case Activation::Sigmoid: return 1.0f / (1.0f + std::exp(-x));
    case Activation::SiLU: return x / (1.0f + std::exp(-x));
  }
  return x;
}

template <int MR, int NR>
void ukernel(const GemmF32Tile& t) {
  float acc[MR][NR] = {};
  const float* a = t.a;
  for (int64_t k = 0; k < t.kc; ++k) {
    const float* __restrict b = t.b + (t.b_offsets ? t.b_offsets[k] : k * NR);
    for (int r = 0; r < MR; ++r) {
      for (int j = 0; j < NR; ++j) acc[r][j] += a[r] * b[j];
    }
    a += MR;
  }
  for (int64_t r = 0; r < t.rows; ++r) {
    float* row = t.c + r * t.ldc;
    int64_t column = 0;  // output columns are stored packed together
    for (int j = 0; j < NR; ++j) {
      if (!(t.outputs >> j & 1)) continue;
      const float v = t.accumulate ? row[column] + acc[r][j] : acc[r][j];
      row[column] = t.epilogue ? apply_epilogue(*t.epilogue, v, r, column) : v;
      ++column;
    }
  }
}

}  // namespace

void gemm_f32_ukernel_4x8(const GemmF32Tile& tile) { ukernel<4, 8>(tile); }

float apply_epilogue(const TileEpilogue& ep, float v, int64_t r, int64_t j) {
  if (ep.bias) v += ep.bias[r];
  const float* residual = ep.residual ? ep.residual + r * ep.residual_ld + j : nullptr;
  if (residual && ep.residual_first) v += *residual;
  v = activate(ep.activation, ep.clip_min, ep.clip_max, v);
  if (residual && !ep.residual_first) v += *residual;
  return v;
}

float apply_epilogue(const Epilogue& e, float value, int64_t row, int64_t col) {
  const TileEpilogue tile{e.bias ? e.bias + row : nullptr,
                          e.residual ? e.residual + row * e.residual_ld + col : nullptr,
                          e.residual_ld, e.activation, e.clip_min, e.clip_max, e.residual_first};
  return apply_epilogue(tile, value, 0, 0);
}

void gemm_f32_naive(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                    int64_t ldb, float* c, int64_t ldc, const Epilogue& epilogue) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (int64_t p = 0; p < k; ++p) sum += double(a[i * lda + p]) * double(b[p * ldb + j]);
      c[i * ldc + j] = apply_epilogue(epilogue, static_cast<float>(sum), i, j);
    }
  }
}

}  // namespace ref
}  // namespace nibble::kernels
