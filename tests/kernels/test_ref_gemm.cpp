// Reference GEMM kernels against a naive triple loop: sizes swept around the register tile
// (kGemmMR x kGemmNR) and the packed block depth (kGemmKC), transposed operands, odd strides.
// Float results take a tolerance relative to the dot-product magnitude; integer results are
// compared exactly.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/ref.h"

using namespace nibble::kernels::ref;

namespace {

std::vector<float> random_floats(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

template <typename T>
std::vector<T> random_ints(size_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> dist(std::numeric_limits<T>::min(),
                                          std::numeric_limits<T>::max());
  std::vector<T> v(n);
  for (T& x : v) x = static_cast<T>(dist(rng));
  return v;
}

const int64_t kRows[] = {1, 2, 3, 4, 5, 7, 8, 9, 17};
const int64_t kCols[] = {1, 3, 7, 8, 9, 15, 16, 17, 33};
const int64_t kDepths[] = {1, 2, 7, 255, 256, 257, 600};

}  // namespace

TEST_CASE("sgemm matches a naive product around tile and block sizes") {
  std::mt19937 rng(7);
  for (int64_t m : kRows) {
    for (int64_t n : kCols) {
      for (int64_t k : kDepths) {
        for (bool trans_a : {false, true}) {
          for (bool trans_b : {false, true}) {
            // Padded leading dimensions catch stride mix-ups.
            const int64_t lda = (trans_a ? m : k) + 3, ldb = (trans_b ? k : n) + 2, ldc = n + 5;
            const std::vector<float> a = random_floats(size_t((trans_a ? k : m) * lda), rng);
            const std::vector<float> b = random_floats(size_t((trans_b ? n : k) * ldb), rng);
            std::vector<float> c(size_t(m * ldc), 42.0f);
            const int64_t a_rs = trans_a ? 1 : lda, a_cs = trans_a ? lda : 1;
            const int64_t b_rs = trans_b ? 1 : ldb, b_cs = trans_b ? ldb : 1;
            sgemm(m, n, k, a.data(), a_rs, a_cs, b.data(), b_rs, b_cs, c.data(), ldc);
            double worst = 0;
            for (int64_t i = 0; i < m; ++i) {
              for (int64_t j = 0; j < n; ++j) {
                double expected = 0, magnitude = 0;
                for (int64_t p = 0; p < k; ++p) {
                  const double prod =
                      double(a[size_t(i * a_rs + p * a_cs)]) * b[size_t(p * b_rs + j * b_cs)];
                  expected += prod;
                  magnitude += std::abs(prod);
                }
                worst = std::max(worst,
                                 std::abs(c[size_t(i * ldc + j)] - expected) / (magnitude + 1e-30));
              }
              // Columns past n belong to the caller.
              for (int64_t j = n; j < ldc; ++j) REQUIRE(c[size_t(i * ldc + j)] == 42.0f);
            }
            CAPTURE(m);
            CAPTURE(n);
            CAPTURE(k);
            CAPTURE(trans_a);
            CAPTURE(trans_b);
            CHECK(worst < 1e-5);
          }
        }
      }
    }
  }
}

TEST_CASE("sgemm with k = 0 writes zeros") {
  std::vector<float> c(6, 1.0f);
  sgemm(2, 3, 0, nullptr, 0, 1, nullptr, 3, 1, c.data(), 3);
  for (float v : c) CHECK(v == 0.0f);
}

template <typename TA, typename TB>
void check_qgemm(std::mt19937& rng) {
  for (int64_t m : kRows) {
    for (int64_t n : kCols) {
      for (int64_t k : kDepths) {
        const std::vector<TA> a = random_ints<TA>(size_t(m * k), rng);
        const std::vector<TB> b = random_ints<TB>(size_t(k * n), rng);
        // Extreme zero points maximize |value - zero point| (255), the exactness bound.
        std::vector<int32_t> a_zp(static_cast<size_t>(m)), b_zp(static_cast<size_t>(n));
        for (int64_t i = 0; i < m; ++i) {
          a_zp[size_t(i)] = i % 2 ? std::numeric_limits<TA>::min() : std::numeric_limits<TA>::max();
        }
        for (int64_t j = 0; j < n; ++j) b_zp[size_t(j)] = static_cast<int32_t>(j * 37 % 200) - 60;
        std::vector<int32_t> c(size_t(m * n));
        qgemm(m, n, k, a.data(), k, 1, a_zp.data(), b.data(), n, 1, b_zp.data(), c.data(), n);
        bool exact = true;
        for (int64_t i = 0; i < m && exact; ++i) {
          for (int64_t j = 0; j < n && exact; ++j) {
            int64_t expected = 0;
            for (int64_t p = 0; p < k; ++p) {
              expected += (int64_t(a[size_t(i * k + p)]) - a_zp[size_t(i)]) *
                          (int64_t(b[size_t(p * n + j)]) - b_zp[size_t(j)]);
            }
            exact = c[size_t(i * n + j)] == expected;
          }
        }
        CAPTURE(m);
        CAPTURE(n);
        CAPTURE(k);
        CHECK(exact);
      }
    }
  }
}

TEST_CASE("qgemm is exact for every uint8/int8 operand combination") {
  std::mt19937 rng(11);
  check_qgemm<uint8_t, uint8_t>(rng);
  check_qgemm<uint8_t, int8_t>(rng);
  check_qgemm<int8_t, uint8_t>(rng);
  check_qgemm<int8_t, int8_t>(rng);
}

TEST_CASE("worst-case integer block sums stay exact") {
  // Every product is 255 * 255 with the same sign: the largest partial sums a block can hold.
  const int64_t m = 5, n = 9, k = 3 * kGemmKC + 1;
  std::vector<uint8_t> a(size_t(m * k), 255), b(size_t(k * n), 255);
  std::vector<int32_t> a_zp(size_t(m), 0), b_zp(size_t(n), 0), c(size_t(m * n));
  qgemm(m, n, k, a.data(), k, 1, a_zp.data(), b.data(), n, 1, b_zp.data(), c.data(), n);
  for (int32_t v : c) CHECK(v == 255 * 255 * k);
}
