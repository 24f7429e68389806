// FMA peak probe for AVX2 + FMA (compiled with -mavx2 -mfma): 12 independent chains of ymm
// FMAs, more than the latency x throughput of two FMA pipes, so the pipes never wait.
#include <immintrin.h>

#include <cstdint>

namespace nibble::bench {

double fma_probe_avx2(int64_t iterations) {
  constexpr int kChains = 12;
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(0.001f * float(i));
  __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(0.0001f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    __asm__ volatile("" : "+x"(a), "+x"(b));  // keep the loop from being folded
  }
  __m256 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  volatile float sink = lanes[0];
  (void)sink;
  return 2.0 * 8 * kChains * double(iterations);
}

}  // namespace nibble::bench
