// Reference GEMM: operand packing, the 4x8 register-tile block product (float, and integer
// operands packed as float), and whole-matrix drivers. Layouts are described in kernels/ref.h.
//
// The tile loop is written so GCC/Clang fully unroll the MR x NR accumulator into vector
// registers at -O2/-O3 with the baseline ISA (4x8 measured best with SSE2: 8 accumulators + 2 B
// vectors + broadcasts fit in 16 XMM registers).
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/ref.h"

namespace nibble::kernels::ref {
namespace {

constexpr int64_t MR = kGemmMR;
constexpr int64_t NR = kGemmNR;
// Columns of B packed per block by the whole-matrix drivers: 256 x 256 floats = 256 KiB, which
// stays in L2 next to the A panels.
constexpr int64_t kDriverNC = 256;

using Tile = float[MR][NR];

// acc = sum over kc of (column k of the A panel) x (row k of the B strip).
inline void tile_product(int64_t kc, const float* __restrict a, const float* __restrict b,
                         Tile& acc) {
  float c[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int64_t r = 0; r < MR; ++r) {
      const float ar = a[r];
      for (int64_t j = 0; j < NR; ++j) c[r][j] += ar * b[j];
    }
    a += MR;
    b += NR;
  }
  std::memcpy(acc, c, sizeof(c));
}

// Writes (or adds) the rows x cols corner of a tile to C, converting with `convert`.
template <typename TC, typename Convert>
inline void store_tile(const Tile& acc, int64_t rows, int64_t cols, TC* c, int64_t ldc,
                       bool accumulate, Convert convert) {
  if (rows == MR && cols == NR) {
    for (int64_t r = 0; r < MR; ++r) {
      TC* row = c + r * ldc;
      if (accumulate) {
        for (int64_t j = 0; j < NR; ++j) row[j] += convert(acc[r][j]);
      } else {
        for (int64_t j = 0; j < NR; ++j) row[j] = convert(acc[r][j]);
      }
    }
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    TC* row = c + r * ldc;
    for (int64_t j = 0; j < cols; ++j) {
      row[j] = accumulate ? row[j] + convert(acc[r][j]) : convert(acc[r][j]);
    }
  }
}

template <typename TC, typename Convert>
void block_product(int64_t m, int64_t nc, int64_t kc, const float* packed_a, int64_t a_panel_stride,
                   const float* packed_b, TC* c, int64_t ldc, bool accumulate, Convert convert) {
  Tile acc;
  for (int64_t j = 0; j < nc; j += NR) {
    const float* b_strip = packed_b + (j / NR) * NR * kc;
    const int64_t cols = std::min(NR, nc - j);
    for (int64_t i = 0; i < m; i += MR) {
      tile_product(kc, packed_a + (i / MR) * a_panel_stride, b_strip, acc);
      store_tile(acc, std::min(MR, m - i), cols, c + i * ldc + j, ldc, accumulate, convert);
    }
  }
}

// value(i, j) gives element (i, j) of the source as float.
template <typename Value>
void pack_a_impl(int64_t m, int64_t k, float* packed, Value value) {
  for (int64_t p = 0; p < m; p += MR) {
    float* panel = packed + (p / MR) * MR * k;
    const int64_t rows = std::min(MR, m - p);
    for (int64_t kk = 0; kk < k; ++kk) {
      float* dst = panel + kk * MR;
      for (int64_t r = 0; r < rows; ++r) dst[r] = value(p + r, kk);
      for (int64_t r = rows; r < MR; ++r) dst[r] = 0.0f;
    }
  }
}

template <typename Value>
void pack_b_impl(int64_t kc, int64_t nc, float* packed, Value value) {
  for (int64_t s = 0; s < nc; s += NR) {
    float* strip = packed + (s / NR) * NR * kc;
    const int64_t cols = std::min(NR, nc - s);
    for (int64_t kk = 0; kk < kc; ++kk) {
      float* dst = strip + kk * NR;
      for (int64_t j = 0; j < cols; ++j) dst[j] = value(kk, s + j);
      for (int64_t j = cols; j < NR; ++j) dst[j] = 0.0f;
    }
  }
}

template <typename T>
void pack_a_quant(int64_t m, int64_t k, const T* a, int64_t rs, int64_t cs, const int32_t* zp,
                  float* packed) {
  pack_a_impl(m, k, packed, [&](int64_t i, int64_t j) {
    return static_cast<float>(static_cast<int32_t>(a[i * rs + j * cs]) - zp[i]);
  });
}

template <typename T>
void pack_b_quant(int64_t kc, int64_t nc, const T* b, int64_t rs, int64_t cs, const int32_t* zp,
                  float* packed) {
  pack_b_impl(kc, nc, packed, [&](int64_t i, int64_t j) {
    return static_cast<float>(static_cast<int32_t>(b[i * rs + j * cs]) - zp[j]);
  });
}

// Shared whole-matrix loop: pack all of A, then B block by block.
template <typename TC, typename PackA, typename PackB, typename Block>
void gemm_driver(int64_t m, int64_t n, int64_t k, TC* c, int64_t ldc, PackA pack_a, PackB pack_b,
                 Block block) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, TC{0});
    return;
  }
  std::vector<float> packed_a(static_cast<size_t>(gemm_packed_a_size(m, k)));
  pack_a(packed_a.data());
  const int64_t nc_max = std::min(n, kDriverNC);
  std::vector<float> packed_b(
      static_cast<size_t>(gemm_packed_b_size(std::min(k, kGemmKC), nc_max)));
  for (int64_t n0 = 0; n0 < n; n0 += kDriverNC) {
    const int64_t nc = std::min(kDriverNC, n - n0);
    for (int64_t k0 = 0; k0 < k; k0 += kGemmKC) {
      const int64_t kc = std::min(kGemmKC, k - k0);
      pack_b(k0, kc, n0, nc, packed_b.data());
      block(m, nc, kc, packed_a.data() + k0 * MR, MR * k, packed_b.data(), c + n0, ldc, k0 > 0);
    }
  }
}

}  // namespace

