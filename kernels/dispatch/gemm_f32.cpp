// FP32 GEMM: the per-ISA kernel table, weight (A) packing and the blocked, threaded driver that
// packs B block by block and walks the micro-kernel over the tiles of C.
#include <algorithm>
#include <cstring>
#include <iterator>

#include "kernels/dispatch/aligned_scratch.h"
#include "kernels/dispatch/pack_f32.h"
#include "kernels/gemm_f32.h"

namespace nibble::kernels {
namespace {

// kc x nc blocks: the A panel slice (kc x mr, 24 KiB for AVX-512) stays in L1 while the
// micro-kernel streams the strips of the B block (kc x nc, 512 KiB) from L2. Measured on Zen 5
// for square GEMMs 512..2048, (kc, nc) from (192, 960) to (512, 256) are within 5% of each
// other; larger kc means fewer passes over C.
const GemmF32Kernel kKernels[] = {
    {Isa::Avx512, "12x32", 12, 32, 512, 256, avx512::gemm_f32_ukernel_12x32},
    {Isa::Avx2, "6x16", 6, 16, 256, 384, avx2::gemm_f32_ukernel_6x16},
    {Isa::Ref, "4x8", 4, 8, 256, 256, ref::gemm_f32_ukernel_4x8},
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct PackedBScratch {};

// Rows of B are read in order (one pass over memory) and scattered to the strips; fixed strip
// widths let the copies inline.
template <int64_t NR>
void pack_rows(int64_t rows, int64_t nc, const float* b, int64_t ldb, float* packed,
               int64_t strip_stride) {
  const int64_t full = nc / NR * NR;
  const int64_t stride = strip_stride / NR;  // strips are `stride` groups of NR apart
  for (int64_t i = 0; i < rows; ++i) {
    const float* src = b + i * ldb;
    float* dst = packed + i * NR;
    for (int64_t s = 0; s < full; s += NR) {
      std::memcpy(dst + s * stride, src + s, NR * sizeof(float));
    }
    if (full < nc) {
      float* tail = dst + full * stride;
      std::memcpy(tail, src + full, static_cast<size_t>(nc - full) * sizeof(float));
      std::memset(tail + (nc - full), 0, static_cast<size_t>(NR - (nc - full)) * sizeof(float));
    }
  }
}

}  // namespace

const GemmF32Kernel& gemm_f32_kernel(Isa isa) {
  for (const GemmF32Kernel& kernel : kKernels) {
    if (static_cast<int>(kernel.isa) <= static_cast<int>(isa)) return kernel;
  }
  return kKernels[std::size(kKernels) - 1];
}

int64_t gemm_f32_packed_a_size(const GemmF32Kernel& kernel, int64_t m, int64_t k) {
  return ceil_div(m, kernel.mr) * kernel.mr * k;
}

void gemm_f32_pack_a(const GemmF32Kernel& kernel, int64_t m, int64_t k, const float* a,
                     int64_t lda, float* packed) {
  const int64_t mr = kernel.mr;
  for (int64_t p = 0; p < m; p += mr) {
    float* panel = packed + p * k;
    const int64_t rows = std::min(mr, m - p);
    for (int64_t j = 0; j < k; ++j) {
      for (int64_t r = 0; r < rows; ++r) panel[j * mr + r] = a[(p + r) * lda + j];
      for (int64_t r = rows; r < mr; ++r) panel[j * mr + r] = 0.0f;
    }
  }
}

void pack_b_rows(int64_t nr, int64_t rows, int64_t nc, const float* b, int64_t ldb,
                 float* packed, int64_t strip_stride) {
  switch (nr) {
    case 8: return pack_rows<8>(rows, nc, b, ldb, packed, strip_stride);
    case 16: return pack_rows<16>(rows, nc, b, ldb, packed, strip_stride);
    case 32: return pack_rows<32>(rows, nc, b, ldb, packed, strip_stride);
  }
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t s = 0; s < nc; s += nr) {
      const int64_t cols = std::min(nr, nc - s);
      float* dst = packed + s / nr * strip_stride + i * nr;
      std::memcpy(dst, b + i * ldb + s, static_cast<size_t>(cols) * sizeof(float));
      std::fill(dst + cols, dst + nr, 0.0f);
    }
  }
}

void gemm_f32_pack_b(int64_t nr, int64_t kc, int64_t nc, const float* b, int64_t ldb,
                     float* packed) {
  pack_b_rows(nr, kc, nc, b, ldb, packed, nr * kc);
}

