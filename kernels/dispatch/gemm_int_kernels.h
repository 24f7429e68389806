// Internal interface between the low-bit GEMM driver (gemm_int_dispatch.cpp) and the per-ISA
// kernels (kernels/x86/avx2, kernels/x86/avx512) of the integer modes A8 and A16I16. (Weight-only
// float, A16, runs on the FP32 micro-kernels instead: gemm_a16_f32.h.)
//
// Blocking (GotoBLAS order). For columns in blocks of nc and depth in blocks of kc:
//   pack B block (kc x nc) into strips of NR columns — or, for convolutions with
//     pack_qconv_weights weights, read B in place from a copy of the input (ConvImage in
//     gemm_int_pack_b.h, one per band of output rows);
//   for each panel of MR weight rows: prepare the panel's kc slice (expand 4-bit/8-bit weights to
//     the kernel's operand type, into an L1-sized scratch), then run the MR x NR tile kernel on
//     every strip. The expansion is amortized over nc columns.
// Sums over earlier K blocks are kept in a per-thread int32 partial buffer.
//
// Layouts, with ku = k_unit values of K interleaved per column (4 for uint8 quads, 2 for int16
// pairs):
//   B strip: [kb_pad / ku][NR][ku] (uint8 or int16), kb_pad = round_up(kb, ku); padding
//            rows and columns are 0. Each K unit is 4 bytes per column in every mode, and the
//            tiles read each unit's NR x 4 bytes at an offset of its own (Tile::b_offsets): unit
//            u * NR * 4 in a strip, anywhere in a convolution's input copy.
//   weights: per panel of MR rows, K stored rounded up to 64 (k_store), values in
//            [k_store / ku][MR][ku] order, rows past M and depths past K zero; for convolution
//            weights K runs over (group of ku channels, tap, channel in group). At 8 bits one byte
//            per value; at 4 bits each run of 64 values is 32 bytes, value j of the run in the low
//            nibble of byte j and value 32 + j in the high nibble (two's complement nibbles).
//   prepared A (prepare_a output): the same order, expanded to the tile kernel's operand type.
//
// Kernel sets (kernels/x86/*/gemm_int_sets_*.cpp; the file of each tile explains its arithmetic):
//               A8: w8a8, w4a8                       A16I16: w8a16i16, w4a16i16
//   avx512vnni  vpdpbusd 8x48 (int4 expanded)        vpdpwssd 8x48
//   avx512      vpmaddubsw + int16 sums 4x48,        vpmaddwd 8x48
//               int8 weights as two int4 halves
//   avx2        the same, 3x16                       vpmaddwd 6x16
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu_features.h"
#include "kernels/gemm_int.h"

