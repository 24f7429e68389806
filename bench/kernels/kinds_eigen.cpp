// Eigen's GEMM (eigen_f32), built for AVX-512 and for AVX2 (eigen_gemm_isa.cpp) and run at the
// widest of the two that active_isa() allows; Eigen has no build below AVX2 here.
#include <memory>

#include "bench/kernels/bench_kinds.h"
#include "kernels/cpu_features.h"

namespace nibble::bench {

void eigen_gemm_avx2(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c);
void eigen_gemm_avx512(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c);
void eigen_set_threads_avx2(int threads);
void eigen_set_threads_avx512(int threads);

BenchRun prepare_gemm_eigen_f32(const GemmShape& s, const BenchContext& ctx) {
  const kernels::Isa isa = kernels::active_isa();
  if (isa == kernels::Isa::Ref) return {};
  const bool wide = isa >= kernels::Isa::Avx512;
  (wide ? eigen_set_threads_avx512 : eigen_set_threads_avx2)(ctx.threads);
  struct Operands {
    std::vector<float> a, b, c;
  };
  auto data = std::make_shared<Operands>();
  data->a = random_floats(size_t(s.m * s.k), 1);
  data->b = random_floats(size_t(s.k * s.n), 2);
  data->c.resize(size_t(s.m * s.n));
  return [data, s, wide] {
    (wide ? eigen_gemm_avx512 : eigen_gemm_avx2)(s.m, s.n, s.k, data->a.data(), data->b.data(),
                                                 data->c.data());
  };
}

}  // namespace nibble::bench
