// Reading B for the low-bit GEMM driver (gemm_int_pack_b.h): packing blocks into strips, and
// the per-call input copy of convolutions read in place.
#include "kernels/dispatch/gemm_int_pack_b.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kernels/aligned_buffer.h"
#include "nibble/error.h"

namespace nibble::kernels::qgemm_detail {
namespace {

// The columns of one stride phase of a convolution's input copy (ConvImage).
struct ColumnPhase {
  int64_t lo = 0, hi = 0, first = 0;
};

struct PackScratch {
  AlignedBuffer<uint8_t> gathered;    // other strided sources: [kb][ncb] copies of B rows
  AlignedBuffer<uint8_t> zero_row;    // stands in for rows past a block's depth
  AlignedBuffer<uint8_t> conv_image;  // ConvImage
  AlignedBuffer<uint8_t> conv_rows;   // a row of padding and strided samples for it
  std::vector<const uint8_t*> rows, strip_rows;
  std::vector<int32_t> unit_offsets;
  std::vector<ColumnPhase> column_phases;
};

PackScratch& scratch() {
  thread_local PackScratch s;
  return s;
}

size_t type_bytes(QType t) { return t == QType::U8 || t == QType::S8 ? 1 : 4; }

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// Fills `count` elements with the padding value (the zero point of integer sources, else 0).
void fill_pad(uint8_t* dst, int64_t count, const QSource& b) {
  const bool bytes = b.type == QType::U8 || b.type == QType::S8;
  std::memset(dst, bytes ? static_cast<uint8_t>(b.zero_point) : 0,
              size_t(count) * (bytes ? 1 : sizeof(float)));
}

// Copies im2col rows [k0, k0 + kb) x columns [n0, n0 + ncb) of a convolution into dst
// ([kb][ncb] elements of eb bytes), one run of output positions along the last axis at a time.
void gather_im2col(const QSource& b, size_t eb, int64_t k0, int64_t kb, int64_t n0, int64_t ncb,
                   uint8_t* dst) {
  const ref::ConvGeometry& g = *b.conv;
  const uint8_t* image = static_cast<const uint8_t*>(b.data);
  const int64_t taps = g.kernel_size();
  struct Run {
    int64_t offset, o0, o1, o2, len;
  };
  std::vector<Run> runs;
  for (int64_t n = n0; n < n0 + ncb;) {
    const int64_t o2 = n % g.out[2], rest = n / g.out[2];
    const int64_t len = std::min(g.out[2] - o2, n0 + ncb - n);
    runs.push_back({n - n0, rest / g.out[1], rest % g.out[1], o2, len});
    n += len;
  }
  const int64_t s2 = g.stride[2];
  for (int64_t r = 0; r < kb; ++r) {
    const int64_t k = k0 + r, c = k / taps, t = k % taps;
    const int64_t t0 = t / (g.kernel[1] * g.kernel[2]), t1 = (t / g.kernel[2]) % g.kernel[1],
                  t2 = t % g.kernel[2];
    const uint8_t* plane = image + size_t(c * g.in_size()) * eb;
    uint8_t* out = dst + size_t(r * ncb) * eb;
    // Input column of output column o2 is o2 * s2 + base; inside the row for o2 in [lo, hi).
    const int64_t base = t2 * g.dilation[2] - g.pad[2];
    const int64_t o2_lo = std::max<int64_t>(0, ceil_div(-base, s2));
    const int64_t o2_hi = std::max(o2_lo, ceil_div(g.in[2] - base, s2));
    for (const Run& run : runs) {
      uint8_t* o = out + size_t(run.offset) * eb;
      const int64_t i0 = run.o0 * g.stride[0] - g.pad[0] + t0 * g.dilation[0];
      const int64_t i1 = run.o1 * g.stride[1] - g.pad[1] + t1 * g.dilation[1];
      if (i0 < 0 || i0 >= g.in[0] || i1 < 0 || i1 >= g.in[1]) {
        fill_pad(o, run.len, b);
        continue;
      }
      const int64_t lo = std::clamp<int64_t>(o2_lo - run.o2, 0, run.len);
      const int64_t hi = std::clamp<int64_t>(o2_hi - run.o2, lo, run.len);
      fill_pad(o, lo, b);
      fill_pad(o + size_t(hi) * eb, run.len - hi, b);
      if (hi == lo) continue;  // no tap inside the row: src would point before it
      const uint8_t* src =
          plane + size_t((i0 * g.in[1] + i1) * g.in[2] + (run.o2 + lo) * s2 + base) * eb;
      if (s2 == 1) {
        std::memcpy(o + size_t(lo) * eb, src, size_t(hi - lo) * eb);
      } else if (eb == 1) {
        for (int64_t j = lo; j < hi; ++j) o[j] = src[(j - lo) * s2];
      } else {
        const float* from = reinterpret_cast<const float*>(src);
        float* to = reinterpret_cast<float*>(o);
        for (int64_t j = lo; j < hi; ++j) to[j] = from[(j - lo) * s2];
      }
    }
  }
}

// uint8 quads: strip[q][j][i] = row(4q + i)[j] ^ flip (flip = 0x80 turns int8 into uint8).
void interleave_u8(const uint8_t* const* rows, int64_t quads, int64_t cols, int64_t nr,
                   uint8_t flip, uint8_t* strip) {
  for (int64_t q = 0; q < quads; ++q) {
    const uint8_t* r0 = rows[4 * q];
    const uint8_t* r1 = rows[4 * q + 1];
    const uint8_t* r2 = rows[4 * q + 2];
    const uint8_t* r3 = rows[4 * q + 3];
    uint8_t* out = strip + q * nr * 4;
    int64_t j = 0;
#if defined(__SSE2__)
    const __m128i f = _mm_set1_epi8(static_cast<char>(flip));
    for (; j + 16 <= cols; j += 16) {
      const __m128i a = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + j)), f);
      const __m128i b = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r1 + j)), f);
      const __m128i c = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r2 + j)), f);
      const __m128i d = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r3 + j)), f);
      const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
      const __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
      __m128i* o = reinterpret_cast<__m128i*>(out + j * 4);
      _mm_storeu_si128(o + 0, _mm_unpacklo_epi16(ab_lo, cd_lo));
      _mm_storeu_si128(o + 1, _mm_unpackhi_epi16(ab_lo, cd_lo));
      _mm_storeu_si128(o + 2, _mm_unpacklo_epi16(ab_hi, cd_hi));
      _mm_storeu_si128(o + 3, _mm_unpackhi_epi16(ab_hi, cd_hi));
    }