namespace nibble::kernels::qgemm_detail {

// Operand type of the tile kernels' A side, what prepare_a produces per weight value.
enum class PanelType : uint8_t {
  S8,       // int8
  S8Split,  // int8 weights as two int4-range halves, w = 16 * hi + lo: hi panel, then lo panel
  S16,      // int16
};

// Constants of the epilogue shared by every tile of one qgemm call; per-row arrays are indexed
// by absolute row.
struct TileEpilogue {
  QType out = QType::F32;         // F32, U8, S8 or I32
  const int32_t* comp = nullptr;  // integer modes: value subtracted from the sum (zp * row_sum)
  const float* scale = nullptr;   // combined scale
  const float* bias = nullptr;    // never null (zeros when the caller has no bias)
  bool silu = false;
  float clamp_min = 0, clamp_max = 0;
  // U8/S8: q = round(clamp(y / out_scale, q_lo, q_hi)) + out_zero_point, where the bounds
  // already have the zero point taken off.
  float out_scale = 1;
  float q_lo = 0, q_hi = 0;
  int32_t out_zero_point = 0;
};

// The TileEpilogue of a qgemm call's epilogue and output (gemm_int.h) with the per-row
// combined `scale`, `bias` (never null) and compensation `comp`.
inline TileEpilogue tile_epilogue(const QEpilogue& ep, const QOutput& out, const float* scale,
                                  const float* bias, const int32_t* comp) {
  TileEpilogue te;
  te.out = out.type;
  te.comp = comp;
  te.scale = scale;
  te.bias = bias;
  te.silu = ep.silu;
  te.clamp_min = ep.clamp_min;
  te.clamp_max = ep.clamp_max;
  if (out.type == QType::U8 || out.type == QType::S8) {
    const bool is_unsigned = out.type == QType::U8;
    te.out_scale = out.scale;
    te.out_zero_point = out.zero_point;
    te.q_lo = (is_unsigned ? 0.0f : -128.0f) - static_cast<float>(out.zero_point);
    te.q_hi = (is_unsigned ? 255.0f : 127.0f) - static_cast<float>(out.zero_point);
  }
  return te;
}

// The epilogue of a finished tile, left for the kernel's next tile call to run between the
// steps of its K loop (kernel sets with KernelSet::flush): on its own the epilogue is one long
// dependency chain per output vector (SiLU, two divisions), which the out-of-order window cannot
// overlap with the next tile's multiplies when it runs all at once.
struct PendingEpilogue {
  int32_t* sums = nullptr;  // MR x NR int32 sums less the compensation, row stride NR
  int64_t row0 = 0;         // as Tile
  int rows = 0, cols = 0;   // rows == 0: nothing pending
  void* dst = nullptr;
  int64_t dst_ld = 0;
  uint64_t kept_columns = ~uint64_t{0};  // as Tile
};

// One MR x NR tile over one K block.
struct Tile {
  int64_t k_units = 0;      // kb_pad / k_unit
  const void* a = nullptr;  // prepared panel slice
  const void* b = nullptr;  // B at the tile's first column
  // Byte offset from b of each K unit's columns (packed strips: u * NR * 4; convolutions read
  // in place: wherever the unit's channels and tap sit in the input copy).
  const int32_t* b_offsets = nullptr;
  int64_t row0 = 0;        // absolute row of the tile's first row
  int rows = 0, cols = 0;  // valid part of the tile (<= MR, <= NR)
  // Accumulators of earlier K blocks (first == false) and, when last == false, where this block's
  // sums go: int32, row stride partial_ld.
  void* partial = nullptr;
  int64_t partial_ld = 0;
  bool first = true, last = true;
  // last == true: the epilogue writes the valid part here, element (r, c) at dst[r * dst_ld + c]
  // of the epilogue's output type.
  void* dst = nullptr;
  int64_t dst_ld = 0;
  // Kernel sets with KernelSet::drops_columns: column c (< cols) is written only when bit c is
  // set, and the written columns of a row go to consecutive elements from dst[r * dst_ld] (a
  // convolution grid's dropped columns, skipped on the way out). All ones: every column, as above.
  uint64_t kept_columns = ~uint64_t{0};
  // Kernel sets with KernelSet::flush, when set: the tile runs what is pending during its K
  // loop, and a last tile may leave its own epilogue pending (to dst, which must then stay
  // valid until it has run: after the next tile call or flush).
  PendingEpilogue* pending = nullptr;
};

struct KernelSet {
  const char* name;  // kind, tile, ISA: "w4a8 8x48 avx512vnni"
  QuantMode mode;
  int bits;
  Isa isa;
  int mr, nr, k_unit;
  int64_t kc;  // K block depth, a multiple of 64
  PanelType panel;
  // Expands `count` packed values (a multiple of 64, starting at a 64-value boundary) to the
  // panel type.
  void (*prepare_a)(const uint8_t* packed, int bits, int64_t count, void* out);
  void (*tile)(const Tile& tile, const TileEpilogue& epilogue);
  // Kernel sets that can defer epilogues (Tile::pending): runs what is pending now. Null for
  // the others.
  void (*flush)(PendingEpilogue& pending, const TileEpilogue& epilogue);
  // The tiles honour Tile::kept_columns (NR <= 64), so convolution outputs need no tile buffer.
  bool drops_columns = false;
};

// Bytes per prepared A value.
inline size_t panel_value_bytes(PanelType t) {
  switch (t) {
    case PanelType::S8:
      return 1;
    case PanelType::S8Split:
      return 2;
    case PanelType::S16:
      return 2;
  }
  return 2;
}

// The kernel sets each ISA directory provides (null when that ISA has none for the mode/bits).
namespace avx2 {
const KernelSet* kernel_set(QuantMode mode, int bits);
}
namespace avx512 {
const KernelSet* kernel_set(QuantMode mode, int bits, bool vnni);
}

}  // namespace nibble::kernels::qgemm_detail
