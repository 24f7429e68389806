// FP32 GEMM micro-kernel for AVX2 + FMA: a 6 x 16 tile of C in 12 ymm accumulators.
//
// Operands (kernels/include/kernels/gemm_f32.h): the A panel slice is kc groups of 6 weights
// (one column of 6 rows); row k of the B strip is 16 activations at b + b_offsets[k]. Each step
// of k loads two B vectors, broadcasts the 6 A values and issues 12 FMAs: 12 accumulators + 2 B
// vectors + 1 broadcast fill the 16 registers. The epilogue runs on the accumulators before the
// only store. Full vectors use plain moves; partial ones (tile edges, and the padding columns
// the convolution driver drops, packed out with a permutation) use vmaskmov, which is slow on
// some CPUs but rare.
#include <immintrin.h>

#include <array>

#include "kernels/x86/avx2/vec_math_avx2.h"

namespace nibble::kernels::avx2 {
namespace {

constexpr int MR = 6;
constexpr int NV = 2;  // vectors of 8 per row
constexpr int NR = NV * 8;
constexpr int kPrefetchB = 2 * NR;  // floats ahead in a B row

// For each 8-bit lane mask, the vpermps indices that move the selected lanes to the front.
constexpr std::array<std::array<int32_t, 8>, 256> make_compress_table() {
  std::array<std::array<int32_t, 8>, 256> table{};
  for (int mask = 0; mask < 256; ++mask) {
    int next = 0;
    for (int lane = 0; lane < 8; ++lane) {
      if (mask & (1 << lane)) table[mask][next++] = lane;
    }
  }
  return table;
}
constexpr auto kCompress = make_compress_table();

using Tile = __m256[MR][NV];

// Vector v of a tile row: where its outputs land in the packed row and which lanes they are.
struct VectorOutputs {
  unsigned select;  // output lanes of the vector
  int64_t column;   // outputs of the row before it
  __m256i permute;  // moves the output lanes to the front
  __m256i store;    // the first popcount(select) lanes
};

// acc += A_panel · B_strip over kc steps of k. With kOffsets, row k of B is at b + b_offsets[k]
// and the rows of the strips ahead are prefetched (an implicit-GEMM conv reads B from as many
// input rows as it has taps, too many streams for the hardware prefetcher); otherwise B is a
// packed strip, read in order.
template <bool kOffsets>
__attribute__((always_inline)) inline void multiply(__m256 (&acc)[MR][NV], const GemmF32Tile& t) {
  const float* a = t.a;
  const float* b = t.b;
  for (int64_t k = 0; k < t.kc; ++k) {
    // A panel slices come from L2/L3 the first time they are used: fetch the next one (a line
    // covers two steps).
    if (k % 2 == 0) _mm_prefetch(reinterpret_cast<const char*>(t.a_next + k * MR), _MM_HINT_T0);
    if constexpr (kOffsets) {
      b = t.b + t.b_offsets[k];
      _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchB), _MM_HINT_T0);
    }
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
    a += MR;
    if constexpr (!kOffsets) b += NR;
  }
}

// The whole tile goes through the epilogue before the first store: interleaving the stores
// with it serializes the epilogue (measured several times slower for SiLU).
template <Activation A>
void store_tile(Tile& acc, const GemmF32Tile& t, const TileEpilogue& ep) {
  VectorOutputs out[NV];
  for (int v = 0; v < NV; ++v) {
    out[v].select = (t.outputs >> (8 * v)) & 0xFF;
    out[v].column = __builtin_popcount(t.outputs & ((1u << (8 * v)) - 1));
    out[v].permute =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kCompress[out[v].select].data()));
    out[v].store = lanes(__builtin_popcount(out[v].select));
  }
  const bool packed = (t.outputs & (t.outputs + 1)) != 0;  // padding columns between outputs
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    if (r >= t.rows) break;
    const float* row = t.c + r * t.ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      const bool full = out[v].select == 0xFF;
      __m256 x = packed ? _mm256_permutevar8x32_ps(acc[r][v], out[v].permute) : acc[r][v];
      const float* c = row + out[v].column;
      if (t.accumulate && out[v].select) {
        x = _mm256_add_ps(x, full ? _mm256_loadu_ps(c) : _mm256_maskload_ps(c, out[v].store));
      }
      if (ep.bias) x = _mm256_add_ps(x, _mm256_set1_ps(ep.bias[r]));
      const float* residual =
          ep.residual ? ep.residual + r * ep.residual_ld + out[v].column : nullptr;
      auto load_residual = [&] {
        return full ? _mm256_loadu_ps(residual) : _mm256_maskload_ps(residual, out[v].store);
      };
      if (ep.residual && ep.residual_first && out[v].select) x = _mm256_add_ps(x, load_residual());
      x = activate(A, ep.clip_min, ep.clip_max, x);
      if (ep.residual && !ep.residual_first && out[v].select) x = _mm256_add_ps(x, load_residual());
      acc[r][v] = x;
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    if (r >= t.rows) break;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      float* c = t.c + r * t.ldc + out[v].column;
      if (out[v].select == 0xFF) {
        _mm256_storeu_ps(c, acc[r][v]);
      } else if (out[v].select) {
        _mm256_maskstore_ps(c, out[v].store, acc[r][v]);
      }
    }
  }
}

}  // namespace

void gemm_f32_ukernel_6x16(const GemmF32Tile& t) {
  __m256 acc[MR][NV];  // not passed by reference, so it stays in registers through the loop
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    if (r < t.rows) {
      _mm_prefetch(reinterpret_cast<const char*>(t.c + r * t.ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(t.c + r * t.ldc + 15), _MM_HINT_T0);
    }
  }
  if (t.b_offsets) {
    multiply<true>(acc, t);
  } else {
    multiply<false>(acc, t);
  }
  Tile result;
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    for (int v = 0; v < NV; ++v) result[r][v] = acc[r][v];
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

}  // namespace nibble::kernels::avx2