#endif
    for (; j < cols; ++j) {
      out[j * 4 + 0] = r0[j] ^ flip;
      out[j * 4 + 1] = r1[j] ^ flip;
      out[j * 4 + 2] = r2[j] ^ flip;
      out[j * 4 + 3] = r3[j] ^ flip;
    }
    std::memset(out + cols * 4, 0, size_t((nr - cols) * 4));
  }
}

// InterleaveQuad without ISA extensions.
void interleave_quad_u8(const uint8_t* const* rows, int64_t count, uint8_t flip, uint8_t* out) {
  interleave_u8(rows, 1, count, count, flip, out);
}

// InterleavePairsS16 without ISA extensions beyond SSE2.
void interleave_s16(const float* const* rows, int64_t pairs, int64_t cols, int64_t nr,
                    const Int16Quantization& q, int16_t* strip) {
  const float qmax = static_cast<float>(q.qmax);
  for (int64_t p = 0; p < pairs; ++p) {
    const float* r0 = rows[2 * p];
    const float* r1 = rows[2 * p + 1];
    int16_t* out = strip + p * nr * 2;
    int64_t j = 0;
#if defined(__SSE2__)
    const __m128 inv = _mm_set1_ps(q.inv_scale), hi = _mm_set1_ps(qmax), lo = _mm_set1_ps(-qmax);
    const __m128i low16 = _mm_set1_epi32(0xFFFF);
    for (; j + 4 <= cols; j += 4) {
      const __m128 t0 = _mm_min_ps(_mm_max_ps(_mm_mul_ps(_mm_loadu_ps(r0 + j), inv), lo), hi);
      const __m128 t1 = _mm_min_ps(_mm_max_ps(_mm_mul_ps(_mm_loadu_ps(r1 + j), inv), lo), hi);
      const __m128i pair = _mm_or_si128(_mm_and_si128(_mm_cvtps_epi32(t0), low16),
                                        _mm_slli_epi32(_mm_cvtps_epi32(t1), 16));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j * 2), pair);
    }
