// FP32 packed GEMM with a fused epilogue: the kernel family behind Conv and FusedConv.
//
//   C[M x N] = epilogue(A[M x K] · B[K x N])
//
// A holds the weights and is packed once, at load, into panels of the register tile's height
// MR: panel p covers rows [p*MR, p*MR + MR) as K consecutive groups of MR values (column k of
// the panel), rows past M zero-filled. B holds the activations; the driver packs it block by
// block (kc <= kernel.kc rows, nc <= kernel.nc columns) into strips of NR columns, each kc
// consecutive groups of NR values (row k of the strip), columns past the block zero-filled.
// A micro-kernel multiplies one A panel slice by one B strip and keeps the MR x NR tile of C in
// registers, applying the epilogue before its only store on the last block of K. (The
// convolution driver also feeds it unpacked B: see GemmF32Tile.)
//
// One table row per ISA (kernels/dispatch/gemm_f32.cpp); gemm_f32_kernel(active_isa()) picks
// the best the CPU allows. Tiles were chosen by measurement (bench/kernels): 6x16 fills AVX2's 16
// registers (12 accumulators), 12x32 gives AVX-512 24 accumulators, enough to hide the FMA latency
// of two pipes, and its height divides the channel counts of YOLO models (48, 96, 192, ...).
#pragma once

#include <cstdint>
#include <functional>

#include "engine/exec/thread_pool.h"
#include "kernels/cpu_features.h"

namespace nibble::kernels {

enum class Activation : uint8_t { None, Relu, Clip, Sigmoid, SiLU };

const char* activation_name(Activation activation);

// Applied to every element of C after the dot product, in this order:
//   v += bias[row];  [v += residual if residual_first];  v = activation(v);  [v += residual]
// (YOLO's bottleneck adds the residual after SiLU, ResNet's before ReLU.)
struct Epilogue {
  const float* bias = nullptr;      // one value per row of C; null = none
  Activation activation = Activation::None;
  float clip_min = 0.0f, clip_max = 0.0f;  // bounds of Activation::Clip
  const float* residual = nullptr;  // laid out like C with leading dimension residual_ld
  int64_t residual_ld = 0;
  bool residual_first = false;
};

// The epilogue as one micro-kernel call sees it: pointers offset to the tile's origin.
struct TileEpilogue {
  const float* bias;      // rows values, or null
  const float* residual;  // element (r, j) at residual[r * residual_ld + j], or null
  int64_t residual_ld;
  Activation activation;
  float clip_min, clip_max;
  bool residual_first;
};

// One micro-kernel call: an MR x NR tile of C from an A panel slice and a B strip of depth kc.
// Row k of the strip is the NR floats at b + k * NR (a packed strip), or, when b_offsets is not
// null, at b + b_offsets[k] (a shifted run of a padded image, for the convolution driver); all
// NR must be readable. The tile's columns that are outputs are the set bits of `outputs`; they are stored
// in order, without gaps, at c[r * ldc + 0, 1, ...] (a plain tile of `cols` columns has the low
// `cols` bits set; the convolution driver clears the bits of padding columns). The epilogue's
// residual is read the same way.
struct GemmF32Tile {
  int64_t kc;
  const float* a;
  // The A panel slice the driver will use next when it differs from `a` (else `a`): the kernel
  // fetches it into L1 while it computes, one group of MR per step of k.
  const float* a_next;
  const float* b;
  const int64_t* b_offsets;  // null for a packed strip
  float* c;
  int64_t ldc;
  int64_t rows;       // rows of C written, <= MR
  uint32_t outputs;   // bit j: column j of the strip is an output
  bool accumulate;    // add to C instead of overwriting it
  const TileEpilogue* epilogue;  // only on the last block of K; null otherwise
};

// The low `cols` bits: a tile whose first `cols` columns are outputs.
inline uint32_t tile_columns(int64_t cols) {
  return cols >= 32 ? 0xFFFFFFFFu : (uint32_t{1} << cols) - 1;
}

using GemmF32Ukernel = void (*)(const GemmF32Tile& tile);

struct GemmF32Kernel {
  Isa isa;
  const char* tile;  // "MRxNR", for inspect
  int64_t mr, nr;
  int64_t kc;        // rows of B per packed block: the A panel slice (kc x MR) stays in L1
  int64_t nc;        // columns per packed block (multiple of nr): kc x nc stays in L2
  GemmF32Ukernel ukernel;
};

// The table row for `isa`: the best kernel at or below that level.
const GemmF32Kernel& gemm_f32_kernel(Isa isa);

// Floats of packed A for an m x k matrix and this kernel's MR.
int64_t gemm_f32_packed_a_size(const GemmF32Kernel& kernel, int64_t m, int64_t k);
// Packs A[m x k] (element (i, j) at a[i * lda + j]) into kernel.mr panels.
void gemm_f32_pack_a(const GemmF32Kernel& kernel, int64_t m, int64_t k, const float* a,
                     int64_t lda, float* packed);

// Packs rows [k0, k0 + kc) and columns [n0, n0 + nc) of B into strips of kernel.nr columns
// (layout above). Called once per block; kc <= kernel.kc, nc <= kernel.nc.
using GemmF32PackB =
    std::function<void(int64_t k0, int64_t kc, int64_t n0, int64_t nc, float* packed)>;

// C = epilogue(A · B) for a packed A and a B given by its packing function; C row-major with
// leading dimension ldc. Work is split into tiles of C across the pool's threads (null: the
// caller's thread only); each task packs the B blocks of its columns into thread-local scratch.
void gemm_f32_run(const GemmF32Kernel& kernel, int64_t m, int64_t n, int64_t k,
                  const float* packed_a, const GemmF32PackB& pack_b, float* c, int64_t ldc,
                  const Epilogue& epilogue, ThreadPool* pool = nullptr);
// Same with B row-major (element (i, j) at b[i * ldb + j]).
void gemm_f32(const GemmF32Kernel& kernel, int64_t m, int64_t n, int64_t k,
              const float* packed_a, const float* b, int64_t ldb, float* c, int64_t ldc,
              const Epilogue& epilogue, ThreadPool* pool = nullptr);

// Packs a kc x nc block of row-major B into strips of nr columns.
void gemm_f32_pack_b(int64_t nr, int64_t kc, int64_t nc, const float* b, int64_t ldb,
                     float* packed);

// Micro-kernels, one per table row; tests call them through their table row.
namespace ref {
void gemm_f32_ukernel_4x8(const GemmF32Tile& tile);
// The oracle: a plain triple loop in double precision, then the epilogue, for A row-major
// [m x k] (lda) and B row-major [k x n] (ldb).
void gemm_f32_naive(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                    int64_t ldb, float* c, int64_t ldc, const Epilogue& epilogue);
// One element through the epilogue (the scalar definition of Epilogue).
float apply_epilogue(const Epilogue& epilogue, float value, int64_t row, int64_t col);
float apply_epilogue(const TileEpilogue& epilogue, float value, int64_t row, int64_t col);
}  // namespace ref
namespace avx2 {
void gemm_f32_ukernel_6x16(const GemmF32Tile& tile);
}  // namespace avx2
namespace avx512 {
void gemm_f32_ukernel_12x32(const GemmF32Tile& tile);
}  // namespace avx512

}  // namespace nibble::kernels
