// Integer depthwise kernels for AVX-512 (kernels/dispatch/dwconv_int_kernels.h): vpdpbusd with
// four taps per lane (VNNI), or vpmaddwd with two (plain AVX-512), 16 outputs of one row per
// vector. The input is read in place: each row's 64-byte window is a masked load whose lanes
// outside the image (the padding) take the zero point, so no padded copy of the channel is made.
// Output rows come four at a time for the common 3-row kernels with strides 1 and 2, so that
// every input row's lanes are built once for the (up to three) output rows that read it. The
// int32 sums of a channel go to a scratch plane that the GEMM tiles' epilogue
// (gemm_int_common_avx512.h) then converts in full vectors, rows of 20 or 40 outputs included,
// several small planes per call.
//
// Compiled twice, each copy with internal linkage: by dwconv_int_avx512.cpp for PairsDot and by
// dwconv_int_avx512vnni.cpp for VnniDot. The latter defines NIBBLE_DWCONV_TARGET as
// NIBBLE_TARGET_VNNI first, so that only the kernels that multiply are compiled with VNNI
// (vnni_target.h).
#pragma once

#include <algorithm>
#include <cstring>

#include "kernels/dispatch/aligned_scratch.h"
#include "kernels/dispatch/dwconv_int_kernels.h"
#include "kernels/x86/avx512/gemm_int_common_avx512.h"

// The target attribute of the functions that multiply: none for PairsDot.
#ifndef NIBBLE_DWCONV_TARGET
#define NIBBLE_DWCONV_TARGET
#endif

