// Integer depthwise kernel for AVX2 (kernels/dispatch/dwconv_int_kernels.h): vpmaddwd with two
// taps per lane, 8 outputs of one row per vector. AVX2 has no byte-masked loads, so each channel
// is first copied into a plane padded with the zero point (int8 inputs flipped to uint8), with
// slack past its end for the full 32-byte windows (the padding is written once per call, the
// image bytes per channel). Output rows come four at a time for the common 3-row kernels with
// strides 1 and 2, so that every input row's lanes are built once for the (up to three) output
// rows that read it. The int32 sums of a channel go to a scratch plane that the GEMM tiles'
// epilogue (gemm_int_common_avx2.h) then converts in full vectors, several small planes per
// call.
#include <algorithm>
#include <cstring>

#include "kernels/dispatch/aligned_scratch.h"
#include "kernels/dispatch/dwconv_int_kernels.h"
#include "kernels/x86/avx2/gemm_int_common_avx2.h"

namespace nibble::kernels::qdw_detail::avx2 {

namespace qd = qgemm_detail;

namespace {

constexpr int kLanes = 8;
constexpr int kBlockRows = 4;  // output rows per block in the specialized kernels
constexpr int64_t kWindowBytes = 32;
constexpr int64_t kBatchSums = 4096;  // int32 sums converted per epilogue call, at most

struct PlaneScratch {};
struct SumsScratch {};
struct WeightsScratch {};

// The zero-point-padded copy of one channel: every input the outputs read, rows of `cols`
// bytes back to back.
struct Plane {
  int64_t rows, cols;
  const uint8_t* data;  // rows * cols bytes, then kWindowBytes of slack

  const uint8_t* row(int64_t r) const { return data + r * cols; }
};

Plane plane_shape(const Call& c) {
  Plane p;
  p.rows = (c.out_h - 1) * c.stride_h + (c.kernel_h - 1) * c.dilation_h + 1;
  p.cols = (c.out_w - 1) * c.stride_w + (c.kernel_w - 1) * c.dilation_w + 1;
  p.data = nullptr;
  return p;
}

// n bytes from src to dst, each XORed with `flip`, in overlapping vector stores: never a byte
// outside either run.
NIBBLE_INLINE void copy_bytes(uint8_t* dst, const uint8_t* src, int64_t n, __m256i flip) {
  auto copy16 = [&](int64_t at) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + at));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + at),
                     _mm_xor_si128(v, _mm256_castsi256_si128(flip)));
  };
  if (n >= 32) {
    auto copy32 = [&](int64_t at) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + at));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + at), _mm256_xor_si256(v, flip));
    };
    for (int64_t j = 0; j + 32 <= n; j += 32) copy32(j);
    if (n % 32) copy32(n - 32);
  } else if (n >= 16) {
    copy16(0);
    copy16(n - 16);
  } else {
    const uint8_t f = static_cast<uint8_t>(_mm256_extract_epi8(flip, 0));
    for (int64_t j = 0; j < n; ++j) dst[j] = src[j] ^ f;
  }
}

// Copies one channel's inputs into the plane, whose padding already holds the zero point
// (fill_plane): only the image's bytes change from one channel to the next.
void copy_channel(const Call& c, const uint8_t* image, uint8_t* plane, const Plane& p) {
  // Padded columns [lo, hi) hold input columns [lo - pad_left, hi - pad_left).
  const int64_t lo = std::min(c.pad_left, p.cols);
  const int64_t hi = std::clamp(c.pad_left + c.in_w, lo, p.cols);
  const __m256i flip = _mm256_set1_epi8(c.flip_sign ? char(0x80) : 0);
  const int64_t r_begin = std::min(c.pad_top, p.rows);
  const int64_t r_end = std::clamp(c.pad_top + c.in_h, r_begin, p.rows);
  for (int64_t r = r_begin; r < r_end; ++r) {
    copy_bytes(plane + r * p.cols + lo, image + (r - c.pad_top) * c.in_w + (lo - c.pad_left),
               hi - lo, flip);
  }
}

void fill_plane(const Call& c, uint8_t* plane, const Plane& p) {
  std::memset(plane, c.zero_point, size_t(p.rows * p.cols));
  // The last windows read past the plane: keep those bytes defined.
  std::memset(plane + p.rows * p.cols, 0, size_t(kWindowBytes));
}

// Per-call constants of the lane layout.
struct Layout {
  __m256i dword_index;    // vpermd: chunk k <- plane dwords s*k .. s*k+3
  __m256i byte_index[2];  // vpshufb: a lane's uint16 taps 0-1 and 2-3
  int parts;              // lane vectors per run: 1 (runs of <= 2 taps) or 2
  int groups;             // runs per kernel row
};

