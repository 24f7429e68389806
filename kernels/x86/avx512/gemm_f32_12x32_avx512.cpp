// FP32 GEMM micro-kernel for AVX-512: a 12 x 32 tile of C in 24 zmm accumulators.
//
// Operands (kernels/include/kernels/gemm_f32.h): the A panel slice is kc groups of 12 weights
// (one column of 12 rows); row k of the B strip is 32 activations at b + b_offsets[k]. Each
// step of k loads two B vectors, broadcasts the 12 A values and issues 24 FMAs; 24 independent
// accumulators cover the FMA latency of both pipes. The epilogue runs on the accumulators before
// the only store, without a branch per vector: absent operands are lane masks of 0, and every
// load precedes the first store (a branchy epilogue interleaved with the stores measured up to 5x
// slower for SiLU on Zen 5). Tiles with padding columns between outputs (implicit-GEMM
// convolutions) pack their outputs together with vcompressps first; it is slow enough to skip
// for every other tile.
//
// Tile choice (measured with L1-resident operands on a Zen 5 core, peak 285 GFLOPS): 12x32 273,
// 8x48 271, 14x32 257, 6x64 244, 24x16 243 GFLOPS; 12 also divides YOLO's channel counts.
#include <immintrin.h>

#include "kernels/x86/avx512/vec_math_avx512.h"

namespace nibble::kernels::avx512 {
namespace {

constexpr int MR = 12;
constexpr int NV = 2;  // vectors of 16 per row
constexpr int NR = NV * 16;
constexpr int kPrefetchA = 384;  // floats ahead in the A panel (32 steps of k)
constexpr int kPrefetchB = 2 * NR;  // floats ahead in a B row: the next strips of a conv's input

using Tile = __m512[MR][NV];

template <Activation A>
void store_tile(Tile& acc, const GemmF32Tile& t, const TileEpilogue& ep) {
  __mmask16 store[NV];
  int64_t column[NV];
  for (int v = 0; v < NV; ++v) {
    column[v] = __builtin_popcount(t.outputs & ((uint32_t{1} << (16 * v)) - 1));
    store[v] = lanes(__builtin_popcount(static_cast<__mmask16>(t.outputs >> (16 * v))));
  }
  const __mmask16 c_mask = t.accumulate ? 0xFFFF : 0;
  const __mmask16 before = ep.residual && ep.residual_first ? 0xFFFF : 0;
  const __mmask16 after = ep.residual && !ep.residual_first ? 0xFFFF : 0;
  const float* residual = ep.residual ? ep.residual : t.c;  // never read when masked off
  const int64_t residual_ld = ep.residual ? ep.residual_ld : t.ldc;
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
    // Rows past `rows` are computed on a valid address and not stored.
    const int64_t row = r < t.rows ? r : t.rows - 1;
    const __mmask16 row_mask = r < t.rows ? 0xFFFF : 0;
    const __m512 bias = _mm512_set1_ps(ep.bias ? ep.bias[row] : 0.0f);
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      const __mmask16 m = store[v] & row_mask;
      const float* res = residual + row * residual_ld + column[v];
      __m512 x = _mm512_add_ps(acc[r][v], _mm512_maskz_loadu_ps(m & c_mask, t.c + row * t.ldc + column[v]));
      x = _mm512_add_ps(x, bias);
      x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m & before, res));
      x = activate(A, ep.clip_min, ep.clip_max, x);
      acc[r][v] = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m & after, res));
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
    const int64_t row = r < t.rows ? r : t.rows - 1;
    const __mmask16 row_mask = r < t.rows ? 0xFFFF : 0;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      _mm512_mask_storeu_ps(t.c + row * t.ldc + column[v], store[v] & row_mask, acc[r][v]);
    }
  }
}

}  // namespace

void gemm_f32_ukernel_12x32(const GemmF32Tile& t) {
  __m512 acc[MR][NV];  // not passed by reference, so it stays in registers through the loop
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  }
  // The tile's rows of C are written (or read) at the end: start fetching them now.
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
    if (r < t.rows) {
      _mm_prefetch(reinterpret_cast<const char*>(t.c + r * t.ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(t.c + r * t.ldc + NR - 1), _MM_HINT_T0);
    }
  }
  const float* a = t.a;
  for (int64_t k = 0; k < t.kc; ++k) {
    // A comes from L2/L3 the first time a panel is used. B rows of an implicit-GEMM conv come
    // from as many input rows as the strip has taps (too many streams for the hardware
    // prefetcher): fetch the same rows of the strips ahead.
    _mm_prefetch(reinterpret_cast<const char*>(a + kPrefetchA), _MM_HINT_T0);
    const float* b = t.b + t.b_offsets[k];
    _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchB), _MM_HINT_T0);
    __m512 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(b + v * 16);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
    }
    a += MR;
  }
  Tile result;
  const bool packed = (t.outputs & (t.outputs + 1)) != 0;  // padding columns between outputs
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      const auto select = static_cast<__mmask16>(t.outputs >> (16 * v));
      result[r][v] = packed ? _mm512_maskz_compress_ps(select, acc[r][v]) : acc[r][v];
    }
  }
  const TileEpilogue none{nullptr, nullptr, 0, Activation::None, 0.0f, 0.0f, false};
  const TileEpilogue& ep = t.epilogue ? *t.epilogue : none;
  switch (ep.activation) {
    case Activation::None: return store_tile<Activation::None>(result, t, ep);
    case Activation::Relu: return store_tile<Activation::Relu>(result, t, ep);
    case Activation::Clip: return store_tile<Activation::Clip>(result, t, ep);
    case Activation::Sigmoid: return store_tile<Activation::Sigmoid>(result, t, ep);
    case Activation::SiLU: return store_tile<Activation::SiLU>(result, t, ep);
  }
}

}  // namespace nibble::kernels::avx512