void gemm_f32_run(const GemmF32Kernel& kernel, int64_t m, int64_t n, int64_t k,
                  const float* packed_a, const GemmF32PackB& pack_b, float* c, int64_t ldc,
                  const Epilogue& epilogue, ThreadPool* pool) {
  if (m <= 0 || n <= 0) return;
  const int64_t mr = kernel.mr, nr = kernel.nr;
  // Tasks are rectangles of whole tiles. Columns are split first: a split of rows would make
  // every task that shares the columns pack the same B blocks again.
  const int64_t threads = pool ? pool->num_threads() : 1;
  const int64_t wanted = threads > 1 ? 4 * threads : 1;
  const int64_t col_strips = ceil_div(n, nr), row_panels = ceil_div(m, mr);
  const int64_t n_tasks = std::min(col_strips, wanted);
  const int64_t m_tasks = std::min(row_panels, ceil_div(wanted, n_tasks));
  const int64_t strips_per_task = ceil_div(col_strips, n_tasks);
  const int64_t panels_per_task = ceil_div(row_panels, m_tasks);
  const int64_t kc_max = std::min(kernel.kc, std::max<int64_t>(k, 1));
  const int64_t nc_max = std::min(kernel.nc, ceil_div(n, nr) * nr);

  auto run_task = [&](int64_t task) {
    const int64_t m0 = (task % m_tasks) * panels_per_task * mr;
    const int64_t m1 = std::min(m, m0 + panels_per_task * mr);
    const int64_t n0 = (task / m_tasks) * strips_per_task * nr;
    const int64_t n1 = std::min(n, n0 + strips_per_task * nr);
    if (m0 >= m1 || n0 >= n1) return;
    float* packed_b = thread_scratch<PackedBScratch>(kc_max * nc_max);
    for (int64_t nb = n0; nb < n1; nb += kernel.nc) {
      const int64_t nc = std::min(kernel.nc, n1 - nb);
      // k == 0 still makes one (empty) block so the epilogue runs.
      for (int64_t kb = 0; kb < std::max<int64_t>(k, 1); kb += kernel.kc) {
        const int64_t kc = std::max<int64_t>(std::min(kernel.kc, k - kb), 0);
        if (kc > 0) pack_b(kb, kc, nb, nc, packed_b);
        GemmF32Tile tile{kc, nullptr, nullptr, nullptr, nullptr, nullptr, ldc, 0, 0, kb > 0,
                         nullptr};
        const bool last = kb + kernel.kc >= k;
        for (int64_t i = m0; i < m1; i += mr) {
          tile.a = packed_a + i * k + kb * mr;
          tile.rows = std::min(mr, m - i);
          TileEpilogue ep{epilogue.bias ? epilogue.bias + i : nullptr, nullptr,
                          epilogue.residual_ld, epilogue.activation, epilogue.clip_min,
                          epilogue.clip_max, epilogue.residual_first};
          tile.epilogue = last ? &ep : nullptr;
          for (int64_t j = 0; j < nc; j += nr) {
            // The last strip fetches the next panel's slice.
            tile.a_next = j + nr < nc || i + mr >= m1 ? tile.a : tile.a + mr * k;
            tile.b = packed_b + j * kc;
            tile.c = c + i * ldc + nb + j;
            tile.outputs = tile_columns(std::min(nr, nc - j));
            if (epilogue.residual) ep.residual = epilogue.residual + i * epilogue.residual_ld + nb + j;
            kernel.ukernel(tile);
          }
        }
      }
    }
  };
  const int64_t tasks = m_tasks * n_tasks;
  if (tasks == 1 || !pool) {
    for (int64_t t = 0; t < tasks; ++t) run_task(t);
    return;
  }
  pool->parallel_for(tasks, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) run_task(t);
  });
}

void gemm_f32(const GemmF32Kernel& kernel, int64_t m, int64_t n, int64_t k,
              const float* packed_a, const float* b, int64_t ldb, float* c, int64_t ldc,
              const Epilogue& epilogue, ThreadPool* pool) {
  gemm_f32_run(
      kernel, m, n, k, packed_a,
      [&](int64_t k0, int64_t kc, int64_t n0, int64_t nc, float* packed) {
        gemm_f32_pack_b(kernel.nr, kc, nc, b + k0 * ldb + n0, ldb, packed);
      },
      c, ldc, epilogue, pool);
}

}  // namespace nibble::kernels