int64_t gemm_packed_a_size(int64_t m, int64_t k) { return (m + MR - 1) / MR * MR * k; }
int64_t gemm_packed_b_size(int64_t kc, int64_t nc) { return (nc + NR - 1) / NR * NR * kc; }

void gemm_pack_a(int64_t m, int64_t k, const float* a, int64_t rs, int64_t cs, float* packed) {
  pack_a_impl(m, k, packed, [&](int64_t i, int64_t j) { return a[i * rs + j * cs]; });
}
void gemm_pack_a(int64_t m, int64_t k, const uint8_t* a, int64_t rs, int64_t cs,
                 const int32_t* zero_points, float* packed) {
  pack_a_quant(m, k, a, rs, cs, zero_points, packed);
}
void gemm_pack_a(int64_t m, int64_t k, const int8_t* a, int64_t rs, int64_t cs,
                 const int32_t* zero_points, float* packed) {
  pack_a_quant(m, k, a, rs, cs, zero_points, packed);
}

void gemm_pack_b(int64_t kc, int64_t nc, const float* b, int64_t rs, int64_t cs, float* packed) {
  if (cs == 1) {  // rows are contiguous: copy NR-wide runs
    for (int64_t s = 0; s < nc; s += NR) {
      float* strip = packed + (s / NR) * NR * kc;
      const int64_t cols = std::min(NR, nc - s);
      for (int64_t kk = 0; kk < kc; ++kk) {
        std::memcpy(strip + kk * NR, b + kk * rs + s, static_cast<size_t>(cols) * sizeof(float));
        std::fill(strip + kk * NR + cols, strip + kk * NR + NR, 0.0f);
      }
    }
    return;
  }
  pack_b_impl(kc, nc, packed, [&](int64_t i, int64_t j) { return b[i * rs + j * cs]; });
}
void gemm_pack_b(int64_t kc, int64_t nc, const uint8_t* b, int64_t rs, int64_t cs,
                 const int32_t* zero_points, float* packed) {
  pack_b_quant(kc, nc, b, rs, cs, zero_points, packed);
}
void gemm_pack_b(int64_t kc, int64_t nc, const int8_t* b, int64_t rs, int64_t cs,
                 const int32_t* zero_points, float* packed) {
  pack_b_quant(kc, nc, b, rs, cs, zero_points, packed);
}

