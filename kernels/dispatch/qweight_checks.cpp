#include "kernels/dispatch/qweight_checks.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "nibble/error.h"

namespace nibble::kernels::qweights {
namespace {

[[noreturn]] void invalid(const char* who, const std::string& message) {
  throw Error(ErrorKind::InvalidArgument, std::string(who) + ": " + message);
}

}  // namespace

void check_arguments(const char* who, int bits, int64_t rows, int64_t cols, Isa isa) {
  if (bits != 4 && bits != 8) {
    invalid(who, "weights must have 4 or 8 bits, not " + std::to_string(bits));
  }
  if (rows <= 0 || cols <= 0) {
    invalid(who, "weights " + std::to_string(rows) + " x " + std::to_string(cols) + " are empty");
  }
  if (static_cast<int>(isa) > static_cast<int>(detected_isa())) {
    invalid(who, std::string("this CPU has no ") + isa_name(isa));
  }
}

RowStats row_stats(const char* who, int bits, int64_t rows, int64_t cols, const int8_t* w,
                   int64_t row_stride, const float* scales, bool per_channel, const char* row_word,
                   const char* col_word) {
  RowStats stats;
  stats.scales.resize(size_t(rows));
  stats.sums.assign(size_t(rows), 0);
  for (int64_t r = 0; r < rows; ++r) {
    const float s = scales[per_channel ? r : 0];
    if (!(std::isfinite(s) && s > 0)) {
      invalid(who, std::string("weight scale of ") + row_word + " " + std::to_string(r) +
                       " is not finite and positive");
    }
    stats.scales[size_t(r)] = s;
    const int8_t* row = w + r * row_stride;
    int32_t sum = 0, max_abs = stats.max_abs;
    for (int64_t c = 0; c < cols; ++c) {
      const int32_t v = row[c];
      if (bits == 4 && (v < -8 || v > 7)) {
        invalid(who, "int4 weight " + std::to_string(v) + " at " + row_word + " " +
                         std::to_string(r) + ", " + col_word + " " + std::to_string(c) +
                         " is outside [-8, 7]");
      }
      sum += v;
      max_abs = std::max(max_abs, std::abs(v));
    }
    stats.sums[size_t(r)] = sum;
    stats.max_abs = max_abs;
  }
  return stats;
}

}  // namespace nibble::kernels::qweights
