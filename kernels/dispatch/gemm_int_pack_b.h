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

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/dispatch/gemm_int_kernels.h"
#include "kernels/gemm_int.h"

namespace nibble::kernels::qgemm_detail {

// Maps the columns v of a convolution's computation grid (v = oh * wg + ow, wg >= out_w) to output
// columns; wg == out_w (and every non-convolution) is the identity.
struct ColumnGrid {
  int64_t wg = 0, out_w = 0;

  bool identity() const { return wg == out_w; }
  // Output column of v, or -1 for a dropped grid column.
  int64_t output_column(int64_t v) const {
    if (identity()) return v;
    const int64_t oh = v / wg, ow = v % wg;
    return ow < out_w ? oh * out_w + ow : -1;
  }
  // Calls fn(offset, n, len) for each run of `cols` grid columns from v that are `len`
  // consecutive output columns from n (offset: the run's first column, counted from v).
  template <typename Fn>
  void for_each_run(int64_t v, int64_t cols, Fn&& fn) const {
    if (identity()) {
      fn(int64_t{0}, v, cols);
      return;
    }
    int64_t oh = v / wg, ow = v % wg, c = 0;
    while (c < cols) {
      const int64_t len = std::min(ow < out_w ? out_w - ow : wg - ow, cols - c);
      if (ow < out_w) fn(c, oh * out_w + ow, len);
      c += len;
      ow += len;
      if (ow == wg) {
        ++oh;
        ow = 0;
      }
    }
  }
};

class BReader {
 public:
  // Reads B for output columns [n_begin, n_end). For an implicit convolution this copies the
  // padded image rows those columns need (into per-thread scratch).
  BReader(const QSource& b, int64_t n_begin, int64_t n_end);

  int64_t v_begin() const { return v_begin_; }
  int64_t v_end() const { return v_end_; }
  const ColumnGrid& grid() const { return grid_; }

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
  ColumnGrid grid_;
  // Implicit convolution: first padded row held, rows per channel.
  int64_t first_row_ = 0, rows_held_ = 0;
  const uint8_t* padded_ = nullptr;
  std::vector<const uint8_t*>& rows_;
};

}  // namespace nibble::kernels::qgemm_detail

namespace nibble::kernels::qgemm_detail {

// Mode A8 convolutions (2-D: any kernel, stride, dilation and padding) read as an implicit GEMM
// on one copy of the input per call: padded, split into stride phases (s1 x s2 sub-images, so
// that a strided tap becomes a shift) and with four channels interleaved per pixel — the K quads
// of pack_qconv_weights' (channel quad, tap, channel) order. K quad (c4, kh, kw) at grid column
// v = oh * wg + ow is the dword of phase ((kh dh) % s1, (kw dw) % s2), channel quad c4, row
// oh + (kh dh) / s1, column ow + (kw dw) / s2, so the NR columns of every quad are one
// contiguous load at a fixed offset (quad_offsets) and nothing is packed per column block. The
// copy costs one pass over the input instead of an im2col (kh kw times larger) per call.
// wg = out_w + ((kw - 1) dw) / s2 (grid columns past out_w are computed and dropped; none for
// 1x1 kernels).
class ConvQuadImage {
 public:
  // 2-D convolutions (1-D ones as H = 1).
  static bool supports(const ref::ConvGeometry& g) {
    return g.in[0] == 1 && g.out[0] == 1 && g.kernel[0] == 1;
  }
  // Copies what output columns [n_begin, n_end) need, with room for tiles of `nr` columns to
  // read past the last one.
  ConvQuadImage(const QSource& b, int64_t n_begin, int64_t n_end, int64_t nr);

  int64_t v_begin() const { return v_begin_; }
  int64_t v_end() const { return v_end_; }
  const ColumnGrid& grid() const { return grid_; }
  int64_t k_quads() const { return int64_t(offsets_.size()); }
  // Grid column v of the image; K quad q's columns are quad_offsets()[q] bytes further.
  const uint8_t* column(int64_t v) const { return image_ + (v - v_origin_) * 4; }
  const int32_t* quad_offsets() const { return offsets_.data(); }

 private:
  ColumnGrid grid_;
  int64_t v_begin_ = 0, v_end_ = 0, v_origin_ = 0;
  const uint8_t* image_ = nullptr;
  std::vector<int32_t>& offsets_;
};

}  // namespace nibble::kernels::qgemm_detail