void sgemm_block(int64_t m, int64_t nc, int64_t kc, const float* packed_a, int64_t a_panel_stride,
                 const float* packed_b, float* c, int64_t ldc, bool accumulate) {
  block_product(m, nc, kc, packed_a, a_panel_stride, packed_b, c, ldc, accumulate,
                [](float v) { return v; });
}

void qgemm_block(int64_t m, int64_t nc, int64_t kc, const float* packed_a, int64_t a_panel_stride,
                 const float* packed_b, int32_t* c, int64_t ldc, bool accumulate) {
  // Block sums are exact integers below 2^24 (see ref.h), so the conversion is exact.
  block_product(m, nc, kc, packed_a, a_panel_stride, packed_b, c, ldc, accumulate,
                [](float v) { return static_cast<int32_t>(v); });
}

void sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_cs,
           const float* b, int64_t b_rs, int64_t b_cs, float* c, int64_t ldc) {
  gemm_driver(
      m, n, k, c, ldc, [&](float* packed) { gemm_pack_a(m, k, a, a_rs, a_cs, packed); },
      [&](int64_t k0, int64_t kc, int64_t n0, int64_t nc, float* packed) {
        gemm_pack_b(kc, nc, b + k0 * b_rs + n0 * b_cs, b_rs, b_cs, packed);
      },
      sgemm_block);
}

template <typename TA, typename TB>
void qgemm(int64_t m, int64_t n, int64_t k, const TA* a, int64_t a_rs, int64_t a_cs,
           const int32_t* a_zero_points, const TB* b, int64_t b_rs, int64_t b_cs,
           const int32_t* b_zero_points, int32_t* c, int64_t ldc) {
  gemm_driver(
      m, n, k, c, ldc,
      [&](float* packed) { gemm_pack_a(m, k, a, a_rs, a_cs, a_zero_points, packed); },
      [&](int64_t k0, int64_t kc, int64_t n0, int64_t nc, float* packed) {
        gemm_pack_b(kc, nc, b + k0 * b_rs + n0 * b_cs, b_rs, b_cs, b_zero_points + n0, packed);
      },
      qgemm_block);
}

template void qgemm<uint8_t, uint8_t>(int64_t, int64_t, int64_t, const uint8_t*, int64_t, int64_t,
                                      const int32_t*, const uint8_t*, int64_t, int64_t,
                                      const int32_t*, int32_t*, int64_t);
template void qgemm<uint8_t, int8_t>(int64_t, int64_t, int64_t, const uint8_t*, int64_t, int64_t,
                                     const int32_t*, const int8_t*, int64_t, int64_t,
                                     const int32_t*, int32_t*, int64_t);
template void qgemm<int8_t, uint8_t>(int64_t, int64_t, int64_t, const int8_t*, int64_t, int64_t,
                                     const int32_t*, const uint8_t*, int64_t, int64_t,
                                     const int32_t*, int32_t*, int64_t);
template void qgemm<int8_t, int8_t>(int64_t, int64_t, int64_t, const int8_t*, int64_t, int64_t,
                                    const int32_t*, const int8_t*, int64_t, int64_t, const int32_t*,
                                    int32_t*, int64_t);

}  // namespace nibble::kernels::ref
