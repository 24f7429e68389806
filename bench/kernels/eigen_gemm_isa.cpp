// Eigen's GEMM, compiled once per ISA (bench/CMakeLists.txt sets the flags and
// NIBBLE_EIGEN_ISA), since Eigen picks its vector width at compile time.
#include <Eigen/Core>

#include <cstdint>

#define NIBBLE_EIGEN_CONCAT2(a, b) a##b
#define NIBBLE_EIGEN_CONCAT(a, b) NIBBLE_EIGEN_CONCAT2(a, b)

namespace nibble::bench {

// C[m x n] = A[m x k] · B[k x n], all row-major and contiguous.
void NIBBLE_EIGEN_CONCAT(eigen_gemm_, NIBBLE_EIGEN_ISA)(int64_t m, int64_t n, int64_t k,
                                                        const float* a, const float* b, float* c) {
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const Matrix> ma(a, m, k), mb(b, k, n);
  Eigen::Map<Matrix> mc(c, m, n);
  mc.noalias() = ma * mb;
}

void NIBBLE_EIGEN_CONCAT(eigen_set_threads_, NIBBLE_EIGEN_ISA)(int threads) {
  Eigen::setNbThreads(threads);
}

}  // namespace nibble::bench
