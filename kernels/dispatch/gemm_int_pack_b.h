// How the low-bit GEMM driver reads B, the activations of one qgemm call.
//
// ConvImage: convolutions with weights from pack_qconv_weights read their input in place, as an
// implicit GEMM on one copy of it per call (no im2col, no packing per column block).
// BReader: everything else (matrices, and convolutions with GEMM-layout weights through im2col)
// is packed block by block into the strips of a kernel set's layout (gemm_int_kernels.h),
// converting int8 to uint8 or quantizing to int16. (Weight-only float, mode A16, runs on the FP32
// path's own: gemm_a16_f32.h.)
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

// Columns are B's own (v = n).
class BReader {
 public:
  explicit BReader(const QSource& b);

  // Packs rows [k0, k0 + kb) x columns [n0, n0 + ncb) into ceil(ncb / nr) strips of `ks`.
  void pack(const KernelSet& ks, const Int16Quantization& q16, int64_t k0, int64_t kb, int64_t n0,
            int64_t ncb, uint8_t* packed);

 private:
  // Sets rows_ to kb pointers at column n0 of each row, ncb contiguous elements each.
  void locate_rows(int64_t k0, int64_t kb, int64_t n0, int64_t ncb);

  const QSource& b_;
  size_t elem_bytes_;
  std::vector<const uint8_t*>& rows_;
};

// The pixels of one group of four uint8 channel rows: out[4 j + i] = rows[i][j] ^ flip for j in
// [0, count) (flip 0x80 turns int8 into uint8). ConvImage's inner loop for mode A8, per ISA.
using InterleaveQuad = void (*)(const uint8_t* const* rows, int64_t count, uint8_t flip,
                                uint8_t* out);

// Mode A16I16's activation quantization: strip[p][j][i] = clamp(nearbyint(rows[2 p + i][j] *
// q.inv_scale), -q.qmax, q.qmax) as int16, for p in [0, pairs) and j in [0, cols); columns
// [cols, nr) are zero. (The BReader strips, and ConvImage's pixels with pairs 1, nr = cols.)
using InterleavePairsS16 = void (*)(const float* const* rows, int64_t pairs, int64_t cols,
                                    int64_t nr, const Int16Quantization& q, int16_t* strip);
// The best of the per-ISA versions below at ISA level <= isa.
InterleavePairsS16 interleave_pairs_s16_for(Isa isa);

namespace avx2 {
void interleave_quad_u8(const uint8_t* const* rows, int64_t count, uint8_t flip, uint8_t* out);
void interleave_pairs_s16(const float* const* rows, int64_t pairs, int64_t cols, int64_t nr,
                          const Int16Quantization& q, int16_t* strip);
}
// Where the input lands in the grid rows of a stride-1 plane: columns [lo, hi) of each row of wg
// pixels, the others padding.
struct PlaneRows {
  int64_t wg = 0, lo = 0, hi = 0;
};

namespace avx512 {
void interleave_quad_u8(const uint8_t* const* rows, int64_t count, uint8_t flip, uint8_t* out);
// InterleaveQuad on every other byte of the rows (stride-2 phases): out[4 j + i] = rows[i][2 j] ^
// flip, reading rows[i][0 .. 2 count - 2] only.
void interleave_quad_even_u8(const uint8_t* const* rows, int64_t count, uint8_t flip,
                             uint8_t* out);
// `count` grid rows of a stride-1 plane from as many consecutive input rows of in_w bytes: row
// r's columns [lo, hi) from input row r (rows[i] + r * in_w, channel i, at the first column
// they take), the others `pad`; every byte ^ flip. Reads only those columns.
void interleave_quad_plane_u8(const uint8_t* const* rows, int64_t in_w, int64_t count,
                              const PlaneRows& layout, uint8_t pad, uint8_t flip, uint8_t* out);
void interleave_pairs_s16(const float* const* rows, int64_t pairs, int64_t cols, int64_t nr,
                          const Int16Quantization& q, int16_t* strip);
}

}  // namespace nibble::kernels::qgemm_detail

namespace nibble::kernels::qgemm_detail {

// A convolution (2-D: any kernel, stride, dilation and padding) as an implicit GEMM on one copy
// of its input per call: padded, split into stride phases (s1 x s2 sub-images, so that a strided
// tap becomes a shift) and with the channels of one K unit interleaved per pixel — the (channel
// group, tap, channel) K order of pack_qconv_weights, ku channels per group (4 uint8, or 2 int16
// quantized on the way: 4 bytes per pixel in both modes). K unit (group, kh, kw) at
// grid column v = oh * wg + ow is the pixel of phase ((kh dh) % s1, (kw dw) % s2), that group,
// row oh + (kh dh) / s1, column ow + (kw dw) / s2, so the NR columns of every K unit are one
// contiguous run at a fixed offset (unit_offsets) that the tiles load directly. The copy is one
// pass over the input instead of an im2col (kh kw times larger). wg = out_w + ((kw - 1) dw) / s2,
// or with stride 1 as little as out_w + max(left, right padding) (rows share their padding):
// grid columns past out_w are computed and dropped (none for 1x1 kernels; 1 of 81 for a 3x3
// stride-1 convolution on 80x80).
class ConvImage {
 public:
  // 2-D convolutions (1-D ones as H = 1).
  static bool supports(const ref::ConvGeometry& g) {
    return g.in[0] == 1 && g.out[0] == 1 && g.kernel[0] == 1;
  }
  // Copies what output columns [n_begin, n_end) need, with room for tiles of `nr` columns to
  // read past the last one; `isa`: the tiles' (the copy's vector code is chosen to match).
  ConvImage(const QSource& b, QuantMode mode, const Int16Quantization& q16, int64_t n_begin,
            int64_t n_end, int64_t nr, Isa isa);

  int64_t v_begin() const { return v_begin_; }
  int64_t v_end() const { return v_end_; }
  const ColumnGrid& grid() const { return grid_; }
  int64_t k_units() const { return int64_t(offsets_.size()); }
  // Grid column v of the image; K unit u's columns are unit_offsets()[u] bytes further.
  const uint8_t* column(int64_t v) const { return image_ + (v - v_origin_) * 4; }
  const int32_t* unit_offsets() const { return offsets_.data(); }

 private:
  ColumnGrid grid_;
  int64_t v_begin_ = 0, v_end_ = 0, v_origin_ = 0;
  const uint8_t* image_ = nullptr;
  std::vector<int32_t>& offsets_;
};

}  // namespace nibble::kernels::qgemm_detail
