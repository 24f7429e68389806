// FP32 packed GEMM of every ISA this CPU has (called through its table row, not through
// active_isa()) against the naive double-precision oracle: sizes swept around the register tile
// (1..MR+1 rows, 1..NR+1 columns) and the block sizes (K below / at / above kc, N across nc),
// every epilogue, threaded and not. Buffers are sized exactly, so ASan sees any over-read, and
// C's padding columns must stay untouched.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/exec/thread_pool.h"
#include "kernels/gemm_f32.h"
#include "tests/kernels/f32_kernel_testing.h"

using namespace nibble::kernels;
using namespace f32_testing;

namespace {

constexpr float kSentinel = -12345.0f;

struct Case {
  int64_t m, n, k;
  Epilogue epilogue;  // bias / residual pointers filled in by run_case
  bool with_bias = false, with_residual = false;
};

// Runs one product and checks every element of C, and that C's padding columns are intact.
void run_case(const GemmF32Kernel& kernel, const Case& tc, std::mt19937& rng,
              nibble::ThreadPool* pool = nullptr) {
  const int64_t m = tc.m, n = tc.n, k = tc.k;
  const int64_t lda = k + 3, ldb = n + 5, ldc = n + 2;  // odd strides catch mix-ups
  // Exact sizes: the last row ends at the last element.
  const std::vector<float> a = random_floats(size_t(std::max<int64_t>((m - 1) * lda + k, 0)), rng);
  const std::vector<float> b = random_floats(size_t(std::max<int64_t>((k - 1) * ldb + n, 0)), rng);
  const std::vector<float> bias = random_floats(size_t(m), rng);
  const std::vector<float> residual = random_floats(size_t((m - 1) * ldc + n), rng);
  Epilogue epilogue = tc.epilogue;
  if (tc.with_bias) epilogue.bias = bias.data();
  if (tc.with_residual) {
    epilogue.residual = residual.data();
    epilogue.residual_ld = ldc;
  }

  std::vector<float> packed(size_t(gemm_f32_packed_a_size(kernel, m, k)));
  gemm_f32_pack_a(kernel, m, k, a.data(), lda, packed.data());
  std::vector<float> c(size_t((m - 1) * ldc + n), kSentinel);
  gemm_f32(kernel, m, n, k, packed.data(), b.data(), ldb, c.data(), ldc, epilogue, pool);

  std::vector<float> want(c.size(), kSentinel);
  ref::gemm_f32_naive(m, n, k, a.data(), lda, b.data(), ldb, want.data(), ldc, epilogue);
  int failures = 0;
  for (int64_t i = 0; i < m && failures < 5; ++i) {
    for (int64_t j = 0; j < ldc && failures < 5; ++j) {
      if (i == m - 1 && j >= n) break;
      const float got = c[size_t(i * ldc + j)], expected = want[size_t(i * ldc + j)];
      if (j >= n) {
        if (got != kSentinel) {
          ++failures;
          FAIL_CHECK("padding column written at (" << i << ", " << j << ")");
        }
        continue;
      }
      double magnitude = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        magnitude += std::fabs(double(a[size_t(i * lda + p)]) * double(b[size_t(p * ldb + j)]));
      }
      if (!(std::fabs(got - expected) <= tolerance(k, magnitude, expected))) {
        ++failures;
        FAIL_CHECK(std::string(isa_name(kernel.isa)) << " " << std::string(kernel.tile) << " m=" << m << " n=" << n
                   << " k=" << k << " act=" << std::string(activation_name(epilogue.activation))
                   << " at (" << i << ", " << j << "): got " << got << ", want " << expected);
      }
    }
  }
}

}  // namespace

TEST_CASE("gemm_f32 matches the naive product around tile and block sizes") {
  std::mt19937 rng(11);
  for (Isa isa : testable_isas()) {
    const GemmF32Kernel& kernel = gemm_f32_kernel(isa);
    REQUIRE(kernel.isa == isa);
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    const int64_t mr = kernel.mr, nr = kernel.nr, kc = kernel.kc;
    std::vector<int64_t> ms, ns;
    for (int64_t m = 1; m <= mr + 1; ++m) ms.push_back(m);
    ms.push_back(2 * mr + 3);
    for (int64_t n : {int64_t(1), nr / 2 + 1, nr - 1, nr, nr + 1, 2 * nr + 3}) ns.push_back(n);
    ns.push_back(kernel.nc + nr + 5);  // more than one packed block of columns
    for (int64_t m : ms) {
      for (int64_t n : ns) {
        for (int64_t k : {int64_t(1), int64_t(7), kc - 1, kc, kc + 1}) {
          run_case(kernel, Case{m, n, k, Epilogue{}}, rng);
        }
      }
    }
    // Deep K: several accumulating blocks.
    run_case(kernel, Case{mr + 2, nr + 3, 2 * kc + 9, Epilogue{}}, rng);
  }
}

TEST_CASE("gemm_f32 with K = 0 writes the epilogue of zero") {
  std::mt19937 rng(12);
  for (Isa isa : testable_isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    Epilogue ep;
    ep.activation = Activation::Sigmoid;
    run_case(gemm_f32_kernel(isa), Case{5, 9, 0, ep, true, false}, rng);
  }
}

TEST_CASE("gemm_f32 fuses bias, activations and the residual add") {
  std::mt19937 rng(13);
  struct Variant {
    Activation activation;
    bool bias, residual, residual_first;
  };
  const Variant variants[] = {
      {Activation::None, true, false, false},  {Activation::Relu, true, false, false},
      {Activation::Clip, true, false, false},  {Activation::Sigmoid, false, false, false},
      {Activation::SiLU, true, false, false},  {Activation::SiLU, true, true, false},
      {Activation::Relu, true, true, true},    {Activation::None, false, true, false},
  };
  for (Isa isa : testable_isas()) {
    const GemmF32Kernel& kernel = gemm_f32_kernel(isa);
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (const Variant& v : variants) {
      Epilogue ep;
      ep.activation = v.activation;
      ep.clip_min = -0.25f;
      ep.clip_max = 0.5f;
      ep.residual_first = v.residual_first;
      // Full tiles, partial rows / columns, and more than one block of K (the epilogue runs
      // only on the last).
      for (const auto& [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{kernel.mr, kernel.nr, 9},
                                    {kernel.mr + 1, kernel.nr + 3, 17},
                                    {3, 5, kernel.kc + 3}}) {
        run_case(kernel, Case{m, n, k, ep, v.bias, v.residual}, rng);
      }
    }
  }
}

TEST_CASE("gemm_f32 split across threads matches the naive product") {
  std::mt19937 rng(14);
  nibble::ThreadPool pool(3);
  Epilogue ep;
  ep.activation = Activation::SiLU;
  for (Isa isa : testable_isas()) {
    const GemmF32Kernel& kernel = gemm_f32_kernel(isa);
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    for (const auto& [m, n] : {std::pair<int64_t, int64_t>{1, 700}, {3 * kernel.mr + 1, 130},
                              {100, 5}}) {
      run_case(kernel, Case{m, n, 37, ep, true, true}, rng, &pool);
    }
  }
}