#endif
    for (; j < cols; ++j) {
      out[j * 2 + 0] = static_cast<int16_t>(
          std::nearbyint(std::min(std::max(r0[j] * q.inv_scale, -qmax), qmax)));
      out[j * 2 + 1] = static_cast<int16_t>(
          std::nearbyint(std::min(std::max(r1[j] * q.inv_scale, -qmax), qmax)));
    }
    std::memset(out + cols * 2, 0, size_t((nr - cols) * 2) * sizeof(int16_t));
  }
}

}  // namespace

InterleavePairsS16 interleave_pairs_s16_for(Isa isa) {
#if defined(__x86_64__)
  if (isa >= Isa::Avx512) return avx512::interleave_pairs_s16;
  if (isa >= Isa::Avx2) return avx2::interleave_pairs_s16;
#else
  (void)isa;
#endif
  return interleave_s16;
}

BReader::BReader(const QSource& b)
    : b_(b), elem_bytes_(type_bytes(b.type)), rows_(scratch().rows) {}

void BReader::locate_rows(int64_t k0, int64_t kb, int64_t n0, int64_t ncb) {
  const size_t eb = elem_bytes_;
  rows_.resize(size_t(kb));
  const uint8_t* base = static_cast<const uint8_t*>(b_.data);
  const bool pointwise = b_.conv != nullptr && b_.conv->is_pointwise();
  if ((b_.conv == nullptr && b_.col_stride == 1) || pointwise) {
    const int64_t row_stride = pointwise ? b_.conv->in_size() : b_.row_stride;
    for (int64_t r = 0; r < kb; ++r) {
      rows_[size_t(r)] = base + size_t((k0 + r) * row_stride + n0) * eb;
    }
    return;
  }
  uint8_t* dst = scratch().gathered.ensure(size_t(kb * ncb) * eb);
  if (b_.conv != nullptr) {
    gather_im2col(b_, eb, k0, kb, n0, ncb, dst);
  } else {
    for (int64_t r = 0; r < kb; ++r) {
      for (int64_t j = 0; j < ncb; ++j) {
        std::memcpy(dst + size_t(r * ncb + j) * eb,
                    base + size_t((k0 + r) * b_.row_stride + (n0 + j) * b_.col_stride) * eb, eb);
      }
    }
  }
  for (int64_t r = 0; r < kb; ++r) rows_[size_t(r)] = dst + size_t(r * ncb) * eb;
}

void BReader::pack(const KernelSet& ks, const Int16Quantization& q16, int64_t k0, int64_t kb,
                   int64_t n0, int64_t ncb, uint8_t* packed) {
  locate_rows(k0, kb, n0, ncb);
  const int64_t ku = ks.k_unit, kb_pad = (kb + ku - 1) / ku * ku, nr = ks.nr;
  const size_t eb = elem_bytes_;
  // Rows past the block's depth read zeros (only the first `cols` of them).
  const uint8_t* zeros = scratch().zero_row.ensure(size_t(nr) * eb);
  const size_t strip_bytes = size_t(nr * kb_pad) * (ks.mode == QuantMode::A8 ? 1 : 2);
  std::vector<const uint8_t*>& strip_rows = scratch().strip_rows;
  strip_rows.resize(size_t(kb_pad));
  const InterleavePairsS16 interleave_pairs = interleave_pairs_s16_for(ks.isa);
  for (int64_t j0 = 0, strip = 0; j0 < ncb; j0 += nr, ++strip) {
    const int64_t cols = std::min(nr, ncb - j0);
    for (int64_t r = 0; r < kb_pad; ++r) {
      strip_rows[size_t(r)] = r < kb ? rows_[size_t(r)] + size_t(j0) * eb : zeros;
    }
    uint8_t* out = packed + size_t(strip) * strip_bytes;
    if (ks.mode == QuantMode::A8) {
      interleave_u8(strip_rows.data(), kb_pad / 4, cols, nr, b_.type == QType::S8 ? 0x80 : 0, out);
    } else {
      interleave_pairs(reinterpret_cast<const float* const*>(strip_rows.data()), kb_pad / 2, cols,
                       nr, q16, reinterpret_cast<int16_t*>(out));
    }
  }
}

