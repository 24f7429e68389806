// Argument checks and per-row statistics shared by the packers of the low-bit kernels: the GEMM
// and convolution weights of gemm_int.h and the depthwise weights of dwconv_int.h.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu_features.h"

namespace nibble::kernels::qweights {

// Throws nibble::Error(InvalidArgument), the message prefixed with "<who>: ", for bits other
// than 4/8, an empty (or negative) rows x cols, or an `isa` above what this CPU supports.
void check_arguments(const char* who, int bits, int64_t rows, int64_t cols, Isa isa);

// What the packers keep of W[rows x cols], element (r, c) at w[r * row_stride + c].
struct RowStats {
  std::vector<float> scales;  // one per row
  std::vector<int32_t> sums;  // sum of each row's values (zero-point compensation)
  int32_t max_abs = 0;        // largest |w|
};

// Checks every row's scale (scales[per_channel ? r : 0]: finite and positive) and, at 4 bits,
// that every value lies in [-8, 7]; throws nibble::Error(InvalidArgument) naming the value at
// fault as "<row_word> r" and "<col_word> c" (e.g. "row"/"column", "channel"/"tap").
RowStats row_stats(const char* who, int bits, int64_t rows, int64_t cols, const int8_t* w,
                   int64_t row_stride, const float* scales, bool per_channel, const char* row_word,
                   const char* col_word);

}  // namespace nibble::kernels::qweights