Layout make_layout(const Call& c) {
  Layout l;
  const int s = static_cast<int>(c.stride_w), d = static_cast<int>(c.dilation_w), g = c.group_taps;
  alignas(32) int32_t dwords[kLanes];
  alignas(32) uint8_t bytes[2][32];
  for (int k = 0; k < 2; ++k) {
    for (int m = 0; m < 4; ++m) dwords[4 * k + m] = s * k + m;
  }
  for (int b = 0; b < 32; ++b) {
    const int j = (b % 16) / 4, t = b % 4;  // lane in chunk, byte in lane
    // Byte t of the lane: the low byte of uint16 tap t / 2 (t even), or 0 (0x80 zeroes).
    for (int part = 0; part < 2; ++part) {
      const int tap = 2 * part + t / 2;
      bytes[part][b] = t % 2 == 0 && tap < g ? static_cast<uint8_t>(s * j + tap * d) : 0x80;
    }
  }
  l.dword_index = _mm256_load_si256(reinterpret_cast<const __m256i*>(dwords));
  l.byte_index[0] = _mm256_load_si256(reinterpret_cast<const __m256i*>(bytes[0]));
  l.byte_index[1] = _mm256_load_si256(reinterpret_cast<const __m256i*>(bytes[1]));
  l.parts = g <= 2 ? 1 : 2;
  l.groups = static_cast<int>((c.kernel_w + g - 1) / g);
  return l;
}

// One channel's weights as lane words, [kernel_h][groups][parts]: two int16 taps, zero past the
// kernel's width.
void lane_weights(const Call& c, const Layout& l, const int8_t* w, int32_t* out) {
  const int g = c.group_taps;
  for (int64_t h = 0; h < c.kernel_h; ++h) {
    for (int group = 0; group < l.groups; ++group) {
      auto tap = [&](int t) -> int32_t {
        const int64_t col = int64_t(group) * g + t;
        return t < g && col < c.kernel_w ? w[h * c.kernel_w + col] : 0;
      };
      int32_t* word = out + (h * l.groups + group) * l.parts;
      for (int part = 0; part < l.parts; ++part) {
        word[part] = int32_t(uint32_t(uint16_t(tap(2 * part))) |
                             uint32_t(uint16_t(tap(2 * part + 1))) << 16);
      }
    }
  }
}

// The lanes' source: the plane's 32 bytes from `at`, chunk k moved to start at dword s*k.
NIBBLE_INLINE __m256i load_window(const Layout& l, const uint8_t* at) {
  return _mm256_permutevar8x32_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(at)),
                                     l.dword_index);
}

NIBBLE_INLINE __m256i accumulate(__m256i acc, __m256i lanes, int32_t word) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(lanes, _mm256_set1_epi32(word)));
}

// Stores the sums of output row `row`, lanes from column x, less the compensation.
NIBBLE_INLINE void store_sums(const Call& c, int32_t* sums, int64_t row, int64_t x, __m256i acc,
                              __m256i comp) {
  int32_t* dst = sums + row * c.out_w + x;
  const __m256i sum = _mm256_sub_epi32(acc, comp);
  if (c.out_w - x >= kLanes) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), sum);
  } else {
    _mm256_maskstore_epi32(dst, qd::avx2::lane_mask(static_cast<int>(c.out_w - x)), sum);
  }
}

// Kernels of kKernelH rows, one run wide (kernel_w <= group_taps), with vertical stride kStrideH
// and dilation 1, kParts lane vectors per run: kBlockRows output rows at a time, each input
// row's lanes built once and added to every output row that reads it.
template <int kKernelH, int kStrideH, int kParts>
void channel_sums_blocked(const Call& c, const Layout& l, const Plane& p, const int32_t* weights,
                          __m256i comp, int32_t* sums) {
  constexpr int kInputRows = (kBlockRows - 1) * kStrideH + kKernelH;
  for (int64_t r0 = 0; r0 < c.out_h; r0 += kBlockRows) {
    // Rows past the last output row read the plane's last row instead; their sums are not stored.
    const uint8_t* rows[kInputRows];
#pragma GCC unroll 16
    for (int i = 0; i < kInputRows; ++i) rows[i] = p.row(std::min(r0 * kStrideH + i, p.rows - 1));
    for (int64_t x = 0; x < c.out_w; x += kLanes) {
      const int64_t x0 = x * c.stride_w;
      __m256i acc[kBlockRows];
#pragma GCC unroll 8
      for (int q = 0; q < kBlockRows; ++q) acc[q] = _mm256_setzero_si256();
#pragma GCC unroll 16
      for (int i = 0; i < kInputRows; ++i) {
        const __m256i window = load_window(l, rows[i] + x0);
#pragma GCC unroll 2
        for (int part = 0; part < kParts; ++part) {
          const __m256i lanes = _mm256_shuffle_epi8(window, l.byte_index[part]);
#pragma GCC unroll 8
          for (int q = 0; q < kBlockRows; ++q) {
            const int h = i - q * kStrideH;  // kernel row of input row i for output row q
            if (h >= 0 && h < kKernelH) {
              acc[q] = accumulate(acc[q], lanes, weights[h * kParts + part]);  // one run: [h][part]
            }
          }
        }
      }
#pragma GCC unroll 8
      for (int q = 0; q < kBlockRows; ++q) {
        if (r0 + q < c.out_h) store_sums(c, sums, r0 + q, x, acc[q], comp);
      }
    }
  }
}

