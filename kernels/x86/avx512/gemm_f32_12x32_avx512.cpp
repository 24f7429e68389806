// FP32 GEMM micro-kernel for AVX-512: a 12 x 32 tile of C in 24 zmm accumulators.
//
// Operands (kernels/include/kernels/gemm_f32.h): the A panel slice is kc groups of 12 weights
// (one column of 12 rows); row k of the B strip is 32 activations at b + b_offsets[k]. Each
// step of k loads two B vectors, broadcasts the 12 A values and issues 24 FMAs; 24 independent
// accumulators cover the FMA latency of both pipes. The epilogue runs on the accumulators before
// the only store, one pass per present operand with no branch between vectors, every load before
// the first store (a branchy epilogue interleaved with the stores measured up to 5x slower for
// SiLU on Zen 5). Tiles with padding columns between outputs (implicit-GEMM
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
constexpr int kPrefetchB = 2 * NR;  // floats ahead in a B row: the next strips of a conv's input

using Tile = __m512[MR][NV];

// acc += A_panel · B_strip over kc steps of k. With kOffsets, row k of B is at b + b_offsets[k]
// and the rows of the strips ahead are prefetched (an implicit-GEMM conv reads B from as many
// input rows as it has taps, too many streams for the hardware prefetcher); otherwise B is a
// packed strip, read in order.
template <bool kOffsets>
__attribute__((always_inline)) inline void multiply(__m512 (&acc)[MR][NV], const GemmF32Tile& t) {
  const float* a = t.a;
  const float* b = t.b;
  for (int64_t k = 0; k < t.kc; ++k) {
    // A panel slices come from L2/L3 the first time they are used: fetch the next one.
    _mm_prefetch(reinterpret_cast<const char*>(t.a_next + k * MR), _MM_HINT_T0);
    if constexpr (kOffsets) {
      b = t.b + t.b_offsets[k];
      _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchB), _MM_HINT_T0);
    }
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
    if constexpr (!kOffsets) b += NR;
  }
}

template <Activation A>
void store_tile(Tile& acc, const GemmF32Tile& t, const TileEpilogue& ep) {
  __mmask16 store[NV];
  int64_t column[NV];
  for (int v = 0; v < NV; ++v) {
    column[v] = __builtin_popcount(t.outputs & ((uint32_t{1} << (16 * v)) - 1));
    store[v] = lanes(__builtin_popcount(static_cast<__mmask16>(t.outputs >> (16 * v))));
  }
  // Rows past `rows` are computed on a valid address and not stored.
  int64_t row[MR];
  __mmask16 mask[MR][NV];
  for (int r = 0; r < MR; ++r) {
    row[r] = r < t.rows ? r : t.rows - 1;
    for (int v = 0; v < NV; ++v) mask[r][v] = r < t.rows ? store[v] : 0;
  }
  // One pass per present operand, so no branch sits between the vectors.
  auto add_tile = [&](const float* base, int64_t ld) {
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) {
        acc[r][v] = _mm512_add_ps(
            acc[r][v], _mm512_maskz_loadu_ps(mask[r][v], base + row[r] * ld + column[v]));
      }
    }
  };
  if (t.accumulate) add_tile(t.c, t.ldc);
  if (ep.bias) {
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 bias = _mm512_set1_ps(ep.bias[row[r]]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_add_ps(acc[r][v], bias);
    }
  }
  if (ep.residual && ep.residual_first) add_tile(ep.residual, ep.residual_ld);
  if (A != Activation::None) {
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = activate(A, ep.clip_min, ep.clip_max, acc[r][v]);
    }
  }
  if (ep.residual && !ep.residual_first) add_tile(ep.residual, ep.residual_ld);
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      _mm512_mask_storeu_ps(t.c + row[r] * t.ldc + column[v], mask[r][v], acc[r][v]);
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
  if (t.b_offsets) {
    multiply<true>(acc, t);
  } else {
    multiply<false>(acc, t);
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
