// B-strip packing shared by the FP32 GEMM and convolution drivers (kernels/dispatch).
#pragma once

#include <cstdint>

namespace nibble::kernels {

// Packs `rows` rows of nc columns (element (i, j) at b[i * ldb + j]) into the strips of a B
// block: strip s starts at packed + s * strip_stride (strip_stride = nr * the block's depth),
// row i of it at + i * nr; columns past nc are zero-filled.
void pack_b_rows(int64_t nr, int64_t rows, int64_t nc, const float* b, int64_t ldb,
                 float* packed, int64_t strip_stride);

}  // namespace nibble::kernels