// Any kernel height, vertical stride and dilation: one output row at a time.
void channel_sums_any(const Call& c, const Layout& l, const Plane& p, const int32_t* weights,
                      __m256i comp, int32_t* sums) {
  for (int64_t r = 0; r < c.out_h; ++r) {
    for (int64_t x = 0; x < c.out_w; x += kLanes) {
      __m256i acc = _mm256_setzero_si256();
      for (int64_t h = 0; h < c.kernel_h; ++h) {
        const uint8_t* row = p.row(r * c.stride_h + h * c.dilation_h);
        for (int group = 0; group < l.groups; ++group) {
          const __m256i window =
              load_window(l, row + x * c.stride_w + group * c.group_taps * c.dilation_w);
          const int32_t* w = weights + (h * l.groups + group) * l.parts;
          for (int part = 0; part < l.parts; ++part) {
            acc = accumulate(acc, _mm256_shuffle_epi8(window, l.byte_index[part]), w[part]);
          }
        }
      }
      store_sums(c, sums, r, x, acc, comp);
    }
  }
}

}  // namespace

void dwconv_int_channels(const Call& c, int64_t c_begin, int64_t c_end,
                         const qd::TileEpilogue& ep) {
  const Layout l = make_layout(c);
  using SumsFn = void (*)(const Call&, const Layout&, const Plane&, const int32_t*, __m256i,
                          int32_t*);
  SumsFn sums_fn = channel_sums_any;
  if (c.kernel_h == 3 && c.dilation_h == 1 && l.groups == 1) {
    if (c.stride_h == 1) {
      sums_fn = l.parts == 1 ? channel_sums_blocked<3, 1, 1> : channel_sums_blocked<3, 1, 2>;
    } else if (c.stride_h == 2) {
      sums_fn = l.parts == 1 ? channel_sums_blocked<3, 2, 1> : channel_sums_blocked<3, 2, 2>;
    }
  }
  Plane p = plane_shape(c);
  uint8_t* plane = thread_scratch<PlaneScratch, uint8_t>(p.rows * p.cols + kWindowBytes);
  p.data = plane;
  fill_plane(c, plane, p);
  const int64_t count = c.out_h * c.out_w, taps = c.kernel_h * c.kernel_w;
  // Small planes are converted a few channels at a time, one epilogue call for all of them.
  const int64_t batch = std::max<int64_t>(1, kBatchSums / count);
  int32_t* sums = thread_scratch<SumsScratch, int32_t>(batch * count);
  int32_t* weights = thread_scratch<WeightsScratch, int32_t>(c.kernel_h * l.groups * l.parts);
  const size_t out_bytes = ep.out == QType::U8 || ep.out == QType::S8 ? 1 : 4;
  for (int64_t ch0 = c_begin; ch0 < c_end; ch0 += batch) {
    const int64_t n = std::min(batch, c_end - ch0);
    for (int64_t i = 0; i < n; ++i) {
      copy_channel(c, c.image + (ch0 + i) * c.in_h * c.in_w, plane, p);
      lane_weights(c, l, c.weights + (ch0 + i) * taps, weights);
      sums_fn(c, l, p, weights, _mm256_set1_epi32(ep.comp[ch0 + i]), sums + i * count);
    }
    // The epilogue over each channel's sums as one row.
    void* dst = static_cast<uint8_t*>(c.dst) + size_t(ch0 * c.dst_channel_stride) * out_bytes;
    qd::avx2::store_int_rows(sums, count, static_cast<int>(n), count, ch0, dst,
                             c.dst_channel_stride, ep);
  }
}

}  // namespace nibble::kernels::qdw_detail::avx2
