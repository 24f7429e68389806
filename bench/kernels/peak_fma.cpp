// The FMA peak probe for the ISA the kernels run at (active_isa(), capped by NIBBLE_ISA), so
// peak_frac compares every kernel with what its vector width allows. Below AVX2 the probe is
// SSE2 multiply + add pairs (no FMA in the baseline ISA).
#include <emmintrin.h>

#include <algorithm>

#include <time.h>

#include "bench/kernels/bench_kinds.h"
#include "kernels/cpu_features.h"

namespace nibble::bench {

double fma_probe_avx2(int64_t iterations);    // peak_fma_avx2.cpp
double fma_probe_avx512(int64_t iterations);  // peak_fma_avx512.cpp

namespace {

double probe_sse2(int64_t iterations) {
  constexpr int kChains = 12;
  __m128 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm_set1_ps(0.001f * float(i));
  __m128 a = _mm_set1_ps(0.999f), b = _mm_set1_ps(0.0001f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], a), b);
    __asm__ volatile("" : "+x"(a), "+x"(b));
  }
  __m128 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm_add_ps(sum, acc[i]);
  volatile float sink = _mm_cvtss_f32(sum);
  (void)sink;
  return 2.0 * 4 * kChains * double(iterations);
}

// Thread CPU time: the machines these run on are shared, and time slices lost to other
// processes must not count as slowness.
double thread_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

}  // namespace

double run_fma_probe(int64_t iterations) {
  switch (kernels::active_isa()) {
    case kernels::Isa::Ref: return probe_sse2(iterations);
    case kernels::Isa::Avx2: return fma_probe_avx2(iterations);
    default: return fma_probe_avx512(iterations);
  }
}

double measure_fma_peak_gflops(double seconds) {
  run_fma_probe(100000);  // warm up (clock ramp)
  double best = 0.0;
  // The best of several short rounds: interference only ever makes a round slower.
  for (int round = 0; round < 5; ++round) {
    int64_t iterations = 1 << 20;
    for (;;) {
      const double start = thread_seconds();
      const double flops = run_fma_probe(iterations);
      const double elapsed = thread_seconds() - start;
      if (elapsed >= seconds / 5) {
        best = std::max(best, flops / elapsed * 1e-9);
        break;
      }
      iterations *= 2;
    }
  }
  return best;
}

}  // namespace nibble::bench