namespace nibble::kernels::qdw_detail::avx512 {

namespace qd = qgemm_detail;

namespace {

constexpr int kLanes = 16;
constexpr int kBlockRows = 4;  // output rows per block in the specialized kernels
constexpr int64_t kBatchSums = 4096;  // int32 sums converted per epilogue call, at most

// The kernels' multiply: vpmaddwd of two int16 taps per lane (AVX-512BW), or vpdpbusd of four
// uint8 x int8 taps (AVX512-VNNI). Types rather than a bool, so that the names of the VNNI
// kernels say so (tests/tools/check_isa_code.py).
struct PairsDot {
  static constexpr bool kVnni = false;
};
struct VnniDot {
  static constexpr bool kVnni = true;
};

struct SumsScratch {};
struct WeightsScratch {};
struct PaddingRowScratch {};

// Per-call constants of the lane layout.
struct Layout {
  __m512i dword_index;    // vpermd: chunk k <- input dwords s*k .. s*k+3
  __m512i byte_index[2];  // vpshufb: a lane's taps (VNNI: [0] only; pairs: taps 0-1, 2-3)
  int parts;              // lane vectors per run: 1 (VNNI, or pairs of <= 2 taps) or 2
  int groups;             // runs per kernel row
};

Layout make_layout(const Call& c, bool vnni) {
  Layout l;
  const int s = static_cast<int>(c.stride_w), d = static_cast<int>(c.dilation_w), g = c.group_taps;
  alignas(64) int32_t dwords[kLanes];
  alignas(64) uint8_t bytes[2][64];
  for (int k = 0; k < 4; ++k) {
    for (int m = 0; m < 4; ++m) dwords[4 * k + m] = s * k + m;
  }
  for (int b = 0; b < 64; ++b) {
    const int j = (b % 16) / 4, t = b % 4;  // lane in chunk, byte in lane
    if (vnni) {
      bytes[0][b] = static_cast<uint8_t>(s * j + std::min(t, g - 1) * d);  // past the run: weight 0
    } else {
      // Byte t of the lane: the low byte of uint16 tap t / 2 (t even), or 0 (0x80 zeroes).
      for (int part = 0; part < 2; ++part) {
        const int tap = 2 * part + t / 2;
        bytes[part][b] = t % 2 == 0 && tap < g ? static_cast<uint8_t>(s * j + tap * d) : 0x80;
      }
    }
  }
  l.dword_index = _mm512_load_si512(dwords);
  l.byte_index[0] = _mm512_load_si512(bytes[0]);
  l.byte_index[1] = vnni ? l.byte_index[0] : _mm512_load_si512(bytes[1]);
  l.parts = vnni || g <= 2 ? 1 : 2;
  l.groups = static_cast<int>((c.kernel_w + g - 1) / g);
  return l;
}

// One channel's weights as lane words, [kernel_h][groups][parts]: four int8 taps (VNNI) or two
// int16 taps, zero past the kernel's width.
void lane_weights(const Call& c, const Layout& l, bool vnni, const int8_t* w, int32_t* out) {
  const int g = c.group_taps;
  for (int64_t h = 0; h < c.kernel_h; ++h) {
    for (int group = 0; group < l.groups; ++group) {
      auto tap = [&](int t) -> int32_t {
        const int64_t col = int64_t(group) * g + t;
        return t < g && col < c.kernel_w ? w[h * c.kernel_w + col] : 0;
      };
      int32_t* word = out + (h * l.groups + group) * l.parts;
      if (vnni) {
        word[0] = int32_t(uint32_t(uint8_t(tap(0))) | uint32_t(uint8_t(tap(1))) << 8 |
                          uint32_t(uint8_t(tap(2))) << 16 | uint32_t(uint8_t(tap(3))) << 24);
      } else {
        for (int part = 0; part < l.parts; ++part) {
          word[part] = int32_t(uint32_t(uint16_t(tap(2 * part))) |
                               uint32_t(uint16_t(tap(2 * part + 1))) << 16);
        }
      }
    }
  }
}

// Bytes [lo, hi) of a 64-byte window, clipped to it.
NIBBLE_INLINE __mmask64 byte_range(int64_t lo, int64_t hi) {
  lo = std::clamp<int64_t>(lo, 0, 64);
  hi = std::clamp<int64_t>(hi, lo, 64);
  const uint64_t below_hi = hi == 64 ? ~uint64_t{0} : (uint64_t{1} << hi) - 1;
  const uint64_t below_lo = lo == 64 ? ~uint64_t{0} : (uint64_t{1} << lo) - 1;
  return below_hi & ~below_lo;
}

// The rows the loads read: image row y, or for padding rows a row of the zero point (in the
// image's domain, `padding_row`), so that only the columns need a mask.
NIBBLE_INLINE const uint8_t* input_row(const Call& c, const uint8_t* image,
                                       const uint8_t* padding_row, int64_t y) {
  return y < 0 || y >= c.in_h ? padding_row : image + y * c.in_w;
}

// The 64-byte window of a row from input column x0, as uint8: bytes outside `columns` (the
// padding) read `fill`, the zero point in the image's domain.
template <bool kFlip>
NIBBLE_INLINE __m512i load_window(const uint8_t* row, int64_t x0, __mmask64 columns,
                                  __m512i fill) {
  // Masked-off bytes are never touched, so the window may start before the row or run past the
  // image.
  __m512i v = _mm512_mask_loadu_epi8(fill, columns, row + x0);
  if constexpr (kFlip) v = _mm512_xor_si512(v, _mm512_set1_epi8(char(0x80)));
  return v;
}

template <typename Dot>
NIBBLE_DWCONV_TARGET NIBBLE_INLINE __m512i accumulate(__m512i acc, __m512i lanes,
                                                     __m512i weights) {
  if constexpr (Dot::kVnni) {
    return _mm512_dpbusd_epi32(acc, lanes, weights);
  } else {
    return _mm512_add_epi32(acc, _mm512_madd_epi16(lanes, weights));
  }
}

// Stores the sums of output row `row`, lanes from column x, less the compensation.
NIBBLE_INLINE void store_sums(const Call& c, int32_t* sums, int64_t row, int64_t x, __m512i acc,
                              __m512i comp) {
  const __mmask16 mask = qd::avx512::epilogue::first_lanes(c.out_w - x);
  _mm512_mask_storeu_epi32(sums + row * c.out_w + x, mask, _mm512_sub_epi32(acc, comp));
}

// Kernels of kKernelH rows, one run wide (kernel_w <= group_taps), with vertical stride kStrideH
// and dilation 1, kParts lane vectors per run: kBlockRows output rows at a time, each input
// row's lanes built once and added to every output row that reads it. A row's last vector of
// at most four outputs (rows of 20 in YOLO's heads) would leave 12 lanes idle: those tails
// share one vector instead, a 128-bit chunk for each of the block's four rows.
template <typename Dot, bool kFlip, int kKernelH, int kStrideH, int kParts>
NIBBLE_DWCONV_TARGET void channel_sums_blocked(const Call& c, const Layout& l,
                                               const uint8_t* image, const uint8_t* padding_row,
                                               const int32_t* weights, __m512i comp,
                                               int32_t* sums) {
  static_assert(kBlockRows == 4, "a packed tail holds one chunk per row of the block");
  constexpr int kInputRows = (kBlockRows - 1) * kStrideH + kKernelH;
  const __m512i fill = _mm512_set1_epi8(char(c.flip_sign ? c.zero_point ^ 0x80 : c.zero_point));
  __m512i w[kKernelH][kParts];
#pragma GCC unroll 8
  for (int h = 0; h < kKernelH; ++h) {
#pragma GCC unroll 2
    for (int part = 0; part < kParts; ++part) {
      w[h][part] = _mm512_set1_epi32(weights[h * kParts + part]);  // one run: [h][part]
    }
  }
  const int64_t tail = c.out_w % kLanes;
  const bool pack_tail = tail > 0 && tail <= 4;
  const int64_t full_end = pack_tail ? c.out_w - tail : c.out_w;
  for (int64_t r0 = 0; r0 < c.out_h; r0 += kBlockRows) {
    // Rows past the last output row read padding rows or real ones; their sums are not stored.
    const uint8_t* rows[kInputRows];
#pragma GCC unroll 16
    for (int i = 0; i < kInputRows; ++i) {
      rows[i] = input_row(c, image, padding_row, r0 * kStrideH - c.pad_top + i);
    }
    for (int64_t x = 0; x < full_end; x += kLanes) {
      const int64_t x0 = x * c.stride_w - c.pad_left;
      const __mmask64 columns = byte_range(-x0, c.in_w - x0);
      __m512i acc[kBlockRows];
#pragma GCC unroll 8
      for (int q = 0; q < kBlockRows; ++q) acc[q] = _mm512_setzero_si512();
#pragma GCC unroll 16
      for (int i = 0; i < kInputRows; ++i) {
        const __m512i window = _mm512_permutexvar_epi32(
            l.dword_index, load_window<kFlip>(rows[i], x0, columns, fill));
#pragma GCC unroll 2
        for (int part = 0; part < kParts; ++part) {
          const __m512i lanes = _mm512_shuffle_epi8(window, l.byte_index[part]);
#pragma GCC unroll 8
          for (int q = 0; q < kBlockRows; ++q) {
            const int h = i - q * kStrideH;  // kernel row of input row i for output row q
            if (h >= 0 && h < kKernelH) acc[q] = accumulate<Dot>(acc[q], lanes, w[h][part]);
          }
        }
      }
#pragma GCC unroll 8
      for (int q = 0; q < kBlockRows; ++q) {
        if (r0 + q < c.out_h) store_sums(c, sums, r0 + q, x, acc[q], comp);
      }
    }
    if (!pack_tail) continue;
    // The tails: chunk q holds output row q's last outputs, whose inputs are the 16 bytes of
    // each input row from column x0 (the chunk's first dword, so no vpermd).
    const int64_t x0 = full_end * c.stride_w - c.pad_left;
    const __mmask16 columns = static_cast<__mmask16>(byte_range(-x0, c.in_w - x0));
    __m128i window[kInputRows];
#pragma GCC unroll 16
    for (int i = 0; i < kInputRows; ++i) {
      window[i] = _mm_mask_loadu_epi8(_mm512_castsi512_si128(fill), columns, rows[i] + x0);
      if constexpr (kFlip) window[i] = _mm_xor_si128(window[i], _mm_set1_epi8(char(0x80)));
    }
    __m512i acc = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int h = 0; h < kKernelH; ++h) {
      __m512i rows_h = _mm512_castsi128_si512(window[h]);
      rows_h = _mm512_inserti32x4(rows_h, window[kStrideH + h], 1);
      rows_h = _mm512_inserti32x4(rows_h, window[2 * kStrideH + h], 2);
      rows_h = _mm512_inserti32x4(rows_h, window[3 * kStrideH + h], 3);
#pragma GCC unroll 2
      for (int part = 0; part < kParts; ++part) {
        acc = accumulate<Dot>(acc, _mm512_shuffle_epi8(rows_h, l.byte_index[part]), w[h][part]);
      }
    }
    acc = _mm512_sub_epi32(acc, comp);
    const __mmask16 row_lanes = static_cast<__mmask16>((1u << tail) - 1);
#pragma GCC unroll 8
    for (int q = 0; q < kBlockRows; ++q) {
      // Lanes 4q.. of the vector are row q's outputs from full_end on.
      if (r0 + q < c.out_h) {
        _mm512_mask_storeu_epi32(sums + (r0 + q) * c.out_w + full_end - 4 * q,
                                 static_cast<__mmask16>(row_lanes << (4 * q)), acc);
      }
    }
  }
}

// Any kernel height, vertical stride and dilation: one output row at a time.
template <typename Dot, bool kFlip>
NIBBLE_DWCONV_TARGET void channel_sums_any(const Call& c, const Layout& l, const uint8_t* image,
                                           const uint8_t* padding_row, const int32_t* weights,
                                           __m512i comp, int32_t* sums) {
  const __m512i fill = _mm512_set1_epi8(char(c.flip_sign ? c.zero_point ^ 0x80 : c.zero_point));
  for (int64_t r = 0; r < c.out_h; ++r) {
    for (int64_t x = 0; x < c.out_w; x += kLanes) {
      __m512i acc = _mm512_setzero_si512();
      for (int64_t h = 0; h < c.kernel_h; ++h) {
        const uint8_t* row =
            input_row(c, image, padding_row, r * c.stride_h + h * c.dilation_h - c.pad_top);
        for (int group = 0; group < l.groups; ++group) {
          const int64_t x0 = x * c.stride_w + group * c.group_taps * c.dilation_w - c.pad_left;
          const __m512i window = _mm512_permutexvar_epi32(
              l.dword_index, load_window<kFlip>(row, x0, byte_range(-x0, c.in_w - x0), fill));
          const int32_t* w = weights + (h * l.groups + group) * l.parts;
          for (int part = 0; part < l.parts; ++part) {
            acc = accumulate<Dot>(acc, _mm512_shuffle_epi8(window, l.byte_index[part]),
                                    _mm512_set1_epi32(w[part]));
          }
        }
      }
      store_sums(c, sums, r, x, acc, comp);
    }
  }
}

template <typename Dot, bool kFlip>
void channels(const Call& c, int64_t c_begin, int64_t c_end, const qd::TileEpilogue& ep) {
  const Layout l = make_layout(c, Dot::kVnni);
  using SumsFn = void (*)(const Call&, const Layout&, const uint8_t*, const uint8_t*,
                          const int32_t*, __m512i, int32_t*);
  SumsFn sums_fn = channel_sums_any<Dot, kFlip>;
  if (c.kernel_h == 3 && c.dilation_h == 1 && l.groups == 1) {
    // VNNI lanes hold a whole run (one part); pairs need two for runs of three or four taps.
    if (l.parts == 1) {
      if (c.stride_h == 1) sums_fn = channel_sums_blocked<Dot, kFlip, 3, 1, 1>;
      if (c.stride_h == 2) sums_fn = channel_sums_blocked<Dot, kFlip, 3, 2, 1>;
    } else if constexpr (!Dot::kVnni) {
      if (c.stride_h == 1) sums_fn = channel_sums_blocked<Dot, kFlip, 3, 1, 2>;
      if (c.stride_h == 2) sums_fn = channel_sums_blocked<Dot, kFlip, 3, 2, 2>;
    }
  }
  const int64_t count = c.out_h * c.out_w, taps = c.kernel_h * c.kernel_w;
  // Small planes are converted a few channels at a time, one epilogue call for all of them.
  const int64_t batch = std::max<int64_t>(1, kBatchSums / count);
  int32_t* sums = thread_scratch<SumsScratch, int32_t>(batch * count);
  int32_t* weights = thread_scratch<WeightsScratch, int32_t>(c.kernel_h * l.groups * l.parts);
  uint8_t* padding_row = thread_scratch<PaddingRowScratch, uint8_t>(c.in_w);
  std::memset(padding_row, c.zero_point ^ (c.flip_sign ? 0x80 : 0), size_t(c.in_w));
  const size_t out_bytes = ep.out == QType::U8 || ep.out == QType::S8 ? 1 : 4;
  for (int64_t ch0 = c_begin; ch0 < c_end; ch0 += batch) {
    const int64_t n = std::min(batch, c_end - ch0);
    for (int64_t i = 0; i < n; ++i) {
      lane_weights(c, l, Dot::kVnni, c.weights + (ch0 + i) * taps, weights);
      sums_fn(c, l, c.image + (ch0 + i) * c.in_h * c.in_w, padding_row, weights,
              _mm512_set1_epi32(ep.comp[ch0 + i]), sums + i * count);
    }
    // The epilogue over each channel's sums as one row.
    void* dst = static_cast<uint8_t*>(c.dst) + size_t(ch0 * c.dst_channel_stride) * out_bytes;
    qd::avx512::store_int_rows(sums, count, static_cast<int>(n), count, ch0, dst,
                               c.dst_channel_stride, ep);
  }
}

}  // namespace

}  // namespace nibble::kernels::qdw_detail::avx512
