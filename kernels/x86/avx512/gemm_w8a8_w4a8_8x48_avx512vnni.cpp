// W8A8 and W4A8 tile, AVX512-VNNI: uint8 activations x int8 weights with vpdpbusd, 8 x 48.
//
//   B:        per K quad, 48 columns x 4 uint8 at Tile::b_offsets[q] — one zmm per 16 columns
//   A panel:  [k/4][8 rows][4] int8 — 4 depths of a row are one broadcast dword
//   C tile:   8 rows x 3 zmm of int32 (24 accumulators; fewer for a narrow last strip)
// vpdpbusd adds the four uint8 x int8 products of each dword lane straight into int32, so there
// is no int16 saturation to avoid. Int4 weights are expanded to int8 by prepare_a (once per panel
// and column block), so W4A8 runs this same loop; on this ISA int4 saves memory, not arithmetic
// (the vpmaddubsw int16 path of gemm_w4a8_w8a8_4x48_avx512.cpp needs more instructions per
// product than vpdpbusd).
//
// Deferred epilogues (Tile::pending): the multiply loop runs at the vpdpbusd throughput, while
// the epilogue of a tile is 24 long chains (SiLU, divisions) that stall when run all at once.
// Run one output vector of the previous tile every few K steps instead, and the chains execute
// in the shadow of the multiplies.
#include <algorithm>

#include "kernels/x86/avx512/gemm_int_common_avx512.h"

namespace nibble::kernels::qgemm_detail::avx512 {
namespace {

constexpr int MR = 8, NR = 48;

// The K loop over the first NV vectors of columns; between() runs after every step.
template <int NV, typename Between>
NIBBLE_INLINE void multiply(__m512i (&acc)[MR][NV], const Tile& t, Between&& between) {
  // In locals: the epilogue's stores between the steps could alias t.
  const int32_t* a = static_cast<const int32_t*>(t.a);
  const uint8_t* b_base = static_cast<const uint8_t*>(t.b);
  const int32_t* b_offsets = t.b_offsets;
  const int64_t k_units = t.k_units;
  for (int64_t q = 0; q < k_units; ++q) {
    const __m512i* b = reinterpret_cast<const __m512i*>(b_base + b_offsets[q]);
    // Named, not an array of NV: GCC then spilled accumulators in the deferred loops.
    const __m512i b0 = _mm512_loadu_si512(b + 0);
    const __m512i b1 = NV > 1 ? _mm512_loadu_si512(b + 1) : b0;
    const __m512i b2 = NV > 2 ? _mm512_loadu_si512(b + 2) : b0;
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512i w = _mm512_set1_epi32(a[r]);
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], b0, w);
      if constexpr (NV > 1) acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], b1, w);
      if constexpr (NV > 2) acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], b2, w);
    }
    a += MR;
    between();
  }
}

// The output vectors of a pending epilogue, one at a time, row by row.
template <epilogue::Out kOut, bool kSilu, bool kClamp>
class PendingStores {
 public:
  static constexpr int NV = NR / 16;

  NIBBLE_INLINE PendingStores(const PendingEpilogue& p, const TileEpilogue& ep)
      : p_(p), ep_(ep), k_(ep), vectors_(p.rows * NV) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) lanes_[v] = epilogue::kept_lanes(p.kept_columns, p.cols, v);
  }
  int vectors() const { return vectors_; }
  NIBBLE_INLINE void next() {
    if (next_ >= vectors_) return;
    const int r = next_ / NV, v = next_ % NV;
    ++next_;
    const int64_t row = p_.row0 + r;
    uint8_t* d = static_cast<uint8_t*>(p_.dst) +
                 size_t(r * p_.dst_ld + lanes_[v].offset) * epilogue::kOutBytes<kOut>;
    epilogue::store_vector<kOut, kSilu, kClamp>(_mm512_load_si512(p_.sums + r * NR + 16 * v),
                                                _mm512_set1_ps(ep_.scale[row]),
                                                _mm512_set1_ps(ep_.bias[row]), k_, d,
                                                lanes_[v].mask);
  }
  NIBBLE_INLINE void rest() {
    while (next_ < vectors_) next();
  }

 private:
  const PendingEpilogue& p_;
  const TileEpilogue& ep_;
  const epilogue::Constants k_;
  const int vectors_;
  int next_ = 0;
  epilogue::KeptLanes lanes_[NV];
};

// Leaves the tile's sums less the compensation, and where they go, in t.pending.
template <int NV>
NIBBLE_INLINE void leave_pending(__m512i (&acc)[MR][NV], const Tile& t, const TileEpilogue& ep) {
  PendingEpilogue& p = *t.pending;
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    // Rows past the tile's valid ones are never stored; any compensation will do for them.
    const __m512i comp = _mm512_set1_epi32(ep.comp[t.row0 + (r < t.rows ? r : 0)]);
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      _mm512_store_si512(p.sums + r * NR + 16 * v, _mm512_sub_epi32(acc[r][v], comp));
    }
  }
  p.row0 = t.row0;
  p.rows = t.rows;
  p.cols = t.cols;
  p.dst = t.dst;
  p.dst_ld = t.dst_ld;
  p.kept_columns = t.kept_columns;
}

// A tile of NV vectors of columns.
template <int NV>
void run_tile_vnni(const Tile& t, const TileEpilogue& ep) {
  __m512i acc[MR][NV];
  start_int_tile(acc, t);
  PendingEpilogue* pending = t.pending;
  if (pending == nullptr || pending->rows == 0) {
    multiply(acc, t, [] {});
  } else {
    using epilogue::Out;
    epilogue::dispatch(ep, [&]<Out kOut, bool kSilu, bool kClamp>() __attribute__((always_inline)) {
      PendingStores<kOut, kSilu, kClamp> stores(*pending, ep);
      // One vector every `spacing` K steps, spread over the loop; what a short loop leaves
      // runs after it.
      const int64_t spacing = std::max<int64_t>(1, t.k_units / stores.vectors());
      int64_t countdown = spacing;
      multiply(acc, t, [&]() __attribute__((always_inline)) {
        if (--countdown == 0) {
          countdown = spacing;
          stores.next();
        }
      });
      stores.rest();
    });
    pending->rows = 0;
  }
  // Too short a K loop (under a step per output vector) hides little: run the epilogue now.
  if (pending != nullptr && t.last && t.k_units >= MR * NR / 16) {
    leave_pending(acc, t, ep);
    return;
  }
  finish_int_tile(acc, t, ep);
}

}  // namespace

// The last strip of a row of columns is often narrow (1600 = 33 x 48 + 16 columns on 40 x 40
// images): its multiplies stop at the last vector it needs.
void tile_a8_8x48_vnni(const Tile& t, const TileEpilogue& ep) {
  if (t.cols > 32) {
    run_tile_vnni<3>(t, ep);
  } else if (t.cols > 16) {
    run_tile_vnni<2>(t, ep);
  } else {
    run_tile_vnni<1>(t, ep);
  }
}

void flush_a8_8x48_vnni(PendingEpilogue& pending, const TileEpilogue& ep) {
  if (pending.rows == 0) return;
  using epilogue::Out;
  epilogue::dispatch(ep, [&]<Out kOut, bool kSilu, bool kClamp>() __attribute__((always_inline)) {
    PendingStores<kOut, kSilu, kClamp>(pending, ep).rest();
  });
  pending.rows = 0;
}

}  // namespace nibble::kernels::qgemm_detail::avx512