namespace {

// out[j] = src[2 j] for j in [0, len); `available` elements are readable from src.
void take_even(const uint8_t* src, int64_t len, int64_t available, uint8_t* out) {
  int64_t j = 0;
#if defined(__SSE2__)
  const __m128i low = _mm_set1_epi16(0x00FF);
  for (; j + 16 <= len && 2 * j + 32 <= available; j += 16) {
    const __m128i a =
        _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * j)), low);
    const __m128i b =
        _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * j + 16)), low);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j), _mm_packus_epi16(a, b));
  }
#endif
  for (; j < len; ++j) out[j] = src[2 * j];
}

void take_even(const float* src, int64_t len, int64_t available, float* out) {
  int64_t j = 0;
#if defined(__SSE2__)
  for (; j + 4 <= len && 2 * j + 8 <= available; j += 4) {
    const __m128 a = _mm_loadu_ps(src + 2 * j), b = _mm_loadu_ps(src + 2 * j + 4);
    _mm_storeu_ps(out + j, _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
  }
#endif
  for (; j < len; ++j) out[j] = src[2 * j];
}

// Copies one phase row of `lanes` channels (element type T) into pixels: samples j in
// [0, len) of each channel row, at input columns first + j * stride.
template <typename T>
void sample_rows(const T* const* rows, int lanes, int64_t first, int64_t len, int64_t stride,
                 int64_t in_w, T* scratch, const T** sampled) {
  for (int c = 0; c < lanes; ++c) {
    const T* src = rows[c] + first;
    if (stride == 1) {
      sampled[c] = src;
      continue;
    }
    T* out = scratch + c * len;
    if (stride == 2) {
      take_even(src, len, in_w - first, out);
    } else {
      for (int64_t j = 0; j < len; ++j) out[j] = src[j * stride];
    }
    sampled[c] = out;
  }
}

}  // namespace

