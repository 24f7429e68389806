// B packing for the low-bit GEMM driver: reads the activations of one qgemm call (a matrix or a
// convolution's im2col matrix) and writes the strips of a kernel set's layout
// (gemm_int_kernels.h), converting int8 to uint8, quantizing to int16 or copying floats.
//
// Columns are addressed in a column space v that is B's own (v = n), except for stride-1 2-D
// convolutions, read as an implicit GEMM: over a grid of padded width wp, column
// v = oh * wp + ow of im2col row (c, kh, kw) is element (c, oh + kh * dh, ow + kw * dw) of a
// padded copy of the image, so every im2col row is one contiguous run and packing is a plain
// interleave. Grid columns with ow >= out_w are computed and dropped (output_column() = -1):
// 2-10% extra work for 80x80..20x20 maps, against gathering every row of a 3x3 im2col.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/dispatch/gemm_int_kernels.h"
#include "kernels/gemm_int.h"

namespace nibble::kernels::qgemm_detail {

class BReader {
 public:
  // Reads B for output columns [n_begin, n_end). For an implicit convolution this copies the
  // padded image rows those columns need (into per-thread scratch).
  BReader(const QSource& b, int64_t n_begin, int64_t n_end);

  int64_t v_begin() const { return v_begin_; }
  int64_t v_end() const { return v_end_; }
  // True when column v is output column v.
  bool identity_columns() const { return !implicit_; }
  // Output column of column v, or -1 for a dropped grid column.
  int64_t output_column(int64_t v) const {
    if (!implicit_) return v;
    const int64_t oh = v / wp_, ow = v % wp_;
    return ow < out_w_ ? oh * out_w_ + ow : -1;
  }

  // Packs rows [k0, k0 + kb) x columns [v0, v0 + ncb) into ceil(ncb / nr) strips of `ks`.
  void pack(const KernelSet& ks, const Int16Quantization& q16, int64_t k0, int64_t kb,
            int64_t v0, int64_t ncb, uint8_t* packed);

 private:
  // Sets rows_ to kb pointers at column v0 of each row, ncb contiguous elements each.
  void locate_rows(int64_t k0, int64_t kb, int64_t v0, int64_t ncb);

  const QSource& b_;
  size_t elem_bytes_;
  bool implicit_ = false;
  int64_t v_begin_ = 0, v_end_ = 0;
  // Implicit convolution: grid width, output width, first padded row held, rows per channel.
  int64_t wp_ = 0, out_w_ = 0, first_row_ = 0, rows_held_ = 0;
  const uint8_t* padded_ = nullptr;
  std::vector<const uint8_t*>& rows_;
};

}  // namespace nibble::kernels::qgemm_detail