ConvImage::ConvImage(const QSource& b, QuantMode mode, const Int16Quantization& q16,
                     int64_t n_begin, int64_t n_end, int64_t nr, Isa isa)
    : offsets_(scratch().unit_offsets) {
  const ref::ConvGeometry& g = *b.conv;
  const int64_t s1 = g.stride[1], s2 = g.stride[2], d1 = g.dilation[1], d2 = g.dilation[2];
  const int64_t k1 = g.kernel[1], k2 = g.kernel[2], in_h = g.in[1], in_w = g.in[2];
  const int64_t out_w = g.out[2], reach_w = (k2 - 1) * d2 / s2;
  // Rows of out_w + reach_w pixels hold every column a grid row reads. With stride 1 a row's
  // right padding can be the next row's left padding instead: the reads past a shorter row's
  // end then land on that (wrap pixels, at most its left padding; a plane's last row wraps onto
  // `wrap` padding pixels after it).
  int64_t wg = out_w + reach_w, wrap = 0;
  if (s2 == 1) {
    const int64_t left = std::clamp<int64_t>(g.pad[2], 0, wg);
    const int64_t right = std::clamp<int64_t>(in_w + g.pad[2], left, wg);  // end of the data
    const int64_t shared = std::max({out_w, right, wg - left});
    wrap = wg - shared;
    wg = shared;
  }
  grid_ = ColumnGrid{wg, out_w};
  const int64_t oh_first = n_begin / out_w, oh_last = (n_end - 1) / out_w;
  v_origin_ = oh_first * wg;
  v_begin_ = v_origin_ + n_begin % out_w;
  v_end_ = oh_last * wg + (n_end - 1) % out_w + 1;
  const int lanes = mode == QuantMode::A8 ? 4 : 2;
  const int64_t rows = oh_last - oh_first + 1 + (k1 - 1) * d1 / s1;
  const int64_t groups = (g.channels + lanes - 1) / lanes, plane = rows * wg + wrap;
  // Pixels: s1 * s2 phases of `groups` planes, then room for the last tile's reads.
  const int64_t pixels = s1 * s2 * groups * plane + nr;
  if (pixels * 4 > std::numeric_limits<int32_t>::max()) {
    throw Error(ErrorKind::Unsupported, "qgemm: convolution input of " +
                                            std::to_string(pixels * 4) +
                                            " bytes after padding exceeds 2 GiB");
  }
  PackScratch& s = scratch();
  uint8_t* image = s.conv_image.ensure(size_t(pixels * 4));
  const size_t eb = type_bytes(b.type);
  const uint8_t flip = b.type == QType::S8 ? 0x80 : 0;
  // A padding pixel as the kernels read it (uint8 zero points or int16 zeros), and an
  // input row of padding for the channels past the last.
  const uint32_t pad_pixel =
      mode == QuantMode::A8 ? 0x01010101u * static_cast<uint8_t>(b.zero_point ^ flip) : 0;
  auto fill = [pad_pixel](uint8_t* dst, int64_t count) {
    std::fill_n(reinterpret_cast<uint32_t*>(dst), count, pad_pixel);
  };
  // (A whole plane long: the unpadded 1x1 case below reads planes as one row.)
  const int64_t pad_len = std::max(in_w, plane);
  uint8_t* pad_row = s.conv_rows.ensure(size_t(pad_len + lanes * wg) * eb);
  if (mode == QuantMode::A8) {
    std::memset(pad_row, static_cast<uint8_t>(b.zero_point), size_t(pad_len));
  } else {
    std::fill_n(reinterpret_cast<float*>(pad_row), pad_len, 0.0f);
  }
  uint8_t* samples = pad_row + size_t(pad_len) * eb;  // strided phases: each channel's samples
  const uint8_t* input = static_cast<const uint8_t*>(b.data);
  auto channel_row = [&](int64_t c, int64_t ih) {
    return c < g.channels ? input + size_t((c * in_h + ih) * in_w) * eb : pad_row;
  };
  InterleaveQuad interleave_quad = interleave_quad_u8;
  const InterleavePairsS16 interleave_pairs = interleave_pairs_s16_for(isa);
  // Mode A8, stride 2: samples and interleaves in one pass (else sample_rows, then interleave).
  InterleaveQuad interleave_even = nullptr;
  // Mode A8, stride 1: a plane's rows in one pass (else row by row).
  decltype(&avx512::interleave_quad_plane_u8) interleave_plane = nullptr;
#if defined(__x86_64__)
  if (isa >= Isa::Avx512) {
    interleave_quad = avx512::interleave_quad_u8;
    if (mode == QuantMode::A8 && s2 == 2) interleave_even = avx512::interleave_quad_even_u8;
    if (mode == QuantMode::A8 && s1 == 1 && s2 == 1) {
      interleave_plane = avx512::interleave_quad_plane_u8;
    }
  } else if (isa >= Isa::Avx2) {
    interleave_quad = avx2::interleave_quad_u8;
  }
#else
  (void)isa;
#endif
  // `len` pixels of one group from its channels' rows (element pointers at the first sample).
  auto write_pixels = [&](const uint8_t* const* from, int64_t len, uint8_t* dst) {
    if (mode == QuantMode::A8) {
      interleave_quad(from, len, flip, dst);
    } else {
      interleave_pairs(reinterpret_cast<const float* const*>(from), 1, len, len, q16,
                       reinterpret_cast<int16_t*>(dst));
    }
  };
  const uint8_t* rows_of[4];
  const uint8_t* sampled[4];
  // Column phase bp: phase columns j read input column j * s2 + bp - pad, inside the row for j
  // in [lo, hi); `first` is the input column of phase column lo.
  std::vector<ColumnPhase>& column_phases = s.column_phases;
  column_phases.resize(size_t(s2));
  for (int64_t bp = 0; bp < s2; ++bp) {
    ColumnPhase& cp = column_phases[size_t(bp)];
    cp.lo = std::clamp<int64_t>(ceil_div(g.pad[2] - bp, s2), 0, wg);
    cp.hi = std::clamp<int64_t>(ceil_div(in_w + g.pad[2] - bp, s2), cp.lo, wg);
    cp.first = cp.lo * s2 + bp - g.pad[2];
  }
  // Unpadded rows that follow each other in the input: one run for the whole plane.
  const bool one_run = s1 == 1 && s2 == 1 && g.pad[1] == 0 && column_phases[0].lo == 0 &&
                       column_phases[0].hi == wg && wg == in_w;
  for (int64_t q = 0; q < groups; ++q) {
    auto plane_of = [&](int64_t a, int64_t bp) {
      return image + ((a * s2 + bp) * groups + q) * plane * 4;
    };
    if (one_run) {
      for (int c = 0; c < lanes; ++c) rows_of[c] = channel_row(lanes * q + c, oh_first);
      write_pixels(rows_of, plane, plane_of(0, 0));
      continue;
    }
    // Stride 1, a group of input channels (not the padding ones past the last): the rows inside
    // the input in one pass, the rows of padding above and below it filled.
    if (interleave_plane != nullptr && lanes * (q + 1) <= g.channels) {
      const ColumnPhase& cp = column_phases[0];
      const int64_t i_lo = std::clamp<int64_t>(g.pad[1] - oh_first, 0, rows);
      const int64_t i_hi = std::clamp<int64_t>(in_h + g.pad[1] - oh_first, i_lo, rows);
      uint8_t* dst = plane_of(0, 0);
      fill(dst, i_lo * wg);
      if (i_hi > i_lo) {
        for (int c = 0; c < lanes; ++c) {
          rows_of[c] = channel_row(lanes * q + c, oh_first + i_lo - g.pad[1]) + cp.first;
        }
        interleave_plane(rows_of, in_w, i_hi - i_lo, PlaneRows{wg, cp.lo, cp.hi},
                         static_cast<uint8_t>(b.zero_point), flip, dst + i_lo * wg * 4);
      }
      fill(dst + i_hi * wg * 4, (rows - i_hi) * wg + wrap);
      continue;
    }
    // The input rows in order (row phase a of phase row i is input row (oh_first + i) s1 + a -
    // pad), so that each channel's rows stream once, and all column phases of a row in turn,
    // while the row is in L1 (stride 2 samples it twice).
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t a = 0; a < s1; ++a) {
        const int64_t ih = (oh_first + i) * s1 + a - g.pad[1];
        const bool inside = ih >= 0 && ih < in_h;
        if (inside) {
          for (int c = 0; c < lanes; ++c) rows_of[c] = channel_row(lanes * q + c, ih);
        }
        for (int64_t bp = 0; bp < s2; ++bp) {
          const ColumnPhase& cp = column_phases[size_t(bp)];
          uint8_t* dst = plane_of(a, bp) + i * wg * 4;
          if (!inside || cp.lo == cp.hi) {
            fill(dst, wg);
            continue;
          }
          fill(dst, cp.lo);
          fill(dst + cp.hi * 4, wg - cp.hi);
          if (interleave_even != nullptr) {
            for (int c = 0; c < lanes; ++c) sampled[c] = rows_of[c] + cp.first;
            interleave_even(sampled, cp.hi - cp.lo, flip, dst + cp.lo * 4);
            continue;
          }
          if (eb == 1) {
            sample_rows(rows_of, lanes, cp.first, cp.hi - cp.lo, s2, in_w, samples, sampled);
          } else {
            sample_rows(reinterpret_cast<const float* const*>(rows_of), lanes, cp.first,
                        cp.hi - cp.lo, s2, in_w, reinterpret_cast<float*>(samples),
                        reinterpret_cast<const float**>(sampled));
          }
          write_pixels(sampled, cp.hi - cp.lo, dst + cp.lo * 4);
        }
      }
    }
    for (int64_t a = 0; a < s1; ++a) {
      for (int64_t bp = 0; bp < s2; ++bp) fill(plane_of(a, bp) + rows * wg * 4, wrap);
    }
  }
  std::memset(image + (pixels - nr) * 4, 0, size_t(nr * 4));
  image_ = image;

  // K units in pack_qconv_weights order: channel group, then tap.
  const int64_t taps = k1 * k2;
  offsets_.resize(size_t(groups * taps));
  for (int64_t q = 0; q < groups; ++q) {
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t dh = (t / k2) * d1, dw = (t % k2) * d2;
      const int64_t phase = (dh % s1) * s2 + dw % s2;
      offsets_[size_t(q * taps + t)] =
          static_cast<int32_t>(((phase * groups + q) * plane + (dh / s1) * wg + dw / s2) * 4);
    }
  }
}

}  // namespace nibble::kernels::qgemm_detail
